"""Why a model cannot be converted: the errors of the conversion, all raised before a file is written.

:func:`vitcod.hls.convert.convert` validates the target and the run folder
(:mod:`vitcod.hls.convert`), then derives and checks every precision (:mod:`vitcod.hls.precision`);
both raise these. Our hls4ml layers raise :class:`vitcod.hls.extension.ExtensionError` for an
engine setting they cannot build (e.g. a score type that cannot hold q.k).
"""

from __future__ import annotations


class ConversionError(ValueError):
    """The model cannot be converted with the requested settings (nothing has been written)."""


class UnsupportedConfigurationError(ConversionError):
    """A setting the flow does not support (io_stream, another backend, a layer type)."""


class InconsistentConfigurationError(ConversionError):
    """Inputs that contradict each other (mask artifact vs model, heads, config.json vs model)."""


class PrecisionOverflowError(ConversionError):
    """A configured fixed-point type cannot hold the values the profile saw.

    Attributes:
        rows: the offending rows of the precision report (layer, range seen, type, headroom bits).
    """

    def __init__(self, message: str, rows: list[dict]):
        super().__init__(message)
        self.rows = rows
