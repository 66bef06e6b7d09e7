"""``python -m vitcod.host``: predict (with accuracy when labels are known) and bench, on the csim and
emulated backends (the pynq one needs a board)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from overlay_factory import MAX_BATCH

from vitcod.host import SaturationWarning
from vitcod.host.__main__ import main

pytestmark = pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:DeprecationWarning")


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("backend", ["csim", "emulated"])
def test_predict_npz_with_labels(tmp_path, overlays, capsys, backend):
    ov = overlays["fixed12"]
    fmt = ov.metadata.input.format
    images = np.random.default_rng(3).uniform(fmt.min_value, fmt.max_value, size=(2 * MAX_BATCH + 1, 23))
    expected = np.argmax(ov.net.reference(fmt.quantize(images)[0]), axis=1)
    labels = expected.copy()
    labels[:4] = (labels[:4] + 1) % 7  # four wrong on purpose
    np.savez(tmp_path / "data.npz", images=images, labels=labels)
    code, out, _ = run_cli(capsys, "predict", "--backend", backend, "--overlay", ov.folder,
                           "--images", tmp_path / "data.npz", "--json", "--output", tmp_path / "p.npy")
    assert code == 0
    report = json.loads(out)
    assert report["backend"] == backend and report["images"] == 2 * MAX_BATCH + 1
    assert report["correct"] == 2 * MAX_BATCH + 1 - 4
    assert report["accuracy"] == pytest.approx(report["correct"] / report["images"])
    np.testing.assert_array_equal(np.argmax(np.load(tmp_path / "p.npy"), axis=1), expected)


def test_predict_digits_prints_accuracy(overlays, capsys):
    ov = overlays["digits"]
    with pytest.warns(SaturationWarning, match="ap_ufixed<8,0>"):  # pixels of 1.0 saturate to 255/256
        code, out, _ = run_cli(capsys, "predict", "--backend", "emulated", "--overlay", ov.folder, "--dataset",
                               "digits", "--limit", "50")
    assert code == 0
    assert "50 images in" in out and "accuracy: " in out
    accuracy = float(out.split("accuracy: ")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0


def test_predict_npy_without_labels(tmp_path, overlays, capsys):
    ov = overlays["digits"]
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(0, 1, size=(5, 8, 8, 1)).astype(np.float32))
    code, out, _ = run_cli(capsys, "predict", "--backend", "csim", "--overlay", ov.folder, "--images", tmp_path / "x.npy")
    assert code == 0 and "5 images in" in out and "accuracy" not in out


def test_bench_reports_packing_next_to_a_copy_and_stage_times(overlays, capsys):
    code, out, _ = run_cli(capsys, "bench", "--backend", "csim", "--overlay", overlays["digits"].folder,
                           "--repeats", "2", "--json")
    assert code == 0
    report = json.loads(out)
    packing, stages = report["packing"], report["throughput_test"]
    for name in ("quantize_pack", "copy_packed", "copy_input", "unpack"):
        assert packing[f"{name}[ms]"] > 0 and packing[f"{name}[MB/s]"] > 0
    assert packing["quantize_pack/copy_packed"] == pytest.approx(packing["quantize_pack[ms]"] / packing["copy_packed[ms]"])
    assert stages["batch_size"] == MAX_BATCH and stages["transfer_compute[ms]"] > 0
    code, out, _ = run_cli(capsys, "bench", "--backend", "emulated", "--overlay", overlays["digits"].folder,
                           "--repeats", "1")
    assert code == 0 and "quantize_pack takes" in out and "throughput[images/s]" in out


def test_errors_exit_with_a_message(tmp_path, overlays, capsys):
    bad = np.zeros((2, 23))
    bad[1, 3] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    code, _, err = run_cli(capsys, "predict", "--backend", "csim", "--overlay", overlays["fixed12"].folder,
                           "--images", tmp_path / "bad.npy")
    assert code == 2 and err.startswith("error: images contain 1 NaN/Inf") and err.count("\n") == 1
    code, _, err = run_cli(capsys, "predict", "--images", tmp_path / "bad.npy")
    assert code == 2 and "expected --overlay DIR" in err
    code, _, err = run_cli(capsys, "predict", "--backend", "csim", "--overlay", tmp_path, "--images", tmp_path / "bad.npy")
    assert code == 2 and "expected the overlay metadata (the overlay build writes it next to vitcod.bit: make -C " \
        f"overlay bitstream, or unpack vitcod-<board>.tar.gz), got no such file ({tmp_path / 'vitcod.json'})" in err
    # (every other refusal of the command line: tests/host/test_host_refusals.py)


def test_module_entry_point():
    proc = subprocess.run([sys.executable, "-m", "vitcod.host", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "predict" in proc.stdout and "bench" in proc.stdout
