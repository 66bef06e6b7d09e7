"""Every user error of ``python -m vitcod`` is one line ``error: <expected>, got <came> (<where>)`` on
stderr with exit status 2 and no traceback (``-v`` / ``VITCOD_TRACEBACK=1`` add it); internal errors
keep theirs. Fast: tiny artifacts in tmp folders, no training, no TensorFlow import for these cases
(the run folder is checked before any stage is imported)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vitcod.__main__ import main

REPO = Path(__file__).resolve().parents[2]


def write_artifacts(root: Path) -> dict[str, Path]:
    """A tiny run folder (config, HDF5 model placeholders, metrics, statistics, masks at 0.70) and
    the broken files of the table; returns named paths."""
    import h5py

    from vitcod.model.config import ViTConfig
    from vitcod.model.mask_artifact import save_mask_artifact
    from vitcod.model.masks import AttentionStatistics, mask_for_sparsity

    run = root / "run"
    config = ViTConfig(image_size=4, embed_dim=8, num_heads=2, depth=1)
    for stage in ("dense", "ae"):
        (run / stage).mkdir(parents=True)
        config.save(run / stage / "config.json")
        h5py.File(run / stage / "model.h5", "w").close()  # opens as HDF5: enough for the checks
        (run / stage / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5, "float_test_accuracy": 0.5}))
    rng = np.random.default_rng(0)
    n = config.num_tokens
    probs = rng.random((3, config.depth, config.num_heads, n, n))
    stats = AttentionStatistics()
    stats.update(probs / probs.sum(-1, keepdims=True))
    stats.save(run / "statistics" / "attention_mean.npz")
    mask, cut = mask_for_sparsity(stats.mean(), 0.7, tolerance=0.05)
    save_mask_artifact(run / "sparse_0.70" / "masks.npz", mask, 0.5, info_cut=cut, target_sparsity=0.7)
    (run / "sparse_0.70" / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5, "float_test_accuracy": 0.5}))

    def variant(name: str, edit) -> None:
        shutil.copytree(run, root / name)
        edit(root / name)

    def truncate(path: Path) -> None:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    variant("bad_masks", lambda r: truncate(r / "sparse_0.70" / "masks.npz"))
    variant("bad_metrics", lambda r: (r / "ae" / "metrics.json").write_bytes(b'{"test_accuracy": "\xe9"}'))
    variant("no_ae_metrics", lambda r: (r / "ae" / "metrics.json").unlink())
    variant("no_stats", lambda r: shutil.rmtree(r / "statistics"))
    variant("bad_stats", lambda r: truncate(r / "statistics" / "attention_mean.npz"))
    variant("bad_model", lambda r: (r / "dense" / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 20))
    variant("hls_file", lambda r: (r / "hls").write_text("a file where the HLS projects go\n"))
    variant("bad_config", lambda r: (r / "dense" / "config.json").write_text("{\"depth\": 1,}"))

    files = root / "files"
    files.mkdir()
    np.save(files / "keep.npy", mask)
    np.save(files / "authors.npy", ~mask)  # True = pruned
    np.save(files / "nonsquare.npy", mask[..., :-1])
    np.save(files / "float.npy", mask.astype(np.float32))
    (files / "empty.npy").write_bytes(b"")
    truncated = files / "truncated.npy"
    np.save(truncated, mask)
    truncate(truncated)
    (files / "a_file").write_text("not a folder\n")
    x = rng.integers(0, 256, (40, 4, 4), dtype=np.uint8)
    y = np.arange(40) % 4
    np.savez(files / "data.npz", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8])
    np.savez(files / "data_no_test.npz", x_train=x, y_train=y, x_test=x[:8])
    shutil.copy(files / "data.npz", files / "data_truncated.npz")
    truncate(files / "data_truncated.npz")
    (files / "data_empty.npz").write_bytes(b"")
    (files / "data_text.npz").write_text("x_train,y_train\n1,2\n")
    np.savez(files / "data_float.npz", x_train=x * 1.0, y_train=y, x_test=x[:8] * 1.0, y_test=y[:8])
    (files / "cfg_latin1.json").write_bytes(b'{"image_size": 4, "name": "\xe9"}')
    (files / "cfg_invalid.json").write_text('{"image_size": 4,')
    (files / "cfg_unknown.json").write_text(json.dumps({"image_size": 4, "heads": 2}))
    (files / "cfg_zero.json").write_text(json.dumps({"image_size": 4, "embed_dim": 0}))
    (files / "cfg_mismatch.json").write_text(json.dumps({"image_size": 8, "num_classes": 4}))
    (files / "cfg_ok.json").write_text(json.dumps({"image_size": 4, "num_classes": 4, "embed_dim": 8,
                                                   "num_heads": 2, "depth": 1}))
    return {"root": root, "run": run, "files": files}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return write_artifacts(tmp_path_factory.mktemp("cli"))


SPARSITY = "a sparsity in (0, 1) with at most two decimals"
THRESHOLD = "a fraction of the tokens in (0, 1]"

# (id, arguments ({root}, {run}, {files} are replaced), the message it must contain, where it points)
CASES = [
    # option values, checked by argparse
    ("sparsity 1.5", "masks --run-dir {run} --sparsity 1.5", f"{SPARSITY} (stage folders are sparse_<s:.2f>), got 1.5",
     "--sparsity"),
    ("sparsity 0", "masks --run-dir {run} --sparsity 0", f"{SPARSITY}", "--sparsity"),
    ("sparsity -0.1", "masks --run-dir {run} --sparsity -0.1", "got -0.1", "--sparsity"),
    ("sparsity 1.0", "masks --run-dir {run} --sparsity 1.0", "got 1.0", "--sparsity"),
    ("sparsity nan", "masks --run-dir {run} --sparsity nan", "got nan", "--sparsity"),
    ("sparsity 3 decimals", "masks --run-dir {run} --sparsity 0.905", "got 0.905", "--sparsity"),
    ("finetune sparsity", "finetune --run-dir {run} --sparsity 0.9 inf", "got inf", "--sparsity"),
    ("report sparsity", "report --run-dir {run} --sparsity -1", "got -1", "--sparsity"),
    ("demo main sparsity", "demo --run-dir {root}/demo --main-sparsity 1", "got 1", "--main-sparsity"),
    ("threshold abc", "masks --run-dir {run} --global-threshold abc", f"{THRESHOLD}", "--global-threshold"),
    ("threshold 0", "masks --run-dir {run} --global-threshold 0", "got 0", "--global-threshold"),
    ("threshold 1.5", "masks --run-dir {run} --global-threshold 1.5", "got 1.5", "--global-threshold"),
    ("threshold nan", "import-masks {files}/keep.npy --convention keep --out {root}/o.npz --global-threshold nan",
     "got nan", "--global-threshold"),
    ("epochs -1", "train --run-dir {root}/t --epochs -1", "an integer >= 1, got -1", "--epochs"),
    ("epochs 0", "demo --run-dir {root}/t --epochs 0", "an integer >= 1, got 0", "--epochs"),
    ("epochs 2.5", "train --run-dir {root}/t --epochs 2.5", "an integer >= 1, got '2.5'", "--epochs"),
    ("finetune epochs", "autoencoder --run-dir {run} --finetune-epochs 0", "an integer >= 1, got 0", "--finetune-epochs"),
    ("ae epochs", "demo --run-dir {root}/t --ae-epochs -3", "an integer >= 1, got -3", "--ae-epochs"),
    ("lr nan", "autoencoder --run-dir {run} --finetune-lr nan", "a finite number > 0, got nan", "--finetune-lr"),
    ("lr 0", "finetune --run-dir {run} --finetune-lr 0", "a finite number > 0, got 0", "--finetune-lr"),
    ("reconstruction weight", "autoencoder --run-dir {run} --reconstruction-weight -1", "a finite number >= 0, got -1",
     "--reconstruction-weight"),
    ("seed -1", "train --run-dir {root}/t --seed -1", "an integer in [0, 4294967295], got -1", "--seed"),
    ("clock 0", "hls --run-dir {run} --clock 0", "a finite number > 0, got 0", "--clock"),
    ("clock nan", "csim --run-dir {run} --clock nan", "a finite number > 0, got nan", "--clock"),
    ("part blank", "hls --run-dir {run} --part ' '", "a non-empty value, got ' '", "--part"),
    ("backend", "hls --run-dir {run} --backend Quartus", "one of 'Vitis', 'Vivado', got 'Quartus'", "--backend"),
    ("dataset missing", "train --run-dir {root}/t --dataset {files}/none.npz",
     "'digits', 'mnist' or an existing .npz file, got {files}/none.npz, which does not exist", "--dataset"),
    ("dataset folder", "evaluate --run-dir {run} --dataset {files}", "which is a folder", "--dataset"),
    ("config missing", "train --run-dir {root}/t --config {files}/none.json", "an existing file, got", "--config"),
    ("hls out under a file", "hls --run-dir {run} --out {files}/a_file/project",
     "a folder that can be written, got {files}/a_file/project, under the file {files}/a_file", "--out"),
    ("import source missing", "import-masks {files}/none.npy --convention keep --out {root}/o.npz",
     "an existing file, got {files}/none.npy, which does not exist", "source"),
    ("import out not npz", "import-masks {files}/keep.npy --convention keep --out {root}/o.txt",
     "an output path ending in .npz, got {root}/o.txt", "--out"),
    ("import out under a file", "import-masks {files}/keep.npy --convention keep --out {files}/a_file/o.npz",
     "an output .npz in a folder that can be written, got {files}/a_file, which is a file", "--out"),
    ("import convention missing", "import-masks {files}/keep.npy --out {root}/o.npz", "--convention (required), "
     "got nothing", "vitcod import-masks"),
    ("import convention value", "import-masks {files}/keep.npy --convention true --out {root}/o.npz",
     "one of 'keep', 'pruned', got 'true'", "--convention"),
    ("import expected sparsity", "import-masks {files}/keep.npy --convention keep --out {root}/o.npz --sparsity 1.5",
     "a sparsity in (0, 1), got 1.5", "--sparsity"),
    ("unknown command", "trian", "one of 'train', 'evaluate'", "vitcod"),
    ("no command", "", "command (required), got nothing", "vitcod"),
    ("unknown option", "masks --run-dir {run} --sparsty 0.9", "options the command knows", "vitcod"),
    # the run folder and the files a command reads (checked before TensorFlow is imported)
    ("run dir missing", "masks --run-dir {root}/nope", "an existing run folder (made by `python -m vitcod train`), "
     "got {root}/nope, which does not exist", "--run-dir"),
    ("run dir missing report", "report --run-dir {root}/nope", "got {root}/nope, which does not exist", "--run-dir"),
    ("run dir is a file", "statistics --run-dir {files}/a_file", "got {files}/a_file, which is a file", "--run-dir"),
    ("train run dir is a file", "train --run-dir {files}/a_file",
     "a run folder that can be written, got {files}/a_file, which is a file", "--run-dir"),
    ("stage missing", "evaluate --run-dir {run} --stage sparse_0.90",
     "a trained stage of {run} (ae, dense), got 'sparse_0.90'", "--stage"),
    ("hls stage missing", "hls --run-dir {run}", "got 'sparse_0.90'", "--stage"),
    ("csim stage without model", "csim --run-dir {run} --stage sparse_0.70",
     "a trained model (model.h5) - run `make train` (or the stage that writes this folder) first, got no such file",
     "{run}/sparse_0.70/model.h5"),
    ("csim project folder is a file", "csim --run-dir {root}/hls_file --stage ae",
     "an HLS project folder that can be written, got {root}/hls_file/hls/ae, under the file {root}/hls_file/hls",
     "--run-dir"),
    ("model.h5 unreadable", "evaluate --run-dir {root}/bad_model --stage dense",
     "a Keras model file (model.h5) that HDF5 can open, got an unreadable file", "{root}/bad_model/dense/model.h5"),
    ("stage config invalid", "autoencoder --run-dir {root}/bad_config",
     "a ViT config in valid JSON, got Expecting property name enclosed in double quotes at line 1 column 13",
     "{root}/bad_config/dense/config.json"),
    ("statistics missing", "masks --run-dir {root}/no_stats",
     "the attention statistics (written by `python -m vitcod statistics` / `make statistics`), got no such file",
     "{root}/no_stats/statistics/attention_mean.npz"),
    ("statistics truncated", "masks --run-dir {root}/bad_stats",
     "the attention statistics as a readable .npz archive, got a truncated or corrupt archive",
     "{root}/bad_stats/statistics/attention_mean.npz"),
    ("sparsity unreachable", "masks --run-dir {run} --sparsity 0.99",
     "a target sparsity these statistics can reach: the maximum achievable sparsity is", "--sparsity 0.99"),
    ("masks missing", "finetune --run-dir {run} --sparsity 0.8",
     "a mask artifact - run `python -m vitcod masks --sparsity 0.80` first, got no such file",
     "{run}/sparse_0.80/masks.npz"),
    ("report truncated masks", "report --run-dir {root}/bad_masks --sparsity 0.7",
     "a mask artifact (masks.npz) as a readable .npz archive, got a truncated or corrupt archive",
     "{root}/bad_masks/sparse_0.70/masks.npz"),
    ("report metrics not UTF-8", "report --run-dir {root}/bad_metrics",
     "the metrics of stage 'ae' in UTF-8 text, got a byte that is not UTF-8 (0xe9 at byte 19)",
     "{root}/bad_metrics/ae/metrics.json"),
    ("report metrics missing", "report --run-dir {root}/no_ae_metrics",
     "the metrics of stage 'ae' - run that stage first (python -m vitcod ...), got no such file",
     "{root}/no_ae_metrics/ae/metrics.json"),
    ("dataset empty", "train --run-dir {root}/t --dataset {files}/data_empty.npz",
     "a dataset .npz (a .npz archive), got an empty file", "{files}/data_empty.npz"),
    ("dataset truncated", "statistics --run-dir {run} --dataset {files}/data_truncated.npz",
     "a dataset .npz as a readable .npz archive, got a truncated or corrupt archive", "{files}/data_truncated.npz"),
    ("dataset not npz", "train --run-dir {root}/t --dataset {files}/data_text.npz",
     "a dataset .npz as a .npz archive, got a file that is not a .npz archive", "{files}/data_text.npz"),
    ("dataset keys", "train --run-dir {root}/t --dataset {files}/data_no_test.npz",
     "a dataset .npz with the arrays ['x_train', 'y_train', 'x_test', 'y_test'], got no ['y_test']",
     "{files}/data_no_test.npz"),
    ("dataset values", "evaluate --run-dir {run} --stage ae --dataset {files}/data_float.npz",
     "float images scaled to [0, 1], got the range [0.0, 255.0]", "x_train in {files}/data_float.npz"),
    ("dataset vs model", "statistics --run-dir {run}",
     "a dataset of 4x4x1 images and at most 10 classes (as the model of stage 'ae' was trained), got digits: 8x8x1 "
     "images, 10 classes", "--dataset"),
    ("config not UTF-8", "train --run-dir {root}/t --dataset {files}/data.npz --config {files}/cfg_latin1.json",
     "a ViT config file in UTF-8 text, got a byte that is not UTF-8 (0xe9 at byte 27)", "{files}/cfg_latin1.json"),
    ("config invalid JSON", "train --run-dir {root}/t --dataset {files}/data.npz --config {files}/cfg_invalid.json",
     "a ViT config in valid JSON, got Expecting property name enclosed in double quotes", "{files}/cfg_invalid.json"),
    ("config unknown field", "train --run-dir {root}/t --dataset {files}/data.npz --config {files}/cfg_unknown.json",
     "got unknown field(s) ['heads']", "the config's top level in {files}/cfg_unknown.json"),
    ("config bad value", "train --run-dir {root}/t --dataset {files}/data.npz --config {files}/cfg_zero.json",
     "an integer >= 1, got 0", "embed_dim in {files}/cfg_zero.json"),
    ("config vs dataset", "train --run-dir {root}/t --dataset {files}/data.npz --config {files}/cfg_mismatch.json",
     "a config matching the dataset's 4x4x1 images and 4 classes", "{files}/cfg_mismatch.json"),
    ("import source empty", "import-masks {files}/empty.npy --convention keep --out {root}/o.npz",
     "(a .npy or .npz file), got an empty file", "{files}/empty.npy"),
    ("import source truncated", "import-masks {files}/truncated.npy --convention keep --out {root}/o.npz",
     "as a readable .npy file, got a truncated or corrupt file", "{files}/truncated.npy"),
    ("import non-square", "import-masks {files}/nonsquare.npy --convention keep --out {root}/o.npz",
     "a mask array of shape (layers, heads, N, N) with N > 0, got shape (1, 2, 17, 16)", "{files}/nonsquare.npy"),
    ("import float mask", "import-masks {files}/float.npy --convention keep --out {root}/o.npz",
     "a mask of dtype bool (or 0/1 integers), got dtype float32", "{files}/float.npy"),
    ("import inverted", "import-masks {files}/authors.npy --convention keep --out {root}/o.npz",
     "--convention pruned for this file (or --force-convention to import it with --convention keep anyway), got "
     "--convention keep, which reads it inverted: it leaves 2 query row(s) with no kept key, the CLS row in 2 of 2 "
     "heads", "{files}/authors.npy"),
]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse exits from parse_args
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def fill(text: str, world) -> str:
    return text.format(root=world["root"], run=world["run"], files=world["files"])


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_user_error_is_one_line_with_status_2(case, world, capsys, monkeypatch):
    import shlex

    monkeypatch.delenv("VITCOD_TRACEBACK", raising=False)
    _, args, message, where = case
    code, out, err = run_cli(shlex.split(fill(args, world)), capsys)
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    assert fill(message, world) in lines[0], lines[0]
    assert lines[0].endswith(f"({fill(where, world)})"), lines[0]


def test_the_table_needs_no_tensorflow(world, capsys):
    # the cases above are refused before any stage is imported; run in a fresh interpreter to see it
    code = ("import sys; from vitcod.__main__ import main\n"
            f"rc = main(['report', '--run-dir', {str(world['root'] / 'bad_masks')!r}, '--sparsity', '0.7'])\n"
            "print(rc, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.stdout.split() == ["2", "False"], out.stderr


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "VITCOD_TRACEBACK"}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "vitcod", *args], capture_output=True, text=True, cwd=REPO,
                          env=environ, timeout=120)


def test_the_real_command_prints_one_line_and_exits_2(world):
    proc = cli("masks", "--run-dir", str(world["run"]), "--sparsity", "1.5")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: {SPARSITY} (stage folders are sparse_<s:.2f>), got 1.5 (--sparsity)"]
    proc = cli("report", "--run-dir", str(world["root"] / "bad_masks"), "--sparsity", "0.7")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("how", ["-v before", "--verbose after", "VITCOD_TRACEBACK=1"])
def test_verbose_or_the_environment_adds_the_traceback(world, how):
    args = ["masks", "--run-dir", str(world["root"] / "no_stats")]
    if how == "-v before":
        proc = cli("-v", *args)
    elif how == "--verbose after":
        proc = cli(*args, "--verbose")
    else:
        proc = cli(*args, env={"VITCOD_TRACEBACK": "1"})
    assert proc.returncode == 2
    assert proc.stderr.startswith("Traceback (most recent call last):")
    assert "MissingFileError" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("error: the attention statistics")


def test_an_internal_error_keeps_its_traceback(world, monkeypatch, capsys):
    from vitcod import __main__ as cli_module

    def broken(args):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(cli_module, "cmd_report", broken)
    with pytest.raises(RuntimeError, match="a bug of ours"):
        cli_module.main(["report", "--run-dir", str(world["run"]), "--sparsity", "0.7"])
    assert "error:" not in capsys.readouterr().err


def test_the_checked_commands_still_work(world, tmp_path, capsys):
    # the TensorFlow-free commands run through the same checks
    code, out, _ = run_cli(["import-masks", str(world["files"] / "authors.npy"), "--convention", "pruned",
                            "--out", str(tmp_path / "imported" / "masks.npz")], capsys)
    assert code == 0 and (tmp_path / "imported" / "masks.npz").is_file()
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    code, out, _ = run_cli(["masks", "--run-dir", str(run), "--sparsity", "0.7", "0.70", "--global-threshold", "3"],
                           capsys)
    assert code == 0 and out.splitlines() == [str(run / "sparse_0.70" / "masks.npz")]  # 0.7 == 0.70: once
    from vitcod.model.mask_artifact import load_mask_artifact

    assert load_mask_artifact(run / "sparse_0.70" / "masks.npz").threshold == 3
    code, out, err = run_cli(["import-masks", str(world["files"] / "authors.npy"), "--convention", "keep",
                              "--force-convention", "--out", str(tmp_path / "forced.npz")], capsys)
    assert code == 2 and "all-pruned row(s)" in err  # forced, the inverted reading is no mask at all
