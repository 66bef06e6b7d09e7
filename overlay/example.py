"""A small stand-in network with an exact numpy reference, for C-simulating the overlay top and for
dry runs of the build without the real hls4ml project.

Where this fits: the real network (the hls4ml-generated ``myproject``) is written by the HLS
stage. To test the IP top (packing, batching, TLAST, registers) bit for bit, and to run
``make -C overlay stub-check`` before that network exists, this module writes a network with the
same io_parallel signature::

    void dummy_net(input_t x[N_IN], result_t y[N_OUT]);   // y[j] = sum_i x[i] * c(i, j)

with integer coefficients ``c(i, j) = ((i + 3 j) mod 5) - 2`` (every output depends on the order
of the inputs), an exact wide accumulator, and the output type's own quantization and overflow
on assignment - which :func:`DummyNetwork.reference` reproduces on raw integers.

``io_type="io_stream"`` writes the same arithmetic with hls4ml's io_stream signature (what the
stream top wraps)::

    void dummy_net(hls::stream<input_t> &x, hls::stream<result_t> &y);

reading one ``input_t`` element per pixel (``channels`` values, the input shape's last dimension)
and writing one ``result_t`` element holding all ``n_out`` outputs per image - so both variants give
the same raws, bit for bit, and both equal :meth:`DummyNetwork.reference`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fileio import atomic_write
from ..host.contract import ApType, TensorMeta, model_identifier


@dataclass(frozen=True)
class DummyNetwork:
    """``y[j] = sum_i x[i] * c(i, j)`` between two ap_fixed types (see the module docstring)."""

    input_type: str = "ap_fixed<12,4>"
    output_type: str = "ap_fixed<10,3,AP_RND,AP_SAT>"
    n_in: int = 23
    n_out: int = 7
    name: str = "dummy_net"
    content_id: str = "0x0123456789abcdef"  # stands for the hash of weights/masks/precision a real network has
    io_type: str = "io_parallel"  # or "io_stream" (see the module docstring)

    def __post_init__(self) -> None:
        if self.io_type not in ("io_parallel", "io_stream"):
            raise ValueError(f"io_type must be io_parallel or io_stream, got {self.io_type!r}")
        self.output_modes()  # reject modes the reference does not model
        tin = ApType.parse(self.input_type)
        # the accumulator ap_fixed<48,24> must hold every sum exactly
        if tin.frac > 24 or self.n_in * 2 * max(-tin.min_raw, tin.max_raw) >= 2 ** (23 + tin.frac):
            raise ValueError("the example's accumulator (ap_fixed<48,24>) cannot hold these sums exactly")

    @property
    def model_id(self) -> str:
        """The model identifier of this network's description (what its IP reports)."""
        return model_identifier(*self.tensors([self.n_in]))

    def tensors(self, shape: list[int]) -> tuple[str, TensorMeta, TensorMeta]:
        """(content_id, input, output) as the description declares them for input ``shape``."""
        stream = self.io_type == "io_stream"
        return (self.content_id,
                TensorMeta(tuple(shape), ApType.parse(self.input_type), shape[-1] if stream else None),
                TensorMeta((self.n_out,), ApType.parse(self.output_type), self.n_out if stream else None))

    def coefficients(self) -> np.ndarray:
        i = np.arange(self.n_in)[:, None]
        j = np.arange(self.n_out)[None, :]
        return ((i + 3 * j) % 5) - 2

    def output_modes(self) -> tuple[str, str]:
        """The output type's (quantization, overflow) modes, if the reference models them.

        Raises:
            ValueError: an ap_int/ap_uint output, or modes other than AP_TRN/AP_RND and AP_WRAP/AP_SAT.
        """
        t = ApType.parse(self.output_type)
        if t.is_int or t.saturation_bits:
            raise ValueError(f"example output type must be ap_fixed/ap_ufixed<W,I[,Q[,O]]>, got {self.output_type!r}")
        q, o = t.rounding, t.saturation
        if q not in ("AP_TRN", "AP_RND") or o not in ("AP_WRAP", "AP_SAT"):
            raise ValueError(f"the example models AP_TRN/AP_RND and AP_WRAP/AP_SAT only, got {q}, {o}")
        return q, o

    def reference(self, raw_in: np.ndarray) -> np.ndarray:
        """Output raws for input raws ``(batch, n_in)``, exactly as the C++ computes them."""
        tin, tout = ApType.parse(self.input_type), ApType.parse(self.output_type)
        acc = np.asarray(raw_in, dtype=np.int64) @ self.coefficients()  # exact, in units of 2**-frac_in
        shift = tin.frac - tout.frac
        rounding, overflow = self.output_modes()
        if shift > 0:
            if rounding == "AP_RND":
                acc = acc + (1 << (shift - 1))
            out = acc >> shift  # arithmetic shift = floor
        else:
            out = acc << (-shift)
        if overflow == "AP_SAT":
            return np.clip(out, tout.min_raw, tout.max_raw)
        span = 1 << tout.width
        return ((out - tout.min_raw) % span) + tout.min_raw

    def header(self, channels: int = 1) -> str:
        """The network's C++ header (io_stream: ``channels`` values per input element)."""
        if self.io_type == "io_stream":
            return self.stream_header(channels)
        return f"""\
// Example network for the overlay's C simulation and dry runs (overlay/example.py).
#ifndef {self.name.upper()}_H_
#define {self.name.upper()}_H_
#include "ap_fixed.h"

typedef {self.input_type} input_t;
typedef {self.output_type} result_t;
typedef ap_fixed<48, 24> {self.name}_acc_t;  // exact for these sizes: 24 fraction bits

inline void {self.name}(input_t x[{self.n_in}], result_t y[{self.n_out}]) {{
    for (int j = 0; j < {self.n_out}; j++) {{
        #pragma HLS UNROLL
        {self.name}_acc_t acc = 0;
        for (int i = 0; i < {self.n_in}; i++) {{
            #pragma HLS UNROLL
            acc += x[i] * (((i + 3 * j) % 5) - 2);
        }}
        y[j] = acc;
    }}
}}
#endif
"""

    def stream_header(self, channels: int) -> str:
        if self.n_in % channels:
            raise ValueError(f"{self.n_in} input values do not form pixels of {channels} channels")
        n = self.name
        return f"""\
// Example io_stream network for the overlay's C simulation and dry runs (overlay/example.py).
#ifndef {n.upper()}_H_
#define {n.upper()}_H_
#include "ap_fixed.h"
#include "hls_stream.h"

// The stream element: nnet::array's layout (value_type, size, data[size]).
template <class T, unsigned N> struct {n}_array {{
    typedef T value_type;
    static const unsigned size = N;
    T data[N];
}};
typedef {n}_array<{self.input_type}, {channels}> input_t;
typedef {n}_array<{self.output_type}, {self.n_out}> result_t;
typedef ap_fixed<48, 24> {n}_acc_t;  // exact for these sizes: 24 fraction bits

inline void {n}(hls::stream<input_t> &x, hls::stream<result_t> &y) {{
    {n}_acc_t acc[{self.n_out}];
    #pragma HLS ARRAY_PARTITION variable=acc complete
    for (int j = 0; j < {self.n_out}; j++) {{
        #pragma HLS UNROLL
        acc[j] = 0;
    }}
    for (int p = 0; p < {self.n_in // channels}; p++) {{
        #pragma HLS PIPELINE II=1
        input_t px = x.read();
        for (int c = 0; c < {channels}; c++) {{
            #pragma HLS UNROLL
            for (int j = 0; j < {self.n_out}; j++) {{
                #pragma HLS UNROLL
                acc[j] += px.data[c] * ((((p * {channels} + c) + 3 * j) % 5) - 2);
            }}
        }}
    }}
    result_t out;
    for (int j = 0; j < {self.n_out}; j++) {{
        #pragma HLS UNROLL
        out.data[j] = acc[j];
    }}
    y.write(out);
}}
#endif
"""

    def write(self, folder: str | Path, input_shape: list[int] | None = None) -> Path:
        """Write ``<name>.h``, ``<name>.cpp`` and ``network.json`` into ``folder``; returns the JSON path.

        ``input_shape``: declare the input with this shape (same number of values, e.g. ``[8, 8, 1]``
        for 64); the identifier follows it."""
        shape = [self.n_in] if input_shape is None else list(input_shape)
        if int(np.prod(shape)) != self.n_in:
            raise ValueError(f"input_shape {shape} holds {int(np.prod(shape))} values, the network reads {self.n_in}")
        folder = Path(folder)
        atomic_write(folder / f"{self.name}.h", self.header(shape[-1]), skip_if_same=True)
        atomic_write(folder / f"{self.name}.cpp",
                     f'// The network is header-only; this is its HLS source.\n#include "{self.name}.h"\n',
                     skip_if_same=True)
        content_id, tin, tout = self.tensors(shape)
        spec = {
            "name": self.name,
            "header": f"{self.name}.h",
            "sources": [f"{self.name}.cpp"],
            "include_dirs": ["."],
            "input": {"type": self.input_type, "shape": shape, **tin.element_dict()},
            "output": {"type": self.output_type, "shape": [self.n_out], **tout.element_dict()},
            "content_id": content_id,
            "model_id": model_identifier(content_id, tin, tout),
        }
        if self.io_type == "io_stream":
            spec["io_type"] = self.io_type
        path = folder / "network.json"
        atomic_write(path, json.dumps(spec, indent=2) + "\n", skip_if_same=True)
        return path
