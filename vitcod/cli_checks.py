"""Checks of ``python -m vitcod``'s arguments, where they are parsed, before any work starts.

Two layers, both ending in one line ``error: <expected>, got <what came> (<option or file>)`` and
exit status 2 (:mod:`vitcod.user_errors`):

* option values (:class:`Parser` and the ``type=`` functions here): ranges, finite numbers,
  existing input files, ``.npz`` outputs in writable folders - checked by argparse itself;
* the run folder (:func:`check_run_dir`, :func:`check_stage`, ...): the files a command reads,
  opened with the light readers (no TensorFlow) before the stage itself is imported, so a missing
  stage or a truncated ``masks.npz`` is reported in a second, not after a 30 s import.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path

from .user_errors import USAGE_EXIT, MissingFileError, UserError, one_line

# ---- the parser -------------------------------------------------------------------------------


def _argparse_parts(message: str, prog: str) -> UserError:
    """argparse's own messages in the three-part form."""
    m = re.match(r"argument (\S+?): (.*)$", message, re.S)
    if m:
        where, text = m.groups()
        if where == "command":
            where = prog
        choice = re.match(r"invalid choice: (.*) \(choose from (.*)\)$", text)
        if choice:
            return UserError(f"one of {choice.group(2)}", choice.group(1), where)
        bad = re.match(r"invalid (\w+) value: (.*)$", text)
        if bad:
            return UserError(f"a value of type {bad.group(1)}", bad.group(2), where)
        if text.startswith("expected "):  # "expected one argument" / "expected at least one argument"
            return UserError(f"{text[len('expected '):]} after the option", "none", where)
        if ", got " in text:  # our type functions: "<expected>, got <came>"
            expected, got = text.split(", got ", 1)
            return UserError(expected, got, where)
        return UserError(f"{text} ({where})")
    m = re.match(r"the following arguments are required: (.*)$", message)
    if m:
        return UserError(f"{m.group(1)} (required)", "nothing", prog)
    m = re.match(r"unrecognized arguments: (.*)$", message)
    if m:
        return UserError("options the command knows (see vitcod <command> --help)", m.group(1), prog)
    return UserError(f"{message} ({prog})")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line in the three-part form (no usage block), exit 2."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        self.exit(USAGE_EXIT, one_line(_argparse_parts(message, self.prog)) + "\n")


# ---- option types (argparse calls them; ArgumentTypeError("<expected>, got <came>")) ------------


def _fail(expected: str, got: object) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{expected}, got {got}")


def _number(text: str, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _fail(expected, repr(text)) from None
    if not math.isfinite(value):
        raise _fail(expected, text)
    return value


def _integer(text: str, minimum: int, maximum: int | None = None) -> int:
    expected = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
    try:
        value = int(text)
    except ValueError:
        raise _fail(expected, repr(text)) from None
    if value < minimum or (maximum is not None and value > maximum):
        raise _fail(expected, value)
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (epochs)."""
    return _integer(text, 1)


def seed(text: str) -> int:
    """A seed numpy and TensorFlow accept: 0 .. 2**32 - 1."""
    return _integer(text, 0, 2**32 - 1)


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rate, clock period)."""
    value = _number(text, "a finite number > 0")
    if value <= 0:
        raise _fail("a finite number > 0", text)
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (a loss weight)."""
    value = _number(text, "a finite number >= 0")
    if value < 0:
        raise _fail("a finite number >= 0", text)
    return value


SPARSITY_EXPECTED = "a sparsity in (0, 1) with at most two decimals (stage folders are sparse_<s:.2f>)"


def sparsity(text: str) -> float:
    """A target sparsity strictly between 0 and 1, naming a stage folder exactly (two decimals)."""
    value = _number(text, SPARSITY_EXPECTED)
    if not 0.0 < value < 1.0 or abs(round(value, 2) - value) > 1e-12:
        raise _fail(SPARSITY_EXPECTED, text)
    return round(value, 2)


def fraction(text: str) -> float:
    """A sparsity strictly between 0 and 1, any precision (what a mask made elsewhere should have)."""
    value = _number(text, "a sparsity in (0, 1)")
    if not 0.0 < value < 1.0:
        raise _fail("a sparsity in (0, 1)", text)
    return value


THRESHOLD_EXPECTED = "a fraction of the tokens in (0, 1] (e.g. 0.5) or a whole number of query rows >= 1 (e.g. 3)"


def global_threshold(text: str) -> float | int:
    """'0.5' -> a fraction of N in (0, 1]; '3' -> an absolute count of query rows >= 1."""
    text = text.strip()
    if text.isdigit():
        if int(text) < 1:
            raise _fail(THRESHOLD_EXPECTED, text)
        return int(text)
    value = _number(text, THRESHOLD_EXPECTED)
    if not 0.0 < value <= 1.0:
        raise _fail(THRESHOLD_EXPECTED, text)
    return value


def existing_file(text: str) -> Path:
    """A path to an existing regular file."""
    path = Path(text)
    if path.is_dir():
        raise _fail("a file", f"{text}, a folder")
    if not path.is_file():
        raise _fail("an existing file", f"{text}, which does not exist")
    return path


def dataset(text: str) -> str:
    """'digits' or 'mnist' (bundled) or an existing .npz file."""
    if text in ("digits", "mnist"):
        return text
    path = Path(text)
    if not path.is_file():
        raise _fail("'digits', 'mnist' or an existing .npz file", f"{text}, which " +
                    ("is a folder" if path.is_dir() else "does not exist"))
    return text


def non_empty(text: str) -> str:
    """A non-blank string (an FPGA part)."""
    if not text.strip():
        raise _fail("a non-empty value", repr(text))
    return text.strip()


def writable_folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (created as) a folder we write into, or None if it can."""
    if path.exists() and not path.is_dir():
        return f"{path}, which is a file"
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return f"{path}, on no existing folder"
        probe = probe.parent
    if not probe.is_dir():
        return f"{path}, under the file {probe}"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{path}, where {probe} is not writable"
    return None


def writable_folder(text: str) -> Path:
    """A folder that exists or can be created, and can be written into."""
    path = Path(text)
    problem = writable_folder_problem(path)
    if problem:
        raise _fail("a folder that can be written", problem)
    return path


def npz_output(text: str) -> Path:
    """An output file ending in .npz whose folder can be written (created if needed)."""
    path = Path(text)
    if path.suffix != ".npz":
        raise _fail("an output path ending in .npz", text)
    if path.is_dir():
        raise _fail("an output .npz file", f"{text}, a folder")
    problem = writable_folder_problem(path.parent)
    if problem:
        raise _fail("an output .npz in a folder that can be written", problem)
    return path


# ---- the run folder (before any stage is imported) -----------------------------------------------


def check_run_dir(run_dir: Path, produced_by: str = "`python -m vitcod train`") -> Path:
    """An existing run folder (the commands after ``train`` read what earlier stages wrote)."""
    if run_dir.is_dir():
        return run_dir
    got = f"{run_dir}, which is a file" if run_dir.exists() else f"{run_dir}, which does not exist"
    raise MissingFileError(f"an existing run folder (made by {produced_by})", got, "--run-dir")


def available_stages(run_dir: Path) -> list[str]:
    """Stage folders of a run that hold a trained model."""
    from .model.run_layout import MODEL_FILE

    return sorted(p.name for p in run_dir.iterdir() if (p / MODEL_FILE).is_file()) if run_dir.is_dir() else []


def check_stage(run_dir: Path, stage: str, option: str | None = "--stage"):
    """The ViTConfig of ``<run_dir>/<stage>`` after checking its model.h5 and config.json.

    ``option`` names the option that chose the stage (None: the command's fixed input stage).
    """
    from .model.run_layout import check_model_folder, stage_dir

    check_run_dir(run_dir)
    folder = stage_dir(run_dir, stage)
    if option is not None and not folder.is_dir():
        stages = available_stages(run_dir)
        raise MissingFileError(f"a trained stage of {run_dir} ({', '.join(stages) or 'none trained yet'})",
                               repr(stage), option)
    return check_model_folder(folder)
