# Every target runs in .venv, created by `make install` from requirements.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CATEGORY ?=
DATA ?= data/mvtec-ad
STEPS ?=
RUN ?=
IMAGES ?=
OUT ?=
ARGS ?=
RECIPE ?=
ELPV_TYPE ?= mono
DEMO_STEPS ?= 3000
# The demo trains the CPU-budget recipe: on these cells it beats the mean-image baseline in 3 seeds of 3
# (docs/RESULTS.md, "Time to quality"); DEMO_RECIPE=paper trains the paper's recipe instead.
DEMO_RECIPE ?= fast
DEMO_RUN ?= runs/demo-elpv-$(ELPV_TYPE)-$(DEMO_RECIPE)
# make train-all: CATEGORIES (comma-separated; default every MVTec AD category under DATA), SWEEP_DIR, GPUS
# (auto | none | 0,1,...), PARALLEL (runs at a time), SWEEP_ARGS (more sweep.py flags); ARGS go to every train.py.
CATEGORIES ?=
SWEEP_DIR ?= runs/sweep
GPUS ?= auto
PARALLEL ?=
SWEEP_ARGS ?=

.PHONY: FORCE install test train evaluate predict export demo bench profile train-all

# TensorFlow build: ACCEL=cpu (tensorflow-cpu, the default) or ACCEL=cuda (tensorflow[and-cuda], Linux with an
# NVIDIA driver), the version pinned in requirements.txt either way. $(VENV)/.installed records the build
# ("ACCEL=cuda"); later targets reuse the recorded one, so a newer requirements.txt reinstalls the same build.
# An ACCEL other than the recorded one reinstalls TensorFlow (the other build is uninstalled first).
MARKER := $(VENV)/.installed
RECORDED_ACCEL := $(if $(wildcard $(MARKER)),$(or $(shell sed -n 's/^ACCEL=//p' $(MARKER)),cpu))
ACCEL ?= $(or $(RECORDED_ACCEL),cpu)
ifeq ($(filter $(ACCEL),cpu cuda),)
$(error ACCEL=$(ACCEL): must be cpu or cuda)
endif
TF_VERSION := $(shell sed -n 's/^tensorflow-cpu==//p' requirements.txt)
TF_PACKAGE := $(if $(filter cuda,$(ACCEL)),tensorflow[and-cuda]==$(TF_VERSION),tensorflow-cpu==$(TF_VERSION))
TF_OTHER := $(if $(filter cuda,$(ACCEL)),tensorflow-cpu,tensorflow)

install: $(MARKER)

$(MARKER): requirements.txt $(if $(filter-out $(RECORDED_ACCEL),$(ACCEL)),FORCE)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	grep -v '^tensorflow-cpu==' requirements.txt > $(VENV)/requirements-without-tensorflow.txt
	$(PY) -m pip uninstall -y $(TF_OTHER)
	$(PY) -m pip install -r $(VENV)/requirements-without-tensorflow.txt "$(TF_PACKAGE)"
	echo ACCEL=$(ACCEL) > $@

FORCE:

# Two pytest-xdist workers, each test file on one worker (its module fixtures built once): docs/PERFORMANCE.md,
# "Test suite".
test: install
	$(PY) -m pytest -q tests -n 2 --dist loadfile

train: install
	@if [ -z "$(CATEGORY)" ]; then echo "make train: set CATEGORY, e.g. make train CATEGORY=carpet" >&2; exit 2; fi
	$(PY) train.py --category=$(CATEGORY) --data_dir=$(DATA) $(if $(STEPS),--steps=$(STEPS)) $(if $(RUN),--run_dir=$(RUN)) $(if $(RECIPE),--recipe=$(RECIPE)) $(ARGS)

evaluate: install
	@if [ -z "$(RUN)" ]; then echo "make evaluate: set RUN, e.g. make evaluate RUN=runs/bottle-..." >&2; exit 2; fi
	$(PY) evaluate.py --run=$(RUN) $(ARGS)

predict: install
	@if [ -z "$(RUN)" ] || [ -z "$(IMAGES)" ]; then echo "make predict: set RUN and IMAGES, e.g. make predict RUN=runs/x IMAGES=new/" >&2; exit 2; fi
	$(PY) predict.py --run=$(RUN) $(IMAGES) $(ARGS)

export: install
	@if [ -z "$(RUN)" ] || [ -z "$(OUT)" ]; then echo "make export: set RUN and OUT, e.g. make export RUN=runs/x OUT=exported/" >&2; exit 2; fi
	$(PY) export.py --run=$(RUN) --output=$(OUT) $(ARGS)

train-all: install
	$(PY) sweep.py --data_dir=$(DATA) --sweep_dir=$(SWEEP_DIR) --gpus=$(GPUS) $(if $(CATEGORIES),--categories=$(CATEGORIES)) \
		$(if $(STEPS),--steps=$(STEPS)) $(if $(PARALLEL),--parallel=$(PARALLEL)) $(SWEEP_ARGS) $(if $(ARGS),-- $(ARGS))

# The embedded default: real solar-cell images from the elpv-dataset package (no manual download).
demo: install
	$(PY) -m scripts.prepare_elpv --output_dir=data/elpv --types=$(ELPV_TYPE)
	$(PY) train.py --category=$(ELPV_TYPE) --data_dir=data/elpv --run_dir=$(DEMO_RUN) --steps=$(DEMO_STEPS) \
		--recipe=$(DEMO_RECIPE) --image_size=64 --preview_every=1000 $(ARGS)
	$(PY) evaluate.py --run=$(DEMO_RUN)

bench: install
	$(PY) -m bench.train_step
	$(PY) -m bench.input_pipeline
	$(PY) -m bench.scoring

profile: install  ## op-time breakdown of one critic update (WHAT=critic|generator_encoder|scoring)
	$(PY) -m bench.profile_ops --what=$(or $(WHAT),critic)
