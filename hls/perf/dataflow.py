"""FIFO depths that cannot deadlock: a token-level simulation of a DATAFLOW graph of stream
processes, the ViTCoD io_stream graph, and its minimal safe depths (issue #12, item 4).

Why: in C-simulation an ``hls::stream`` is unbounded and the processes of a DATAFLOW region run one
after another, so a FIFO too shallow for hardware never shows there. On hardware a process blocks on
a full FIFO, and a fork whose two branches are joined again (the residual around attention) deadlocks
when one branch must take in more tokens before its first output than the other branch's FIFO holds.

The model (every figure MODELLED, in cycles):

* a :class:`Process` handles one image per call, like an hls4ml io_stream layer function; it reads
  ``reads`` - phases of (FIFOs read in lock-step, tokens) - and writes ``out_tokens`` tokens to each of
  its ``writes`` FIFOs in lock-step (a fork: hls4ml's clone writes its copies in one iteration);
* output token j may be written once ``need[j]`` read steps are done (the tokens consumed before the
  first output: ``need[0]``; attention: all N) and ``latency`` cycles have passed since the last of
  them; reads and writes each advance at most once per ``ii`` cycles; reads run ahead of the writes
  by at most ``slack`` steps (the tokens inside its pipeline, ``ceil(latency / ii)``); the next image
  starts once this one's reads and writes are all done;
* a :class:`Fifo` holds at most ``depth`` tokens; a token written at t is readable at t + 1.

:func:`simulate` runs a batch of images through the graph, event by event (not cycle by cycle), and
returns a :class:`SimResult`: completed, or deadlocked with every stuck process and the FIFO it
waits on; the interval per image in the steady state and the latency of the first image.

The ViTCoD graph (:func:`vit_graph`) is what the io_stream conversion builds: reader -> patch
embedding (a line-buffered Conv2D) -> CLS + position embedding (writes the CLS token first) -> per
block: fork0 -> [residual1 | norm1 -> fork1 -> Q/K/V projections (-> Q/K encoder/decoder) ->
attention] -> proj -> add1 -> fork2 -> [residual2 | norm2 -> mlp1 -> relu -> mlp2] -> add2 ->
final norm -> CLS selection -> head -> writer. Edges are named ``"<producer>-><consumer>"``.

:func:`safe_depths` computes the depths analytically from the design: a FIFO leaving a fork must
hold every token its consumer cannot take before the other branch has taken in what it needs for
its first output (the residual around attention: the N tokens the attention reads before its first
output; with ``attention_reads="sequential"``, the K and V branches also hold N while Q is read);
every other FIFO gets ``base_depth``. ``slack`` adds tokens for throughput only: with slack 0 the
residual depth is tight - one less deadlocks (tests/hls/test_dataflow.py shows it).

The interface for the conversion (hls/convert.py): :func:`safe_depths` returns ``{edge: depth}``;
:func:`stream_pragmas` renders ``#pragma HLS STREAM variable=<name> depth=<d>`` for a mapping
``{edge: hls4ml stream variable name}`` (every edge of the mapping must have a depth; edges left out
of the mapping keep hls4ml's own depth). :func:`throughput` gives clock / interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ...model.config import ViTConfig

__all__ = ["Fifo", "Graph", "Process", "SimResult", "safe_depths", "simulate", "stream_pragmas", "throughput",
           "vit_graph", "vit_graph_from_estimate", "with_depths"]


@dataclass
class Process:
    """One stream process (see the module docstring). ``need`` has one entry per output token: the read
    steps (over all phases) done before that token can be written (non-decreasing, each <= the total)."""

    name: str
    reads: list[tuple[tuple[str, ...], int]]
    writes: tuple[str, ...]
    out_tokens: int
    need: list[int]
    latency: int = 1
    ii: int = 1
    slack: int | None = None  # default ceil(latency / ii)

    @property
    def read_steps(self) -> int:
        return sum(n for _, n in self.reads)

    @property
    def pipeline_slack(self) -> int:
        return self.slack if self.slack is not None else max(1, math.ceil(self.latency / self.ii))

    def inputs(self) -> list[str]:
        return [f for fifos, _ in self.reads for f in fifos]

    def fifos_at(self, step: int) -> tuple[str, ...]:
        """The FIFOs read at read step ``step`` of an image."""
        for fifos, n in self.reads:
            if step < n:
                return fifos
            step -= n
        raise IndexError(step)


@dataclass
class Fifo:
    name: str
    producer: str
    consumer: str
    depth: int


@dataclass
class Graph:
    """Processes and the FIFOs between them; ``source`` / ``sink`` are the top's reader and writer."""

    processes: dict[str, Process]
    fifos: dict[str, Fifo]

    def depths(self) -> dict[str, int]:
        return {name: f.depth for name, f in self.fifos.items()}


def with_depths(graph: Graph, depths: Mapping[str, int]) -> Graph:
    """A copy of ``graph`` with the FIFO depths of ``depths`` (others unchanged)."""
    unknown = sorted(set(depths) - set(graph.fifos))
    if unknown:
        raise KeyError(f"no FIFO named {unknown}; the graph has {sorted(graph.fifos)}")
    return Graph(dict(graph.processes), {n: Fifo(f.name, f.producer, f.consumer, int(depths.get(n, f.depth)))
                                         for n, f in graph.fifos.items()})


@dataclass
class SimResult:
    """What :func:`simulate` found. ``stuck``: ``{process: why}`` when deadlocked."""

    images: int
    completed: int
    deadlock: bool
    stuck: dict[str, str] = field(default_factory=dict)
    done_at: list[int] = field(default_factory=list)  # cycle the sink finished each image
    full_fifos: list[str] = field(default_factory=list)  # deadlocked: full FIFOs whose producer waits on them
    #: deadlocked: the full FIFOs whose consumer waits on something else (the others are back-pressure)
    cause: list[str] = field(default_factory=list)

    @property
    def latency(self) -> int | None:
        return self.done_at[0] if self.done_at else None

    @property
    def interval(self) -> float | None:
        """Cycles per image in the steady state: (last - first completion) / (images - 1)."""
        if self.deadlock or len(self.done_at) < 2:
            return None
        return (self.done_at[-1] - self.done_at[0]) / (len(self.done_at) - 1)

    def describe(self) -> str:
        if self.deadlock:
            why = "; ".join(f"{p}: {w}" for p, w in sorted(self.stuck.items()))
            return (f"DEADLOCK after {self.completed} of {self.images} images: full FIFO(s) {self.cause} "
                    f"(back-pressure fills {len(self.full_fifos) - len(self.cause)} more) - {why}")
        return f"{self.images} images, latency {self.latency} cycles, interval {self.interval:.1f} cycles/image"


class _State:
    def __init__(self, p: Process):
        self.p = p
        self.image = 0
        self.reads = 0          # read steps of the current image
        self.writes = 0         # output tokens of the current image
        self.next_read = 0      # earliest cycle of the next read / write (ii)
        self.next_write = 0
        self.read_time: list[int] = []


def simulate(graph: Graph, images: int = 8, max_events: int = 10_000_000) -> SimResult:
    """Run ``images`` images through ``graph`` (see the module docstring); the processes without
    inputs are sources (one token per ii), those without outputs sinks.

    Returns:
        a :class:`SimResult`: deadlocked (with who waits on what) or the completion cycles.
    """
    fifo_tokens: dict[str, list[int]] = {n: [] for n in graph.fifos}  # ready times of queued tokens
    states = {n: _State(p) for n, p in graph.processes.items()}
    sinks = [n for n, p in graph.processes.items() if not p.writes]
    done_at: list[int] = []
    now = 0
    events = 0
    while True:
        progressed = True
        while progressed:  # do everything possible at `now`
            progressed = False
            for s in states.values():
                if s.image >= images:
                    continue
                p = s.p
                # write
                if s.writes < p.out_tokens and s.next_write <= now:
                    need = p.need[s.writes]
                    if s.reads >= need and (need == 0 or s.read_time[need - 1] + p.latency <= now) and \
                            all(len(fifo_tokens[f]) < graph.fifos[f].depth for f in p.writes):
                        for f in p.writes:
                            fifo_tokens[f].append(now + 1)
                        s.writes += 1
                        s.next_write = now + p.ii
                        progressed = True
                # read
                if s.reads < p.read_steps and s.next_read <= now:
                    # reads run ahead of the next output's need by the tokens inside the pipeline
                    limit = p.need[s.writes] + p.pipeline_slack - 1 if s.writes < p.out_tokens else p.read_steps
                    if s.reads < limit:
                        fifos = p.fifos_at(s.reads)
                        if all(fifo_tokens[f] and fifo_tokens[f][0] <= now for f in fifos):
                            for f in fifos:
                                fifo_tokens[f].pop(0)
                            s.read_time.append(now)
                            s.reads += 1
                            s.next_read = now + p.ii
                            progressed = True
                if s.reads == p.read_steps and s.writes == p.out_tokens:  # image done: the next call
                    if s.p.name in sinks:
                        done_at.append(now)
                    s.image += 1
                    s.reads = s.writes = 0
                    s.read_time = []
                    progressed = True
                events += progressed
            if events > max_events:
                raise RuntimeError(f"simulation exceeded {max_events} events")
        if all(s.image >= images for s in states.values()):
            return SimResult(images, images, False, done_at=done_at)
        # the next cycle at which a time-blocked action becomes possible
        times = [t for t in _wake_times(states, fifo_tokens, images) if t > now]
        if not times:
            stuck = _stuck(graph, states, fifo_tokens, images)
            full = sorted(f for f, fifo in graph.fifos.items() if len(fifo_tokens[f]) >= fifo.depth
                          and fifo.producer in stuck and "writes to full" in stuck[fifo.producer]
                          and f in stuck[fifo.producer])
            cause = [f for f in full if "writes to full" not in stuck.get(graph.fifos[f].consumer, "")]
            return SimResult(images, len(done_at), True, stuck, done_at, full, cause)
        now = min(times)


def _wake_times(states: dict[str, _State], fifo_tokens: dict[str, list[int]], images: int) -> list[int]:
    times = []
    for s in states.values():
        if s.image >= images:
            continue
        times += [s.next_read, s.next_write]
        if s.writes < s.p.out_tokens:
            need = s.p.need[s.writes]
            if 0 < need <= s.reads:
                times.append(s.read_time[need - 1] + s.p.latency)
    times += [q[0] for q in fifo_tokens.values() if q]
    return times


def _stuck(graph: Graph, states: dict[str, _State], fifo_tokens: dict[str, list[int]], images: int) -> dict[str, str]:
    """Who waits on what, for every unfinished process."""
    out = {}
    for n, s in states.items():
        if s.image >= images:
            continue
        p = s.p
        why = []
        if s.writes < p.out_tokens and s.reads >= p.need[s.writes]:
            full = [f for f in p.writes if len(fifo_tokens[f]) >= graph.fifos[f].depth]
            if full:
                why.append("writes to full " + ", ".join(f"{f} (depth {graph.fifos[f].depth})" for f in full))
        if s.reads < p.read_steps:
            empty = [f for f in p.fifos_at(s.reads) if not fifo_tokens[f]]
            if empty:
                why.append("reads from empty " + ", ".join(empty))
        out[n] = (f"image {s.image}, read {s.reads}/{p.read_steps}, wrote {s.writes}/{p.out_tokens}: "
                  + ("; ".join(why) or "waits"))
    return out


# ---- the ViTCoD io_stream graph ----------------------------------------------------------------------
def _one_to_one(name: str, src: Sequence[str], dst: Sequence[str], tokens: int, latency: int = 2, ii: int = 1) -> Process:
    return Process(name, [(tuple(src), tokens)], tuple(dst), tokens, [j + 1 for j in range(tokens)], latency, ii)


def vit_graph(config: ViTConfig, *, autoencoder: bool = True, attention_latency: int | Sequence[int] | None = None,
              attention_reads: str = "lockstep", token_ii: Mapping[str, int] | None = None,
              depth: int = 2) -> Graph:
    """The io_stream dataflow graph of the ViTCoD model for ``config``, every FIFO ``depth`` deep.

    Args:
        autoencoder: the Q/K encoder/decoder sit between the Q/K projections and the attention.
        attention_latency: cycles from the attention's last read to its first output (default: the
            dense work of one image at one multiply per cycle per head, ``2 N^2 D``; one value, or
            one per block; :func:`vit_graph_from_estimate` takes the hls/perf attention estimate's).
        attention_reads: ``"lockstep"`` (Q, K, V token t read together) or ``"sequential"`` (all Q,
            then all K, then all V - the K/V FIFOs must then hold N).
        token_ii: cycles per token of named processes (e.g. a projection with a reuse factor).
        depth: the depth of every FIFO (then :func:`with_depths`).
    """
    if attention_reads not in ("lockstep", "sequential"):
        raise ValueError(f"attention_reads must be 'lockstep' or 'sequential', got {attention_reads!r}")
    c = config
    n, grid, pixels = c.num_tokens, c.image_size // c.patch_size, c.image_size * c.image_size
    ii = dict(token_ii or {})
    procs: list[Process] = []
    fifos: dict[str, Fifo] = {}

    def edge(a: str, b: str) -> str:
        name = f"{a}->{b}"
        fifos[name] = Fifo(name, a, b, depth)
        return name

    def chain(name: str, src: str, dst: str, tokens: int, latency: int = 2) -> None:
        procs.append(_one_to_one(name, [edge(src, name)], [edge(name, dst)], tokens, latency, ii.get(name, 1)))

    procs.append(Process("reader", [], (edge("reader", "patch_embed"),), pixels, [0] * pixels))
    # line-buffered Conv2D: token (r, col) needs every pixel up to the kernel's bottom-right corner
    reach = c.patch_size - 1 + c.patch_overlap
    need = [min(pixels, min(c.image_size - 1, r * c.patch_size + reach) * c.image_size
                + min(c.image_size - 1, col * c.patch_size + reach) + 1) for r in range(grid) for col in range(grid)]
    procs.append(Process("patch_embed", [(("reader->patch_embed",), pixels)], (edge("patch_embed", "embed"),),
                         grid * grid, need, 4, ii.get("patch_embed", 1)))
    # CLS + position embedding: the CLS token first, then one token per patch
    procs.append(Process("embed", [(("patch_embed->embed",), n - 1)], (), n, [0] + list(range(1, n)), 2))
    by_name = {pr.name: pr for pr in procs}
    prev = "embed"  # the process whose output edge is still open
    for b in range(c.depth):
        p = f"block{b}."
        fork0, fork1, fork2 = p + "fork0", p + "fork1", p + "fork2"
        by_name[prev].writes = (edge(prev, fork0),)
        procs.append(_one_to_one(fork0, [f"{prev}->{fork0}"], [edge(fork0, p + "add1"), edge(fork0, p + "norm1")], n, 1))
        chain(p + "norm1", fork0, fork1, n, 4)
        q_dst = {"q": p + "q_proj", "k": p + "k_proj", "v": p + "v_proj"}
        procs.append(_one_to_one(fork1, [f"{p}norm1->{fork1}"], [edge(fork1, q_dst[x]) for x in "qkv"], n, 1))
        att_in = {}
        for x in "qkv":
            src, name = fork1, p + f"{x}_proj"
            steps = [name] + ([p + f"{x}_encoder", p + f"{x}_decoder"] if autoencoder and x != "v" else [])
            for i, s in enumerate(steps):
                dst = steps[i + 1] if i + 1 < len(steps) else p + "attention"
                procs.append(_one_to_one(s, [f"{src}->{s}"], [edge(s, dst)], n, 3, ii.get(s, 1)))
                src = s
            att_in[x] = f"{src}->{p}attention"
        lat = attention_latency if attention_latency is not None else 2 * n * n * c.head_dim
        lat = lat if isinstance(lat, int) else int(lat[b])
        reads = [((att_in["q"], att_in["k"], att_in["v"]), n)] if attention_reads == "lockstep" else \
            [((att_in[x],), n) for x in "qkv"]
        total = sum(k for _, k in reads)
        procs.append(Process(p + "attention", reads, (edge(p + "attention", p + "proj"),), n, [total] * n, lat,
                             ii.get(p + "attention", 1)))
        procs.append(_one_to_one(p + "proj", [f"{p}attention->{p}proj"], [edge(p + "proj", p + "add1")], n, 3,
                                 ii.get(p + "proj", 1)))
        procs.append(_one_to_one(p + "add1", [f"{fork0}->{p}add1", f"{p}proj->{p}add1"], [edge(p + "add1", fork2)], n, 1))
        procs.append(_one_to_one(fork2, [f"{p}add1->{fork2}"], [edge(fork2, p + "add2"), edge(fork2, p + "norm2")], n, 1))
        chain(p + "norm2", fork2, p + "mlp1", n, 4)
        chain(p + "mlp1", p + "norm2", p + "relu", n, 3)
        chain(p + "relu", p + "mlp1", p + "mlp2", n, 1)
        procs.append(_one_to_one(p + "mlp2", [f"{p}relu->{p}mlp2"], [edge(p + "mlp2", p + "add2")], n, 3,
                                 ii.get(p + "mlp2", 1)))
        procs.append(_one_to_one(p + "add2", [f"{fork2}->{p}add2", f"{p}mlp2->{p}add2"], (), n, 1))
        prev = p + "add2"
        by_name = {pr.name: pr for pr in procs}
    by_name[prev].writes = (edge(prev, "final_norm"),)
    chain("final_norm", prev, "cls_select", n, 4)
    # CLS selection: token 0 out after the first read; the other N - 1 are read and dropped
    procs.append(Process("cls_select", [(("final_norm->cls_select",), n)], (edge("cls_select", "head"),), 1, [1], 1))
    chain("head", "cls_select", "writer", 1, 8)
    procs.append(Process("writer", [(("head->writer",), 1)], (), 0, [], 1))
    graph = Graph({p.name: p for p in procs}, fifos)
    for f in fifos.values():  # every edge joins two processes of the graph
        assert f.producer in graph.processes and f.consumer in graph.processes, f
    return graph


def vit_graph_from_estimate(estimate, **kwargs) -> Graph:
    """:func:`vit_graph` with the modelled figures of an hls/perf ``ModelEstimate``: each attention's
    latency is its engine's cycles (masks, lanes), and every engine of the estimate with a process of
    the same name (``block0_q`` -> ``block0.q_proj``, ``block0_mlp1`` -> ``block0.mlp1``) takes
    ``interval / tokens`` cycles per token (at least 1)."""
    config = estimate.config
    graph = vit_graph(config, autoencoder=estimate.autoencoder, **kwargs)
    names = {}
    for e in estimate.top_level:
        name = e.name.replace("_", ".", 1) if e.name.startswith("block") else e.name
        for candidate in (name, name + "_proj"):
            if candidate in graph.processes and graph.processes[candidate].out_tokens:
                names[candidate] = e
    ii = {p: max(1, e.interval // max(graph.processes[p].out_tokens, 1)) for p, e in names.items()
          if not p.endswith("attention")}
    return vit_graph(config, autoencoder=estimate.autoencoder, token_ii=ii,
                     attention_latency=[a.cycles for a in estimate.attention], **kwargs)


def safe_depths(config: ViTConfig, *, autoencoder: bool = True, attention_reads: str = "lockstep",
                slack: int = 0, base_depth: int = 2) -> dict[str, int]:
    """The minimal deadlock-free FIFO depths of :func:`vit_graph`, ``{edge: depth}`` (module docstring).

    * ``blockB.fork0->blockB.add1`` (residual around attention): N + slack - the attention reads N
      tokens of each input before its first output, and every one of them passed fork0, which wrote
      it into this FIFO too; add1 takes none before that output.
    * with ``attention_reads="sequential"``: the fork1 edges towards K and V hold N + slack (they are
      written while Q is read), as do the K/V branch FIFOs into the attention.
    * ``blockB.fork2->blockB.add2`` (MLP residual): the MLP branch is token by token, so
      ``base_depth`` + slack.
    * every other edge: ``base_depth`` (a chain of token-by-token processes cannot deadlock).
    """
    graph = vit_graph(config, autoencoder=autoencoder, attention_reads=attention_reads)
    n = config.num_tokens
    depths = {name: base_depth for name in graph.fifos}
    for b in range(config.depth):
        p = f"block{b}."
        depths[f"{p}fork0->{p}add1"] = n + slack
        depths[f"{p}fork2->{p}add2"] = base_depth + slack
        if attention_reads == "sequential":
            for x in "kv":
                depths[f"{p}fork1->{p}{x}_proj"] = n + slack
    return depths


def stream_pragmas(depths: Mapping[str, int], names: Mapping[str, str]) -> list[str]:
    """``#pragma HLS STREAM variable=<name> depth=<d>`` for every edge of ``names`` (edge -> hls4ml
    stream variable, e.g. ``{"block0.fork0->block0.add1": "layer7_cpy1"}``).

    Raises:
        KeyError: an edge of ``names`` has no depth (naming the edges that have one).
    """
    missing = sorted(set(names) - set(depths))
    if missing:
        raise KeyError(f"no depth for the edges {missing} (expected edges of vit_graph, e.g. {sorted(depths)[:3]})")
    return [f"#pragma HLS STREAM variable={names[e]} depth={int(depths[e])}" for e in sorted(names)]


def throughput(interval_cycles: float, clock_mhz: float) -> float:
    """Images per second of a design whose images overlap: clock / interval."""
    return clock_mhz * 1e6 / interval_cycles


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vitcod.hls.perf.dataflow [--config config.json] [--images 8] [--reads lockstep]
    [--slack 0] [--reuse-factor 1]``: the safe depths of the stage's io_stream graph, the simulation
    with them (modelled layers from hls/perf, dense attention) and with the first residual one shallower."""
    import argparse

    from .estimate import load_config, model_estimate
    from .resources import Assumptions

    ap = argparse.ArgumentParser(prog="python -m vitcod.hls.perf.dataflow", description=main.__doc__)
    ap.add_argument("--config", help="a run stage's config.json (default: the digits demo ViTConfig)")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--reads", choices=("lockstep", "sequential"), default="lockstep")
    ap.add_argument("--slack", type=int, default=0)
    ap.add_argument("--reuse-factor", type=int, default=1)
    args = ap.parse_args(argv)
    config = load_config(args.config) if args.config else ViTConfig()
    est = model_estimate(config, None, Assumptions(reuse_factor=args.reuse_factor), io_type="io_stream")
    graph = vit_graph_from_estimate(est, attention_reads=args.reads)
    depths = safe_depths(config, attention_reads=args.reads, slack=args.slack)
    deep = {e: d for e, d in depths.items() if d > 2}
    print(f"safe depths (MODELLED graph; edges deeper than 2): {deep}")
    result = simulate(with_depths(graph, depths), args.images)
    print(f"with them: {result.describe()}")
    print(f"hls/perf interval {est.image_cycles} cycles; throughput at {est.assumptions.clock_mhz:g} MHz: "
          f"{est.throughput:.1f} images/s (basis {est.throughput_basis})")
    edge = "block0.fork0->block0.add1"
    shallow = simulate(with_depths(graph, {**depths, edge: depths[edge] - 1}), args.images)
    print(f"{edge} at {depths[edge] - 1}: {shallow.describe()[:300]}")
    return 0 if not result.deadlock and shallow.deadlock else 1


if __name__ == "__main__":
    raise SystemExit(main())
