"""The overlay stage: the IP top, the Vitis HLS + Vivado flow per board, and its packaging.

``vitcod.overlay`` (this folder) turns the HLS stage's ``network.json`` into a bitstream for one
board and the ``vitcod.json`` the host driver reads:

* ``config``   - network + board -> the resolved build configuration (stream geometry, DMA,
                 clock), board files (``boards/<board>/board.tcl``) and the resource fit check;
* ``codegen``  - writes ``params.tcl`` for the Tcl steps and the IP's configuration header;
* ``metadata`` - writes and checks ``vitcod.json`` and the archive copied to the board;
* ``example``  - a small stand-in network for dry runs and the IP's own C-simulation tests;
* ``dryrun``   - the Tcl steps under ``tclsh`` against a recording model of Vivado (no tools);
* ``python -m vitcod.overlay`` - the command line ``overlay/Makefile`` calls around the Tcl.

The IP sources (``ip/``), Tcl (``tcl/``) and board files (``boards/``) ship with the package, so
the host's C-simulation and emulated backends work from a plain (non-editable) install.
"""
