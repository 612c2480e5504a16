"""Shared prompt prefixes run once: the trie's rows and masks give each prompt what it alone would get."""

import random

import pytest
import torch

from modelswarm.weights.experts import load_bank
from modelswarm.objectives import make_utility, utility_config
from modelswarm.engine.model_parts import backbone_and_head
from modelswarm.engine.prefix_tree import PrefixForest, path_columns, tree_inputs
from modelswarm.cluster.worker import Evaluator


def random_prompts(seed: int, n: int = 60) -> list[list[int]]:
    rng = random.Random(seed)
    stems = [[rng.randrange(5) for _ in range(rng.randrange(1, 6))] for _ in range(6)]
    return [rng.choice(stems) + [rng.randrange(5) for _ in range(rng.randrange(0, 5))] for _ in range(n)]


def ancestors(forest: PrefixForest, node: int) -> set[int]:
    out = set()
    while node >= 0:
        out.add(node)
        node = forest.parent[node]
    return out


def test_a_prompt_maps_to_one_node_per_token_and_equal_prefixes_share_nodes():
    forest = PrefixForest()
    a, b, c = forest.insert([1, 2, 3]), forest.insert([1, 2, 4]), forest.insert([1, 2])
    assert a[:2] == b[:2] == c and a[2] != b[2] and len(forest) == 4
    assert [forest.depth[n] for n in a] == [1, 2, 3]


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("cap", [1, 3, 8, 1000])
def test_rows_cover_every_node_closed_under_ancestors_parents_first(seed, cap):
    forest = PrefixForest()
    for p in random_prompts(seed):
        forest.insert(p)
    rows = forest.rows(cap)
    assert set().union(*map(set, rows)) == set(range(len(forest)))
    for row in rows:
        assert len(row) == len(set(row))
        seen = set()
        for n in row:
            assert forest.parent[n] < 0 or forest.parent[n] in seen  # parents first, all ancestors present
            seen.add(n)
        # longer than cap only when it is a single path, which cannot be split
        assert len(row) <= cap or ancestors(forest, row[-1]) == set(row)
    if cap == 1000:
        assert len(rows) == 1


def test_the_mask_lets_a_node_see_exactly_its_ancestors_and_itself():
    forest = PrefixForest()
    for p in random_prompts(3, 20):
        forest.insert(p)
    rows = forest.rows(6)
    _, positions, mask = tree_inputs(forest, rows, 0, torch.float32, torch.device("cpu"))
    for b, row in enumerate(rows):
        for i, n in enumerate(row):
            sees = {row[j] for j in range(len(row)) if mask[b, 0, i, j] == 0}
            assert sees == ancestors(forest, n)
            assert positions[b, i] == forest.depth[n] - 1
            assert [row[j] for j in path_columns(forest, row, i)] == sorted(ancestors(forest, n), key=forest.depth.__getitem__)
        for i in range(len(row), mask.shape[2]):  # padding sees itself only: no empty softmax row
            assert (mask[b, 0, i] == 0).nonzero().flatten().tolist() == [i]


def test_every_node_gets_the_hidden_state_its_prompt_alone_gives(world):
    bank = load_bank(str(world["experts"]))
    cfg = utility_config(kind="multiple_choice", data=str(world["val"]))
    ev = Evaluator(str(world["base"]), bank.layout, bank.matrix, cfg, {"val": make_utility(cfg).load(world["val"])},
                   num_threads=1)
    ev.composer.apply([0.5, 0.2, 0.3])
    backbone, _ = backbone_and_head(ev.model)
    vocab = ev.model.config.vocab_size
    prompts = [[t % vocab for t in p] for p in random_prompts(7, 30)]
    forest = PrefixForest()
    nodes = [forest.insert(p) for p in prompts]
    rows = forest.rows(7)
    ids, positions, mask = tree_inputs(forest, rows, 0, torch.float32, torch.device("cpu"))
    with torch.inference_mode():
        hidden = backbone(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state
        where = {n: (b, i) for b, row in enumerate(rows) for i, n in enumerate(row)}
        for p, ns in zip(prompts, nodes):
            alone = backbone(input_ids=torch.tensor([p])).last_hidden_state[0]
            got = torch.stack([hidden[where[n]] for n in ns])
            torch.testing.assert_close(got, alone, rtol=1e-4, atol=1e-5)
