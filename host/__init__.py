"""Board-side package: the PYNQ driver for the ViTCoD overlay (needs numpy, and pynq on a board).

Nothing here may import TensorFlow, QKeras or hls4ml: a PYNQ image does not have
them, and ``tests/test_host_isolation.py`` checks it.
"""
