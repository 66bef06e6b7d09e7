"""C-simulation harness: compile a generated engine config with g++ and run it on raw integers.

Where this fits: :mod:`vitcod.hls.engines` writes the per-layer header; this module generates a
tiny C++ driver around it (``extern "C"`` entry point that loads raw integers into the ap_fixed
inputs, calls the engine once per sample, reads raw bits back and copies out the C-simulation
MAC counters), compiles it into a shared library with ``g++ -O2 -std=c++11`` against the ap_types
headers shipped with hls4ml, and calls it through ctypes. Tests compare its outputs bit for bit with
:mod:`vitcod.hls.golden`.

Builds are cached by a content hash of everything that goes into them (engine headers, generated
header, driver, compiler, flags) under ``$VITCOD_CSIM_CACHE`` (default: a per-user folder in the
system temp dir), so repeated test runs only pay for the first compilation. The ap_types lookup,
the compiler, the cache and the compile-then-rename step are :mod:`vitcod.host.cxx_build`'s, shared
with the host's C simulation of the IP top.

Example::

    engine = build_attention_engine(cfg, polarizations, name="attn0")
    lib = build(engine)                       # compiles (or reuses the cached .so)
    result = lib.run(q_raw, k_raw, v_raw)     # (S, N*E) raw inputs
    result.outputs, result.counters["dense"]
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..host import cxx_build
from ..host.cxx_build import CompileError
from .engines import FIRMWARE_DIR, AttentionEngine, EmbedEngine, HeadMixEngine
from .engines.attention_stream import StreamAttentionEngine
from .fixed_point import FixedType, parse_type, wrap_to_type

log = logging.getLogger(__name__)

#: Order of the counters in vitcod_common.h (enum mac_counter_id).
COUNTER_NAMES = ("dense", "sparse", "softmax", "reciprocal", "pv", "encoder", "decoder", "embed")

CXX = cxx_build.default_cxx()
CXX_FLAGS = ("-O2", "-std=c++11", "-fPIC", "-shared")

__all__ = ["COUNTER_NAMES", "CXX", "CompileError", "CsimLibrary", "CsimResult", "ap_types_dir", "build",
           "build_cast_library", "build_many", "cache_dir", "compile_library", "nnet_utils_root", "run"]


def ap_types_dir() -> Path:
    """The ap_types headers (``$VITCOD_AP_TYPES``, else those bundled with hls4ml).

    Raises:
        FileNotFoundError: neither is there (:class:`~vitcod.host.cxx_build.ToolchainNotFoundError`).
    """
    return cxx_build.ap_types_dir()


def cache_dir() -> Path:
    """Folder of the cached engine libraries (``$VITCOD_CSIM_CACHE`` or ``<tmp>/vitcod-csim-<uid>``)."""
    return cxx_build.cache_dir(None, "vitcod-csim")


# ---- C++ driver source ----------------------------------------------------------------------

_DRIVER = """// Generated C-simulation driver (vitcod.hls.engine_csim). Not part of the firmware.
#include "{header}"

namespace {{
template <class T> inline void set_raw(T &x, long long raw) {{ x.range(T::width - 1, 0) = (unsigned long long)raw; }}
template <class T> inline long long get_raw(T &x) {{ return (long long)x.range(T::width - 1, 0).to_uint64(); }}
}}

extern "C" int vitcod_run(long long n_samples, const long long *const *inputs, long long *out,
                          unsigned long long *counters) {{
{declarations}
    vitcod::reset_counters();
    for (long long s = 0; s < n_samples; s++) {{
{loads}
        {call}
        for (unsigned i = 0; i < {out_size}u; i++) out[s * {out_size} + i] = get_raw(res[i]);
    }}
    for (unsigned c = 0; c < vitcod::n_mac_counters; c++) counters[c] = vitcod::counters().count[c];
    return 0;
}}
"""


def _driver_source(header: str, inputs: Sequence[tuple[str, str, int]], result: tuple[str, int], call: str) -> str:
    decl = [f"    static {t} {name}[{size}];" for name, t, size in inputs]
    decl.append(f"    static {result[0]} res[{result[1]}];")
    loads = [
        f"        for (unsigned i = 0; i < {size}u; i++) set_raw({name}[i], inputs[{j}][s * {size} + i]);"
        for j, (name, _, size) in enumerate(inputs)
    ]
    return _DRIVER.format(header=header, declarations="\n".join(decl), loads="\n".join(loads), call=call,
                          out_size=result[1])


# ---- building -------------------------------------------------------------------------------

_build_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL] = {}


def compile_library(sources: dict[str, str], main: str, extra_flags: Sequence[str] = ()) -> Path:
    """Compile ``main`` (a key of ``sources``, all written into one folder) into a cached .so.

    The cache key covers the compiler, the flags, every firmware header and the sources.

    Raises:
        CompileError: g++ failed; the message holds its stderr.
        FileNotFoundError: no compiler or no ap_types headers.
    """
    ap_dir = ap_types_dir()
    flags = list(CXX_FLAGS) + list(extra_flags)
    parts: list[bytes | str] = [cxx_build.compiler_id(CXX), " ".join(flags)]
    for header in sorted(FIRMWARE_DIR.glob("*.h")):
        parts += [header.name, header.read_bytes()]
    for name in sorted(sources):
        parts += [name, sources[name]]
    key = cxx_build.content_key(parts, length=20)

    def command(work: Path, out: Path) -> list[str]:
        return [CXX, *flags, "-isystem", str(ap_dir), "-I", str(FIRMWARE_DIR), "-I", str(work), str(work / main),
                "-o", str(out)]

    return cxx_build.compile_library(cache_dir() / key / "libvitcod_csim.so", sources, command,
                                     what=f"C-simulation library {key}")


def _load(path: Path) -> ctypes.CDLL:
    with _build_lock:
        key = str(path)
        if key not in _loaded:
            lib = ctypes.CDLL(key)
            lib.vitcod_run.restype = ctypes.c_int
            lib.vitcod_run.argtypes = [ctypes.c_longlong, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p,
                                       ctypes.c_void_p]
            _loaded[key] = lib
        return _loaded[key]


@dataclass
class CsimResult:
    """Outputs of one harness call.

    Attributes:
        outputs: (S, out_size) int64 raws of the result type.
        counters: operation counts summed over the S samples, by name (see COUNTER_NAMES).
        samples: S.
    """

    outputs: np.ndarray
    counters: dict[str, int]
    samples: int

    def counters_per_call(self) -> dict[str, int]:
        """Counters of one engine call (they are identical for every sample)."""
        return {k: v // self.samples for k, v in self.counters.items()} if self.samples else dict(self.counters)


@dataclass
class CsimLibrary:
    """A compiled engine: call :meth:`run` with raw inputs, one row per sample."""

    path: Path
    input_types: tuple[FixedType, ...]
    input_sizes: tuple[int, ...]
    output_type: FixedType
    output_size: int

    def run(self, *inputs) -> CsimResult:
        if len(inputs) != len(self.input_types):
            raise ValueError(f"expected {len(self.input_types)} inputs, got {len(inputs)}")
        arrays = []
        samples = None
        for j, (x, t, size) in enumerate(zip(inputs, self.input_types, self.input_sizes)):
            arr = np.ascontiguousarray(np.asarray(x, dtype=np.int64).reshape(-1, size))
            if arr.size and (arr.min() < t.min_raw or arr.max() > t.max_raw):
                raise ValueError(f"input {j}: raws must lie in [{t.min_raw}, {t.max_raw}] for {t}")
            if samples is None:
                samples = arr.shape[0]
            elif arr.shape[0] != samples:
                raise ValueError("all inputs must have the same number of samples")
            arrays.append(arr)
        out = np.zeros((samples, self.output_size), dtype=np.int64)
        counters = np.zeros(len(COUNTER_NAMES), dtype=np.uint64)
        ptrs = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
        lib = _load(self.path)
        rc = lib.vitcod_run(samples, ptrs, out.ctypes.data, counters.ctypes.data)
        if rc == 2:
            raise RuntimeError("io_stream C-simulation: the engine left input tokens unread or did not write "
                               "exactly one output token per input token")
        if rc != 0:
            raise RuntimeError(f"C-simulation returned {rc}")
        return CsimResult(outputs=wrap_to_type(out, self.output_type),
                          counters={n: int(c) for n, c in zip(COUNTER_NAMES, counters)}, samples=samples)


def nnet_utils_root() -> Path:
    """hls4ml's ``nnet_utils`` folder (its ``nnet_types.h`` has ``nnet::array``, the io_stream token
    type; in an hls4ml project our headers sit in that folder, so they include it by plain name).

    Raises:
        FileNotFoundError: hls4ml is not installed (the stream engines need its nnet_types.h).
    """
    spec = importlib.util.find_spec("hls4ml")
    root = Path(spec.origin).parent / "templates" / "vivado" / "nnet_utils" if spec and spec.origin else None
    if root is None or not (root / "nnet_types.h").is_file():
        raise FileNotFoundError("the io_stream C-simulation needs hls4ml's nnet_utils/nnet_types.h "
                                "(nnet::array); install hls4ml (the flow environment, `make setup`)")
    return root


# The io_stream call: the flat per-sample arrays are written token by token into hls::stream's, the
# engine runs, and the driver fails (return 2) unless it consumed every input token and produced
# exactly N output tokens - what a hardware FIFO protocol would need.
_STREAM_CALL = """{{
            hls::stream<{q_t} > q_s("q");
            hls::stream<{k_t} > k_s("k");
            hls::stream<{v_t} > v_s("v");
            hls::stream<{res_t} > res_s("res");
            for (unsigned n = 0; n < {tokens}u; n++) {{
                {q_t} qt; {k_t} kt; {v_t} vt;
                for (unsigned c = 0; c < {embed}u; c++) {{
                    qt[c] = q[n * {embed} + c]; kt[c] = k[n * {embed} + c]; vt[c] = v[n * {embed} + c];
                }}
                q_s.write(qt); k_s.write(kt); v_s.write(vt);
            }}
            {call}
            if (!q_s.empty() || !k_s.empty() || !v_s.empty() || res_s.size() != {tokens}u) return 2;
            for (unsigned n = 0; n < {tokens}u; n++) {{
                {res_t} rt = res_s.read();
                for (unsigned c = 0; c < {embed}u; c++) res[n * {embed} + c] = rt[c];
            }}
        }}"""


def _library_for(engine) -> tuple[dict[str, str], str, tuple, tuple, FixedType, int]:
    header = engine.header_filename
    if isinstance(engine, StreamAttentionEngine):
        t, cfg = engine.types, engine.config
        size = cfg.tokens * cfg.embed_dim
        inputs = (("q", t.q.cpp(), size), ("k", t.k.cpp(), size), ("v", t.v.cpp(), size))
        st = engine.stream_types()
        call = _STREAM_CALL.format(q_t=st["q"], k_t=st["k"], v_t=st["v"], res_t=st["res"], tokens=cfg.tokens,
                                   embed=cfg.embed_dim, call=engine.function_call("q_s", "k_s", "v_s", "res_s"))
        result = (t.result, size)
    elif isinstance(engine, AttentionEngine):
        t, cfg = engine.types, engine.config
        size = cfg.tokens * cfg.embed_dim
        inputs = (("q", t.q.cpp(), size), ("k", t.k.cpp(), size), ("v", t.v.cpp(), size))
        call = engine.function_call("q", "k", "v", "res")
        result = (t.result, size)
    elif isinstance(engine, HeadMixEngine):
        t, cfg = engine.config.types, engine.config
        inputs = (("data", t["data"].cpp(), cfg.tokens * cfg.heads_in * cfg.head_dim),)
        call = engine.function_call("data", "res")
        result = (t["result"], cfg.tokens * cfg.heads_out * cfg.head_dim)
    elif isinstance(engine, EmbedEngine):
        t, cfg = engine.config.types, engine.config
        inputs = (("data", t["data"].cpp(), (cfg.tokens - 1) * cfg.embed_dim),)
        call = engine.function_call("data", "res")
        result = (t["result"], cfg.tokens * cfg.embed_dim)
    else:
        raise TypeError(f"no C-simulation harness for {type(engine).__name__}")
    driver = _driver_source(header, inputs, (result[0].cpp(), result[1]), call)
    sources = {header: engine.header(), "csim_main.cpp": driver}
    in_types = tuple(parse_type(spec) for _, spec, _ in inputs)
    in_sizes = tuple(size for _, _, size in inputs)
    return sources, "csim_main.cpp", in_types, in_sizes, result[0], result[1]


def build(engine) -> CsimLibrary:
    """Compile (or fetch from the cache) the C-simulation library of one engine."""
    sources, main, in_types, in_sizes, out_type, out_size = _library_for(engine)
    extra = ("-I", str(nnet_utils_root())) if isinstance(engine, StreamAttentionEngine) else ()
    path = compile_library(sources, main, extra)
    return CsimLibrary(path=path, input_types=in_types, input_sizes=in_sizes, output_type=out_type,
                       output_size=out_size)


def build_many(engines: Sequence, jobs: int | None = None) -> list[CsimLibrary]:
    """Compile several engines in parallel (g++ runs outside the GIL); same order as ``engines``."""
    jobs = jobs or max(1, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(build, engines))


def run(engine, *inputs) -> CsimResult:
    """Build (cached) and run one engine on raw inputs."""
    return build(engine).run(*inputs)


# ---- ap_fixed casts (to check the fixed-point model itself against ap_types) -------------------

_CAST_DRIVER = """// Generated ap_types cast driver (vitcod.hls.engine_csim).
#include "ap_fixed.h"
#include "ap_int.h"

namespace {{
template <class T> inline void set_raw(T &x, long long raw) {{ x.range(T::width - 1, 0) = (unsigned long long)raw; }}
template <class T> inline long long get_raw(T &x) {{ return (long long)x.range(T::width - 1, 0).to_uint64(); }}
template <class S, class D> void cast_all(long long n, const long long *in, long long *out) {{
    for (long long j = 0; j < n; j++) {{
        S x;
        set_raw(x, in[j]);
        D y = x;
        out[j] = get_raw(y);
    }}
}}
}}

extern "C" int vitcod_cast(int which, long long n, const long long *in, long long *out) {{
    switch (which) {{
{cases}
    default: return 1;
    }}
    return 0;
}}
"""


def build_cast_library(pairs: Sequence[tuple[str, str]]):
    """Compile C++ ``dst = src`` assignments for (src, dst) type pairs.

    Returns ``cast(index, raws) -> raws`` (raws of pair ``index``'s src -> raws of its dst).
    """
    parsed = [(parse_type(s), parse_type(d)) for s, d in pairs]
    cases = "\n".join(
        f"    case {i}: cast_all<{s.cpp()}, {d.cpp()} >(n, in, out); break;" for i, (s, d) in enumerate(parsed)
    )
    path = compile_library({"cast_main.cpp": _CAST_DRIVER.format(cases=cases)}, "cast_main.cpp")
    lib = ctypes.CDLL(str(path))
    lib.vitcod_cast.restype = ctypes.c_int
    lib.vitcod_cast.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_void_p, ctypes.c_void_p]

    def cast(index: int, raws) -> np.ndarray:
        src, dst = parsed[index]
        arr = np.ascontiguousarray(np.asarray(raws, dtype=np.int64))
        out = np.zeros_like(arr)
        if lib.vitcod_cast(index, arr.size, arr.ctypes.data, out.ctypes.data) != 0:
            raise RuntimeError("cast driver failed")
        return wrap_to_type(out, dst)

    return cast
