"""The hand-over from the HLS stage to overlay/ and host/: ``network.json``.

It names the hls4ml network function (io_parallel: ``void myproject(input_t in[N_IN], result_t out[N_OUT])``;
io_stream: ``void myproject(hls::stream<input_t> &in, hls::stream<result_t> &out)`` with
``"io_type": "io_stream"`` and each tensor's ``"element_size"``, the values of one stream element),
its header, sources and include directories, the input/output fixed-point types and shapes, the
content identifier (a 64-bit hash of the quantized weights, the masks and the precision
configuration, :func:`vitcod.host.contract.content_identifier`) and the model identifier (that
and the whole interface, :func:`vitcod.host.contract.model_identifier`: the one definition the IP's
identifier registers and the host's check share). Paths in the precision configuration (hls4ml's
config names the mask artifact by its absolute path) are replaced by the SHA-256 of what the files
hold (a numpy file's arrays, not its zip timestamps), so the same model converted in two folders
gets the same identifiers. The format and its reader are the overlay
contract's (:class:`vitcod.host.contract.NetworkDescription`); the overlay build
(``make bitstream``) and the host's ``csim``/``emulated`` backends read it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ..fileio import atomic_write, sha256_file
from ..host.contract import (NETWORK_FILE, ApType, NetworkDescription, TensorMeta, content_identifier,
                             model_identifier)

__all__ = ["NETWORK_FILE", "SUPPORT_FILE", "SUPPORT_SOURCE", "content_not_paths", "quantized_weights",
           "write_network_description"]
SUPPORT_FILE = "vitcod_csim_support.cpp"

# hls4ml's trace hooks (written into myproject.cpp when the project is compiled with tracing)
# refer to globals that only its Python bridge defines. A C-simulation of the IP top has no
# bridge, so it gets these definitions with tracing off. Synthesis never sees them.
SUPPORT_SOURCE = """\
// Written by vitcod.hls.network: definitions hls4ml's bridge would provide, tracing off.
#ifndef __SYNTHESIS__
#include <cstddef>
#include <map>
#include <string>
namespace nnet {
bool trace_enabled = false;
std::map<std::string, void *> *trace_outputs = NULL;
size_t trace_type_size = sizeof(double);
}  // namespace nnet
#endif
"""


def _precision(variable) -> str:
    """hls4ml's C++ spelling of a variable's type, without the saturation-bits argument."""
    return variable.type.precision.definition_cpp().replace(",0>", ">")


def quantized_weights(keras_model) -> dict[str, np.ndarray]:
    """Every weight as the hardware holds it (quantizers applied), by ``layer/weight`` name."""
    weights: dict[str, np.ndarray] = {}
    for layer in keras_model.layers:
        if hasattr(layer, "quantized_weights"):  # our layers quantize in call()
            values = [np.asarray(w) for w in layer.quantized_weights()]
        elif hasattr(layer, "get_quantized_weights"):  # QKeras layers
            values = [np.asarray(w) for w in layer.get_quantized_weights()]
        else:
            values = layer.get_weights()
        for i, value in enumerate(values):
            weights[f"{layer.name}/{i}"] = np.asarray(value, dtype=np.float64)
    return weights


def _file_digest(path: Path) -> str:
    """The SHA-256 of what a file holds: of a numpy file's arrays (names, dtypes, shapes, bytes - not
    the zip timestamps of an .npz, which differ each time it is written), else of its bytes."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    elif path.suffix == ".npy":
        arrays = {"array": np.load(path, allow_pickle=False)}
    else:
        return sha256_file(path)
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def content_not_paths(value):
    """``value`` (a JSON-like configuration) with every absolute path replaced by what it names:
    ``"sha256:<digest>"`` of a file's content (:func:`_file_digest`), ``"path:<name>"`` for anything
    else - so that a hash of the configuration does not depend on where the run folder lies."""
    if isinstance(value, dict):
        return {k: content_not_paths(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [content_not_paths(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        path = Path(value)
        return f"sha256:{_file_digest(path)}" if path.is_file() else f"path:{path.name}"
    return value


def _tensor_meta(shape: list[int], type_: str, element: int | None) -> TensorMeta:
    """The contract's TensorMeta (``element``: values per stream element, io_stream only)."""
    if element is None:
        return TensorMeta(tuple(shape), ApType.parse(type_))
    return TensorMeta(tuple(shape), ApType.parse(type_), element)


def write_network_description(hls_model, keras_model, masks: np.ndarray | None,
                              path: str | Path | None = None) -> Path:
    """Write ``network.json`` for a written (and compiled) hls4ml project; returns its path.

    Raises:
        ValueError: the network has more than one input or output.
        MetadataError: the description would not pass the contract's reader (checked before writing).
    """
    project = Path(hls_model.config.get_output_dir())
    name = hls_model.config.get_project_name()
    firmware = project / "firmware"
    inputs, outputs = hls_model.get_input_variables(), hls_model.get_output_variables()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"the IP top wraps one input and one output, the network has "
                         f"{len(inputs)} inputs and {len(outputs)} outputs")
    precision = content_not_paths(json.loads(json.dumps(hls_model.config.config.get("HLSConfig", {}), default=str)))
    content_id = content_identifier(quantized_weights(keras_model),
                                    {} if masks is None else {"masks": np.asarray(masks)},
                                    precision)
    in_shape, out_shape = [int(d) for d in inputs[0].shape], [int(d) for d in outputs[0].shape]
    in_type, out_type = _precision(inputs[0]), _precision(outputs[0])
    # io_stream: one stream element per pixel (input) / hls4ml's output array (all of the output).
    stream = hls_model.config.get_config_value("IOType") == "io_stream"
    in_element, out_element = (in_shape[-1], out_shape[-1]) if stream else (None, None)
    model_id = model_identifier(content_id, _tensor_meta(in_shape, in_type, in_element),
                                _tensor_meta(out_shape, out_type, out_element))
    path = Path(path) if path is not None else project / NETWORK_FILE

    def rel(p: Path) -> str:  # relative to network.json, so the project folder can move
        return os.path.relpath(p.resolve(), path.parent.resolve())

    description = {
        "name": name,
        "header": f"{name}.h",
        "sources": [rel(firmware / f"{name}.cpp"), rel(firmware / SUPPORT_FILE)],
        # -I for the network sources. Never hls4ml's bundled ap_types (firmware/ap_types): its
        # ap_common.h stops synthesis (#error under __SYNTHESIS__); the synthesis tool uses its own
        # headers and every g++ build adds the bundled copy itself (-isystem, host/csim_backend.py).
        "include_dirs": [rel(firmware)],
        "input": {"type": in_type, "shape": in_shape},
        "output": {"type": out_type, "shape": out_shape},
        "content_id": content_id,
        "model_id": model_id,
        "weights_dir": rel(firmware / "weights"),
    }
    if stream:  # absent io_type means io_parallel (the contract's default)
        description["io_type"] = "io_stream"
        description["input"]["element_size"] = in_element
        description["output"]["element_size"] = out_element
    atomic_write(firmware / SUPPORT_FILE, SUPPORT_SOURCE)
    NetworkDescription.from_dict(description, path.parent, where=str(path))  # validate before writing
    atomic_write(path, json.dumps(description, indent=2) + "\n")
    return path
