# chargen in two commands, on a machine with Python 3.11 and git:
#   make repro   the pipeline (dvc repro), after setting up .venv from requirements.txt
#   make test    the whole test suite, as CI runs it
#   make bench   the benchmarks (bench/dvc.yaml), re-measured where stale
# and `make quick` for the tests without end-to-end DVC runs (about a minute on 2 cores).
# .venv is (re)installed whenever requirements.txt is newer than the last install.

PYTHON ?= python3
BIN := .venv/bin
INSTALLED := .venv/.installed
# DVC runs each stage's `python -m stages.<name>` through the shell, so the `python` it finds
# must be the one in .venv, whatever is first on the user's PATH: every target that runs DVC or
# a stage puts .venv/bin first (as `. .venv/bin/activate` does).
WITH_VENV := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: repro test quick bench setup

repro: setup
	$(WITH_VENV) dvc repro

# One pytest worker per core (pytest-xdist): on 2 cores the suite took 583 s instead of 741 s.
test: setup
	$(WITH_VENV) python -m pytest -n auto

quick: setup
	$(WITH_VENV) python -m pytest -n auto -m "not slow"

# The benchmarks (bench/dvc.yaml): re-measures what is stale on this machine; docs/ tables are
# then re-rendered from the results files (python -m bench.render).
bench: setup
	$(WITH_VENV) dvc repro bench/dvc.yaml

setup: $(INSTALLED)
	@# `dvc exp run` records each experiment as a git commit, so it needs a git identity.
	@git config user.email > /dev/null || { \
	  git config user.name "chargen user" && git config user.email "chargen@localhost" && \
	  echo "git has no identity here: set a repository-local one (chargen user <chargen@localhost>)" \
	       "so that dvc exp run works; change it with git config user.name / user.email"; }

# A current pip, setuptools and wheel first (and flit_core, which installs chargen itself): an old
# venv pip builds some packages with the legacy `setup.py install` and prints a deprecation warning
# for each. -q keeps real errors visible.
$(INSTALLED): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv .venv
	$(BIN)/python -m pip install -q --disable-pip-version-check pip==26.3 setuptools==80.9.0 wheel==0.45.1 flit_core==3.12.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@
