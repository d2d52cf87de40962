# The two commands a newcomer needs: `make run` (the pipeline on the demo
# data) and `make test` (the test suite). Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 8
# TensorFlow build: cpu, or gpu for the CUDA one (`make install TF=gpu`). One
# per venv, remembered in .venv/.tf: later targets keep it; naming the other
# switches (uninstalls one, installs the other).
TF ?= $(shell cat $(VENV)/.tf 2>/dev/null || echo cpu)
STAMP := $(VENV)/.installed-$(TF)

.PHONY: install run test lint bench bench-full bench-gpu submit clean

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip uninstall --quiet --yes $(if $(filter gpu,$(TF)),tensorflow-cpu,tensorflow) 2>/dev/null || true
	$(BIN)/pip install --quiet -e '.[test,$(TF)]'
	rm -f $(VENV)/.installed-*
	echo $(TF) > $(VENV)/.tf
	touch $@

# The submission first, then the rest of the default target (validation
# metrics, report figures, cutouts) and the HTML report.
run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) results/submission.csv
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

test: $(STAMP)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -ra -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# The whole 100,064-photo Kaggle test set through the workflow (its time:
# docs/performance.md; needs ../shared/data); bench-gpu: the same on a GPU machine, on demo
# photos (`make bench-gpu TF=gpu`).
bench-full: $(STAMP)
	$(BIN)/python studies/full_test_set.py

bench-gpu: $(STAMP)
	$(BIN)/python studies/full_test_set.py --synthetic --configfile config.yaml studies/gpu.yaml

# Validate results/submission.csv.gz and send it with the official kaggle CLI;
# CONFIGS: the config files the run used after config.yaml, e.g.
# `make submit CONFIGS=config/kaggle.yaml`.
CONFIGS ?=
submit: $(STAMP)
	$(BIN)/carmask submit --configfile config.yaml $(CONFIGS)

clean:
	rm -rf results logs .snakemake
