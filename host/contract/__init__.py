"""The overlay contract: what the HLS stage, the overlay build, the IP's C++ and the driver share.

One owner for each rule, so the stages cannot drift apart (numpy only: the board imports it):

* :mod:`.aptypes`   - ap_types spellings (``ap_fixed<16,6,AP_RND,AP_SAT>`` ...) -> :class:`ApType`:
                      width, integer/fraction bits, sign, modes, raw range;
* :mod:`.packing`   - the stream's word format (:data:`FORMAT_VERSION`, :data:`WORD_BITS`,
                      :func:`values_per_word`, :func:`words_per_image`), the reference
                      :func:`pack` / :func:`unpack`, and the DMA length-register rule;
* :mod:`.registers` - the IP's register map and status bits (``vitcod_top.cpp`` is checked
                      against it);
* :mod:`.network`   - ``network.json`` (:class:`NetworkDescription`, :class:`TensorMeta`) and
                      :func:`model_identifier`;
* :mod:`.header`    - ``vitcod_top_config.h``, the header that binds the IP top to a network.

Consumers: ``vitcod.hls.network`` (writes network.json), ``vitcod.hls.fixed_point`` (its exact
arithmetic view of a type), ``vitcod.overlay`` (the build and vitcod.json), and the driver's fast
paths (:mod:`vitcod.host.wire`, :mod:`vitcod.host.quantization`, the compiled kernel).
"""

from .aptypes import MAX_WIDTH, ROUNDING_MODES, SATURATION_MODES, ApType, RawGeometry, raw_range
from .header import CONFIG_HEADER, render_config_header
from .network import (MODEL_ID_PATTERN, NETWORK_FILE, OVERLAY_CONFIG_FILE, NetworkDescription, TensorMeta,
                      model_identifier)
from .packing import (DMA_LENGTH_WIDTH_MAX, DMA_LENGTH_WIDTH_MIN, FORMAT_VERSION, WORD_BITS, WORD_BYTES,
                      dma_length_width, pack, unpack, values_per_word, words_per_image)
from .registers import (BUNDLE, CONTROL_REGISTERS, READ_ONLY_REGISTERS, REGISTERS, STATUS_BITS, Register,
                        hls_interface_pragmas, register_map)

__all__ = [
    "BUNDLE", "CONFIG_HEADER", "CONTROL_REGISTERS", "DMA_LENGTH_WIDTH_MAX", "DMA_LENGTH_WIDTH_MIN", "FORMAT_VERSION",
    "MAX_WIDTH", "MODEL_ID_PATTERN", "NETWORK_FILE", "OVERLAY_CONFIG_FILE", "READ_ONLY_REGISTERS", "REGISTERS",
    "ROUNDING_MODES", "SATURATION_MODES", "STATUS_BITS", "WORD_BITS", "WORD_BYTES", "ApType", "NetworkDescription",
    "RawGeometry", "Register", "TensorMeta", "dma_length_width", "hls_interface_pragmas", "model_identifier", "pack",
    "raw_range", "register_map", "render_config_header", "unpack", "values_per_word", "words_per_image",
]
