"""``masks.npz``: the one mask artifact the HLS step consumes (schema version 1).

The model stage produces a keep-mask (:mod:`vitcod.model.masks`), polarizes every
head (:mod:`vitcod.model.polarize`) and writes both here; ``vitcod.hls`` reads the
file back with :func:`load_mask_artifact`, which validates everything before any
array is compiled into the firmware. Masks made elsewhere (e.g. the ViTCoD
authors' files, which store True = pruned) come in through
:func:`vitcod.model.mask_import.import_masks`.

Schema (version 1). L layers, H heads, N tokens, G = ``num_global[l, h]``,
Gmax = max G (0 if no head has a global token), S = total sparse non-zeros.

==================  =======  ===============  ==============================================
key                 dtype    shape            meaning
==================  =======  ===============  ==============================================
schema_version      int64    ()               1
mask                bool     (L, H, N, N)     True = keep; rows = queries, columns = keys
num_global          int32    (L, H)           G, number of global (dense) key columns
global_tokens       int32    (L, H, N)        original key indices of the global columns,
                                              ascending; -1 after the first G
permutation         int32    (L, H, N)        ``permutation[l, h, p]`` = original key at
                                              permuted position p; first G = global tokens
dense_keep          bool     (L, H, N, Gmax)  keep bit of (query, global column g); False
                                              for g >= G
row_ptr             int32    (L, H, N + 1)    CSR row pointers of each head's sparse part
col_idx             int32    (S,)             CSR column indices in PERMUTED positions
                                              (all >= G, ascending within a row),
                                              concatenated over heads in (l, h) row-major
                                              order
col_offset          int64    (L * H + 1,)     head (l, h) owns
                                              ``col_idx[col_offset[l*H+h]:col_offset[l*H+h+1]]``
threshold           float64  ()               global-token threshold (a count if kind is
                                              'count', else a fraction of N)
threshold_kind      str      ()               'count' or 'fraction'
nnz_dense           int64    (L, H)           kept entries in the global columns
nnz_sparse          int64    (L, H)           kept entries in the sparse part
dense_ratio         float64  (L, H)           G*N / (nnz_sparse + G*N), 0 if both are 0
metadata            str      ()               JSON object: info_cut, target_sparsity,
                                              sparsity, source, vitcod_version
==================  =======  ===============  ==============================================

A summary for people (shapes, sparsity per layer/head, G, nnz and dense_ratio per
head) is written beside the artifact as ``<stem>.json``. Both files are written
atomically (temporary file + ``os.replace``), so a failed save never leaves a
half-written or lost artifact.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..fileio import atomic_write
from ..user_errors import UserError, read_npz
from .masks import sparsity_report
from .polarize import HeadPolarization, global_threshold_count, polarize

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)

# key -> expected dtype (str fields: any unicode width). Shapes are checked in _validate.
_REQUIRED_DTYPES: dict[str, np.dtype] = {
    "schema_version": np.dtype(np.int64),
    "mask": np.dtype(np.bool_),
    "num_global": np.dtype(np.int32),
    "global_tokens": np.dtype(np.int32),
    "permutation": np.dtype(np.int32),
    "dense_keep": np.dtype(np.bool_),
    "row_ptr": np.dtype(np.int32),
    "col_idx": np.dtype(np.int32),
    "col_offset": np.dtype(np.int64),
    "threshold": np.dtype(np.float64),
    "threshold_kind": np.dtype(str),  # checked by kind ('U'), not exact width
    "nnz_dense": np.dtype(np.int64),
    "nnz_sparse": np.dtype(np.int64),
    "dense_ratio": np.dtype(np.float64),
    "metadata": np.dtype(str),
}
REQUIRED_KEYS = tuple(_REQUIRED_DTYPES)


class MaskArtifactError(UserError):
    """A mask artifact (or a mask to be written as one) is invalid:
    ``<expected>, got <what came> (field '<name>' of <file>)``."""


def _fail(field_name: str, expected: str, got: object) -> MaskArtifactError:
    return MaskArtifactError(expected, got, f"field '{field_name}'")


# --------------------------------------------------------------------------- dataclass
@dataclass(frozen=True)
class MaskArtifact:
    """A validated ``masks.npz`` (see the module docstring for every field)."""

    mask: np.ndarray
    num_global: np.ndarray
    global_tokens: np.ndarray
    permutation: np.ndarray
    dense_keep: np.ndarray
    row_ptr: np.ndarray
    col_idx: np.ndarray
    col_offset: np.ndarray
    threshold: float | int
    threshold_kind: str
    nnz_dense: np.ndarray
    nnz_sparse: np.ndarray
    dense_ratio: np.ndarray
    metadata: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    path: Path | None = None

    @property
    def num_layers(self) -> int:
        return int(self.mask.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.mask.shape[1])

    @property
    def num_tokens(self) -> int:
        return int(self.mask.shape[2])

    @property
    def sparsity(self) -> float:
        """Overall fraction of pruned attention entries."""
        return float(1.0 - self.mask.mean())

    def polarization(self, layer: int, head: int) -> HeadPolarization:
        """The :class:`HeadPolarization` of one head, as :func:`polarize_head` returns it."""
        if not (0 <= layer < self.num_layers and 0 <= head < self.num_heads):
            raise IndexError(
                f"head ({layer}, {head}) out of range for {self.num_layers} layers x "
                f"{self.num_heads} heads"
            )
        g = int(self.num_global[layer, head])
        flat = layer * self.num_heads + head
        start, stop = int(self.col_offset[flat]), int(self.col_offset[flat + 1])
        return HeadPolarization(
            permutation=self.permutation[layer, head].copy(),
            global_tokens=self.global_tokens[layer, head, :g].copy(),
            dense_keep=self.dense_keep[layer, head, :, :g].copy(),
            row_ptr=self.row_ptr[layer, head].copy(),
            col_idx=self.col_idx[start:stop].copy(),
        )

    def heads(self, layer: int) -> list[HeadPolarization]:
        """The polarization of every head of one layer."""
        return [self.polarization(layer, h) for h in range(self.num_heads)]


# --------------------------------------------------------------------------- build
def _check_keep_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise _fail("mask", "dtype bool (True = keep)", f"dtype {mask.dtype}")
    if mask.ndim != 4 or mask.shape[2] != mask.shape[3] or 0 in mask.shape:
        raise _fail("mask", "shape (layers, heads, N, N) with N > 0", f"shape {mask.shape}")
    empty = np.argwhere(~mask.any(axis=-1))
    if empty.size:
        l, h, i = (int(v) for v in empty[0])
        raise _fail(
            "mask", "at least one kept key in every query row",
            f"{len(empty)} all-pruned row(s), first at layer {l}, head {h}, query {i}",
        )
    return mask


def _build_arrays(mask: np.ndarray, threshold: float | int, metadata: dict) -> dict[str, np.ndarray]:
    mask = _check_keep_mask(mask)
    num_layers, num_heads, n, _ = mask.shape
    kind = "count" if isinstance(threshold, (int, np.integer)) else "fraction"
    global_threshold_count(threshold, n)  # validates the threshold
    heads = [hp for layer in polarize(mask, threshold) for hp in layer]

    num_global = np.array([hp.num_global for hp in heads], dtype=np.int32).reshape(num_layers, num_heads)
    g_max = int(num_global.max())
    global_tokens = np.full((num_layers * num_heads, n), -1, dtype=np.int32)
    dense_keep = np.zeros((num_layers * num_heads, n, g_max), dtype=bool)
    for k, hp in enumerate(heads):
        global_tokens[k, : hp.num_global] = hp.global_tokens
        dense_keep[k, :, : hp.num_global] = hp.dense_keep
    nnz_sparse = np.array([hp.nnz_sparse for hp in heads], dtype=np.int64)
    col_offset = np.zeros(num_layers * num_heads + 1, dtype=np.int64)
    np.cumsum(nnz_sparse, out=col_offset[1:])
    shape_lh = (num_layers, num_heads)
    return {
        "schema_version": np.array(SCHEMA_VERSION, dtype=np.int64),
        "mask": mask,
        "num_global": num_global,
        "global_tokens": global_tokens.reshape(*shape_lh, n),
        "permutation": np.stack([hp.permutation for hp in heads]).astype(np.int32).reshape(*shape_lh, n),
        "dense_keep": dense_keep.reshape(*shape_lh, n, g_max),
        "row_ptr": np.stack([hp.row_ptr for hp in heads]).astype(np.int32).reshape(*shape_lh, n + 1),
        "col_idx": np.concatenate([hp.col_idx for hp in heads]).astype(np.int32),
        "col_offset": col_offset,
        "threshold": np.array(float(threshold), dtype=np.float64),
        "threshold_kind": np.array(kind),
        "nnz_dense": np.array([hp.nnz_dense for hp in heads], dtype=np.int64).reshape(shape_lh),
        "nnz_sparse": nnz_sparse.reshape(shape_lh),
        "dense_ratio": np.array([hp.dense_ratio for hp in heads], dtype=np.float64).reshape(shape_lh),
        "metadata": np.array(json.dumps(metadata, sort_keys=True)),
    }


# --------------------------------------------------------------------------- validate
def _validate(arrays: dict[str, np.ndarray], expected: dict[str, int | None]) -> MaskArtifact:
    """Check every field of a loaded (or about to be written) artifact."""
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise MaskArtifactError(f"every required field of schema {SCHEMA_VERSION}",
                                f"missing required field(s) {missing} (present: {sorted(arrays)})", "the artifact")

    version = arrays["schema_version"]
    if version.shape != () or version.dtype.kind not in "iu":
        raise _fail("schema_version", "an integer scalar", f"dtype {version.dtype} shape {version.shape}")
    if int(version) not in SUPPORTED_SCHEMA_VERSIONS:
        raise _fail("schema_version", f"one of {SUPPORTED_SCHEMA_VERSIONS}", int(version))

    for key, dtype in _REQUIRED_DTYPES.items():
        got = arrays[key].dtype
        ok = got.kind == "U" if dtype.kind == "U" else got == dtype
        if not ok:
            raise _fail(key, f"dtype {dtype if dtype.kind != 'U' else 'str'}", f"dtype {got}")

    mask = _check_keep_mask(arrays["mask"])
    num_layers, num_heads, n, _ = mask.shape
    for name, actual in (("num_layers", num_layers), ("num_heads", num_heads), ("num_tokens", n)):
        want = expected.get(name)
        if want is not None and int(want) != actual:
            raise _fail("mask", f"{name} = {want} (the model's)", f"{actual} (mask shape {mask.shape})")

    num_global = arrays["num_global"]
    if num_global.shape != (num_layers, num_heads):
        raise _fail("num_global", f"shape {(num_layers, num_heads)}", f"shape {num_global.shape}")
    if num_global.min() < 0 or num_global.max() > n:
        raise _fail("num_global", f"values in [0, N] = [0, {n}]",
                    f"range [{num_global.min()}, {num_global.max()}]")
    g_max = int(num_global.max())
    shapes = {
        "global_tokens": (num_layers, num_heads, n),
        "permutation": (num_layers, num_heads, n),
        "dense_keep": (num_layers, num_heads, n, g_max),
        "row_ptr": (num_layers, num_heads, n + 1),
        "col_offset": (num_layers * num_heads + 1,),
        "threshold": (),
        "threshold_kind": (),
        "nnz_dense": (num_layers, num_heads),
        "nnz_sparse": (num_layers, num_heads),
        "dense_ratio": (num_layers, num_heads),
        "metadata": (),
    }
    for key, shape in shapes.items():
        if arrays[key].shape != shape:
            raise _fail(key, f"shape {shape}", f"shape {arrays[key].shape}")
    col_idx = arrays["col_idx"]
    if col_idx.ndim != 1:
        raise _fail("col_idx", "a 1-D array", f"shape {col_idx.shape}")

    kind = str(arrays["threshold_kind"])
    if kind not in ("count", "fraction"):
        raise _fail("threshold_kind", "'count' or 'fraction'", repr(kind))
    threshold_value = float(arrays["threshold"])
    if kind == "count":
        if threshold_value != int(threshold_value):
            raise _fail("threshold", "an integer count (threshold_kind 'count')", threshold_value)
        threshold: float | int = int(threshold_value)
    else:
        threshold = threshold_value
    try:
        min_rows = global_threshold_count(threshold, n)
    except (TypeError, ValueError) as exc:
        raise _fail("threshold", "a valid global-token threshold", f"{threshold!r} ({exc})") from None

    try:
        metadata = json.loads(str(arrays["metadata"]))
    except json.JSONDecodeError as exc:
        raise _fail("metadata", "a JSON object", f"invalid JSON ({exc})") from None
    if not isinstance(metadata, dict):
        raise _fail("metadata", "a JSON object", type(metadata).__name__)

    col_offset = arrays["col_offset"]
    row_ptr = arrays["row_ptr"]
    if col_offset[0] != 0 or np.any(np.diff(col_offset) < 0) or col_offset[-1] != col_idx.shape[0]:
        raise _fail(
            "col_offset", f"non-decreasing offsets from 0 to len(col_idx) = {col_idx.shape[0]}",
            f"[{col_offset[0]}, ..., {col_offset[-1]}]",
        )

    artifact = MaskArtifact(
        mask=mask,
        num_global=num_global,
        global_tokens=arrays["global_tokens"],
        permutation=arrays["permutation"],
        dense_keep=arrays["dense_keep"],
        row_ptr=row_ptr,
        col_idx=col_idx,
        col_offset=col_offset,
        threshold=threshold,
        threshold_kind=kind,
        nnz_dense=arrays["nnz_dense"],
        nnz_sparse=arrays["nnz_sparse"],
        dense_ratio=arrays["dense_ratio"],
        metadata=metadata,
        schema_version=int(version),
    )
    for layer in range(num_layers):
        for head in range(num_heads):
            _validate_head(artifact, layer, head, min_rows)
    return artifact


def _validate_head(artifact: MaskArtifact, layer: int, head: int, min_rows: int) -> None:
    where = f"at layer {layer}, head {head}"
    n = artifact.num_tokens
    mask = artifact.mask[layer, head]
    g = int(artifact.num_global[layer, head])

    tokens = artifact.global_tokens[layer, head]
    wanted_tokens = np.flatnonzero(mask.sum(axis=0) >= min_rows)
    if not np.array_equal(tokens[:g], wanted_tokens) or np.any(tokens[g:] != -1):
        raise _fail(
            "global_tokens",
            f"the columns kept by >= {min_rows} rows {wanted_tokens.tolist()} then -1 padding",
            f"{tokens.tolist()} (G = {g}) {where}",
        )

    perm = artifact.permutation[layer, head]
    if not np.array_equal(np.sort(perm), np.arange(n)):
        raise _fail("permutation", f"a permutation of 0..{n - 1}", f"{perm.tolist()} {where}")
    if not np.array_equal(perm[:g], tokens[:g]):
        raise _fail("permutation", "the global tokens first", f"{perm[:g].tolist()} {where}")

    dense_keep = artifact.dense_keep[layer, head]
    if dense_keep[:, g:].any():
        raise _fail("dense_keep", f"False padding beyond column G = {g}", f"True entries {where}")
    if not np.array_equal(dense_keep[:, :g], mask[:, tokens[:g]]):
        raise _fail("dense_keep", "the mask's global columns", f"a mismatch {where}")

    row_ptr = artifact.row_ptr[layer, head]
    flat = layer * artifact.num_heads + head
    nnz = int(artifact.col_offset[flat + 1] - artifact.col_offset[flat])
    if row_ptr[0] != 0 or np.any(np.diff(row_ptr) < 0) or row_ptr[-1] != nnz:
        raise _fail(
            "row_ptr", f"non-decreasing pointers from 0 to this head's nnz = {nnz} (from col_offset)",
            f"[{row_ptr[0]}, ..., {row_ptr[-1]}] {where}",
        )
    cols = artifact.col_idx[artifact.col_offset[flat]: artifact.col_offset[flat + 1]]
    if cols.size and (cols.min() < g or cols.max() >= n):
        raise _fail("col_idx", f"permuted positions in [G, N) = [{g}, {n})",
                    f"range [{cols.min()}, {cols.max()}] {where}")
    rows = np.repeat(np.arange(n), np.diff(row_ptr))
    same_row = rows[1:] == rows[:-1]
    if np.any(same_row & (np.diff(cols) <= 0)):
        raise _fail("col_idx", "strictly ascending columns within a row", f"repeats or disorder {where}")
    sparse = np.zeros((n, n), dtype=bool)
    sparse[rows, perm[cols]] = True
    if not np.array_equal(sparse, mask & ~np.isin(np.arange(n), tokens[:g])[None, :]):
        raise _fail("col_idx", "CSR entries equal to the mask's non-global kept entries",
                    f"a mismatch {where}")

    stats = (
        ("nnz_dense", int(artifact.nnz_dense[layer, head]), int(dense_keep[:, :g].sum())),
        ("nnz_sparse", int(artifact.nnz_sparse[layer, head]), nnz),
    )
    for name, stored, actual in stats:
        if stored != actual:
            raise _fail(name, str(actual), f"{stored} {where}")
    dense_work = g * n
    ratio = dense_work / (nnz + dense_work) if nnz + dense_work else 0.0
    if not np.isclose(artifact.dense_ratio[layer, head], ratio, rtol=0, atol=1e-12):
        raise _fail("dense_ratio", f"G*N/(nnz_sparse+G*N) = {ratio:.6f}",
                    f"{float(artifact.dense_ratio[layer, head]):.6f} {where}")


# --------------------------------------------------------------------------- save / load
def _summary(artifact: MaskArtifact) -> dict:
    report = sparsity_report(artifact.mask)
    return {
        "schema_version": artifact.schema_version,
        "shape": {"layers": artifact.num_layers, "heads": artifact.num_heads,
                  "tokens": artifact.num_tokens},
        "threshold": artifact.threshold,
        "threshold_kind": artifact.threshold_kind,
        "sparsity": report["overall"],
        "sparsity_per_layer": report["per_layer"],
        "sparsity_per_head": report["per_head"],
        "num_global": artifact.num_global.tolist(),
        "nnz_dense": artifact.nnz_dense.tolist(),
        "nnz_sparse": artifact.nnz_sparse.tolist(),
        "dense_ratio": artifact.dense_ratio.tolist(),
        "metadata": artifact.metadata,
    }


def save_mask_artifact(
    path: str | os.PathLike,
    mask: np.ndarray,
    threshold: float | int = 0.5,
    *,
    info_cut: float | None = None,
    target_sparsity: float | None = None,
    source: str = "vitcod",
) -> Path:
    """Polarize a keep-mask and write ``masks.npz`` plus its ``.json`` summary.

    Parameters
    ----------
    path : str or os.PathLike
        Destination, must end in ``.npz``; the summary goes to the same stem + ``.json``.
    mask : np.ndarray
        Bool (layers, heads, N, N), True = keep; no query row may be all pruned.
    threshold : float or int
        Global-token threshold for :func:`vitcod.model.polarize.polarize`.
    info_cut, target_sparsity, source
        Provenance recorded in ``metadata``.

    Returns
    -------
    Path
        The path of the written ``.npz``.

    Raises
    ------
    MaskArtifactError
        If the mask is not a valid keep-mask; nothing is written then.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise UserError("a mask artifact path ending in .npz", str(path), "the output path")

    mask = _check_keep_mask(mask)
    metadata = {
        "info_cut": None if info_cut is None else float(info_cut),
        "target_sparsity": None if target_sparsity is None else float(target_sparsity),
        "sparsity": float(1.0 - mask.mean()),
        "source": str(source),
        "vitcod_version": __version__,
    }
    arrays = _build_arrays(mask, threshold, metadata)
    artifact = _validate(arrays, {})  # never write a file the loader would reject
    summary = json.dumps(_summary(artifact), indent=2) + "\n"

    atomic_write(path, lambda handle: np.savez_compressed(handle, **arrays))
    atomic_write(path.with_suffix(".json"), summary)
    logger.info(
        "wrote %s: %d layers x %d heads x %d tokens, sparsity %.4f, %d sparse non-zeros",
        path, artifact.num_layers, artifact.num_heads, artifact.num_tokens,
        artifact.sparsity, artifact.col_idx.shape[0],
    )
    return path


def load_mask_artifact(
    path: str | os.PathLike,
    *,
    num_layers: int | None = None,
    num_heads: int | None = None,
    num_tokens: int | None = None,
) -> MaskArtifact:
    """Read and fully validate a ``masks.npz``.

    Parameters
    ----------
    path : str or os.PathLike
        The artifact written by :func:`save_mask_artifact`.
    num_layers, num_heads, num_tokens : int, optional
        The model's sizes; when given, the artifact must match them.

    Raises
    ------
    MaskArtifactError
        Naming the field, what was expected and what came, if anything is wrong.
    """
    path = Path(path)
    try:
        arrays = read_npz(path, "a mask artifact (masks.npz)")
    except UserError as exc:  # missing, empty, truncated, not an archive, pickled objects
        raise MaskArtifactError(exc.expected, exc.got, exc.where) from None
    try:
        artifact = _validate(
            arrays, {"num_layers": num_layers, "num_heads": num_heads, "num_tokens": num_tokens}
        )
    except MaskArtifactError as exc:
        raise exc.at(f"{exc.where} of {path}") from None
    return replace(artifact, path=path)
