# chargen in two commands, on a machine with Python 3.11 and git:
#   make repro   the pipeline (dvc repro), after setting up .venv from requirements.txt
#   make test    the whole test suite, as CI runs it
# and `make quick` for the tests without end-to-end DVC runs (about a minute on 2 cores).
# .venv is (re)installed whenever requirements.txt is newer than the last install.

PYTHON ?= python3
BIN := .venv/bin
INSTALLED := .venv/.installed
# DVC runs each stage's `python -m stages.<name>` through the shell, so the `python` it finds
# must be the one in .venv, whatever is first on the user's PATH: every target that runs DVC or
# a stage puts .venv/bin first (as `. .venv/bin/activate` does).
WITH_VENV := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: repro test quick setup

repro: setup
	$(WITH_VENV) dvc repro

# One pytest worker per core (pytest-xdist): on 2 cores the suite took 583 s instead of 741 s.
test: setup
	$(WITH_VENV) python -m pytest -n auto

quick: setup
	$(WITH_VENV) python -m pytest -n auto -m "not slow"

setup: $(INSTALLED)
	@# `dvc exp run` records each experiment as a git commit, so it needs a git identity.
	@git config user.email > /dev/null || { \
	  git config user.name "chargen user" && git config user.email "chargen@localhost" && \
	  echo "git has no identity here: set a repository-local one (chargen user <chargen@localhost>)" \
	       "so that dvc exp run works; change it with git config user.name / user.email"; }

$(INSTALLED): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv .venv
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@
