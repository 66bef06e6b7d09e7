# ViTCoD on FPGA - the Makefile is the table of contents: one target per step.
# A fresh clone needs only `make demo` and `make test`; both build the pinned
# virtual environment first (once; a stamp file makes re-runs instant).

PYTHON_BOOT ?= python3.11
VENV        ?= .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.vitcod-installed
RUN         ?= demo
BUILD       ?= build
RUN_DIR     := $(BUILD)/$(RUN)
BOARD       ?= pynq-z2
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
SPARSITY    ?= 0.9
STAGE       ?= dense

.PHONY: help setup demo test train evaluate autoencoder statistics masks finetune report clean distclean

help:  ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# The venv is rebuilt only when the pins or the package metadata change.
$(STAMP): requirements-flow.txt requirements-lock.txt pyproject.toml
	@command -v $(PYTHON_BOOT) >/dev/null || { echo "error: $(PYTHON_BOOT) not found; Python 3.11 is required (set PYTHON_BOOT=/path/to/python3.11)"; exit 1; }
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23.2" "setuptools>=68" wheel
	$(PY) -m pip install --quiet -r requirements-flow.txt -c requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $@

setup: $(STAMP)  ## Create .venv with the pinned flow environment

train: $(STAMP)  ## Train the quantized dense ViT into build/$(RUN)/
	$(PY) -m vitcod train --run-dir $(RUN_DIR)

evaluate: $(STAMP)  ## Evaluate build/$(RUN)/$(STAGE)/ on the test split (STAGE=dense|ae|sparse_0.90)
	$(PY) -m vitcod evaluate --run-dir $(RUN_DIR) --stage $(STAGE)

autoencoder: $(STAMP)  ## Add the Q/K auto-encoder to build/$(RUN)/dense and fine-tune -> ae/
	$(PY) -m vitcod autoencoder --run-dir $(RUN_DIR)

statistics: $(STAMP)  ## Mean attention maps of ae/ over the training set
	$(PY) -m vitcod statistics --run-dir $(RUN_DIR)

masks: $(STAMP)  ## Fixed masks at SPARSITY (info rule + bisection), polarized -> masks.npz
	$(PY) -m vitcod masks --run-dir $(RUN_DIR) --sparsity $(SPARSITY)

finetune: $(STAMP)  ## Masked fine-tuning at SPARSITY -> sparse_<s>/
	$(PY) -m vitcod finetune --run-dir $(RUN_DIR) --sparsity $(SPARSITY)

report: $(STAMP)  ## Accuracy/MACs/Q-K bytes table and plots -> report/
	$(PY) -m vitcod report --run-dir $(RUN_DIR)

demo: $(STAMP)  ## The whole flow on the bundled digits; writes build/demo/summary.json
	$(PY) -m vitcod demo --run-dir $(BUILD)/demo

test: $(STAMP)  ## Run the test suite (tool/board tests are reported as skipped)
	$(PY) -m pytest $(PYTEST_ARGS)

clean:  ## Remove build outputs
	rm -rf $(BUILD)

distclean: clean  ## Remove build outputs and the virtual environment
	rm -rf $(VENV)
