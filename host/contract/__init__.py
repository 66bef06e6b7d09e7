"""The overlay contract: what the HLS stage, the overlay build, the IP's C++ and the driver share.

One owner for each rule, so the stages cannot drift apart (numpy only: the board imports it):

* :mod:`.aptypes`   - ap_types spellings (``ap_fixed<16,6,AP_RND,AP_SAT>`` ...) -> :class:`ApType`:
                      width, integer/fraction bits, sign, modes, raw range, and the type code
                      the IP reports (:func:`type_code`);
* :mod:`.packing`   - the stream's word format (:data:`FORMAT_VERSION`, :data:`WORD_BITS`,
                      :func:`values_per_word`, :func:`words_per_image`), the reference
                      :func:`pack` / :func:`unpack`, and the DMA length-register rule;
* :mod:`.registers` - the IP's register map and status bits (``vitcod_top.cpp`` is checked
                      against it);
* :mod:`.network`   - ``network.json`` (:class:`NetworkDescription`, :class:`TensorMeta`) and
                      :func:`content_identifier` (weights, masks, precision) and
                      :func:`model_identifier` (that plus the whole interface: what the IP reports);
* :mod:`.header`    - ``vitcod_top_config.h``, the header that binds the IP top to a network.

Consumers: ``vitcod.hls.network`` (writes network.json), ``vitcod.hls.fixed_point`` (its exact
arithmetic view of a type), ``vitcod.overlay`` (the build and vitcod.json), and the driver's fast
paths (:mod:`vitcod.host.wire`, :mod:`vitcod.host.quantization`, the compiled kernel).
"""

from .aptypes import (MAX_WIDTH, ROUNDING_MODES, SATURATION_MODES, ApType, RawGeometry, describe_type_code,
                      raw_range, type_code)
from .header import CONFIG_HEADER, network_array_sizes, render_config_header
from .network import (MODEL_ID_PATTERN, NETWORK_FILE, OVERLAY_CONFIG_FILE, NetworkDescription, TensorMeta,
                      content_identifier, identifier_problem, interface_fields, model_identifier, read_json)
from .packing import (DMA_LENGTH_WIDTH_MAX, DMA_LENGTH_WIDTH_MIN, FORMAT_VERSION, WORD_BITS, WORD_BYTES,
                      check_width, dma_length_width, max_transfer_words, pack, unpack, values_per_word,
                      words_per_image)
from .registers import (BUNDLE, CONTROL_REGISTERS, READ_ONLY_REGISTERS, REGISTERS, STATUS_BITS, STATUS_MEANINGS,
                        Register, hls_interface_pragmas, register_map)

__all__ = [
    "BUNDLE", "CONFIG_HEADER", "CONTROL_REGISTERS", "DMA_LENGTH_WIDTH_MAX", "DMA_LENGTH_WIDTH_MIN", "FORMAT_VERSION",
    "MAX_WIDTH", "MODEL_ID_PATTERN", "NETWORK_FILE", "OVERLAY_CONFIG_FILE", "READ_ONLY_REGISTERS", "REGISTERS",
    "ROUNDING_MODES", "SATURATION_MODES", "STATUS_BITS", "STATUS_MEANINGS", "WORD_BITS", "WORD_BYTES", "ApType",
    "NetworkDescription", "RawGeometry", "Register", "TensorMeta", "check_width", "content_identifier",
    "describe_type_code", "dma_length_width", "hls_interface_pragmas", "identifier_problem", "interface_fields",
    "max_transfer_words", "model_identifier", "network_array_sizes", "pack", "raw_range", "read_json",
    "register_map", "render_config_header", "type_code", "unpack", "values_per_word", "words_per_image",
]
