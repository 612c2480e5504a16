"""A whole search on the tiny world with real Ray actors, and the CLI around it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelswarm.config import load_config
from modelswarm.run.prepare import prepare
from modelswarm.run.coordinator import run_swarm
from modelswarm.search.state import RunDir
from modelswarm.export.verify import score_checkpoint

from conftest import write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(world, ray_session, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    path = write_config(tmp / "c.yaml", world, tmp / "runs", name="full")
    cfg = load_config(path)
    summary = run_swarm(prepare(cfg), live=False)
    return cfg, summary


def test_the_swarm_beats_every_initial_expert(finished):
    cfg, summary = finished
    val = summary["baselines"]["val"]
    experts = [v for k, v in val.items() if k.startswith("expert ")]
    assert summary["status"] == "finished"
    assert summary["best"]["score"] == val["global best"]
    assert summary["best"]["score"] > max(experts)
    assert summary["best"]["score"] > val["uniform soup"]
    assert summary["history"] == sorted(summary["history"])  # the global best never gets worse


def test_run_directory_holds_config_state_journal_best_and_summary(finished):
    cfg, summary = finished
    rd = RunDir(cfg.run_dir)
    assert load_config(rd.config_file) == cfg  # resolved config round-trips
    state = json.loads(rd.state_file.read_text())
    assert state["status"] == "finished" and state["swarm"]["iteration"] == summary["iterations"]
    lines = rd.journal_file.read_text().splitlines()
    assert len(lines) == summary["evaluations"]["computed"]
    first = json.loads(lines[0])
    assert {"iteration", "particle", "hash", "coeffs", "score", "seconds", "worker"} <= set(first)
    assert len({json.loads(l)["hash"] + json.loads(l)["split"] for l in lines}) == len(lines), \
        "identical coefficients are never evaluated twice"
    assert (rd.best_dir / "adapter_config.json").is_file()
    assert json.loads(rd.summary_file.read_text())["best"] == summary["best"]


def test_summary_holds_the_official_end_of_run_outputs(finished):
    cfg, summary = finished
    size = cfg.swarm.size
    assert summary["top_k"][0] == summary["best"]  # export --rank 1 is best/
    assert len(summary["personal_bests"]) == size
    assert max(pb["val"] for pb in summary["personal_bests"]) == summary["best"]["score"]
    assert all(pb["test"] is not None for pb in summary["personal_bests"])
    ens = summary["ensemble"]
    assert len(ens["members"]) == min(size, cfg.swarm.ensemble_top_k) and 0 <= ens["val"] <= 1 and 0 <= ens["test"] <= 1
    stats = summary["history_stats"]
    assert stats["improvements"] == sum(b > a for a, b in zip(summary["history"], summary["history"][1:]))
    diamond = summary["diamond_in_the_rough"]
    assert diamond["ending_rank"] == 1 and 1 <= diamond["starting_rank"] <= size
    ce = summary["correctness_emergence"]
    assert ce["questions"] == 60 and len(ce["solved_by_any_particle_by_iteration"]) == summary["iterations"]
    assert 0 <= ce["solved_by_global_best"] <= ce["unsolved_at_start"]
    start, sens = summary["starting_best"], summary["starting_ensemble"]  # overall_metrics' starting_* numbers
    assert start["val"] == summary["history"][0] and 0 <= start["test"] <= 1
    assert len(sens["members"]) == min(size, cfg.swarm.ensemble_top_k) and 0 <= sens["val"] <= 1 and 0 <= sens["test"] <= 1


def test_exported_best_loads_in_peft_with_the_same_score(finished):
    cfg, summary = finished
    assert score_checkpoint(cfg, RunDir(cfg.run_dir).best_dir) == summary["best"]["score"]
    assert score_checkpoint(cfg, RunDir(cfg.run_dir).best_dir, "test") == summary["baselines"]["test"]["global best"]


def test_same_seed_same_result_also_after_an_interruption(finished, world, tmp_path):
    cfg, summary = finished
    path = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="again")
    prep = prepare(load_config(path))
    assert run_swarm(prep, live=False, stop_after=2)["status"] == "stopped"
    resumed = run_swarm(prep, live=False, resume=True)
    assert resumed["best"] == summary["best"]
    assert resumed["history"] == summary["history"]
    assert resumed["evaluations"]["replayed_from_journal"] > 0


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "modelswarm.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


def test_cli_bad_config_key_exits_2_with_one_line_and_writes_nothing(world, tmp_path):
    path = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", swarm={"phi_gg": 1})
    r = cli("run", path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "unknown key 'swarm.phi_gg'" in r.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("break_it, message", [
    (lambda w, t: (t / "val.jsonl").write_text(""), "no examples"),
    (lambda w, t: (t / "val.jsonl").write_text('{"question": "1^", "choices": ["2", "3"], "answer": 0}\nnope\n'),
     "val.jsonl:2: not valid JSON"),
])
def test_cli_bad_validation_file_exits_2(world, tmp_path, break_it, message):
    break_it(world, tmp_path)
    path = write_config(tmp_path / "c.yaml", world, tmp_path / "runs",
                        utility={"kind": "multiple_choice", "data": str(tmp_path / "val.jsonl")})
    r = cli("run", path)
    assert r.returncode == 2 and message in r.stderr
    assert not (tmp_path / "runs").exists()


def test_cli_run_status_export_eval(world, tmp_path):
    path = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="cli",
                        swarm={"size": 4, "max_iterations": 2}, workers={"count": 1})
    r = cli("run", path, "--no-live")
    assert r.returncode == 0, r.stderr
    assert "iter   2/2" in r.stdout and "global best" in r.stdout
    # the base anchor (3 experts, 4 particles: the base row itself) is said before the search starts
    assert 0 <= r.stdout.find("starting swarm: 1 of 4 particles do not sum to 1") < r.stdout.find("iter ")
    run_dir = tmp_path / "runs" / "cli"
    r = cli("run", path)
    assert r.returncode == 2 and "already exists" in r.stderr
    r = cli("status", run_dir)
    assert r.returncode == 0 and "finished" in r.stdout
    r = cli("export", run_dir, "--rank", "2", "--out", tmp_path / "second")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "second" / "adapter_model.safetensors").is_file()
    r = cli("eval", path, run_dir)
    assert r.returncode == 0, r.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert f"{summary['best']['score']:.4f}" in r.stdout
    r = cli("verify", run_dir)
    assert r.returncode == 0 and r.stdout.count(": ok") == 2, r.stdout + r.stderr
    r = cli("export", run_dir, "--merged")
    assert r.returncode == 0, r.stderr
    assert (run_dir / "merged" / "model.safetensors").is_file() and (run_dir / "merged" / "tokenizer.json").is_file()
    r = cli("verify", run_dir, "--merged")
    assert r.returncode == 0, r.stdout + r.stderr
    (run_dir / "utility.png").unlink()
    r = cli("status", run_dir, "--plot")
    assert r.returncode == 0 and (run_dir / "utility.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_plan_is_a_dry_run(world, tmp_path):
    path = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="planned")
    r = cli("plan", path, "--warmup", "4")
    assert r.returncode == 0, r.stderr
    assert "experts: 3 (lora), particles: 6" in r.stdout
    assert "evaluations: 6 per iteration" in r.stdout and "per evaluation" in r.stdout
    # tiny passes take far less than the warm-up's budget: the sample doubles up to the whole set
    n_val = len(Path(world["val"]).read_text().splitlines())
    assert f"from a {n_val}-example warm-up" in r.stdout
    assert not (tmp_path / "runs").exists()


def test_full_weight_experts_search_and_export_an_hf_model_dir(world, ray_session, tmp_path):
    """Full fine-tunes instead of adapters: same search, best/ is a plain transformers model."""
    import torch
    from transformers import AutoModelForCausalLM

    from modelswarm.weights.experts import load_bank

    lora = load_bank(str(world["experts"]))
    for j, name in enumerate(lora.names):  # each adapter merged into the base: a full expert
        from peft import PeftModel

        merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(world["base"]),
                                           str(world["experts"] / name)).merge_and_unload()
        merged.save_pretrained(tmp_path / "full" / name)
    path = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", name="full",
                        experts=str(tmp_path / "full"), swarm={"size": 4, "max_iterations": 2})
    cfg = load_config(path)
    summary = run_swarm(prepare(cfg), live=False)
    best = RunDir(cfg.run_dir).best_dir
    assert (best / "config.json").is_file() and (best / "model.safetensors").is_file()
    assert (best / "tokenizer.json").is_file()  # loads on its own, tokenizer included
    model = AutoModelForCausalLM.from_pretrained(best)
    assert isinstance(model, torch.nn.Module)
    assert score_checkpoint(cfg, best) == summary["best"]["score"]


def test_a_tie_break_run_journals_its_secondary_scores_and_resumes_to_the_same_result(world, ray_session, tmp_path):
    """utility.tie_break and swarm.on_collapse: reseed through a whole run, interrupted and resumed."""
    over = dict(utility={"tie_break": True}, swarm={"on_collapse": "reseed", "max_iterations": 4})
    whole = run_swarm(prepare(load_config(write_config(tmp_path / "a.yaml", world, tmp_path / "runs", name="a",
                                                       **over))), live=False)
    prep = prepare(load_config(write_config(tmp_path / "b.yaml", world, tmp_path / "runs", name="b", **over)))
    assert run_swarm(prep, live=False, stop_after=2)["status"] == "stopped"
    resumed = run_swarm(prep, live=False, resume=True)
    assert resumed["best"] == whole["best"] and resumed["history"] == whole["history"]
    lines = [json.loads(line) for line in (tmp_path / "runs" / "b" / "evaluations.jsonl").read_text().splitlines()]
    assert all(isinstance(line["secondary"], float) for line in lines if line["split"] == "val")
    state = json.loads((tmp_path / "runs" / "b" / "state.json").read_text())
    assert len(state["swarm"]["p_ties"]) == 6
