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
import threading
import time
import warnings
from typing import Any, Callable

import numpy as np

from . import checks
from .checks import status_bit_names  # noqa: F401 - (its earlier home)
from .contract import READ_ONLY_REGISTERS
from .errors import DeviceError, InputError, SaturationWarning, StreamError, VitcodError, WireFormatError
from .guards import DEVICE_CLAIMS, positive_int, timeout_seconds
from .metadata import OverlayMetadata
from .measure import packing_benchmark  # noqa: F401 - part of the driver's API
from .wire import count_nonfinite, pack, quantize_pack, unpack

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
"""Default limit, in seconds, on every wait for the DMA or the IP."""

BACKENDS = ("pynq", "emulated", "csim")

IDENTITY_REGISTERS = READ_ONLY_REGISTERS
"""The IP's read-only registers (identity and last run), in register order."""


class VitcodDriver:
    """Backend-independent part of the driver (see the module docstring).

    Subclasses call :meth:`_setup_driver` once their transport is ready, then
    :meth:`check_identity`.

    Calls are serialized: one lock is held for each whole call (every transfer of it), so threads
    may share a driver; only one driver per device may exist in a process (:mod:`.guards`).

    Attributes:
        metadata: the overlay's build-time metadata.
        timeout: limit in seconds on every wait (DMA idle, IP done); configurable at any time,
            finite and above 0 (each call may also pass its own ``timeout=``).
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
        if "_lock" not in self.__dict__:  # (a backend may have made it before claiming its device)
            self._lock = threading.RLock()
        self.metadata = metadata
        self.timeout = timeout
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

    # ---- timeouts, locking, closing ---------------------------------------------------------------------
    closed = False
    _call_timeout: float | None = None
    _claimed_device: Any = None

    @property
    def timeout(self) -> float:
        """Limit in seconds on every wait for the device (finite, > 0)."""
        return self._timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._timeout = timeout_seconds(value, "timeout")

    @property
    def wait_timeout(self) -> float:
        """The limit of the waits of the running call: its ``timeout=`` if given, else :attr:`timeout`."""
        return self._call_timeout if self._call_timeout is not None else self._timeout

    def _claim(self, device: Any, what: str) -> None:
        """Refuse to open on a device another live driver of this process drives (:mod:`.guards`)."""
        DEVICE_CLAIMS.claim(device, self, what)
        self._claimed_device = device

    def close(self) -> None:
        """Release the device (another driver may then open it) and the transfer buffers; later
        calls raise :class:`DeviceError`."""
        with self._lock:
            self._buffers.clear()
            device = getattr(self, "_claimed_device", None)
            if device is not None:
                DEVICE_CLAIMS.release(device, self)
                self._claimed_device = None
            self._release_transport()
            self.closed = True

    def _release_transport(self) -> None:
        """Backend hook of :meth:`close`."""

    def __enter__(self) -> "VitcodDriver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _check_open(self) -> None:
        if self.closed:
            raise DeviceError(f"this {self.backend} driver was closed; open a new one")

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
        value = positive_int(value, "batch_size")
        if value > self._transfer_limit:
            raise ValueError(
                f"batch_size must be an integer in 1..{self._transfer_limit} (what one transfer may carry: max_batch="
                f"{self.metadata.max_batch}, DMA length register {self.metadata.dma_length_width} bits), got {value}; "
                "larger calls to predict() are split into transfers of batch_size images anyway")
        with self._lock:
            self._batch_size = value

    # ---- identity ----------------------------------------------------------------------------------------
    def identify(self) -> dict[str, int]:
        """Run the IP once with ``batch_count = 0`` and return its read-only registers
        (plus ``model_id`` joined from its two halves)."""
        with self._lock:
            self._check_open()
            regs = dict(self._read_identity())
        regs["model_id"] = (regs["model_id_hi"] << 32) | regs["model_id_lo"]
        return regs

    def check_identity(self) -> dict[str, int]:
        """Refuse an IP that does not match the description (:mod:`vitcod.host.checks`: format
        version, types, values and words per image, max batch, and the model identifier the host
        recomputes from the description).

        Raises:
            IdentityMismatchError: naming the file, each field that differs, its declared value
                and what the IP reports.
        """
        regs = self.identify()
        checks.check_identity(self.metadata, regs, self.backend)
        self.identity = regs
        return regs

    # ---- inputs ------------------------------------------------------------------------------------------
    def _images_2d(self, images: Any) -> np.ndarray:
        """Check images and view them as ``(batch, values)`` (no copy when already contiguous)."""
        if isinstance(images, np.ndarray):
            x = images
        else:
            try:
                x = np.asarray(images)
            except (ValueError, TypeError) as exc:  # a ragged nested list
                raise InputError(f"images must be a rectangular array (batch, {', '.join(map(str, self.input_shape))}), "
                                 f"got a {type(images).__name__} numpy cannot make one of ({exc})") from None
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
        with self._lock:
            self._buffers.clear()

    # ---- running -----------------------------------------------------------------------------------------
    def _execute(self, in_buf: Any, out_buf: Any, n_images: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read_identity(self) -> dict[str, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _recover(self) -> None:
        """Bring the transport back to a usable state after a failed transfer (backend-specific)."""

    def _run(self, n_total: int, fill: Callable[[int, int, np.ndarray], int],
             timeout: float | None = None) -> tuple[np.ndarray, int]:
        """Run ``n_total`` images in transfers of at most :attr:`batch_size`, holding the driver's
        lock for the whole call.

        ``fill(start, stop, words)`` packs images ``[start, stop)`` into ``words`` and returns the
        number of saturated values. Returns the output raws ``(n_total, out_values)`` and the
        number of saturated input values. If transfer k fails, the error carries the raws of the
        images of transfers 0..k-1 (:attr:`DeviceError.completed`, ``.partial``).
        """
        call_timeout = None if timeout is None else timeout_seconds(timeout, "timeout")
        with self._lock:
            self._check_open()
            self._call_timeout = call_timeout
            try:
                return self._run_locked(n_total, fill)
            finally:
                self._call_timeout = None

    def _run_locked(self, n_total: int, fill: Callable[[int, int, np.ndarray], int]) -> tuple[np.ndarray, int]:
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
            except VitcodError as exc:
                if isinstance(exc, DeviceError) and n_total > n:
                    exc.completed, exc.partial = start, result[:start].copy()
                    exc.add_note(f"images 0..{start - 1} of this call completed before the failure; their results are "
                                 "in the exception's `partial`" if start else "no image of this call completed")
                raise
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

    def execute_raw(self, raws: Any, *, timeout: float | None = None) -> np.ndarray:
        """Run input raws ``(batch, in_values)`` (integers of the input type) and return output raws.

        Bit-exact path, without float conversion: for tests and for callers that quantize
        themselves. ``timeout``: this call's limit on each wait (default :attr:`timeout`).

        Raises:
            InputError: wrong shape, empty batch.
            WireFormatError: a raw outside the input type.
        """
        x = self._images_2d(raws)
        if x.dtype.kind not in "iu":
            raise InputError(f"raws must be integers, got dtype {x.dtype}")
        fmt = self.metadata.input.format
        lo, hi = int(x.min()), int(x.max())
        if lo < fmt.min_raw or hi > fmt.max_raw:
            raise WireFormatError(f"raws span [{lo}, {hi}] but {fmt.cpp} holds [{fmt.min_raw}, {fmt.max_raw}]")

        def fill(a: int, b: int, out: np.ndarray) -> int:
            pack(x[a:b], fmt.width, fmt.signed, out)
            return 0

        return self._run(len(x), fill, timeout)[0]

    def predict(self, images: Any, *, timeout: float | None = None) -> np.ndarray:
        """Run images through the accelerator.

        Args:
            images: ``(batch, *input_shape)`` or ``(batch, n_values)`` real numbers. Values are
                quantized to the input type (rounding as documented in :mod:`vitcod.host.quantization`),
                out-of-range values are saturated and counted.
            timeout: this call's limit in seconds on each wait (default :attr:`timeout`).

        Returns:
            float64 ``(batch, *output_shape)``: the network's outputs (class probabilities for a
            softmax head), exactly the output type's values.

        Raises:
            InputError: wrong shape or dtype, NaN/Inf, empty batch.
            DeviceError: a transfer failed or timed out (the driver has reset the transport and
                stays usable); ``.completed`` / ``.partial`` hold the images that completed.
        """
        x = self._images_2d(images)
        out_fmt = self.metadata.output.format

        def values(raws: np.ndarray) -> np.ndarray:
            return out_fmt.dequantize(raws).reshape((len(raws),) + self.output_shape)
        return values(self._predict_raw(x, timeout, values))

    def classify(self, images: Any, *, timeout: float | None = None) -> np.ndarray:
        """The index of the largest output per image (int64 ``(batch,)``); as :meth:`predict`."""
        x = self._images_2d(images)

        def labels(raws: np.ndarray) -> np.ndarray:
            return np.argmax(raws, axis=1).astype(np.int64) if len(raws) else np.zeros(0, np.int64)
        return labels(self._predict_raw(x, timeout, labels))

    def _predict_raw(self, x: np.ndarray, timeout: float | None = None,
                     convert: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
        fmt = self.metadata.input.format

        def fill(a: int, b: int, out: np.ndarray) -> int:
            return quantize_pack(x[a:b], fmt, out)[1]

        try:
            result, saturated = self._run(len(x), fill, timeout)
        except DeviceError as exc:
            if convert is not None and exc.partial is not None:
                exc.partial = convert(exc.partial)
            raise
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
        repeats = positive_int(repeats, "repeats")
        n = self._batch_size if batch_size is None else positive_int(batch_size, "batch_size")
        fmt = self.metadata.input.format
        rng = np.random.default_rng(seed)
        images = rng.uniform(fmt.min_value, fmt.max_value, size=(n, self.metadata.input.values))
        totals = {"quantize_pack": 0.0, "transfer_compute": 0.0, "unpack": 0.0}
        with self._lock:  # the stage times of these repeats, not another thread's
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
        if "metadata" not in self.__dict__:  # (not open: a failed constructor)
            return f"<{type(self).__name__} backend={self.backend} (not open)>"
        meta = self.metadata
        return (f"<{type(self).__name__} backend={self.backend} model={meta.model_id_hex} "
                f"in={meta.input.format.cpp}{list(meta.input.shape)} out={meta.output.format.cpp}{list(meta.output.shape)} "
                f"batch_size={self._batch_size}>")
