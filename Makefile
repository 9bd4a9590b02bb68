# Every target runs in .venv, created by `make install` from requirements.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CATEGORY ?=
DATA ?= data/mvtec-ad
STEPS ?=
RUN ?=
ARGS ?=
ELPV_TYPE ?= mono

.PHONY: install test test-all train evaluate demo bench train-all clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $@

test: install
	$(PY) -m pytest -q tests

train: install
	@if [ -z "$(CATEGORY)" ]; then echo "make train: set CATEGORY, e.g. make train CATEGORY=carpet" >&2; exit 2; fi
	$(PY) train.py --category=$(CATEGORY) --data_dir=$(DATA) $(if $(STEPS),--steps=$(STEPS)) $(if $(RUN),--run_dir=$(RUN)) $(ARGS)

evaluate: install
	@if [ -z "$(RUN)" ]; then echo "make evaluate: set RUN, e.g. make evaluate RUN=runs/bottle-..." >&2; exit 2; fi
	$(PY) evaluate.py --run=$(RUN) $(ARGS)

bench: install
	$(PY) bench/train_step.py
	$(PY) bench/input_pipeline.py
	$(PY) bench/scoring.py
