"""Dry run of the overlay's Tcl flow without Vivado or Vitis HLS (see README.md in this folder)."""
