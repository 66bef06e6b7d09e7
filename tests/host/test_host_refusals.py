"""Every user error of the host gets one clear line (issue #15, part 2): a table of the careless
inputs seen - on the command line (``python -m vitcod.host``) and through the API - each asserting
the exact refusal, exit status 2, and that no traceback is printed unless ``-v`` or
``VITCOD_TRACEBACK=1`` asks for one."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from json_edit import set_path
from overlay_factory import MAX_BATCH, make_overlay

import vitcod.host.__main__ as cli
from vitcod.host import InputError, MetadataError, OverlayMetadata, WireFormatError, contract, open_driver
from vitcod.host import pack as fast_pack

pytestmark = pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:DeprecationWarning",
                                        "ignore:No devices found:UserWarning")


@pytest.fixture(scope="module")
def files(tmp_path_factory, overlays) -> dict[str, Path]:
    """Artifacts, good and broken, that the table's command lines name."""
    root = tmp_path_factory.mktemp("refusals")
    good = np.random.default_rng(0).uniform(-4, 4, size=(5, 23))
    np.save(root / "x.npy", good)
    np.save(root / "y.npy", np.arange(5))
    np.save(root / "y3.npy", np.arange(3))
    (root / "empty.npy").write_bytes(b"")
    (root / "empty.npz").write_bytes(b"")
    (root / "truncated.npy").write_bytes((root / "x.npy").read_bytes()[:200])
    np.savez(root / "x.npz", images=good)
    (root / "truncated.npz").write_bytes((root / "x.npz").read_bytes()[:300])
    np.savez(root / "nokey.npz", pictures=good)
    (root / "latin1.json").write_bytes(b'{"name": "caf\xe9"}')
    (root / "readonly").mkdir()
    (root / "readonly").chmod(0o555)
    folders = {"ok": overlays["fixed12"].folder}
    for name, edit in {
        "latin1_meta": None,
        "files_list": set_path("files", ["vitcod.bit", "vitcod.hwh"]),
        "files_str": set_path("files.bitstream", "vitcod.bit"),
        "reg_past_space": set_path("ip.registers.max_batch.offset", 0x20000),
        "reg_duplicate": set_path("ip.registers.status.offset", 0x18),
        "type_edited": lambda meta: meta["input"].update(type="ap_fixed<11,4>", width=11),  # same word geometry
    }.items():
        folders[name] = make_overlay(root / name, edit=edit).folder
    (folders["latin1_meta"] / "vitcod.json").write_bytes(b"\xff\xfe{}")
    return {**{k: root / k for k in ("x.npy", "y.npy", "y3.npy", "empty.npy", "empty.npz", "truncated.npy",
                                    "x.npz", "truncated.npz", "nokey.npz", "latin1.json", "readonly")},
            **{f"overlay:{k}": v for k, v in folders.items()}, "root": root}


def resolve(files, argv):
    """The command line with "@name[/more]" replaced by the fixture's path of `name` (+ /more)."""
    def one(a):
        if not (isinstance(a, str) and a.startswith("@")):
            return str(a)
        key, _, rest = a[1:].partition("/") if not a.startswith("@overlay:") else (a[1:], "", "")
        return str(files[key] / rest) if rest else str(files[key])
    return [one(a) for a in argv]


CSIM = ("--backend", "csim", "--overlay", "@overlay:ok")
PREDICT = ("predict", *CSIM, "--images", "@x.npy")

# (command line, the refusal's text); "@name" stands for a path of the `files` fixture.
CLI_CASES = {
    "batch_size_negative": ((*PREDICT, "--batch-size", "-1"), "expected an integer >= 1, got '-1' (--batch-size)"),
    "batch_size_zero": ((*PREDICT, "--batch-size", "0"), "expected an integer >= 1, got '0' (--batch-size)"),
    "batch_size_above_max": ((*PREDICT, "--batch-size", str(MAX_BATCH + 1)),
                             f"expected an integer in 1..{MAX_BATCH} (what one transfer of this overlay carries), "
                             f"got {MAX_BATCH + 1} (--batch-size)"),
    "batch_size_text": ((*PREDICT, "--batch-size", "abc"), "expected an integer >= 1, got 'abc' (--batch-size)"),
    "limit_negative": ((*PREDICT, "--limit", "-1"), "expected an integer >= 1, got '-1' (--limit)"),
    "max_batch_zero": (("predict", "--backend", "csim", "--network", "@latin1.json", "--max-batch", "0",
                        "--images", "@x.npy"), "expected an integer >= 1, got '0' (--max-batch)"),
    "timeout_nan": ((*PREDICT, "--timeout", "nan"), "expected a finite number of seconds > 0, got 'nan' (--timeout)"),
    "timeout_inf": ((*PREDICT, "--timeout", "inf"), "got 'inf' (--timeout)"),
    "timeout_negative": ((*PREDICT, "--timeout", "-1"), "expected a finite number of seconds > 0, got '-1' (--timeout)"),
    "timeout_zero": ((*PREDICT, "--timeout", "0"), "got '0' (--timeout)"),
    "timeout_text": ((*PREDICT, "--timeout", "abc"), "got 'abc' (--timeout)"),
    "output_missing_folder": ((*PREDICT, "--output", "@root/missing/p.npy"),
                              "expected an existing folder for p.npy, got"),
    "output_not_npy": ((*PREDICT, "--output", "@root/out.txt"), "expected a file name ending in .npy, got"),
    "output_not_writable": ((*PREDICT, "--output", "@readonly/p.npy"), "expected a writable file, got"),
    "bench_repeats_zero": (("bench", *CSIM, "--repeats", "0"), "expected an integer >= 1, got '0' (--repeats)"),
    "bench_repeats_negative": (("bench", *CSIM, "--repeats", "-1"), "expected an integer >= 1, got '-1' (--repeats)"),
    "pynq_without_a_board": (("predict", "--overlay", "@overlay:ok", "--images", "@x.npy"),
                             "expected a PYNQ board for the pynq backend, got none on this machine"),
    "pynq_without_overlay": (("predict", "--images", "@x.npy"), "expected --overlay DIR (vitcod.json, vitcod.bit, "
                                                                "vitcod.hwh), got neither (--overlay)"),
    "images_missing": (("predict", *CSIM, "--images", "@root/nothing.npy"), "expected an existing file, got"),
    "images_empty_npy": (("predict", *CSIM, "--images", "@empty.npy"),
                         "expected a .npy or .npz file of images, got a file numpy cannot read (No data left in file)"),
    "images_empty_npz": (("predict", *CSIM, "--images", "@empty.npz"), "got a file numpy cannot read"),
    "images_truncated_npy": (("predict", *CSIM, "--images", "@truncated.npy"), "got a file numpy cannot read"),
    "images_truncated_npz": (("predict", *CSIM, "--images", "@truncated.npz"), "got a file numpy cannot read"),
    "images_wrong_key": (("predict", *CSIM, "--images", "@nokey.npz"),
                         "expected images under one of ['images', 'x', 'x_test'], got keys ['pictures']"),
    "labels_missing": ((*PREDICT, "--labels", "@root/nothing.npy"), "expected an existing file, got"),
    "labels_count": ((*PREDICT, "--labels", "@y3.npy"), "expected 5 integer labels (one per image), got 3"),
    "network_not_utf8": (("predict", "--backend", "csim", "--network", "@latin1.json", "--max-batch", "4",
                          "--images", "@x.npy"),
                         "expected UTF-8 JSON text, got byte 0xe9 at offset 13: not UTF-8 (network description "),
    "metadata_not_utf8": (("predict", "--backend", "csim", "--overlay", "@overlay:latin1_meta", "--images", "@x.npy"),
                          "expected UTF-8 JSON text, got byte 0xff at offset 0: not UTF-8 (overlay metadata "),
    "files_wrong_json_type": (("predict", "--backend", "emulated", "--overlay", "@overlay:files_list",
                               "--images", "@x.npy"), "$.files: expected an object of"),
    "files_entry_wrong_type": (("predict", "--backend", "emulated", "--overlay", "@overlay:files_str",
                                "--images", "@x.npy"), "$.files: expected an object of"),
    "register_past_the_space": (("predict", "--backend", "emulated", "--overlay", "@overlay:reg_past_space",
                                 "--images", "@x.npy"),
                                "$.ip.registers.max_batch.offset is 0x20000, wire format 2 puts it at 0x60"),
    "register_duplicate": (("predict", "--backend", "emulated", "--overlay", "@overlay:reg_duplicate",
                            "--images", "@x.npy"), "$.ip.registers.status.offset 0x18 is also the offset of batch_done"),
    "description_mismatch": (("predict", "--backend", "emulated", "--overlay", "@overlay:type_edited",
                              "--images", "@x.npy"), "input.type: declared ap_fixed<11,4>, the IP reports "
                                                     "ap_fixed<12,4,AP_TRN,AP_WRAP,0> (register in_type)"),
    "bad_backend": ((*PREDICT[:1], "--backend", "gpu", "--images", "@x.npy"), "invalid choice: 'gpu'"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_user_errors_print_one_line_and_exit_2(files, capsys, monkeypatch, case):
    monkeypatch.delenv("VITCOD_TRACEBACK", raising=False)
    if case == "output_not_writable" and os.geteuid() == 0:
        pytest.skip("root may write into a read-only folder")
    argv, message = CLI_CASES[case]
    code = cli.main(resolve(files, argv))
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert "Traceback" not in err and out == ""


def test_cli_output_is_checked_before_any_work(files, capsys, monkeypatch):
    opened = []
    monkeypatch.setattr(cli, "open_driver", lambda *a, **k: opened.append(a))
    code = cli.main(resolve(files, (*PREDICT, "--output", "@root/missing/p.npy")))
    assert code == 2 and opened == []  # refused before the driver was even opened


def test_cli_writes_exactly_the_file_named(files, capsys):
    target = files["root"] / "probabilities.npy"
    code = cli.main(resolve(files, (*PREDICT, "--output", target)))
    assert code == 0 and target.is_file() and not Path(str(target) + ".npy").exists()
    assert np.load(target).shape == (5, 7)
    assert f"probabilities written to {target}" in capsys.readouterr().out


@pytest.mark.parametrize("how", ["-v", "--verbose", "VITCOD_TRACEBACK"])
def test_the_traceback_on_request(files, capsys, monkeypatch, how):
    argv = resolve(files, ("predict", "--backend", "csim", "--overlay", "@overlay:latin1_meta", "--images", "@x.npy"))
    if how == "VITCOD_TRACEBACK":
        monkeypatch.setenv("VITCOD_TRACEBACK", "1")
    else:
        argv.insert(1, how)  # after the command, as the other options
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback (most recent call last)" in err and "MetadataError" in err
    assert err.rstrip().splitlines()[-1].startswith("error: ")


def test_internal_errors_keep_their_traceback(files, monkeypatch):
    def bug(args):
        raise ZeroDivisionError("a bug, not a user error")
    monkeypatch.setattr(cli, "cmd_predict", bug)
    with pytest.raises(ZeroDivisionError):
        cli.main(resolve(files, PREDICT))


def test_device_faults_exit_1_with_one_line(files, capsys, monkeypatch):
    from vitcod.host import DeviceTimeoutError

    def hang(*args, **kwargs):
        raise DeviceTimeoutError("a transfer of 5 images did not finish within 1 s", ["S2MM idle"], 1.0)
    real_open = cli._open

    def open_hanging(args):
        driver = real_open(args)
        driver.predict = hang
        return driver
    monkeypatch.setattr(cli, "_open", open_hanging)
    code = cli.main(resolve(files, PREDICT))
    err = capsys.readouterr().err
    assert code == 1 and err == "error: a transfer of 5 images did not finish within 1 s\n"


def test_the_module_exits_2_with_one_line(files):
    proc = subprocess.run([sys.executable, "-m", "vitcod.host", *resolve(files, (*PREDICT, "--timeout", "nan"))],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == "error: expected a finite number of seconds > 0, got 'nan' (--timeout)\n"


# ---- the API -------------------------------------------------------------------------------------------
@pytest.fixture()
def driver(overlays):
    return open_driver(overlays["fixed12"].folder, backend="csim")


API_CASES = {
    "ragged_list": (lambda d: d.predict([[0.0] * 23, [0.0] * 22]), InputError,
                    "images must be a rectangular array (batch, 23), got a list numpy cannot make one of"),
    "throughput_batch_text": (lambda d: d.throughput_test(batch_size="abc"), ValueError,
                              "batch_size must be a positive integer, got 'abc'"),
    "throughput_batch_float": (lambda d: d.throughput_test(batch_size=2.7), ValueError,
                               "batch_size must be a positive integer, got 2.7"),
    "throughput_repeats_zero": (lambda d: d.throughput_test(repeats=0), ValueError,
                                "repeats must be an integer in >= 1, got 0"),
    "batch_size_float": (lambda d: setattr(d, "batch_size", 2.0), ValueError,
                         "batch_size must be a positive integer, got 2.0"),
    "timeout_text": (lambda d: setattr(d, "timeout", "abc"), ValueError,
                     "timeout must be a number of seconds (finite, > 0), got 'abc'"),
    "timeout_nan": (lambda d: setattr(d, "timeout", math.nan), ValueError,
                    "timeout must be a finite number of seconds above 0, got nan"),
    "timeout_per_call": (lambda d: d.predict(np.zeros((1, 23)), timeout=-1), ValueError,
                         "timeout must be a finite number of seconds above 0, got -1"),
    "pack_negative_width": (lambda d: fast_pack(np.zeros((1, 3), np.int64), -1, True), WireFormatError,
                            "value width must be an integer in 1..62 bits, got -1"),
    "contract_pack_negative_width": (lambda d: contract.pack(np.zeros((1, 3), np.int64), -1, True), WireFormatError,
                                     "value width must be an integer in 1..62 bits, got -1"),
    "unpack_zero_width": (lambda d: contract.unpack(np.zeros(2, np.uint64), 3, 0, True), WireFormatError,
                          "value width must be an integer in 1..62 bits, got 0"),
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_api_misuse_is_refused_by_name(driver, case):
    call, error, message = API_CASES[case]
    with pytest.raises(error) as err:
        call(driver)
    assert message in str(err.value), str(err.value)
    assert driver.timeout == 10.0 and driver.batch_size == MAX_BATCH  # nothing half-set


@pytest.mark.parametrize("timeout", [math.nan, 0, -1.0, math.inf, "1", True])
@pytest.mark.parametrize("backend", ["csim", "emulated"])
def test_bad_timeouts_are_refused_at_open(overlays, backend, timeout):
    with pytest.raises(ValueError, match="timeout must be a"):
        open_driver(overlays["fixed12"].folder, backend=backend, timeout=timeout)


@pytest.mark.parametrize("name, offset, message", [
    ("status", 0x18, "register status: offset 0x18 is already taken by batch_done"),
    ("max_batch", 0x20000, "register max_batch: expected a word offset in 0x10..0xfffc, got 131072"),
    ("in_words", 0x44, "register in_words: offset 0x44 is already taken by in_values"),  # in_values' ap_vld
    ("batch_count", "0x10", "register batch_count: expected an integer offset, got '0x10'"),
])
def test_a_register_map_the_emulated_board_cannot_hold_is_refused(overlays, name, offset, message):
    from vitcod.host.emulated import EmulatedDevice

    regs = {**overlays["fixed12"].metadata.registers, name: offset}
    with pytest.raises(ValueError) as err:
        EmulatedDevice(None, "vitcod:hls:vitcod_top:1.0", regs)
    assert str(err.value) == message


def test_metadata_errors_name_the_file(files):
    with pytest.raises(MetadataError, match=r"got byte 0xe9 at offset 13: not UTF-8 \(network description .*latin1.json\)"):
        contract.NetworkDescription.load(files["latin1.json"])
    bad = json.loads((files["overlay:ok"] / "vitcod.json").read_text())
    bad["files"] = {"bitstream": "vitcod.bit"}
    with pytest.raises(MetadataError, match=r"\$\.files: expected an object"):
        OverlayMetadata.from_dict(bad)
