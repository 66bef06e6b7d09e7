"""Does the modelled design fit a board? Refuse hopeless boards before any tool runs.

The board totals come from ``overlay/boards/<board>/board.tcl`` and the check itself from
:mod:`vitcod.overlay.config` (``BoardSpec``, ``check_fit``, ``ResourceFitError``), the same check
the overlay build applies to the C-synthesis estimate; here it is applied to the MODELLED estimate
(``make bitstream`` runs ``python -m vitcod.hls.perf fit`` first). The overlay package is imported
when first needed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Mapping, Sequence

from ...model import run_layout
from ...model.config import ViTConfig
from .estimate import ModelEstimate, estimate_run, model_estimate
from .resources import LABEL, RESOURCE_KEYS, Assumptions


def overlay_config() -> ModuleType:
    """:mod:`vitcod.overlay.config` (board totals and the fit check), imported when first needed."""
    from ...overlay import config as oc

    return oc


def _estimate_dict(estimate: ModelEstimate | Mapping[str, float]) -> dict[str, float]:
    if isinstance(estimate, ModelEstimate):
        return estimate.resource_estimate()
    est = {**overlay_config().OPTIONAL_RESOURCES, **estimate}  # a part without URAM: 0
    return {k: est[k] for k in RESOURCE_KEYS}


def fit_report(estimate: ModelEstimate | Mapping[str, float], boards: Sequence[str] | None = None,
               max_utilization: float = 1.0) -> dict[str, dict]:
    """Does the (modelled) resource estimate fit each board? Board totals from boards/<b>/board.tcl.

    Args:
        estimate: a :class:`ModelEstimate` or a ``{dsp, bram_18k, lut, ff}`` mapping.
        boards: board names (default: every overlay/boards/<board>/board.tcl).
        max_utilization: fraction of each resource the design may use.

    Returns:
        ``{board: {"fits": bool, "utilization": {resource: fraction}, "available": {...},
        "estimate": {...}, "message": None or the refusal, "label": "modelled"}}``.
    """
    oc = overlay_config()
    est = _estimate_dict(estimate)
    out = {}
    for board in boards or oc.available_boards():
        spec = oc.BoardSpec.load(board)
        available = dict(spec.resources)
        utilization = {k: oc.utilization_of(est[k], available[k]) for k in RESOURCE_KEYS}
        try:
            oc.check_fit(est, available, board=board, max_utilization=max_utilization)
            fits, message = True, None
        except oc.ResourceFitError as err:
            fits, message = False, f"{err} (modelled estimate)"
        out[board] = {"label": LABEL, "fits": fits, "utilization": utilization, "available": available,
                      "estimate": dict(est), "max_utilization": max_utilization, "message": message}
    return out


def min_reuse_factor(config: ViTConfig, masks, board: str, a: Assumptions = Assumptions(), *,
                     autoencoder: bool = True, max_utilization: float = 1.0,
                     candidates: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)) -> int | None:
    """Smallest ReuseFactor (of those tried) at which the modelled design fits ``board``, else None.

    ``masks`` is anything :func:`~vitcod.hls.perf.estimate.model_estimate` takes.
    """
    for rf in candidates:
        est = model_estimate(config, masks, replace(a, reuse_factor=rf), autoencoder=autoencoder)
        if fit_report(est, [board], max_utilization)[board]["fits"]:
            return rf
    return None


def require_fit(run_dir: str | Path, board: str, *, stage: str = run_layout.DEFAULT_HLS_STAGE,
                max_utilization: float = 1.0, assumptions: Assumptions = Assumptions()) -> dict:
    """Refuse ``board`` when the modelled design of ``build/<run>/<stage>`` does not fit it.

    For ``make bitstream`` before any tool runs (the csynth-based ``fit`` step stays the real check).

    Returns:
        The board's entry of :func:`fit_report`.

    Raises:
        vitcod.overlay.config.ResourceFitError: the modelled estimate exceeds the board; the message
            names every resource over the limit.
        FileNotFoundError: no such stage / unknown board files.
    """
    oc = overlay_config()
    est = estimate_run(run_dir, stage, assumptions)
    entry = fit_report(est, [board], max_utilization)[board]
    if not entry["fits"]:
        raise oc.ResourceFitError(f"{run_dir}/{stage}: {entry['message']}")
    return entry
