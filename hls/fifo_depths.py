"""FIFO depths of the converted io_stream network: read the generated graph, size every FIFO, emit them.

Where this fits in the flow::

    hls/convert.py convert_keras_model(io_type="io_stream")
      -> hls4ml.converters.convert_from_keras_model   (hls4ml inserts a Clone layer at every fork)
      -> apply_fifo_depths(hls_model)                  (this module)
           1. stream_graph(): one Process per hls4ml layer, one FIFO per stream variable, named
              "<producer>-><consumer>" - the graph hls4ml will write, not a hand-drawn copy
           2. fork_depths(): the depth every FIFO needs so that no fork can deadlock
           3. simulate() the graph with those depths (hls/perf/dataflow.py); a deadlock is a bug here
           4. set each stream variable's pragma, so hls4ml writes
              ``#pragma HLS STREAM variable=<var> depth=<d>`` into firmware/<project>.cpp
      -> write_project(): also writes fifo_depths.json (the depths, the edges, the modelled interval)

Why not hls4ml's default: hls4ml sizes every FIFO to hold a whole tensor (N tokens for each of the
~45 streams of the demo network). Only the FIFOs beside a process that swallows many tokens before
its first output need that (the residual around attention: all N); the others need 2.

The rule (:func:`fork_depths`): a FIFO leaving a fork (hls4ml's Clone) must hold every token the
other branches swallow before the join can read from it - the largest ``need[0]`` (tokens read
before the first output) of a process on another branch before the join - plus ``slack``; every
other FIFO gets ``base_depth``. With slack 0 the residual depth is tight: one less deadlocks
(tests/hls/test_fifo_depths.py shows it on the generated graph of a converted model).

Everything here is MODELLED (token-level timing with modelled II and latencies); C-simulation cannot
show a deadlock (its streams are unbounded), and only co-simulation or the board can confirm these
depths are also enough for full throughput.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..fileio import atomic_write
from .perf.dataflow import Fifo, Graph, Process, SimResult, simulate, with_depths

__all__ = ["DEPTHS_FILE", "StreamGraph", "stream_graph", "fork_depths", "FifoPlan", "apply_fifo_depths",
           "read_emitted_depths", "write_depths_report"]

#: Written next to the project's firmware/ by :func:`write_depths_report`.
DEPTHS_FILE = "fifo_depths.json"

#: Processes read per cycle at most this often (ii) - the multiplier-sharing layers read once per
#: ReuseFactor cycles (hls4ml's Resource strategy: one dense product per RF cycles).
_MATRIX_CLASSES = ("Conv1D", "PointwiseConv1D", "Conv2D", "PointwiseConv2D", "Dense")

_PRAGMA = re.compile(r"#pragma\s+HLS\s+STREAM\s+variable=(\w+)\s+depth=(\d+)")


@dataclass
class StreamGraph:
    """The dataflow graph of a converted io_stream model.

    ``graph``: processes (hls4ml layer names, plus ``reader`` / ``writer`` for the top's ends) and
    FIFOs; ``variables``: ``{edge: hls4ml C++ variable name}`` for every FIFO inside the network
    function (the top's input and output streams are arguments and have no edge here); ``tokens``:
    ``{edge: tokens per image}`` (hls4ml's own default depth)."""

    graph: Graph
    variables: dict[str, str]
    tokens: dict[str, int]
    forks: dict[str, list[str]] = field(default_factory=dict)  # clone process -> its output edges


def _tokens(var) -> int:
    shape = [int(d) for d in var.shape]
    return max(1, math.prod(shape) // shape[-1]) if shape else 1


def _resolve(model, producer: Mapping[str, object], name: str) -> str:
    """Follow layers that write no stream of their own (an io_stream Reshape: the same stream)."""
    while name in producer:
        layer = producer[name]
        var = model.output_vars.get(name)
        if var is not None and getattr(var, "pragma", None) is not None or not layer.inputs:
            break
        name = layer.inputs[0]
    return name


def _need(layer, n_in: int, n_out: int) -> list[int]:
    """Read steps done before each output token (module docstring of hls/perf/dataflow.py)."""
    kind = layer.class_name
    if kind == "VitcodAttention":  # reads all N tokens of Q, K, V before the first output
        return [n_in] * n_out
    if kind == "VitcodEmbed":  # the CLS token first, then one token per patch
        return [0] + list(range(1, n_out))
    if kind == "Cropping1D":
        left = int(layer.get_attr("crop_left", 0))
        return [min(n_in, left + j + 1) for j in range(n_out)]
    if kind == "ZeroPadding2D":  # a padded pixel needs the real pixels before it in raster order
        h, w = int(layer.get_attr("in_height")), int(layer.get_attr("in_width"))
        top, left = int(layer.get_attr("pad_top")), int(layer.get_attr("pad_left"))
        ow = int(layer.get_attr("out_width"))
        need = []
        for j in range(n_out):
            r, c = divmod(j, ow)
            rr, cc = r - top, c - left
            if rr < 0:
                need.append(0)
            elif rr >= h:
                need.append(h * w)
            else:
                need.append(rr * w + min(max(cc + 1, 0), w))
        return need
    if kind in ("Conv2D", "PointwiseConv2D"):  # line buffer: the window's bottom-right pixel
        w_in = int(layer.get_attr("in_width"))
        kh, kw = int(layer.get_attr("filt_height")), int(layer.get_attr("filt_width"))
        sh, sw = int(layer.get_attr("stride_height")), int(layer.get_attr("stride_width"))
        ow = int(layer.get_attr("out_width"))
        return [min(n_in, (r * sh + kh - 1) * w_in + c * sw + kw - 1 + 1) for r, c in
                (divmod(j, ow) for j in range(n_out))]
    if n_in == n_out:  # token by token
        return [j + 1 for j in range(n_out)]
    return [n_in] * n_out  # unknown shape change: assume it swallows the whole tensor (safe side)


def stream_graph(model, attention_latency: Mapping[str, int] | None = None) -> StreamGraph:
    """The :class:`StreamGraph` of a converted io_stream hls4ml ModelGraph (module docstring).

    Args:
        attention_latency: cycles from an attention layer's last read to its first output, by layer
            name (default 4 N cycles; the conversion passes the engine model's figure).

    Raises:
        ValueError: the model is not io_stream, or a stream has no or several consumers.
    """
    if model.config.get_config_value("IOType") != "io_stream":
        raise ValueError(f"FIFO depths are for io_stream models, got IOType "
                         f"{model.config.get_config_value('IOType')!r}")
    layers = [layer for layer in model.get_layers()]
    inputs = set(model.inputs)
    outputs = set(model.outputs)
    consumers: dict[str, list[str]] = {}
    producer = {o: layer for layer in layers for o in layer.outputs}

    def streamless(layer) -> bool:  # writes no stream of its own (an io_stream Reshape)
        return layer.outputs[0] not in outputs and all(
            model.output_vars.get(o) is not None and getattr(model.output_vars[o], "pragma", None) is None
            for o in layer.outputs)

    for layer in layers:
        if layer.class_name == "Input" or streamless(layer):
            continue
        for name in layer.inputs:
            consumers.setdefault(_resolve(model, producer, name), []).append(layer.name)
    processes: dict[str, Process] = {}
    fifos: dict[str, Fifo] = {}
    variables: dict[str, str] = {}
    tokens: dict[str, int] = {}
    forks: dict[str, list[str]] = {}

    def edge_for(src_var: str, consumer: str) -> str:
        prod = "reader" if src_var in inputs else producer[src_var].name
        return f"{prod}->{consumer}"

    for src_var, cons in consumers.items():
        if len(cons) != 1:
            raise ValueError(f"stream {src_var} has {len(cons)} consumers {cons}; io_stream needs one "
                             f"(hls4ml inserts a Clone layer at every fork)")
        e = edge_for(src_var, cons[0])
        prod = e.split("->")[0]
        fifos[e] = Fifo(e, prod, cons[0], 2)
        tokens[e] = _tokens(model.output_vars[src_var])
        if src_var not in inputs:
            variables[e] = model.output_vars[src_var].name
    latency = dict(attention_latency or {})
    for layer in layers:
        if layer.class_name == "Input" or streamless(layer):
            continue
        in_edges = [edge_for(_resolve(model, producer, i), layer.name) for i in layer.inputs]
        out_edges = []
        for o in layer.outputs:
            if o in outputs:
                e = f"{layer.name}->writer"
                fifos[e] = Fifo(e, layer.name, "writer", 2)
                tokens[e] = _tokens(model.output_vars[o])
                out_edges.append(e)
            elif o in consumers:
                out_edges.append(edge_for(o, consumers[o][0]))
        n_in = tokens[in_edges[0]]
        n_out = tokens[out_edges[0]] if out_edges else 0
        ii = int(layer.get_attr("reuse_factor", 1) or 1) if layer.class_name in _MATRIX_CLASSES else 1
        lat = int(latency.get(layer.name, 4 * n_in)) if layer.class_name == "VitcodAttention" else 3
        processes[layer.name] = Process(layer.name, [(tuple(in_edges), n_in)], tuple(out_edges), n_out,
                                        _need(layer, n_in, n_out), lat, ii)
        if layer.class_name == "Clone":
            forks[layer.name] = out_edges
    reader_edges = [e for e in fifos if e.startswith("reader->")]
    pixels = tokens[reader_edges[0]]
    processes["reader"] = Process("reader", [], tuple(reader_edges), pixels, [0] * pixels)
    sink_edges = [e for e in fifos if e.endswith("->writer")]
    processes["writer"] = Process("writer", [(tuple(sink_edges), tokens[sink_edges[0]])], (), 0, [], 1)
    return StreamGraph(Graph(processes, fifos), variables, tokens, forks)


def _downstream(graph: Graph, start: str) -> set[str]:
    """Processes reachable from process ``start`` (itself included)."""
    out_edges: dict[str, list[str]] = {}
    for f in graph.fifos.values():
        out_edges.setdefault(f.producer, []).append(f.consumer)
    seen, todo = set(), [start]
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo += out_edges.get(p, [])
    return seen


def fork_depths(sg: StreamGraph, *, base_depth: int = 2, slack: int = 0) -> dict[str, int]:
    """``{edge: depth}`` for every FIFO of ``sg`` (the rule of the module docstring)."""
    if base_depth < 2:
        raise ValueError(f"base_depth must be >= 2 (a FIFO of depth 1 halves the rate), got {base_depth}")
    if slack < 0:
        raise ValueError(f"slack must be >= 0, got {slack}")
    g = sg.graph
    depths = {e: base_depth for e in g.fifos}
    below = {p: _downstream(g, p) for p in g.processes}
    reach = {e: below[g.fifos[e].consumer] for e in g.fifos}
    for edges in sg.forks.values():
        for e in edges:
            need = 0
            for other in edges:
                if other == e:
                    continue
                joins = reach[e] & reach[other]
                # the first join: the one no other join lies upstream of
                first = [j for j in joins if not any(j in below[k] and k != j for k in joins)]
                before = reach[other] - joins
                need = max([need] + [g.processes[p].need[0] for p in before
                                     if g.processes[p].need and any(j in below[p] for j in first)])
            if need:
                depths[e] = max(base_depth, need + slack)
    return depths


@dataclass
class FifoPlan:
    """What :func:`apply_fifo_depths` emitted and what the dataflow simulation of it found."""

    depths: dict[str, int]         # edge -> depth
    variables: dict[str, str]      # edge -> C++ variable
    hls4ml_default: dict[str, int]  # edge -> the depth hls4ml would have written (the whole tensor)
    check: SimResult
    images: int

    def to_dict(self) -> dict:
        return {
            "label": "MODELLED: token-level dataflow simulation (hls/perf/dataflow.py), not co-simulation",
            "rule": "fork FIFOs hold what the other branch swallows before the join; others base depth",
            "fifos": [{"edge": e, "variable": self.variables.get(e), "depth": d,
                       "hls4ml_default": self.hls4ml_default.get(e)} for e, d in sorted(self.depths.items())],
            "total_depth": sum(d for e, d in self.depths.items() if e in self.variables),
            "hls4ml_default_total_depth": sum(d for e, d in self.hls4ml_default.items() if e in self.variables),
            "simulation": {"images": self.images, "deadlock": self.check.deadlock,
                           "interval_cycles": self.check.interval, "latency_cycles": self.check.latency},
        }


def apply_fifo_depths(model, *, slack: int = 0, images: int = 2,
                      attention_latency: Mapping[str, int] | None = None) -> FifoPlan:
    """Size every FIFO of a converted io_stream model and set the pragmas hls4ml writes.

    Raises:
        RuntimeError: the dataflow simulation with the computed depths deadlocks (a bug in the rule
            or in the graph reading, never a user error: the message names the stuck processes).
    """
    sg = stream_graph(model, attention_latency)
    depths = fork_depths(sg, slack=slack)
    result = simulate(with_depths(sg.graph, depths), images)
    if result.deadlock:
        raise RuntimeError(f"the computed FIFO depths deadlock in the dataflow simulation: {result.describe()}")
    by_var = {v: e for e, v in sg.variables.items()}
    for var in model.output_vars.values():
        e = by_var.get(var.name)
        if e is not None and getattr(var, "pragma", None) is not None:
            var.pragma = ("stream", int(depths[e]))
    return FifoPlan(depths, dict(sg.variables), dict(sg.tokens), result, images)


def read_emitted_depths(project_dir: str | Path, project_name: str = "myproject") -> dict[str, int]:
    """``{variable: depth}`` of the ``#pragma HLS STREAM`` lines of the written network function."""
    path = Path(project_dir) / "firmware" / f"{project_name}.cpp"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no network function (expected a written hls4ml project)")
    return {m.group(1): int(m.group(2)) for m in _PRAGMA.finditer(path.read_text())}


def write_depths_report(project_dir: str | Path, plan: FifoPlan) -> Path:
    import json

    path = Path(project_dir) / DEPTHS_FILE
    atomic_write(path, json.dumps(plan.to_dict(), indent=2) + "\n")
    return path
