# The two commands the README promises:  make demo   and   make test
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test demo tiny bench clean

setup: $(VENV)/.installed

# torch==2.13.0 first: the CPU build (already on disk on our machines), so the range in
# pyproject.toml is satisfied without pulling a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,demo]'
	touch $@

# pytest exits 5 when it collected no tests: that must fail, not pass silently
test: setup
	$(PY) -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

demo: setup
	$(VENV)/bin/modelswarm demo

tiny: setup
	$(VENV)/bin/modelswarm run swarm_configs/tiny.yaml --name tiny-$$(date +%Y%m%d-%H%M%S)

clean:
	rm -rf $(VENV) runs .pytest_cache
