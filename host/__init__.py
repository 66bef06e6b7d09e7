"""Board-side package: the PYNQ driver for the ViTCoD overlay (needs numpy, and pynq on a board).

Nothing here may import TensorFlow, QKeras or hls4ml: a PYNQ image does not have
them, and ``tests/host/test_host_isolation.py`` checks it. pynq itself is imported only by the
backends that need it (``pynq`` and ``emulated``), when they are first used.

One driver API, three backends (see :mod:`vitcod.host.driver`)::

    from vitcod.host import open_driver
    drv = open_driver("vitcod-pynq-z2", backend="pynq")        # on the board
    drv = open_driver("overlay/build/pynq-z2", backend="csim")  # C simulation of the IP top
    drv = open_driver("overlay/build/pynq-z2", backend="emulated")  # pynq + register models
    probabilities = drv.predict(images)          # (batch, *output_shape) float64
    labels = drv.classify(images)                # (batch,) int64
    drv.throughput_test()                        # images/s and per-stage times

Modules: ``contract`` (what the flow and the board share: ap_types spellings and type codes, the
wire format, network.json, the identifiers, the register map, the IP config header), ``metadata``
(vitcod.json), ``quantization`` (the host's float <-> raw policy), ``wire`` (fast pack / unpack),
``driver`` (the shared API), ``checks`` (description vs IP at open, each transfer's registers),
``guards`` (argument checks, one driver per device), ``measure`` (packing benchmark), ``overlay``
(pynq.Overlay subclass), ``csim_backend`` (C-simulation library), ``cxx_build`` (g++ builds and
their cache), ``emulated`` / ``emulated_hwh`` (EmulatedDevice and its .hwh), ``__main__`` (CLI).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .contract import FORMAT_VERSION, ApType, NetworkDescription, TensorMeta
from .driver import BACKENDS, DEFAULT_TIMEOUT_S, VitcodDriver, packing_benchmark
from .errors import (ApTypeError, CsimBuildError, DeviceError, DeviceInUseError, DeviceTimeoutError, DmaError,
                     IdentityMismatchError, InputError, MetadataError, NoDeviceError, OverlayMismatchError,
                     SaturationWarning, StreamError, VitcodError, WireFormatError)
from .metadata import OverlayMetadata
from .wire import native_kernel, pack, quantize_pack, unpack

FixedFormat = ApType
"""The earlier name of :class:`~vitcod.host.contract.ApType` (an input/output type with the host's
float <-> raw conversion)."""

__all__ = [
    "BACKENDS", "DEFAULT_TIMEOUT_S", "FORMAT_VERSION", "ApType", "ApTypeError", "CsimBuildError", "CsimDriver",
    "CsimLibrary", "DeviceError", "DeviceInUseError", "DeviceTimeoutError", "DmaError", "EmulatedDevice", "FixedFormat",
    "IdentityMismatchError", "InputError", "MetadataError", "NetworkDescription", "NoDeviceError", "OverlayMetadata",
    "OverlayMismatchError", "SaturationWarning", "StreamError", "TensorMeta", "VitcodDriver", "VitcodError",
    "VitcodOverlay", "WireFormatError", "open_driver", "native_kernel", "open_emulated", "pack", "packing_benchmark",
    "quantize_pack", "unpack",
]

_LAZY = {"VitcodOverlay": "overlay", "EmulatedDevice": "emulated", "open_emulated": "emulated",
         "CsimDriver": "csim_backend", "CsimLibrary": "csim_backend"}


def __getattr__(name: str) -> Any:
    """Import the backends on first use (pynq only when its backends are asked for)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_driver(overlay_dir: str | Path | None, backend: str = "pynq", **kwargs: Any) -> VitcodDriver:
    """Open the overlay in ``overlay_dir`` with one of the backends.

    Args:
        overlay_dir: folder with ``vitcod.json`` (for ``pynq`` also vitcod.bit + vitcod.hwh; for
            ``csim``/``emulated`` also ``network.json`` or ``overlay_config.json``, or pass
            ``network=``). ``csim``/``emulated`` accept ``None`` with ``network=`` and ``max_batch=``.
        backend: ``"pynq"`` (a board), ``"emulated"`` (pynq's DMA driver against register models,
            computing with the C simulation) or ``"csim"`` (the C simulation directly).
        **kwargs: passed to :class:`~vitcod.host.overlay.VitcodOverlay`,
            :func:`~vitcod.host.emulated.open_emulated` or :class:`~vitcod.host.csim_backend.CsimDriver`
            (e.g. ``batch_size``, ``timeout``, ``network``).

    Returns:
        A :class:`VitcodDriver` (same API whatever the backend).
    """
    if backend == "pynq":
        if overlay_dir is None:
            raise ValueError("the pynq backend needs the overlay folder (vitcod.bit, vitcod.hwh, vitcod.json)")
        try:
            from .overlay import VitcodOverlay
        except ImportError as exc:
            raise NoDeviceError(f"expected pynq for the pynq backend, got an ImportError ({exc}); on a board "
                                "install vitcod into the PYNQ image's environment") from None
        return VitcodOverlay(overlay_dir, **kwargs)
    if backend == "emulated":
        from .emulated import open_emulated

        return open_emulated(overlay_dir, **kwargs)
    if backend == "csim":
        from .csim_backend import CsimDriver

        return CsimDriver(overlay_dir, **kwargs)
    raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
