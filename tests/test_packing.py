"""The evaluation cache keeps per-example lists packed, and gives back the very same lists."""

import math

import pytest

from modelswarm.search.packing import Packed, packed, unpacked

CASES = {
    "marks": [1.0, 0.0, 1.0] * 21,
    "a negative zero is not a mark": [-0.0, 1.0],
    "letter answers": [0, 3, 2, -1],
    "wide integers": [1000, -2],
    "huge integers": [2**40],
    "scores": [0.5, 1.0],
    "generated answers": ["7", "seven"],
    "bools": [True, False],
    "empty": [],
    "none": None,
}


@pytest.mark.parametrize("values", CASES.values(), ids=CASES.keys())
def test_a_packed_list_unpacks_to_the_same_items_of_the_same_types(values):
    back = unpacked(packed(values))
    assert back == values
    if values:
        assert [type(v) for v in back] == [type(v) for v in values]
        assert [math.copysign(1, v) for v in back if type(v) is float] == \
               [math.copysign(1, v) for v in values if type(v) is float]


def test_marks_take_a_bit_and_small_answers_a_byte():
    assert packed(CASES["marks"]) == Packed("bits", packed(CASES["marks"]).data, 63)
    assert len(packed(CASES["marks"]).data) == 8
    assert packed(CASES["letter answers"]).dtype == "<i1" and packed(CASES["wide integers"]).dtype == "<i2"
