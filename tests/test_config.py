"""The config is validated once, at the edge, with errors that name the file and the key."""

import pytest

from modelswarm.config import SwarmParams, load_config
from modelswarm.errors import UserError

MINIMAL = """
base_model: base
experts: [a, b]
utility: {kind: multiple_choice, data: val.jsonl}
"""


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_minimal_config_gets_the_documented_defaults(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL))
    s = cfg.swarm
    assert (s.phi_v, s.phi_p, s.phi_g, s.phi_w) == (0.3, 0.3, 0.5, 0.05)
    assert (s.step_length, s.step_decay, s.step_min) == (1.0, 0.95, 0.1)
    assert (s.patience, s.max_iterations, s.restart_patience, s.velocity_init) == (10, 50, 5, "random")
    assert s.size is None and s.crossover_max_weight == 2.0
    # the official switches, all off: random r, restarts on, nothing dropped
    assert (s.weight_randomness, s.restart, s.drop_iteration, s.drop_particle) == (True, True, 0.0, 0.0)


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.base_model == str(tmp_path / "base")
    assert cfg.experts == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert cfg.utility.data == str(tmp_path / "val.jsonl")


@pytest.mark.parametrize("extra, message", [
    ("swarm: {phi_gg: 0.3}", "unknown key 'swarm.phi_gg' (did you mean 'swarm.phi_g'?)"),
    ("sead: 1", "unknown key 'sead' (did you mean 'seed'?)"),
    ("seed: one", "key 'seed' must be an integer, got 'one'"),
    ("seed: true", "key 'seed' must be an integer"),
    ("swarm: {phi_g: -1}", "key 'swarm.phi_g' must be >= 0"),
    ("swarm: {step_decay: 1.5}", "key 'swarm.step_decay' must be in (0, 1]"),
    ("swarm: {velocity_init: fast}", "key 'swarm.velocity_init' must be one of 'random', 'zero', 'best'"),
    ("swarm: {size: 1}", "key 'swarm.size' must be at least 2"),
    ("swarm: {drop_particle: 1.0}", "key 'swarm.drop_particle' must be in [0, 1)"),
    ("swarm: {restart: maybe}", "key 'swarm.restart' must be true or false"),
    ("workers: {count: 0}", "key 'workers.count' must be >= 1"),
    ("workers: 3", "key 'workers' must be a mapping"),
])
def test_bad_keys_are_named(tmp_path, extra, message):
    with pytest.raises(UserError) as err:
        load_config(write(tmp_path, MINIMAL + extra))
    assert message in str(err.value)
    assert str(tmp_path / "c.yaml") in str(err.value)


def test_missing_required_key(tmp_path):
    with pytest.raises(UserError, match="missing required key 'base_model'"):
        load_config(write(tmp_path, "experts: [a, b]\nutility: {kind: multiple_choice, data: v}\n"))


def test_python_utility_needs_a_function(tmp_path):
    with pytest.raises(UserError, match="utility.function"):
        load_config(write(tmp_path, MINIMAL.replace("multiple_choice", "python")))


def test_empty_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(UserError, match="empty"):
        load_config(write(tmp_path, ""))
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="line 2: not valid YAML"):
        load_config(write(tmp_path, "a: 1\n  b: [\n"))


def test_swarm_params_are_frozen():
    with pytest.raises(Exception):
        SwarmParams().phi_v = 1.0  # type: ignore[misc]


def test_a_retired_key_of_an_older_run_is_accepted_and_ignored(tmp_path):
    text = MINIMAL.replace("data: val.jsonl}", "data: val.jsonl, early_exit_chunk: 64}")
    cfg = load_config(write(tmp_path, text))
    assert cfg.utility.prefix_sharing and not cfg.utility.early_exit


def test_a_swarm_smaller_than_the_expert_count_is_refused_before_anything_starts(world, tmp_path):
    from conftest import write_config
    from modelswarm.run.prepare import prepare

    path = write_config(tmp_path / "c.yaml", world, tmp_path / "runs", swarm={"size": 2})
    with pytest.raises(UserError, match=r"c.yaml: key 'swarm.size' is 2, fewer than the 3 experts"):
        prepare(load_config(path), path)
    assert not (tmp_path / "runs").exists()


def test_the_readme_config_table_is_generated_from_the_field_descriptions():
    from pathlib import Path

    from modelswarm.config_doc import config_table

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert config_table() in readme, "run: python -m modelswarm.config_doc --write"


def test_every_config_key_has_a_description():
    from modelswarm.config import Config, SwarmParams, WorkersConfig
    from modelswarm.objectives import REGISTRY

    models = [Config, SwarmParams, WorkersConfig, *(u.Config for u in REGISTRY.values())]
    for model in models:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name}"


def test_a_utility_key_of_another_kind_is_refused_with_a_suggestion(tmp_path):
    with pytest.raises(UserError, match=r"unknown key 'utility.functon' \(did you mean 'utility.function'\?\)"):
        load_config(write(tmp_path, MINIMAL.replace("multiple_choice, data: val.jsonl",
                                                    "python, data: val.jsonl, functon: m:f")))
    with pytest.raises(UserError, match="unknown key 'utility.function'"):
        load_config(write(tmp_path, MINIMAL.replace("data: val.jsonl}", "data: val.jsonl, function: m:f}")))


def test_the_older_batch_size_sets_all_three_batching_keys_with_a_warning(tmp_path):
    warnings = []
    cfg = load_config(write(tmp_path, MINIMAL.replace("data: val.jsonl}", "data: val.jsonl, batch_size: 7}")
                            + "composition: {granularity: global, lora_mode: ab}\n"), warn=warnings.append)
    u = cfg.utility
    assert (u.batch_sequences, u.decode_rows, u.head_rows) == (7, 7, 7)
    assert len(warnings) == 2 and "utility.batch_size" in warnings[1] and "composition" in warnings[0]


def test_a_config_round_trips_through_its_dump(tmp_path):
    from modelswarm.config import dump_config

    cfg = load_config(write(tmp_path, MINIMAL.replace("multiple_choice, data: val.jsonl",
                                                      "python, data: val.jsonl, function: 'm:f'")))
    again = load_config(write(tmp_path, dump_config(cfg)))
    assert again.utility == cfg.utility and again.utility.function == "m:f"
    assert again.model_dump(exclude={"runs_dir"}) == cfg.model_dump(exclude={"runs_dir"})


# Every swarm key with an official counterpart: its official value and where it is set
# (github BunsenFeng/model_swarm; "argparse" is search.py's default, "scripts" the
# search_*.sh files, all four of which pass the same value).
OFFICIAL = {
    "phi_v": (0.4, "argparse --inertia"),
    "phi_p": (0.3, "argparse --cognitive_coeff"),
    "phi_g": (0.3, "argparse --social_coeff"),
    "phi_w": (0.3, "argparse --repel_coeff, with --repel_term 1"),
    "step_length": (1.0, "argparse --step_length"),
    "step_decay": (0.95, "argparse --step_length_factor, scripts 0.95"),
    "step_min": (0.1, "argparse --minimum_step_length"),
    "velocity_init": ("random", "argparse --starting_velocity_mode, scripts random"),
    "anchors": ([], "search.py: the experts, then crossover children (--populate_initial_experts 1)"),
    "crossover_max_weight": (2.0, "search.py: w_1 = random.random() * 2"),
    "restart_patience": (7, "scripts --restart_patience 0.67 x --patience 10: history entries >= 6.7"),
    "restart": (True, "argparse --restart_stray_particles 1"),
    "on_collapse": ("restart", "search.py: a stray particle goes back to its personal best, collapsed or not"),
    "patience": (10, "argparse -p --patience"),
    "max_iterations": (200, "argparse -m --max_iteration"),
    "weight_randomness": (True, "argparse --weight_randomess 1"),
    "drop_iteration": (0.0, "argparse --dropK"),
    "drop_particle": (0.0, "argparse --dropN"),
    "ensemble_top_k": (10, "overall_metrics.py: overall_metrics(..., top_k=10)"),
    "granularity": ("global", "merge.py: one weight per adapter"),
}


@pytest.mark.parametrize("key", sorted(OFFICIAL))
def test_the_paper_preset_holds_the_official_value_of_every_key(key):
    from modelswarm.config import PAPER

    official, _where = OFFICIAL[key]
    assert getattr(SwarmParams(preset="paper"), key) == official
    if getattr(SwarmParams(), key) != official:  # a default that differs is one the preset lists
        assert key in PAPER or key == "restart_patience"


def test_the_paper_preset_has_the_official_swarm_size_and_lets_a_given_key_win():
    from modelswarm.search.start import swarm_size

    paper = SwarmParams(preset="paper")
    assert swarm_size(4, paper) == 20  # scripts: --populate_initial_experts 1 --initial_experts_num 20
    assert SwarmParams(preset="paper", anchors=["base"], phi_g=0.5).anchors == ["base"]
    assert SwarmParams(preset="paper", phi_g=0.5).phi_g == 0.5
    assert SwarmParams(preset="paper", restart_patience=2).restart_patience == 2


@pytest.mark.parametrize("patience", [1, 3, 4, 10, 25])
def test_the_paper_restart_patience_restarts_where_the_official_fraction_of_patience_does(patience):
    p = SwarmParams(preset="paper", patience=patience)
    for entries in range(1, 40):  # the official test on a history `entries` long since the best
        assert (entries >= p.restart_patience) == (entries >= 0.67 * patience)


def test_validating_a_config_imports_neither_torch_nor_transformers(tmp_path):
    import subprocess
    import sys

    path = write(tmp_path, MINIMAL.replace("multiple_choice, data: val.jsonl", "llm_judge, data: v, judge_model: j"))
    code = ("import sys; from modelswarm.config import load_config; load_config(sys.argv[1]); "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_replace_validates_the_changed_section():
    with pytest.raises(Exception, match="phi_g"):
        SwarmParams().replace(phi_g=-1.0)
    assert SwarmParams().replace(phi_g=0.7).phi_g == 0.7
