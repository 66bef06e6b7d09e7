"""Masks made elsewhere -> ``masks.npz``, with the keep/pruned convention checked, not assumed.

A boolean (layers, heads, N, N) array says nothing about what True means: this project stores
True = keep, the ViTCoD authors' files True = pruned. :func:`import_masks` therefore takes a
required ``convention``, and before writing anything it looks for signs that the convention reads
the file inverted (:func:`inversion_evidence`):

* the reading leaves query rows with no kept key (ViTCoD masks never prune the CLS row: read
  inverted, that row is empty) where the other reading leaves none;
* it prunes the CLS key column (token 0) in every row of a head where the other reading keeps it;
* its sparsity is far (> :data:`SPARSITY_TOLERANCE`) from the one the file's own metadata or the
  user's ``expected_sparsity`` states, and the other reading is closer;
* with no stated sparsity: it keeps most entries (a sparse attention mask keeps a minority) while
  the other reading keeps a minority.

None of these counts when the other reading is no mask at all (it leaves a query row empty) and
this one is.

Any of these refuses the import with a :class:`MaskConventionError` that says which convention to
pass instead; ``force=True`` imports as told (the evidence is logged).
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from ..user_errors import UserError, read_array, read_npz
from .mask_artifact import save_mask_artifact
from .masks import CLS_TOKEN

logger = logging.getLogger(__name__)

CONVENTIONS = ("keep", "pruned")
SPARSITY_TOLERANCE = 0.1
"""How far a reading's sparsity may be from a stated one before it counts as evidence of inversion."""


class MaskConventionError(UserError):
    """The convention given reads the mask file inverted (the message says what to pass instead)."""


def masks_from_boolean_array(array: np.ndarray, convention: str) -> np.ndarray:
    """Turn a (layers, heads, N, N) mask made elsewhere into a bool keep-mask.

    Parameters
    ----------
    array : np.ndarray
        Bool, or an integer array whose values are all 0 or 1.
    convention : {'keep', 'pruned'}
        What True (or 1) means: 'keep' (this project) or 'pruned' (the ViTCoD
        authors' files). Required, there is no default.

    Returns
    -------
    np.ndarray
        Bool keep-mask (a new array).

    Raises
    ------
    UserError
        An unknown convention, a shape that is not (layers, heads, N, N), or values other than 0/1.
    """
    if convention not in CONVENTIONS:
        raise UserError(f"a convention among {CONVENTIONS}", repr(convention), "convention")
    array = np.asarray(array)
    if array.ndim != 4 or array.shape[2] != array.shape[3] or 0 in array.shape:
        raise UserError("a mask array of shape (layers, heads, N, N) with N > 0", f"shape {array.shape}",
                        "the mask array")
    if array.dtype == np.bool_:
        flags = array.copy()
    elif array.dtype.kind in "iu":
        bad = ~np.isin(array, (0, 1))
        if bad.any():
            raise UserError("a mask of bools or integers that are all 0/1",
                            f"{int(bad.sum())} other value(s), e.g. {array[bad][0]}", "the mask array")
        flags = array.astype(bool)
    else:
        raise UserError("a mask of dtype bool (or 0/1 integers)", f"dtype {array.dtype}", "the mask array")
    return flags if convention == "keep" else ~flags


def _describe(keep: np.ndarray) -> dict:
    empty_rows = ~keep.any(axis=-1)  # (L, H, N)
    return {
        "sparsity": float(1.0 - keep.mean()),
        "empty_rows": int(empty_rows.sum()),
        "empty_cls_rows": int(empty_rows[:, :, CLS_TOKEN].sum()),
        "pruned_cls_columns": int((~keep[:, :, :, CLS_TOKEN].any(axis=-1)).sum()),
        "heads": int(keep.shape[0] * keep.shape[1]),
    }


def inversion_evidence(keep: np.ndarray, convention: str, stated_sparsity: float | None = None,
                       stated_by: str = "the stated sparsity") -> list[str]:
    """Why ``keep`` (read with ``convention``) looks like the inverted reading; empty when it does not.

    Args:
        keep: the bool keep-mask as ``convention`` reads the file.
        convention: the convention used (named in the reasons).
        stated_sparsity: the sparsity the file's metadata or the user states, if any.
        stated_by: who states it, for the message.
    """
    other = CONVENTIONS[1 - CONVENTIONS.index(convention)]
    mine, theirs = _describe(keep), _describe(~keep)
    if theirs["empty_rows"] and not mine["empty_rows"]:
        return []  # the other reading is no mask at all (a query row keeps nothing): not an inversion
    reasons = []
    if mine["empty_rows"] and not theirs["empty_rows"]:
        cls = f", the CLS row in {mine['empty_cls_rows']} of {mine['heads']} heads" if mine["empty_cls_rows"] else ""
        reasons.append(f"it leaves {mine['empty_rows']} query row(s) with no kept key{cls}, where --convention "
                       f"{other} leaves none")
    if mine["pruned_cls_columns"] and not theirs["pruned_cls_columns"]:
        reasons.append(f"it prunes the CLS key column in every row of {mine['pruned_cls_columns']} of "
                       f"{mine['heads']} heads, where --convention {other} keeps it")
    if stated_sparsity is not None:
        off, other_off = abs(mine["sparsity"] - stated_sparsity), abs(theirs["sparsity"] - stated_sparsity)
        if off > SPARSITY_TOLERANCE and other_off < off:
            reasons.append(f"its sparsity {mine['sparsity']:.3f} is far from {stated_by} {stated_sparsity:.3f}, "
                           f"where --convention {other} gives {theirs['sparsity']:.3f}")
    elif mine["sparsity"] < 0.5 < theirs["sparsity"]:
        reasons.append(f"it keeps {1 - mine['sparsity']:.1%} of the entries (a sparse attention mask keeps a "
                       f"minority), where --convention {other} keeps {1 - theirs['sparsity']:.1%}; if the mask "
                       "really is that dense, pass its sparsity with --sparsity")
    return reasons


def _metadata_sparsity(arrays: dict) -> float | None:
    """The sparsity a source .npz states about itself: a 'sparsity' / 'target_sparsity' scalar, or
    those keys of a JSON 'metadata' string (as in this project's masks.npz)."""
    candidates: dict = {}
    if "metadata" in arrays and arrays["metadata"].shape == () and arrays["metadata"].dtype.kind == "U":
        try:
            meta = json.loads(str(arrays["metadata"]))
        except json.JSONDecodeError:
            meta = None
        if isinstance(meta, dict):
            candidates.update(meta)
    for key in ("sparsity", "target_sparsity"):
        if key in arrays and arrays[key].shape == () and arrays[key].dtype.kind in "fiu":
            candidates.setdefault(key, arrays[key].item())
    for key in ("sparsity", "target_sparsity"):
        value = candidates.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0:
            return float(value)
    return None


def read_mask_source(src: str | os.PathLike) -> tuple[np.ndarray, float | None]:
    """The array of a ``.npy``, or of an ``.npz`` holding one array or one named ``mask``, and the
    sparsity the file states about itself (None for a .npy or an .npz without metadata)."""
    src = Path(src)
    what = "a mask source (.npy, or .npz with one array or one named 'mask')"
    array = read_array(src, what)
    stated = _metadata_sparsity(read_npz(src, what)) if zipfile.is_zipfile(src) else None
    return array, stated


def import_masks(
    src_npy_or_npz: str | os.PathLike,
    convention: str,
    out_path: str | os.PathLike,
    threshold: float | int = 0.5,
    *,
    expected_sparsity: float | None = None,
    force: bool = False,
) -> Path:
    """Make a ``masks.npz`` artifact from a mask file made elsewhere.

    Parameters
    ----------
    src_npy_or_npz : str or os.PathLike
        A ``.npy`` holding one (layers, heads, N, N) array, or a ``.npz`` holding
        exactly one array or one named ``mask``.
    convention : {'keep', 'pruned'}
        What True means in the source, see :func:`masks_from_boolean_array`.
    out_path : str or os.PathLike
        Where to write the artifact (``.npz``).
    threshold : float or int
        Global-token threshold for polarization.
    expected_sparsity : float, optional
        The sparsity the user expects; a reading far from it counts as evidence of inversion
        (it overrides the file's own metadata).
    force : bool
        Import with ``convention`` even when the mask looks inverted (the evidence is logged).

    Raises
    ------
    MaskConventionError
        The convention reads the file inverted (see the module docstring); nothing is written.
    UserError
        An unreadable source or a mask that is not a valid keep-mask, naming the file.
    """
    src = Path(src_npy_or_npz)
    array, stated = read_mask_source(src)
    try:
        keep = masks_from_boolean_array(array, convention)
    except UserError as err:
        raise err.at(src) from None
    stated_by = "the file's metadata sparsity"
    if expected_sparsity is not None:
        stated, stated_by = float(expected_sparsity), "the expected sparsity (--sparsity)"
    reasons = inversion_evidence(keep, convention, stated, stated_by)
    if reasons:
        other = CONVENTIONS[1 - CONVENTIONS.index(convention)]
        if not force:
            raise MaskConventionError(
                f"--convention {other} for this file (or --force-convention to import it with --convention "
                f"{convention} anyway)", f"--convention {convention}, which reads it inverted: " + "; ".join(reasons),
                src)
        logger.warning("%s: importing with --convention %s although %s", src, convention, "; ".join(reasons))
    try:
        return save_mask_artifact(out_path, keep, threshold, target_sparsity=expected_sparsity,
                                  source=f"import:{src.name} ({convention})")
    except UserError as err:
        raise err.at(f"{err.where} of the mask read from {src}") from None
