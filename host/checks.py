"""What the driver checks against the IP: its identity at open, and what each transfer did.

Does the description (``vitcod.json`` / ``network.json``) match the IP the driver talks to?

Where this fits: every backend opens through :meth:`vitcod.host.driver.VitcodDriver.check_identity`,
which runs the IP once with ``batch_count = 0`` and hands its read-only registers to
:func:`identity_mismatches`. A description that disagrees with the IP would make the host quantize
for one type while the IP reads another, or drop or invent values - wrong numbers with no error -
so every field that defines the interface is compared with what the IP reports:

* ``format_version`` and ``max_batch``;
* per tensor, the type (the IP codes its own C++ type, :func:`~vitcod.host.contract.type_code`),
  the values per image (the network function's array size) and the words per image;
* the model identifier: recomputed by the host from the description
  (:func:`~vitcod.host.contract.model_identifier` of its ``content_id`` and interface) and compared
  with the IP's (when no interface field differs already: then it cannot match), and with the one
  the description records (an edited file no longer hashes to it).

Each difference names the file, the field, the declared value and the value the IP reports.

After each transfer, :func:`run_problems` reads the IP's ``batch_done``, ``status`` and
``words_read`` and the output length, the same way for every backend, so one fault reads the same
on the board, the emulated board and the C simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

from .contract import STATUS_BITS, STATUS_MEANINGS, describe_type_code, model_identifier
from .errors import ApTypeError, IdentityMismatchError
from .metadata import OverlayMetadata


@dataclass(frozen=True)
class Mismatch:
    """One field of the description that the IP contradicts.

    Attributes:
        field: the description's field (``input.type``, ``model_id``, ...).
        register: the IP register compared (or ``None`` for a check within the file).
        declared: what the description says, as text.
        reported: what the IP reports, as text.
        values: ``(reported, expected)`` as numbers.
    """

    field: str
    register: str | None
    declared: str
    reported: str
    values: tuple[int, int]

    def describe(self) -> str:
        if self.register is None:
            return f"{self.field}: {self.declared}, {self.reported}"
        return f"{self.field}: declared {self.declared}, the IP reports {self.reported} (register {self.register})"


def _type_code(fmt) -> int:
    try:
        return fmt.code
    except ApTypeError:  # a type no IP can report: it cannot match one
        return -1


def identity_mismatches(meta: OverlayMetadata, regs: dict[str, int]) -> list[Mismatch]:
    """Every field of ``meta`` that the IP's read-only registers ``regs`` contradict (module docstring)."""
    found: list[Mismatch] = []

    def compare(field: str, register: str, expected: int, declared: str, reported: str | None = None) -> None:
        got = regs[register]
        if got != expected:
            found.append(Mismatch(field, register, declared, reported if reported is not None else str(got),
                                  (got, expected)))

    compare("format_version", "format_version", meta.format_version, str(meta.format_version))
    for key, prefix in (("input", "in"), ("output", "out")):
        tensor = getattr(meta, key)
        compare(f"{key}.type", f"{prefix}_type", _type_code(tensor.format), tensor.format.cpp,
                describe_type_code(regs[f"{prefix}_type"]))
        compare(f"{key}.shape", f"{prefix}_values", tensor.values, f"{list(tensor.shape)} ({tensor.values} values)",
                f"{regs[f'{prefix}_values']} values per image")
        compare(f"{key}.words_per_image", f"{prefix}_words", tensor.words_per_image, str(tensor.words_per_image))
    compare("max_batch", "max_batch", meta.max_batch, str(meta.max_batch))
    try:
        derived = int(model_identifier(meta.content_id, meta.input, meta.output, meta.format_version), 16)
    except ApTypeError:
        derived = -1
    reported = (regs["model_id_hi"] << 32) | regs["model_id_lo"]
    if reported != derived and not found:  # (a differing interface field already explains it)
        found.append(Mismatch("model_id", "model_id", f"0x{derived:016x} (the identifier of its content_id "
                              f"0x{meta.content_id:016x} and interface)", f"0x{reported:016x}", (reported, derived)))
    if meta.model_id != derived:
        found.append(Mismatch("model_id", None, f"recorded 0x{meta.model_id:016x}",
                              f"but its content_id and interface give 0x{derived:016x} (the file was edited after "
                              "it was written)", (meta.model_id, derived)))
    return found


def check_identity(meta: OverlayMetadata, regs: dict[str, int], backend: str) -> None:
    """Raise :class:`IdentityMismatchError` listing :func:`identity_mismatches`, if any."""
    found = identity_mismatches(meta, regs)
    if not found:
        return
    where = str(meta.path) if meta.path is not None else "the description"
    raise IdentityMismatchError(
        f"refusing to run: {where} does not match the {backend} IP: " + "; ".join(m.describe() for m in found)
        + ". Use the description written by this IP's build, or rebuild the IP for this description.",
        {(m.register or m.field + " (recorded)"): m.values for m in found}, [m.field for m in found])


# ---- after each transfer ---------------------------------------------------------------------------
def status_bit_names(status: int, status_bits: dict[str, int] = STATUS_BITS) -> list[str]:
    """Names of the IP status-register bits set in ``status`` (from vitcod.json's ``status_bits``)."""
    names = [name for name, bit in status_bits.items() if status & bit]
    unknown = status & ~sum(status_bits.values())
    if unknown:
        names.append(f"unknown bits {unknown:#x}")
    return names


def run_problems(n_images: int, meta: OverlayMetadata, *, batch_done: int, status: int, words_read: int,
                 output_words: int | None) -> tuple[list[str], list[str]]:
    """What went wrong in a transfer of ``n_images`` images, from the IP's registers and the
    output words received (``None``: not known), as ``(problems, status bit names)``; both
    empty for a clean run. Shared by every backend so that the same fault reads the same."""
    problems: list[str] = []
    bits = status_bit_names(status, meta.status_bits) if status else []
    if bits:
        meanings = "; ".join(STATUS_MEANINGS.get(b, b) for b in bits)
        problems.append(f"the IP status register is {status:#x} ({', '.join(bits)}: {meanings})")
    if batch_done != n_images:
        problems.append(f"the IP processed {batch_done} of {n_images} images (batch_done)")
    expected_in = n_images * meta.input.words_per_image
    if words_read != expected_in:
        problems.append(f"the IP read {words_read} input words, {n_images} images take {expected_in}")
    expected_out = n_images * meta.output.words_per_image
    if output_words is not None and output_words != expected_out:
        problems.append(f"{output_words} output words arrived, expected {expected_out}")
    return problems, bits
