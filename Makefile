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
# bench figures of the digits demo in build/bench, of any other run beside it (build/bench-<run>)
BENCH_DIR   := $(BUILD)/bench$(if $(filter demo,$(RUN)),,-$(RUN))
BOARD       ?= pynq-z2
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
SPARSITY    ?= 0.9
STAGE       ?= dense
HLS_STAGE   ?= sparse_0.90
IO_TYPE     ?= io_stream
HOST        ?=
BOARD_USER  ?= xilinx
PART_pynq-z2 := xc7z020clg400-1
PART_zcu104  := xczu7ev-ffvc1156-2-e
PART_kv260   := xck26-sfvc784-2LV-c
PART        ?= $(PART_$(BOARD))
OVERLAY_OUT := overlay/build/$(BOARD)
OVERLAY     ?= $(OVERLAY_OUT)
IMAGES      ?=
FIT_CHECK   ?= 1

.PHONY: help setup demo test train evaluate autoencoder statistics masks finetune report hls csim bench \
        bitstream synth stub-check run deploy clean distclean

help:  ## List the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# The venv is rebuilt only when the pins, the package metadata or the host's C kernel change.
$(STAMP): requirements-flow.txt requirements-lock.txt pyproject.toml setup.py host/native/quantize_pack.c
	@command -v $(PYTHON_BOOT) >/dev/null || { echo "error: $(PYTHON_BOOT) not found; Python 3.11 is required (set PYTHON_BOOT=/path/to/python3.11)"; exit 1; }
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23.2" "setuptools>=68" wheel
	$(PY) -m pip install --quiet -r requirements-flow.txt -c requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	@$(PY) -c "import vitcod.host as h; k = h.native_kernel(); print('host quantize+pack:', f'compiled kernel ({k})' if k else 'numpy path - the C kernel did not build (needs gcc and the Python headers; see why with: $(PY) -m pip install -v --no-deps --no-build-isolation -e .)')"
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

# io_stream: the design is planned for BOARD (python -m vitcod.hls.plan; plan.json next to the project).
PLAN_ARGS    = $(if $(filter io_stream,$(IO_TYPE)),--board $(BOARD))

hls: $(STAMP)  ## Write the Vitis HLS project of build/$(RUN)/$(HLS_STAGE) (hls4ml + our engines), planned for BOARD; IO_TYPE=io_parallel for the comparison design
	$(PY) -m vitcod hls --run-dir $(RUN_DIR) --stage $(HLS_STAGE) --part $(PART) --io-type $(IO_TYPE) $(PLAN_ARGS)

csim: $(STAMP)  ## g++ C-simulation of the HLS project on the test split -> build/$(RUN)/hls/csim_report.json
	$(PY) -m vitcod csim --run-dir $(RUN_DIR) --stage $(HLS_STAGE) --part $(PART) --io-type $(IO_TYPE) $(PLAN_ARGS)

# The modelled fit check (the board's plan, Python only, writes nothing) runs first, then the tool
# check, so that without Vitis HLS / Vivado nothing is built.
bitstream: $(STAMP)  ## hls -> IP -> block design -> bitstream for BOARD (needs vitis_hls + vivado 2024.1)
	$(if $(filter 0,$(FIT_CHECK)),@echo "warning: FIT_CHECK=0: skipping the modelled resource check",$(PY) -m vitcod.hls.perf fit --run-dir $(RUN_DIR) --stage $(HLS_STAGE) --board $(BOARD) --io-type $(IO_TYPE))
	@$(MAKE) --no-print-directory -C overlay check-tools PY=$(abspath $(PY))
	$(PY) -m vitcod csim --run-dir $(RUN_DIR) --stage $(HLS_STAGE) --part $(PART) --io-type $(IO_TYPE) $(PLAN_ARGS)
	$(MAKE) -C overlay bitstream BOARD=$(BOARD) PY=$(abspath $(PY)) \
		NETWORK=$(abspath $(RUN_DIR))/hls/$(HLS_STAGE)/network.json

bench: $(STAMP)  ## Modelled engine latency/resources vs dense, C-sim and host-packing figures -> build/bench/ (RUN=x: build/bench-x/)
	$(PY) -m vitcod.bench --run-dir $(RUN_DIR) --out $(BENCH_DIR)

# The tool check runs first: without Vitis HLS nothing else runs.
synth: $(STAMP)  ## Vitis HLS C synthesis of build/$(RUN)/$(HLS_STAGE) -> build/bench/synth.json (needs Vitis HLS)
	$(PY) -m vitcod.hls.synth --check-tools
	$(PY) -m vitcod hls --run-dir $(RUN_DIR) --stage $(HLS_STAGE) --part $(PART) --io-type $(IO_TYPE)
	$(PY) -m vitcod.hls.synth --run-dir $(RUN_DIR) --stage $(HLS_STAGE) --out $(BENCH_DIR)

stub-check: $(STAMP)  ## Dry run of the overlay Tcl for BOARD under the recording stub (tclsh only)
	$(if $(wildcard $(RUN_DIR)/$(HLS_STAGE)/config.json),$(PY) -m vitcod.hls.perf fit --run-dir $(RUN_DIR) --stage $(HLS_STAGE) --board $(BOARD) --io-type $(IO_TYPE) || echo "warning: the modelled design does not fit $(BOARD) (see above); the dry run goes on")
	$(MAKE) -C overlay stub-check BOARD=$(BOARD) PY=$(abspath $(PY)) \
		$(if $(wildcard $(RUN_DIR)/hls/$(HLS_STAGE)/network.json),NETWORK=$(abspath $(RUN_DIR))/hls/$(HLS_STAGE)/network.json)

run:  ## On the board: classify IMAGES=file.npy (default: digits test split) through OVERLAY=dir
	python3 -m vitcod.host predict --backend pynq --overlay $(OVERLAY) \
		$(if $(IMAGES),--images $(IMAGES),--dataset digits)

deploy:  ## Copy the overlay archive to HOST and install vitcod with the board extra there
	@test -n "$(HOST)" || { echo "error: HOST=<board address> is required"; exit 1; }
	@test -f $(OVERLAY_OUT)/vitcod-$(BOARD).tar.gz || { echo "error: $(OVERLAY_OUT)/vitcod-$(BOARD).tar.gz not found; run make bitstream BOARD=$(BOARD) first"; exit 1; }
	scp $(OVERLAY_OUT)/vitcod-$(BOARD).tar.gz $(BOARD_USER)@$(HOST):
	ssh $(BOARD_USER)@$(HOST) 'mkdir -p vitcod-$(BOARD) && tar -xzf vitcod-$(BOARD).tar.gz -C vitcod-$(BOARD)'
	git archive --format=tar.gz --prefix=vitcod-src/ HEAD | ssh $(BOARD_USER)@$(HOST) 'tar -xzf - && sudo pip3 install --no-deps ./vitcod-src'

demo: $(STAMP)  ## The whole flow on the bundled digits; writes build/demo/summary.json
	$(PY) -m vitcod demo --run-dir $(BUILD)/demo --io-type $(IO_TYPE)

.PHONY: demo-197
demo-197: $(STAMP)  ## 197 tokens: the whole flow on 5,000 28x28 MNIST digits (patch 2) -> build/mnist197/
	$(PY) -m vitcod demo --preset mnist197 --run-dir $(BUILD)/mnist197

.PHONY: demo-small
demo-small: $(STAMP)  ## The digits demo at embed 16, the size that fits PYNQ-Z2 (modelled) -> build/demo-small/
	$(PY) -m vitcod demo --preset digits-small --run-dir $(BUILD)/demo-small

test: $(STAMP)  ## Run the test suite (tool/board tests are reported as skipped)
	$(PY) -m pytest $(PYTEST_ARGS)

clean:  ## Remove build outputs
	rm -rf $(BUILD)

distclean: clean  ## Remove build outputs, the virtual environment and the built host kernel
	rm -rf $(VENV) host/_quantize_pack*.so
