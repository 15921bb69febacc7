# The workbook's entry points. Every target that runs Python builds the environment first (.venv at the repo root).
# `make help` lists them: the "## " comment above each target is its line there.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

# Must agree with requires-python and environment.yml (tests/test_environment.py checks it).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Reinstall only when pyproject.toml is newer than the last successful install.
STAMP := $(VENV)/.aqa-installed

NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
BENCHMARKS := $(sort $(wildcard benchmarks/*.py))

# Offline and headless for everything run from here. They must be in the environment before laion_clap is
# imported (it fetches tokenizers at import time otherwise). tests/aqa_workbook_plugin.py sets the same for
# pytest runs started without make.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export OMP_NUM_THREADS ?= 2
export MPLBACKEND := Agg

NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: help venv test test-unit test-notebooks reproduce reproduce-quick lab bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[notebooks,dev]'
	touch $@

## create .venv and install the package with its notebook and test extras
venv: $(STAMP)

## unit tests, then the notebooks under nbval (CI profile) (the default target)
test: test-unit test-notebooks

# pytest exits 5 when it collects nothing; make treats any non-zero exit as failure, so an empty suite fails.
## unit tests (tests/)
test-unit: $(STAMP)
	$(PY) -m pytest tests/

# The notebooks run in the short CI profile (aqa_utils/workbook/profile.py) from a clean work/ci, so their outputs are
# the ones stored in the notebooks.
## nbval over notebooks/*.ipynb in the CI profile, from a clean work/ci
test-notebooks: $(STAMP)
	$(if $(NOTEBOOKS),,$(error no notebooks/*.ipynb to check: an empty notebook suite is a failure))
	rm -rf work/ci
	AQA_PROFILE=ci $(PY) -m pytest $(NBVAL_FLAGS) $(NOTEBOOKS)

# The notebook kernels papermill starts inherit the environment: with the Agg exported above, a plain plt.show()
# would leave no figure in results/notebooks/. The inline backend renders headless too (Agg underneath).
## run every notebook (full profile) and regenerate results/; resumes an interrupted run
reproduce: $(STAMP)
	MPLBACKEND=module://matplotlib_inline.backend_inline $(PY) -m aqa_utils reproduce

## the same with one seed per rank and no learning-rate sweep (profile quick), under work/quick/
reproduce-quick: $(STAMP)
	MPLBACKEND=module://matplotlib_inline.backend_inline $(PY) -m aqa_utils reproduce --profile quick

# Jupyter draws figures with its inline backend; the Agg exported above would hide them.
## JupyterLab from the environment
lab: $(STAMP)
	env -u MPLBACKEND $(VENV)/bin/jupyter lab

## run benchmarks/*.py (writes results/bench/)
bench: $(STAMP)
	$(if $(BENCHMARKS),,$(error no benchmarks/*.py to run))
	for script in $(BENCHMARKS); do echo "== $$script"; $(PY) "$$script"; done

## remove generated data/ and work/ (results/ is kept: it is the record)
clean:
	rm -rf data/ work/

## list the targets with what each does
help:
	@awk '/^## / {doc = substr($$0, 4); next} \
	      /^[a-z-]+:/ && doc {sub(/:.*/, ""); printf "  make %-15s %s\n", $$0, doc} \
	      {doc = ""}' $(MAKEFILE_LIST)
