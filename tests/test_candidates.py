"""A candidate's journal key is the one old journals were written with, so old run and
compare directories replay without recomputing; an old journal line reads and writes back
byte for byte; a merge method's key covers every parameter it may read."""

import json

import pytest

from modelswarm.weights.candidates import Candidate, CoefficientRow, DeltaMerge, as_candidates, row_fields
from modelswarm.search.evaluations import Evaluations
from modelswarm.search.state import Evaluation, RunDir

# lines as modelswarm wrote them before candidates existed (a swarm run's row, a compare's TIES merge)
OLD_ROW = ('{"iteration":3,"particle":1,"hash":"ba0c29f3d865060f3f51","coeffs":[0.25,0.5,0.25],"score":0.5,'
           '"seconds":0.5,"worker":"n:1","error":null,"per_example":[1.0,0.0],"bound":0.75,"answers":null,'
           '"split":"val","parts":null,"counts":null}')
OLD_MERGE = ('{"iteration":null,"particle":2,"hash":"m953d5785c14b7c218fc","coeffs":[],"score":0.375,"seconds":1.25,'
             '"worker":"n:1","error":null,"per_example":[1.0,0.0],"bound":null,"answers":[0,1],"split":"val",'
             '"parts":null,"counts":null,"merge":{"method":"ties","scale":1.0,"density":0.2}}')
OLD_KEYS = {  # merge -> the journal hash the old tools gave it
    DeltaMerge("ties", 1.0, 0.2): "m953d5785c14b7c218fc",
    DeltaMerge("dare_ties", 0.5, 0.5, 1003): "m06a9b7564cf94b26c59",
    DeltaMerge("task_arithmetic", 0.4): "m7e9bdeedcbc37592ecf",
    DeltaMerge("linear", weights=(1.0, 0.0, 0.0)): "me87c2652c235b8b397e",
}


def test_an_old_journal_row_reads_keeps_its_key_and_writes_back_byte_for_byte():
    ev = Evaluation.from_dict(json.loads(OLD_ROW))
    assert ev.candidate == CoefficientRow((0.25, 0.5, 0.25)) and ev.candidate.key() == ev.hash
    assert ev.coeffs == [0.25, 0.5, 0.25] and ev.merge is None
    assert ev.score == 0.5 and ev.bound == 0.75 and ev.result.early_exit and ev.per_example == [1.0, 0.0]
    assert ev.to_json() == OLD_ROW


def test_an_old_journal_merge_reads_keeps_its_key_and_writes_back_byte_for_byte():
    ev = Evaluation.from_dict(json.loads(OLD_MERGE))
    assert ev.candidate == DeltaMerge("ties", scale=1.0, density=0.2) and ev.candidate.key() == ev.hash
    assert ev.coeffs == [] and ev.merge == {"method": "ties", "scale": 1.0, "density": 0.2}
    assert ev.answers == [0, 1] and not ev.failed
    assert ev.to_json() == OLD_MERGE


@pytest.mark.parametrize("merge", list(OLD_KEYS))
def test_every_existing_merge_keeps_its_old_journal_hash(merge):
    assert merge.key() == OLD_KEYS[merge]
    assert Candidate.from_json(merge.to_json()) == merge


def test_an_old_journal_replays_without_a_pool(tmp_path):
    rd = RunDir(tmp_path)
    rd.journal_file.write_text(OLD_ROW + "\n" + OLD_MERGE + "\n")

    def no_pool():
        raise AssertionError("an old journal's evaluations must replay, not be computed")

    evals = Evaluations(rd, pool_factory=no_pool)
    got = evals.score([CoefficientRow((0.25, 0.5, 0.25)), DeltaMerge("ties", 1.0, 0.2)], bounds=[0.9, None])
    assert [e.score for e in got] == [0.5, 0.375] and evals.computed == 0 and evals.hits == 2
    # a row given as numbers; its journal score is an upper bound below 0.75, which settles 0.9
    assert [e.score for e in evals.score([[0.25, 0.5, 0.25]], bounds=[0.9])] == [0.5]


def test_a_new_merge_method_keys_on_every_parameter(monkeypatch):
    from modelswarm import merges

    monkeypatch.setitem(merges.METHODS, "breadcrumbs", merges.MergeMethod(name="breadcrumbs", merge=None))
    a, b = DeltaMerge("breadcrumbs", 1.0, 0.5, seed=1), DeltaMerge("breadcrumbs", 1.0, 0.5, seed=2)
    assert a.key() != b.key() and a.key() != DeltaMerge("breadcrumbs", 1.0, 0.4, seed=1).key()
    # an existing method keeps leaving out what it does not read
    assert DeltaMerge("ties", 1.0, 0.5, seed=1).key() == DeltaMerge("ties", 1.0, 0.5, seed=2).key()


def test_rows_and_merges_keep_the_compare_row_shape():
    assert row_fields(CoefficientRow((1.0, 0.0))) == {"coeffs": [1.0, 0.0], "merge": None}
    merge = DeltaMerge("task_arithmetic", 0.4)
    assert row_fields(merge) == {"coeffs": None, "merge": {"method": "task_arithmetic", "scale": 0.4}}
    assert Candidate.from_json(row_fields(merge)) == merge
    assert as_candidates([[1.0, 0.0], [0.0, 1.0]]) == [CoefficientRow((1.0, 0.0)), CoefficientRow((0.0, 1.0))]


def test_every_merge_method_with_a_grid_is_a_compare_row_whose_points_have_distinct_keys():
    from modelswarm import compare, merges

    gridded = {name for name, m in merges.METHODS.items() if m.grid is not None}
    assert gridded == {"task_arithmetic", "ties", "dare_ties"}
    for name in gridded:
        row = compare.METHODS[name]
        assert row.kind == "merge" and row.doc == merges.METHODS[name].summary
        for seed in (0, 1):
            keys = [DeltaMerge(name, **p).key() for p in merges.METHODS[name].grid(seed)]
            assert len(set(keys)) == len(keys)
    assert compare.METHODS["dare_ties"].seeded and not compare.METHODS["ties"].seeded
