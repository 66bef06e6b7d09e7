"""ViTCoD on FPGA: sparse-attention Vision Transformers via QKeras, hls4ml and PYNQ.

The flow, one subpackage per stage folder:

* ``vitcod.model`` (model/): the quantized QKeras ViT, training, the Q/K
  auto-encoder, fixed sparse masks and their polarization.
* ``vitcod.hls`` (hls/): the hls4ml extension with our attention and
  encoder/decoder engines, conversion and C-simulation.
* ``vitcod.host`` (host/): the PYNQ driver; board-side, needs numpy only.

Importing ``vitcod`` itself imports nothing heavy, so the board package stays light.
"""

__version__ = "0.1.0"
