"""The driver API shared by every backend: predict / classify / throughput_test on packed batches.

Where this fits: the overlay's IP (``overlay/ip/vitcod_top.h``) takes a batch of images as one
AXI4-Stream of packed fixed-point words and returns the results the same way. Everything between
the user's float images and those words is the same whether the words travel through an AXI DMA
on a board, through an emulated DMA, or straight into a C simulation of the IP; only the transport
differs. :class:`VitcodDriver` holds the shared part, modelled on finn-examples' driver:

* configuration from build-time metadata (:class:`~vitcod.host.metadata.OverlayMetadata`):
  shapes, formats, geometry, max batch, model identifier;
* input checks (shape, dtype, NaN/Inf, empty batch) before anything touches the device;
* quantize + pack (vectorised numpy) straight into the transfer buffer, unpack + dequantize;
* batching: a call with more images than one transfer may carry (``max_batch``, or the DMA's
  buffer-length register) is split into several transfers; buffers are allocated once per batch
  size and reused;
* identity check: the IP's identifier registers must match the metadata;
* ``throughput_test()`` with per-stage times.

A backend subclass implements four hooks: ``_allocate_words(n)`` (a buffer the transport can
read/write), ``_execute(in_buf, out_buf, n_images)`` (run one transfer, raising the errors of
:mod:`vitcod.host.errors`, never hanging), ``_read_identity()`` (the read-only registers after an
identify run) and optionally ``_recover()``. Backends:

=========  ==========================================  ====================================
backend    class                                       transport
=========  ==========================================  ====================================
pynq       :class:`vitcod.host.overlay.VitcodOverlay`  pynq.Overlay + AXI DMA on a board
emulated   the same class on an ``EmulatedDevice``     pynq's DMA driver against register models
csim       :class:`vitcod.host.csim_backend.CsimDriver`        ctypes call into the C-simulated IP top
=========  ==========================================  ====================================
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any, Callable

import numpy as np

from .contract import READ_ONLY_REGISTERS
from .errors import IdentityMismatchError, InputError, SaturationWarning, StreamError, WireFormatError
from .metadata import OverlayMetadata
from .wire import count_nonfinite, native_kernel, pack, quantize_pack, unpack

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
"""Default limit, in seconds, on every wait for the DMA or the IP."""

BACKENDS = ("pynq", "emulated", "csim")

IDENTITY_REGISTERS = READ_ONLY_REGISTERS
"""The IP's read-only registers (identity and last run), in register order."""


def status_bit_names(status: int, status_bits: dict[str, int]) -> list[str]:
    """Names of the IP status-register bits set in ``status`` (from vitcod.json's ``status_bits``)."""
    names = [name for name, bit in status_bits.items() if status & bit]
    unknown = status & ~sum(status_bits.values())
    if unknown:
        names.append(f"unknown bits {unknown:#x}")
    return names


class VitcodDriver:
    """Backend-independent part of the driver (see the module docstring).

    Subclasses call :meth:`_setup_driver` once their transport is ready, then
    :meth:`check_identity`.

    Attributes:
        metadata: the overlay's build-time metadata.
        timeout: limit in seconds on every wait (DMA idle, IP done); configurable at any time.
        saturated_inputs: input values saturated since the driver was created.
        last_saturated: input values saturated by the last call.
        last_timing: seconds spent per stage by the last call
            (``quantize_pack``, ``transfer_compute``, ``unpack``).
        recoveries: how many times the driver reset the transport after a failed transfer.
    """

    backend = "abstract"

    # ---- set-up ------------------------------------------------------------------------------------
    def _setup_driver(self, metadata: OverlayMetadata, *, batch_size: int | None = None,
                      timeout: float = DEFAULT_TIMEOUT_S, transfer_limit_bytes: int | None = None) -> None:
        self.metadata = metadata
        self.timeout = float(timeout)
        limit = metadata.max_images_per_transfer
        if transfer_limit_bytes is not None:  # the transport's own limit (pynq's DMA buffer_max_size)
            per_image = max(metadata.input.bytes_per_image, metadata.output.bytes_per_image)
            limit = max(1, min(limit, transfer_limit_bytes // per_image))
        self._transfer_limit = limit
        self._buffers: dict[int, tuple[Any, Any, np.ndarray, np.ndarray]] = {}
        self._batch_size = limit
        if batch_size is not None:
            self.batch_size = batch_size
        self.saturated_inputs = 0
        self.last_saturated = 0
        self._saturation_warned = False
        self.last_timing: dict[str, float] = {}
        self.recoveries = 0
        self.identity: dict[str, int] = {}

    # ---- geometry --------------------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input image (the network's io_parallel input)."""
        return self.metadata.input.shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one result."""
        return self.metadata.output.shape

    @property
    def max_images_per_transfer(self) -> int:
        """Images one transfer may carry: ``max_batch`` or less if the DMA length register is smaller."""
        return self._transfer_limit

    @property
    def batch_size(self) -> int:
        """Images per transfer (default and maximum: :attr:`max_images_per_transfer`)."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"batch_size must be a positive integer, got {value!r}")
        if value > self._transfer_limit:
            raise ValueError(
                f"batch_size {value} exceeds what one transfer may carry ({self._transfer_limit}: max_batch="
                f"{self.metadata.max_batch}, DMA length register {self.metadata.dma_length_width} bits); "
                "larger calls to predict() are split into transfers of batch_size images anyway")
        self._batch_size = int(value)

    # ---- identity ----------------------------------------------------------------------------------------
    def identify(self) -> dict[str, int]:
        """Run the IP once with ``batch_count = 0`` and return its read-only registers
        (plus ``model_id`` joined from its two halves)."""
        regs = dict(self._read_identity())
        regs["model_id"] = (regs["model_id_hi"] << 32) | regs["model_id_lo"]
        return regs

    def check_identity(self) -> dict[str, int]:
        """Refuse an IP whose identifier registers differ from the metadata.

        Raises:
            IdentityMismatchError: naming each register that differs, what the IP reports and what
                vitcod.json expects.
        """
        regs = self.identify()
        expected = self.metadata.expected_identity()
        mismatches = {k: (regs[k], v) for k, v in expected.items() if regs[k] != v}
        if mismatches:
            def show(key: str, value: int) -> str:
                return f"0x{value:016x}" if key == "model_id" else str(value)
            detail = "; ".join(f"{k}: the IP reports {show(k, got)}, vitcod.json expects {show(k, want)}"
                               for k, (got, want) in mismatches.items())
            raise IdentityMismatchError(
                f"refusing to run: the {self.backend} IP does not match {self.metadata.path or 'the metadata'} "
                f"({detail}). Use the vitcod.json packaged with this bitstream, or rebuild the overlay for this model.",
                mismatches)
        self.identity = regs
        return regs

    # ---- inputs ------------------------------------------------------------------------------------------
    def _images_2d(self, images: Any) -> np.ndarray:
        """Check images and view them as ``(batch, values)`` (no copy when already contiguous)."""
        x = images if isinstance(images, np.ndarray) else np.asarray(images)
        if x.dtype.kind not in "fiu":
            raise InputError(f"images must be real numbers (a float or integer array), got dtype {x.dtype}")
        shape, n = self.input_shape, self.metadata.input.values
        if x.ndim >= 1 and x.shape[0] == 0:
            raise InputError(f"empty batch: got images of shape {x.shape}, expected at least one image")
        if not (x.shape[1:] == shape or (x.ndim == 2 and x.shape[1] == n)):
            hint = " (a single image? add a batch axis: images[None])" if x.shape in (shape, (n,)) else ""
            raise InputError(f"images have shape {x.shape}; expected (batch, {', '.join(map(str, shape))}) "
                             f"or (batch, {n}){hint}")
        x = x.reshape(x.shape[0], n)
        if x.dtype.kind == "f" and count_nonfinite(x):  # (one cheap pass; the details only on failure)
            bad = np.argwhere(~np.isfinite(x))
            raise InputError(f"images contain {len(bad)} NaN/Inf value(s) (first: image {bad[0][0]}, "
                             f"value {bad[0][1]} = {x[tuple(bad[0])]}); the accelerator takes finite values only")
        return x

    def _note_saturation(self, count: int, total: int) -> None:
        self.last_saturated = count
        self.saturated_inputs += count
        if count and not self._saturation_warned:
            self._saturation_warned = True
            fmt = self.metadata.input.format
            warnings.warn(
                f"{count} of {total} input values were outside the range of {fmt.cpp} "
                f"[{fmt.min_value:g}, {fmt.max_value:g}] and were saturated; the driver counts them in "
                "saturated_inputs / last_saturated (this warning is shown once per driver)",
                SaturationWarning, stacklevel=4)

    # ---- buffers -----------------------------------------------------------------------------------------
    def _allocate_words(self, n_words: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _host_view(self, buf: Any) -> np.ndarray:
        """A plain ndarray over a transfer buffer (same memory)."""
        return buf.view(np.ndarray) if isinstance(buf, np.ndarray) else np.asarray(buf)

    def _buffers_for(self, capacity: int) -> tuple[Any, Any, np.ndarray, np.ndarray]:
        """Input/output buffers for ``capacity`` images: allocated once per batch size, then reused."""
        if capacity not in self._buffers:
            ibuf = self._allocate_words(capacity * self.metadata.input.words_per_image)
            obuf = self._allocate_words(capacity * self.metadata.output.words_per_image)
            self._buffers[capacity] = (ibuf, obuf, self._host_view(ibuf), self._host_view(obuf))
            log.debug("%s: allocated buffers for %d images", self.backend, capacity)
        return self._buffers[capacity]

    def free_buffers(self) -> None:
        """Drop the cached transfer buffers (they are re-allocated on the next call)."""
        self._buffers.clear()

    # ---- running -----------------------------------------------------------------------------------------
    def _execute(self, in_buf: Any, out_buf: Any, n_images: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read_identity(self) -> dict[str, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _recover(self) -> None:
        """Bring the transport back to a usable state after a failed transfer (backend-specific)."""

    def _run(self, n_total: int, fill: Callable[[int, int, np.ndarray], int]) -> tuple[np.ndarray, int]:
        """Run ``n_total`` images in transfers of at most :attr:`batch_size`.

        ``fill(start, stop, words)`` packs images ``[start, stop)`` into ``words`` and returns the
        number of saturated values. Returns the output raws ``(n_total, out_values)`` and the
        number of saturated input values.
        """
        meta = self.metadata
        in_wpi, out_wpi = meta.input.words_per_image, meta.output.words_per_image
        out_fmt, n_out = meta.output.format, meta.output.values
        capacity = self._batch_size
        ibuf, obuf, iview, oview = self._buffers_for(capacity)
        result = np.empty((n_total, n_out), dtype=np.int64)
        timing = {"quantize_pack": 0.0, "transfer_compute": 0.0, "unpack": 0.0}
        saturated = 0
        for start in range(0, n_total, capacity):
            stop = min(start + capacity, n_total)
            n = stop - start
            t0 = time.perf_counter()
            saturated += fill(start, stop, iview[:n * in_wpi])
            t1 = time.perf_counter()
            try:
                self._execute(ibuf, obuf, n)
            except BaseException:  # also an interrupted wait: leave the transport usable
                self._recover_after_failure()
                raise
            t2 = time.perf_counter()
            try:
                result[start:stop] = unpack(oview[:n * out_wpi], n_out, out_fmt.width, out_fmt.signed, strict=True)
            except ValueError as exc:
                raise StreamError(f"the output of images {start}..{stop - 1} is not well-formed: {exc}") from exc
            t3 = time.perf_counter()
            timing["quantize_pack"] += t1 - t0
            timing["transfer_compute"] += t2 - t1
            timing["unpack"] += t3 - t2
        self.last_timing = timing
        return result, saturated

    def _recover_after_failure(self) -> None:
        try:
            self._recover()
        except Exception as exc:  # keep the original error; say what the recovery hit
            log.error("%s: recovery after a failed transfer failed too: %s", self.backend, exc)

    def execute_raw(self, raws: Any) -> np.ndarray:
        """Run input raws ``(batch, in_values)`` (integers of the input type) and return output raws.

        Bit-exact path, without float conversion: for tests and for callers that quantize
        themselves.

        Raises:
            InputError: wrong shape, empty batch.
            WireFormatError: a raw outside the input type.
        """
        raws = np.asarray(raws)
        if raws.dtype.kind not in "iu":
            raise InputError(f"raws must be integers, got dtype {raws.dtype}")
        x = self._images_2d(raws)
        fmt = self.metadata.input.format
        lo, hi = int(x.min()), int(x.max())
        if lo < fmt.min_raw or hi > fmt.max_raw:
            raise WireFormatError(f"raws span [{lo}, {hi}] but {fmt.cpp} holds [{fmt.min_raw}, {fmt.max_raw}]")

        def fill(a: int, b: int, out: np.ndarray) -> int:
            pack(x[a:b], fmt.width, fmt.signed, out)
            return 0

        return self._run(len(x), fill)[0]

    def predict(self, images: Any) -> np.ndarray:
        """Run images through the accelerator.

        Args:
            images: ``(batch, *input_shape)`` or ``(batch, n_values)`` real numbers. Values are
                quantized to the input type (rounding as documented in :mod:`vitcod.host.quantization`),
                out-of-range values are saturated and counted.

        Returns:
            float64 ``(batch, *output_shape)``: the network's outputs (class probabilities for a
            softmax head), exactly the output type's values.

        Raises:
            InputError: wrong shape or dtype, NaN/Inf, empty batch.
            DeviceError: a transfer failed or timed out (the driver has reset the transport and
                stays usable).
        """
        x = self._images_2d(images)
        raws = self._predict_raw(x)
        return self.metadata.output.format.dequantize(raws).reshape((len(x),) + self.output_shape)

    def classify(self, images: Any) -> np.ndarray:
        """The index of the largest output per image (int64 ``(batch,)``)."""
        x = self._images_2d(images)
        return np.argmax(self._predict_raw(x), axis=1).astype(np.int64)

    def _predict_raw(self, x: np.ndarray) -> np.ndarray:
        fmt = self.metadata.input.format

        def fill(a: int, b: int, out: np.ndarray) -> int:
            return quantize_pack(x[a:b], fmt, out)[1]

        result, saturated = self._run(len(x), fill)
        self._note_saturation(saturated, x.size)
        return result

    # ---- measuring --------------------------------------------------------------------------------------
    def throughput_test(self, batch_size: int | None = None, repeats: int = 3, seed: int = 0) -> dict[str, Any]:
        """Measure one batch end to end and per stage (as finn-examples' ``throughput_test``).

        Random in-range images of one ``batch_size`` (default :attr:`batch_size`) are predicted
        ``repeats`` times; stage times are the means over the repeats.

        Returns:
            ``runtime[ms]`` (transfer + compute of one batch), ``throughput[images/s]`` (on that
            time), ``end_to_end[images/s]`` (with quantize/pack and unpack),
            ``quantize_pack[ms]``, ``transfer_compute[ms]``, ``unpack[ms]``,
            ``DRAM_in_bandwidth[MB/s]``, ``DRAM_out_bandwidth[MB/s]``, ``fclk[mhz]``,
            ``batch_size``, ``repeats``, ``backend``.
        """
        if repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {repeats}")
        n = self._batch_size if batch_size is None else int(batch_size)
        if n < 1:
            raise ValueError(f"batch_size must be positive, got {n}")
        fmt = self.metadata.input.format
        rng = np.random.default_rng(seed)
        images = rng.uniform(fmt.min_value, fmt.max_value, size=(n, self.metadata.input.values))
        totals = {"quantize_pack": 0.0, "transfer_compute": 0.0, "unpack": 0.0}
        for _ in range(repeats):
            self._predict_raw(images)
            for key in totals:
                totals[key] += self.last_timing[key]
        mean = {k: v / repeats for k, v in totals.items()}
        compute = max(mean["transfer_compute"], 1e-12)
        total = max(sum(mean.values()), 1e-12)
        return {
            "backend": self.backend,
            "batch_size": n,
            "repeats": repeats,
            "runtime[ms]": compute * 1e3,
            "throughput[images/s]": n / compute,
            "end_to_end[images/s]": n / total,
            "quantize_pack[ms]": mean["quantize_pack"] * 1e3,
            "transfer_compute[ms]": mean["transfer_compute"] * 1e3,
            "unpack[ms]": mean["unpack"] * 1e3,
            "DRAM_in_bandwidth[MB/s]": n * self.metadata.input.bytes_per_image / compute / 1e6,
            "DRAM_out_bandwidth[MB/s]": n * self.metadata.output.bytes_per_image / compute / 1e6,
            "fclk[mhz]": self.metadata.clock_mhz,
        }

    def __repr__(self) -> str:
        meta = self.metadata
        return (f"<{type(self).__name__} backend={self.backend} model={meta.model_id_hex} "
                f"in={meta.input.format.cpp}{list(meta.input.shape)} out={meta.output.format.cpp}{list(meta.output.shape)} "
                f"batch_size={self._batch_size}>")


def packing_benchmark(metadata: OverlayMetadata, batch_size: int, repeats: int = 5, seed: int = 0) -> dict[str, Any]:
    """Quantize+pack throughput next to plain numpy copies of the same bytes, in one run.

    Measures (best of ``repeats``) on float32 images of one batch:
    ``quantize_pack`` (floats -> packed words, into a preallocated buffer), ``copy_packed``
    (``np.copyto`` of the packed words: the floor for filling the DMA buffer), ``copy_input``
    (``np.copyto`` of the float input) and ``unpack`` of an output buffer.

    Returns:
        seconds per stage (``<stage>[ms]``), images/s and MB/s per stage, the ratio of
        quantize_pack to the packed copy, and which quantize+pack ``kernel`` ran.
    """
    rng = np.random.default_rng(seed)
    fmt = metadata.input.format
    images = rng.uniform(fmt.min_value, fmt.max_value, size=(batch_size, metadata.input.values)).astype(np.float32)
    words = np.empty(batch_size * metadata.input.words_per_image, dtype=np.uint64)
    packed = quantize_pack(images, fmt, words)[0].copy()
    out_fmt = metadata.output.format
    out_raws = rng.integers(out_fmt.min_raw, out_fmt.max_raw, size=(batch_size, metadata.output.values),
                            endpoint=True, dtype=np.int64)
    out_words = pack(out_raws, out_fmt.width, out_fmt.signed)
    images_copy = np.empty_like(images)
    stages: dict[str, tuple[Callable[[], Any], int]] = {
        "quantize_pack": (lambda: quantize_pack(images, fmt, words), words.nbytes),
        "copy_packed": (lambda: np.copyto(words, packed), words.nbytes),
        "copy_input": (lambda: np.copyto(images_copy, images), images.nbytes),
        "unpack": (lambda: unpack(out_words, metadata.output.values, out_fmt.width, out_fmt.signed), out_words.nbytes),
    }
    result: dict[str, Any] = {"batch_size": batch_size, "repeats": repeats, "kernel": native_kernel() or "numpy"}
    for name, (fn, nbytes) in stages.items():
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        best = max(best, 1e-9)
        result[f"{name}[ms]"] = best * 1e3
        result[f"{name}[images/s]"] = batch_size / best
        result[f"{name}[MB/s]"] = nbytes / best / 1e6
    result["quantize_pack/copy_packed"] = result["quantize_pack[ms]"] / result["copy_packed[ms]"]
    return result
