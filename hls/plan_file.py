"""The plan of one design for one board: its JSON file and what the conversion takes from it.

Where this fits in the flow::

    python -m vitcod.hls.plan --run-dir build/demo --board zcu104      (vitcod.hls.planner)
      -> Plan                      knobs per layer + the modelled figures + board, clock, cap
      -> <project>/plan.json       next to the HLS project (build/<run>/hls/<stage>/plan.json)
      -> Plan.layer_overrides()    hls4ml layer-config entries for hls/convert.py:
                                   ReuseFactor of every hls4ml Conv/Dense layer and of our LayerNorm,
                                   embedding and Q/K encoder/decoder kernels; DenseUnroll / SparseLanes
                                   + SoftmaxLanes / PvLanes (+ BufferStorage / ScoreStorage) of every
                                   attention layer
      -> vitcod.hls.perf fit       make bitstream's fit check reads the same plan

Schema (``"schema": "vitcod.plan/1"``; every figure labelled modelled)::

    {"schema", "label": "modelled", "board", "part", "clock_mhz", "cap": {resource: fraction},
     "available": {resource: count}, "io_type": "io_stream", "run_dir", "stage", "attention": "vitcod"|"dense",
     "knobs": {layer: {"reuse_factor": rf} | {"dense_unroll", "sparse_lanes", ["softmax_lanes", "pv_lanes"],
                                              ["buffer_storage", "score_storage"]}},
     "attention_storage", "score_storage": "auto"|"bram"|"lutram"|"uram"  (the attention's token buffers
                                           and score sets; one pair per design),
     "modelled": {"interval_cycles", "latency_cycles", "latency_us", "images_per_s", "bottleneck",
                  "resources", "utilization", "max_utilization", "fits", "dsp_efficiency", "multiplies"},
     "stages": [per-stage rows]}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

SCHEMA = "vitcod.plan/1"
PLAN_FILE = "plan.json"
#: Plan knob -> hls4ml layer-config key (the extension's ConfigurableAttribute, CamelCase).
CONFIG_KEYS = {"reuse_factor": "ReuseFactor", "dense_unroll": "DenseUnroll", "sparse_lanes": "SparseLanes",
               "softmax_lanes": "SoftmaxLanes", "pv_lanes": "PvLanes"}


class PlanError(ValueError):
    """A plan file that is not a plan, or a plan that does not match the design it is applied to."""


@dataclass
class Plan:
    """Knobs of every process of the io_stream design for one board, with the modelled figures."""

    board: str
    part: str
    clock_mhz: float
    cap: dict[str, float]
    available: dict[str, int]
    knobs: dict[str, dict[str, int | str]]
    modelled: dict[str, Any]
    stage: str | None = None
    run_dir: str | None = None
    attention: str = "vitcod"
    io_type: str = "io_stream"
    stages: list = field(default_factory=list)
    attention_storage: str = "auto"  # where the attention's token buffers live (one per design)
    score_storage: str = "auto"  # where its score sets live (one per design)

    @property
    def fits(self) -> bool:
        return bool(self.modelled.get("fits"))

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "label": "modelled", **asdict(self)}

    def write(self, path: str | Path) -> Path:
        """Write the plan as JSON (atomically); returns the path."""
        from ..fileio import atomic_write

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: Mapping) -> "Plan":
        if data.get("schema") != SCHEMA:
            raise PlanError(f"not a plan: schema {data.get('schema')!r}, expected {SCHEMA!r}")
        keys = {f for f in cls.__dataclass_fields__}
        missing = sorted({"board", "part", "clock_mhz", "cap", "available", "knobs", "modelled"} - set(data))
        if missing:
            raise PlanError(f"plan lacks {missing}")
        return cls(**{k: v for k, v in data.items() if k in keys})

    @classmethod
    def read(cls, path: str | Path) -> "Plan":
        """Read a plan file.

        Raises:
            FileNotFoundError: no such file. PlanError: not valid JSON or not a plan.
        """
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise PlanError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(data)

    def layer_overrides(self, layer_names=None) -> dict[str, dict]:
        """hls4ml layer-config entries of the plan, for ``hls/convert.py`` ``layer_overrides``.

        ``layer_names``: when given, every planned layer must be one of them.

        Raises:
            PlanError: a planned layer the model does not have.
        """
        if layer_names is not None:
            unknown = sorted(set(self.knobs) - set(layer_names))
            if unknown:
                raise PlanError(f"plan for board {self.board} names layer(s) {unknown} the model does not have "
                                f"(was it made for another run or stage? plan stage: {self.stage})")
        out: dict[str, dict] = {}
        for layer, knobs in self.knobs.items():
            out[layer] = {CONFIG_KEYS[k]: int(v) for k, v in knobs.items() if k in CONFIG_KEYS}
            for knob, key in (("buffer_storage", "BufferStorage"), ("score_storage", "ScoreStorage")):
                if knob in knobs:
                    out[layer][key] = str(knobs[knob])
        return out

    def table(self) -> str:
        """The plan as a markdown table (knobs and modelled figures per stage, then the totals)."""
        m = self.modelled
        lines = [f"Plan for {self.board} ({self.part}, {self.clock_mhz:g} MHz, cap "
                 + ", ".join(f"{k} {v:.0%}" for k, v in self.cap.items()) + ") - MODELLED", "",
                 f"attention buffers: tokens {self.attention_storage}, scores {self.score_storage}", "",
                 "| stage | knobs | interval [cycles] | DSP | BRAM18K | LUT | FF | URAM |",
                 "|---|---|---:|---:|---:|---:|---:|---:|"]
        for s in self.stages:
            knobs = ", ".join(f"{k} {v}" for k, v in s.get("knobs", {}).items())
            mark = " **(bottleneck)**" if s["name"] == m.get("bottleneck") else ""
            lines.append(f"| {s['name']}{mark} | {knobs} | {s['interval']} | {s['dsp']} | {s['bram_18k']} | "
                         f"{s['lut']} | {s['ff']} | {s.get('uram', 0)} |")
        r, u = m["resources"], m["utilization"]
        lines.append(f"| **total** | | {m['interval_cycles']} | {r['dsp']} ({u['dsp']:.0%}) | "
                     f"{r['bram_18k']} ({u['bram_18k']:.0%}) | {r['lut']} ({u['lut']:.0%}) | {r['ff']} ({u['ff']:.0%}) | "
                     f"{r.get('uram', 0)} ({u.get('uram', 0):.0%}) |")
        lines += ["", f"{'fits' if m['fits'] else 'does NOT fit'} under the cap; {m['images_per_s']:.0f} images/s, "
                  f"latency {m['latency_us']:.1f} us, bottleneck {m['bottleneck']}, DSP efficiency "
                  f"{m['dsp_efficiency']:.2f}" if m.get("dsp_efficiency") is not None else ""]
        return "\n".join(lines)


def plan_path(project_dir: str | Path) -> Path:
    """Where the plan of an HLS project lives: ``<project>/plan.json``."""
    return Path(project_dir) / PLAN_FILE
