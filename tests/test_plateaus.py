"""On a plateau, where many points score exactly the same: utility.tie_break (a continuous
secondary score, recorded with every evaluation and journaled, orders particles of equal score
and nothing else) and swarm.on_collapse (what the restart rule does once every particle's
score is the same)."""

import json

import numpy as np
import pytest
import torch

from modelswarm.cluster.worker import EvalResult
from modelswarm.config import SwarmParams, load_config
from modelswarm.errors import UserError
from modelswarm.objectives import make_utility, utility_config
from modelswarm.objectives.base import Score
from modelswarm.search.evaluations import Evaluations
from modelswarm.search.state import Evaluation, RunDir
from modelswarm.search.swarm import Swarm
from modelswarm.tiny import write_jsonl
from modelswarm.weights.candidates import CoefficientRow

NAN = np.nan


def swarm() -> Swarm:
    s = Swarm.create(3, SwarmParams(size=4, restart_patience=2), seed=0)
    s.start(np.array([0.5, 0.5, 0.2, 0.2]), np.array([-2.0, -1.0, -3.0, -4.0]))
    return s


def test_equal_scores_are_ordered_by_the_tie_break_score_at_the_start():
    s = swarm()
    assert np.array_equal(s.g, s.x[1]) and s.g_tie == -1.0  # 0.5 twice: the higher tie-break leads
    assert np.array_equal(s.gw, s.x[3]) and s.gw_tie == -4.0  # 0.2 twice: the lower one is the worst


def test_an_equal_score_with_a_higher_tie_break_is_a_new_personal_and_global_best():
    s = swarm()
    s.propose()
    s.record(np.array([0.5, 0.5, 0.2, 0.1]), np.array([-1.5, -0.5, -3.5, -9.0]))
    assert s.best_at.tolist() == [1, 1, 0, 0]  # particles 0 and 1 climbed along the plateau
    assert s.p_ties.tolist() == [-1.5, -0.5, -3.0, -4.0]
    assert s.g_score == 0.5 and s.g_tie == -0.5 and np.array_equal(s.g, s.x[1])
    assert s.gw_score == 0.1
    assert s.history == [0.5, 0.5]  # the history (and the stall stop) reads the score alone


def test_a_higher_score_wins_whatever_the_tie_break():
    s = swarm()
    s.propose()
    s.record(np.array([0.6, 0.4, 0.2, 0.2]), np.array([-50.0, 0.0, -3.0, -4.0]))
    assert s.g_score == 0.6 and np.array_equal(s.g, s.x[0])
    assert s.best_at.tolist() == [1, 0, 0, 0]


def test_without_tie_break_scores_the_rules_are_the_official_ones():
    """nan (no tie-break score) compares below any and equal to itself: strict `>`, first of ties."""
    a, b = Swarm.create(3, SwarmParams(size=6), seed=1), Swarm.create(3, SwarmParams(size=6), seed=1)
    first = np.array([0.1, 0.5, 0.3, 0.5, 0.1, 0.4])
    a.start(first)
    b.start(first, np.full(6, NAN))
    for k in range(4):
        scores = np.round(np.random.default_rng(k).random(6), 1)
        for s in (a, b):
            s.propose()
            s.record(scores, None if s is a else np.full(6, NAN))
    assert np.array_equal(a.x, b.x) and np.array_equal(a.g, b.g) and np.array_equal(a.gw, b.gw)
    assert "ties" not in a.to_json()  # a snapshot without tie-break scores is the plain one


def test_the_tie_break_scores_survive_a_snapshot():
    s = swarm()
    s.propose()
    s.record(np.array([0.5, NAN, 0.2, 0.1]), np.array([-1.5, NAN, -3.5, -9.0]))
    back = Swarm.from_json(json.loads(json.dumps(s.to_json())), s.params)
    assert back.ties[1] == -1.0  # not evaluated: keeps its previous tie-break score, as its score
    for name in ("ties", "p_ties"):
        assert np.array_equal(getattr(back, name), getattr(s, name), equal_nan=True)
    assert (back.g_tie, back.gw_tie) == (s.g_tie, s.gw_tie)
    for t in (back, s):
        t.propose()
        t.record(np.array([0.5, 0.5, 0.5, 0.5]), np.array([-1.0, -1.0, -2.0, -0.1]))
    assert np.array_equal(back.g, s.g) and np.array_equal(back.x, s.x)


def test_exact_match_records_the_gold_answers_mean_log_probability(world, evaluator, tmp_path):
    rows = [{"prompt": f"{d}^", "answer": str((d + 1) % 10)} for d in range(6)]
    rows += [{"prompt": f"{d}{d}=", "answer": f"{d}{d}"} for d in range(3)]
    path = write_jsonl(tmp_path / "em.jsonl", rows)
    evaluator.composer.apply([0.3, 0.2, 0.5])
    tok, model = evaluator.tokenizer, evaluator.model
    plain = make_utility(utility_config(kind="exact_match", data=str(path), max_new_tokens=3))
    util = make_utility(utility_config(kind="exact_match", data=str(path), max_new_tokens=3, tie_break=True))
    examples = util.load(path)
    score = util.score(model, tok, examples)
    assert plain.score(model, tok, examples).secondary is None
    assert score.value == plain.score(model, tok, examples).value  # the score itself is untouched
    want = []
    for ex in examples:
        p = tok(ex["prompt"])["input_ids"]
        c = tok(" " + ex["answer"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        with torch.inference_mode():
            lp = torch.log_softmax(model(input_ids=torch.tensor([p + c])).logits[0].float(), -1)
        want.append(sum(lp[len(p) - 1 + t, c[t]].item() for t in range(len(c))) / len(c))
    assert score.secondary == pytest.approx(sum(want) / len(want), abs=1e-5)


def test_multiple_choice_records_the_gold_choices_mean_margin(world, evaluator):
    evaluator.composer.apply([0.0, 0.0, 1.0])
    util = make_utility(utility_config(kind="multiple_choice", data=str(world["val"]), tie_break=True))
    examples = util.load(world["val"])
    rows = util.choice_scores(evaluator.model, evaluator.tokenizer, examples)
    margins = [r[ex["answer"]] - max(v for c, v in enumerate(r) if c != ex["answer"]) for ex, r in zip(examples, rows)]
    score = util.score(evaluator.model, evaluator.tokenizer, examples)
    assert score.secondary == pytest.approx(sum(margins) / len(margins))
    assert score.value == sum(m > 0 for m in margins) / len(margins)  # a positive margin is a right answer


@pytest.mark.parametrize("utility, message", [
    ("{kind: multiple_choice, data: v, scoring: generate, tie_break: true}", "kind 'multiple_choice' records no"),
    ("{kind: python, data: v, function: 'm:f', tie_break: true}", "kind 'python' records no secondary score"),
])
def test_tie_break_needs_a_kind_that_records_a_secondary_score(tmp_path, utility, message):
    path = tmp_path / "c.yaml"
    path.write_text(f"base_model: b\nexperts: [a, b]\nutility: {utility}\n")
    with pytest.raises(UserError, match=message) as err:
        load_config(path)
    assert str(path) in str(err.value) and "tie_break" in str(err.value)


def test_the_paper_preset_breaks_no_ties(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base_model: b\nexperts: [a, b]\nutility: {kind: multiple_choice, data: v, tie_break: true}\n"
                    "swarm: {preset: paper}\n")
    with pytest.raises(UserError, match="preset 'paper' is the official algorithm"):
        load_config(path)


def evaluation(secondary):
    result = EvalResult(utility=Score(0.5, [1.0, 0.0], secondary=secondary), seconds=1.0, worker="w")
    return Evaluation(iteration=0, particle=0, hash=CoefficientRow.of([0.5, 0.5]).key(),
                      candidate=CoefficientRow.of([0.5, 0.5]), result=result)


def test_the_journal_keeps_the_tie_break_score_and_a_line_without_it_is_unchanged():
    line = json.loads(evaluation(-0.75).to_json())
    assert line["secondary"] == -0.75
    assert Evaluation.from_dict(line).secondary == -0.75
    assert "secondary" not in json.loads(evaluation(None).to_json())


def test_a_search_that_reads_tie_break_scores_scores_again_what_was_journaled_without(tmp_path):
    rd = RunDir(tmp_path)
    rd.append(evaluation(None))

    def no_pool():
        raise LookupError("asked the pool")

    assert Evaluations(rd, no_pool).score([[0.5, 0.5]])[0].score == 0.5  # a cache hit
    with pytest.raises(LookupError):
        Evaluations(rd, no_pool, secondary=True).score([[0.5, 0.5]])
    rd.append(evaluation(-0.75))
    assert Evaluations(rd, no_pool, secondary=True).score([[0.5, 0.5]])[0].secondary == -0.75


def collapsed_swarm(on_collapse: str) -> Swarm:
    """Six particles, all scoring 0.4 from the start: nobody improves, so after restart_patience
    iterations every particle is stray."""
    s = Swarm.create(3, SwarmParams(size=6, restart_patience=2, on_collapse=on_collapse), seed=0)
    s.start(np.full(6, 0.4))
    for _ in range(2):
        s.propose()
        s.record(np.full(6, 0.4))
    return s


def test_a_swarm_whose_particles_all_score_the_same_is_collapsed():
    s = collapsed_swarm("restart")
    assert s.collapsed() and s.trace[-1]["collapsed"]
    s.propose()
    s.record(np.array([0.4, 0.4, 0.45, 0.4, 0.4, np.nan]))
    assert not s.collapsed() and not s.trace[-1]["collapsed"]


def test_restart_sends_a_collapsed_swarms_stray_particles_back_to_their_personal_bests():
    s = collapsed_swarm("restart")
    assert s.stray().all()
    p = s.p.copy()
    s.propose()
    assert s.restarted.all() and np.array_equal(s.x, p + s.moved)  # from p, one step


def test_reseed_puts_them_at_fresh_crossover_children_of_the_starting_particles():
    s = collapsed_swarm("reseed")
    start, p = s.initial_x.copy(), s.p.copy()
    s.propose()
    from_where = s.x - s.moved
    assert s.restarted.all() and not np.allclose(from_where, p)
    for row in from_where:  # w * a + (1 - w) * b for two starting rows: on the line through them
        assert any(np.allclose(row - start[b], ((row - start[b]) @ (start[a] - start[b]))
                               / ((start[a] - start[b]) @ (start[a] - start[b])) * (start[a] - start[b]))
                   for a in range(6) for b in range(6) if a != b)


def test_reseed_changes_nothing_while_the_scores_differ():
    a, b = (Swarm.create(3, SwarmParams(size=6, restart_patience=2, on_collapse=c), seed=0)
            for c in ("restart", "reseed"))
    for s in (a, b):
        s.start(np.array([0.1, 0.5, 0.3, 0.5, 0.1, 0.4]))
        for k in range(4):
            s.propose()
            s.record(np.array([0.1, 0.5, 0.3, 0.5, 0.1, 0.4]))
    assert a.restarts.sum() > 0 and np.array_equal(a.x, b.x)
