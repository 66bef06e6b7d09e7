# Shared by boards/<board>/Makefile (which sets BOARD and includes this file). One target per Tcl
# step, each re-run only when its inputs change:
#   ip        Vitis HLS   ../../tcl/build_ip.tcl      -> $(BUILD_DIR)/hls/.../impl/ip
#   fit       Python      resource estimate vs the board totals in board.tcl
#   bd        Vivado      ../../tcl/block_design.tcl  -> $(BUILD_DIR)/vivado/vitcod.xpr
#   bitstream Vivado      ../../tcl/bitstream.tcl     -> $(BUILD_DIR)/vitcod.bit + vitcod.hwh
# Normally driven by overlay/Makefile (`make -C overlay bitstream BOARD=...`), which first writes
# $(BUILD_DIR)/params.tcl; calling it directly after `make -C overlay configure` works too.

OVERLAY_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
BOARD_TCL   := $(OVERLAY_DIR)/boards/$(BOARD)/board.tcl
TCL_DIR     := $(OVERLAY_DIR)/tcl
BUILD_DIR   ?= $(OVERLAY_DIR)/build/$(BOARD)
PARAMS      := $(BUILD_DIR)/params.tcl
PY          ?= $(abspath $(OVERLAY_DIR)/../.venv/bin/python)
VITIS_HLS   ?= vitis_hls
VIVADO      ?= vivado
FIT_ARGS    ?=
TCLARGS     := -tclargs $(BOARD_TCL) $(PARAMS)
VIVADO_RUN   = cd $(BUILD_DIR) && $(VIVADO) -mode batch -nojournal -log $(BUILD_DIR)/$(1).log -source $(TCL_DIR)/$(1).tcl $(TCLARGS)

IP_DONE  := $(BUILD_DIR)/.ip.done
FIT_DONE := $(BUILD_DIR)/.fit.done
BD_DONE  := $(BUILD_DIR)/.bd.done
BIT_DONE := $(BUILD_DIR)/.bitstream.done

.PHONY: ip fit bd bitstream
ip: $(IP_DONE)
fit: $(FIT_DONE)
bd: $(BD_DONE)
bitstream: $(BIT_DONE)

$(PARAMS):
	@echo "error: $(PARAMS) missing; run: make -C overlay configure BOARD=$(BOARD) NETWORK=..." >&2; exit 1

$(IP_DONE): $(PARAMS) $(BOARD_TCL) $(TCL_DIR)/build_ip.tcl $(TCL_DIR)/common.tcl $(OVERLAY_DIR)/ip/vitcod_top.cpp $(OVERLAY_DIR)/ip/vitcod_top.h
	cd $(BUILD_DIR) && $(VITIS_HLS) -f $(TCL_DIR)/build_ip.tcl $(TCLARGS)
	touch $@

$(FIT_DONE): $(IP_DONE)
	$(PY) -m vitcod.overlay fit --build-dir $(BUILD_DIR) $(FIT_ARGS)
	touch $@

$(BD_DONE): $(FIT_DONE) $(TCL_DIR)/block_design.tcl $(TCL_DIR)/board_files.tcl $(TCL_DIR)/xilinx_ip.tcl \
            $(wildcard $(TCL_DIR)/ps_*.tcl)
	$(call VIVADO_RUN,block_design)
	touch $@

# A stamp, not vitcod.bit itself: the copied .bit keeps the implementation run's timestamp.
$(BIT_DONE): $(BD_DONE) $(TCL_DIR)/bitstream.tcl
	$(call VIVADO_RUN,bitstream)
	touch $@
