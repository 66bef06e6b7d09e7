"""The parallelism plan of the io_stream design: a ReuseFactor per layer (a plain default rule).

Where this fits in the flow::

    hls/convert.py convert_keras_model(io_type="io_stream")
      -> hls/precision.py build_precision_config(..., reuse_plan=default_plan(model))
           every Conv/Dense layer: Strategy "Resource" + its ReuseFactor from the plan;
           our layers (LayerNorm, Q/K encoder/decoder, CLS/position embedding): ReuseFactor = the
           initiation interval of their per-token loop

Two ways to a plan:

* :func:`default_plan` (this module, needs the Keras model): the plain rule below;
* the board planner (``python -m vitcod.hls.plan --run-dir build/demo --board zcu104``,
  :mod:`vitcod.hls.planner`, plan file :mod:`vitcod.hls.plan_file`): the fastest design that fits a
  board, every stage's knobs chosen on the io_stream model (:mod:`vitcod.hls.perf.stream`);
  ``plan_run``, ``board_budget``, ``Plan`` are importable from here too.

The plain rule: a matrix layer (n_in inputs, n_out outputs per token or pixel) gets the SMALLEST reuse factor
that hls4ml accepts for (n_in, n_out) and that keeps its multipliers at or below ``max_multipliers``;
every other layer gets 1. Only reuse factors hls4ml's own check accepts are ever emitted
(:func:`legal_reuse_factors` is that check), so hls4ml never silently changes one.
"""

from __future__ import annotations

import math
from typing import Mapping

__all__ = ["DEFAULT_MAX_MULTIPLIERS", "legal_reuse_factors", "matrix_shape", "default_plan", "default_reuse",
           "check_plan", "main", "Plan", "board_budget", "plan_run", "plan_design"]

#: Multipliers one matrix layer may use in the default plan.
DEFAULT_MAX_MULTIPLIERS = 64

_MATRIX = ("QConv1D", "QConv2D", "QDense", "Conv1D", "Conv2D", "Dense")


def legal_reuse_factors(n_in: int, n_out: int) -> list[int]:
    """Every reuse factor hls4ml 1.3.0 accepts for a matrix layer with ``n_in`` x ``n_out`` weights
    (``FPGABackend._validate_reuse_factor``: the dense kernel's correctness and a divisor of n_in*n_out)."""
    out = []
    for rf in range(1, n_in * n_out + 1):
        mult = int(math.ceil(n_in * n_out / float(min(n_in, rf))))
        ok = (mult % n_out == 0 or rf >= n_in) and (rf % n_in == 0 or rf < n_in) and (n_in * n_out) % rf == 0
        if ok:
            out.append(rf)
    return out


def matrix_shape(layer) -> tuple[int, int] | None:
    """(n_in, n_out) of the dense product a Conv/Dense layer computes per pixel or token (None otherwise)."""
    if type(layer).__name__ not in _MATRIX:
        return None
    kernel = tuple(int(d) for d in layer.kernel.shape)
    return int(math.prod(kernel[:-1])), kernel[-1]


def default_reuse(n_in: int, n_out: int, max_multipliers: int = DEFAULT_MAX_MULTIPLIERS) -> int:
    """The plain rule's ReuseFactor of an ``n_in`` x ``n_out`` matrix layer (module docstring)."""
    if max_multipliers < 1:
        raise ValueError(f"max_multipliers must be >= 1, got {max_multipliers}")
    legal = legal_reuse_factors(n_in, n_out)
    return next((rf for rf in legal if n_in * n_out / rf <= max_multipliers), legal[-1])


def default_plan(model, max_multipliers: int = DEFAULT_MAX_MULTIPLIERS) -> dict[str, int]:
    """``{layer name: reuse factor}`` for every layer of a Keras model (see the module docstring)."""
    if max_multipliers < 1:
        raise ValueError(f"max_multipliers must be >= 1, got {max_multipliers}")
    plan = {}
    for layer in model.layers:
        shape = matrix_shape(layer)
        if shape is None:
            plan[layer.name] = 1
            continue
        plan[layer.name] = default_reuse(*shape, max_multipliers)
    return plan


def check_plan(model, plan: Mapping[str, int]) -> None:
    """Reject a plan that names unknown layers or gives a matrix layer a reuse factor hls4ml would change.

    Raises:
        ValueError naming the layer, the reuse factor and the legal ones.
    """
    layers = {layer.name: layer for layer in model.layers}
    unknown = sorted(set(plan) - set(layers))
    if unknown:
        raise ValueError(f"reuse plan names unknown layer(s) {unknown}")
    for name, rf in plan.items():
        if not isinstance(rf, int) or rf < 1:
            raise ValueError(f"reuse plan: {name}: reuse factor must be a positive integer, got {rf!r}")
        shape = matrix_shape(layers[name])
        if shape is not None and rf not in legal_reuse_factors(*shape):
            legal = legal_reuse_factors(*shape)
            raise ValueError(f"reuse plan: {name} ({shape[0]} x {shape[1]} weights): reuse factor {rf} is not "
                             f"one hls4ml accepts; legal: {legal[:16]}{' ...' if len(legal) > 16 else ''}")


_LAZY = {"Plan": "plan_file", "PlanError": "plan_file", "board_budget": "planner", "plan_run": "planner",
         "plan_design": "planner", "main": "plan_cli"}


def __getattr__(name: str):
    """The board planner's API on first use (it imports this module for the legal reuse factors)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    import sys

    from .plan_cli import main as _main

    sys.exit(_main())
