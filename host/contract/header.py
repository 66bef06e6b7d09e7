"""``vitcod_top_config.h``: the header that binds the generic IP top to one network.

Where this fits: ``overlay/ip/vitcod_top.cpp`` includes ``vitcod_top_config.h`` and instantiates
``vitcod::run_top<vitcod_top_config>``. The overlay build writes the header for Vitis HLS
(``vitcod.overlay.codegen``), and the host's C-simulation backend writes the same text for g++
(``vitcod.host.csim_backend``); both call :func:`render_config_header`.

What the IP reports must be what it *is*, not what ``network.json`` says, or the host could not
catch a description that disagrees with the C++: the types are the network header's own
``input_t`` / ``result_t`` (the IP computes their codes), and the values per image are the array
sizes of the network function's prototype, read from its header (:func:`network_array_sizes`).
Only the model identifier comes from the description; the host recomputes it.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import MetadataError
from .network import NetworkDescription

CONFIG_HEADER = "vitcod_top_config.h"

_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_PARAM = re.compile(r"^(?:const\s+)?([A-Za-z_][\w:]*)\s+&?\s*([A-Za-z_]\w*)\s*\[(.+)\]$", re.S)


def find_header(network: NetworkDescription) -> Path:
    """The network's header file: in its include folders, else next to its first source.

    Raises:
        MetadataError: not found.
    """
    folders = [*network.include_dirs, *(s.parent for s in network.sources[:1])]
    for folder in folders:
        if (folder / network.header).is_file():
            return folder / network.header
    raise MetadataError(f"{network.path or 'network.json'}: header {network.header!r} not found in "
                        f"{[str(f) for f in folders]}")


def network_array_sizes(network: NetworkDescription) -> tuple[str, str]:
    """The C expressions of the input and output array sizes in the prototype of ``network.name``
    (``void myproject(input_t in[N_INPUT_1_1*N_INPUT_2_1], result_t out[N_LAYER_5])`` gives
    ``("N_INPUT_1_1*N_INPUT_2_1", "N_LAYER_5")``), read from the network's header.

    Raises:
        MetadataError: the header has no such prototype (naming what was expected).
    """
    header = find_header(network)
    text = _COMMENTS.sub(" ", header.read_text(errors="replace"))
    expected = f"a function `void {network.name}(input_t x[N_IN], result_t y[N_OUT])` (network.json's io_parallel signature)"
    match = re.search(rf"\bvoid\s+{re.escape(network.name)}\s*\(", text)
    if match is None:
        raise MetadataError(f"{header}: expected {expected}, got no such prototype")
    depth, end = 1, match.end()
    while depth and end < len(text):  # up to the closing parenthesis
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        end += 1
    params, depth, current = [], 0, ""
    for ch in text[match.end():end - 1]:
        if ch == "," and depth == 0:
            params.append(current.strip())
            current = ""
            continue
        depth += {"[": 1, "(": 1, "<": 1, "]": -1, ")": -1, ">": -1}.get(ch, 0)
        current += ch
    params.append(current.strip())
    sizes = [_PARAM.match(" ".join(p.split())) for p in params[:2]]
    if len(params) < 2 or not all(sizes):
        raise MetadataError(f"{header}: expected {expected}, got the parameters {params!r}")
    return sizes[0].group(3).strip(), sizes[1].group(3).strip()


def check_stream_prototype(network: NetworkDescription) -> None:
    """Raise unless the network's header declares hls4ml's io_stream prototype
    ``void NAME(hls::stream<input_t> &x, hls::stream<result_t> &y)``.

    Raises:
        MetadataError: naming the header and what was expected.
    """
    header = find_header(network)
    text = " ".join(_COMMENTS.sub(" ", header.read_text(errors="replace")).split())
    pattern = (rf"\bvoid {re.escape(network.name)} ?\( ?hls::stream ?< ?input_t ?> ?& ?\w+ ?, ?"
               rf"hls::stream ?< ?result_t ?> ?& ?\w+ ?\)")
    if re.search(pattern, text) is None:
        raise MetadataError(f"{header}: expected `void {network.name}(hls::stream<input_t> &in, "
                            "hls::stream<result_t> &out)` (network.json says io_type io_stream), got no such prototype")


def _stream_body(network: NetworkDescription) -> str:
    """The io_stream part of ``vitcod_top_config``: element types and sizes, values per image, the call."""
    return f"""\
    // io_stream: one input element per pixel, {network.output.elements_per_image} output element(s) per image; the
    // values per image are the C++ element sizes times the element counts of the description.
    static const bool io_stream = true;
    typedef ::input_t in_elem_t;
    typedef ::result_t out_elem_t;
    typedef in_elem_t::value_type in_t;
    typedef out_elem_t::value_type out_t;
    static const unsigned in_elems = {network.input.elements_per_image};
    static const unsigned out_elems = {network.output.elements_per_image};
    static const unsigned n_in = in_elems * in_elem_t::size;
    static const unsigned n_out = out_elems * out_elem_t::size;
    static void network(hls::stream<in_elem_t> &x, hls::stream<out_elem_t> &y) {{
#pragma HLS INLINE off
        {network.name}(x, y);
    }}
"""


def render_config_header(network: NetworkDescription, max_batch: int, board: str) -> str:
    """The header's text: the network's types, sizes and call, the max batch and the model id.

    Args:
        network: the network the top wraps.
        max_batch: the largest ``batch_count`` the IP honours.
        board: named in a comment only (the C simulation's cache ignores comments).

    Raises:
        MetadataError: the network's header does not declare the function (:func:`network_array_sizes`).
    """
    mid = network.model_id
    declared = (f"{network.input.format.cpp} {list(network.input.shape)} -> "
                f"{network.output.format.cpp} {list(network.output.shape)}")
    if network.io_type == "io_stream":
        check_stream_prototype(network)
        body = _stream_body(network)
    else:
        n_in, n_out = network_array_sizes(network)
        body = f"""\
    typedef ::input_t in_t;
    typedef ::result_t out_t;
    static const unsigned n_in = ({n_in});
    static const unsigned n_out = ({n_out});
    static void network(in_t x[n_in], out_t y[n_out]) {{
#pragma HLS INLINE
        {network.name}(x, y);
    }}
"""
    return f"""\
// Generated by overlay/codegen.py (vitcod.overlay.codegen) - do not edit.
// Binds the overlay top (vitcod_top.cpp) to the network `{network.name}` for board {board}.
#ifndef VITCOD_TOP_CONFIG_H_
#define VITCOD_TOP_CONFIG_H_

#include "{network.header}"
#include "vitcod_top.h"

struct vitcod_top_config : vitcod::top_config {{
    // The network's own types and array sizes (the IP reports these; the host compares them with
    // the description, which declares {declared}).
{body}    static const unsigned max_batch = {max_batch};
    static const unsigned model_id_lo = 0x{mid & 0xFFFFFFFF:08x}u;
    static const unsigned model_id_hi = 0x{mid >> 32:08x}u;
}};

#endif
"""
