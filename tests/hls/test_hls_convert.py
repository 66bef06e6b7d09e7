"""Tests for the hls4ml translation (vitcod.hls: extension, convert, profiling, precision, network_csim).

One tiny ViT (patch 2 -> 17 tokens, embed 16, depth 1, 2 heads, Q/K auto-encoder, fixed masks with
edge cases: query rows whose only key is CLS, a fully dense row, a head with no global token at all)
is trained for a few epochs on the digits, converted with our extension and compiled ONCE (module
fixture); the tests then check, against that one C-simulation library:

* the whole model against QKeras on the test split. Tolerance, and why: hls4ml's standard layers are
  NOT bit-exact with QKeras - Keras computes in float32 with quantized weights, hls4ml in ap_fixed
  with 12 fraction bits per activation and a 1/sqrt lookup table in LayerNorm (step error up to ~1%
  of the normalized values) - so only the top-1 decision is required to agree (>= 97% of the test
  images; images whose two best classes are closer than these rounding errors may flip) and the
  probabilities to stay within 0.05;
* each of OUR layers inside the compiled model (embed, Q/K encoders and decoders, attention) bit for
  bit against its numpy golden model, given the layer's actual traced inputs;
* the LayerNorm range fix (variances > 1) against a float LayerNorm on its traced input;
* the written project under ``g++ -std=c++11 -fsyntax-only``.

Rejections (io_type, backend, mask artifacts that do not fit, scores that do not fit, precisions
that overflow the profile) are checked on the same saved model; none of them may write a file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from edge_case_masks import edge_case_masks

from vitcod.model.run_layout import DEFAULT_HLS_STAGE, MASKS_FILE

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ for the C-simulation")

TEST_IMAGES = 360
TRACE_IMAGES = 24
PROFILE_IMAGES = 400


# =============================================================================================
# Fixtures: the tiny trained model (conftest.py), converted and compiled once
# =============================================================================================


@pytest.fixture(scope="module")
def compiled(tiny_run, digits, tmp_path_factory):
    """The tiny model converted, written, compiled (with trace hooks), run on the test split and traced."""
    from vitcod.hls.convert import convert
    from vitcod.hls.network_csim import compile_project, trace_layers

    out = tmp_path_factory.mktemp("tiny_hls") / "prj"
    hls_model = convert(tiny_run, out, data=digits, profile_samples=PROFILE_IMAGES)
    compile_seconds = compile_project(hls_model, trace=True)
    x = digits.x_test[:TEST_IMAGES]
    y_csim = np.asarray(hls_model.predict(np.ascontiguousarray(x, dtype=np.float64))).reshape(len(x), -1)
    _, traces = trace_layers(hls_model, x[:TRACE_IMAGES])
    return {"hls_model": hls_model, "out": out, "compile_seconds": compile_seconds, "y_csim": y_csim,
            "traces": traces, "x": x}


# =============================================================================================
# Registration
# =============================================================================================


def test_register_is_idempotent():
    import hls4ml
    from hls4ml.converters.keras_v2_to_hls import get_layer_handlers
    from hls4ml.model.optimizer.optimizer import optimizer_map

    from vitcod.hls import extension

    extension.register()
    templates_before = sorted(k for k in optimizer_map if "vitcod" in k)
    handlers_before = dict(get_layer_handlers())
    extension.register()
    extension.register(("Vitis",))
    assert extension.is_registered()
    assert sorted(k for k in optimizer_map if "vitcod" in k) == templates_before
    assert len(templates_before) == 2 * len(extension._classes()[1])
    assert dict(get_layer_handlers()) == handlers_before
    for keras_name in ("ClassTokenPosition", "QKEncoder", "QKDecoder", "ViTCoDAttention"):
        assert get_layer_handlers()[keras_name] is extension.PARSERS[keras_name]
    for backend in ("Vivado", "Vitis"):
        b = hls4ml.backends.get_backend(backend)
        names = {f"{b.name.lower()}:{t().get_name()}" for t in extension._classes()[1]}
        assert names <= set(optimizer_map), names - set(optimizer_map)
        sources = {Path(p).name for p in b.get_custom_source().values()}
        assert set(extension.SOURCES) <= sources
    for ir in ("VitcodEmbed", "VitcodHeadMix", "VitcodAttention"):
        assert hls4ml.model.layers.layer_map[ir] is extension.ir_class(ir)


def test_register_refuses_foreign_handler(monkeypatch):
    from hls4ml.converters.keras_v2_to_hls import get_layer_handlers

    from vitcod.hls import extension

    extension.register()
    monkeypatch.setitem(get_layer_handlers(), "QKEncoder", lambda *a: None)
    with pytest.raises(RuntimeError, match="different hls4ml handler is already registered for Keras layer QKEncoder"):
        extension.register()


# =============================================================================================
# The compiled tiny model
# =============================================================================================


@pytest.mark.slow
def test_tiny_model_csim_agrees_with_qkeras(compiled, tiny_run, digits):
    from vitcod.model.storage import load_model

    model, _ = load_model(tiny_run / DEFAULT_HLS_STAGE)
    x = compiled["x"]
    y_keras = model.predict(x, verbose=0).reshape(len(x), -1)
    y_csim = compiled["y_csim"]
    keras_acc = np.mean(y_keras.argmax(1) == digits.y_test[: len(x)])
    assert keras_acc > 0.5, "the tiny model should have learned something in 4 epochs"
    agreement = np.mean(y_csim.argmax(1) == y_keras.argmax(1))
    assert agreement >= 0.97, f"top-1 agreement {agreement:.4f}"
    assert np.abs(y_csim - y_keras).max() <= 0.05
    assert np.allclose(y_csim.sum(axis=1), 1.0, atol=0.05)  # hls4ml's softmax, table-based


@pytest.mark.slow
def test_our_layers_bit_exact_inside_the_model(compiled):
    from vitcod.hls.network_csim import check_engines

    result = check_engines(compiled["hls_model"], compiled["traces"])
    kinds = sorted(r["engine"] for r in result.values())
    assert kinds == ["VitcodAttention", "VitcodEmbed"] + ["VitcodHeadMix"] * 4, result
    for name, r in result.items():
        assert r["values"] > 0
        assert r["mismatches"] == 0, f"{name}: {r['mismatches']} of {r['values']} values differ from the golden model"


@pytest.mark.slow
def test_evaluate_csim_reports_what_it_measured(compiled, tiny_run, digits):
    """The C-sim evaluation of the run report (no recompilation: the library has its trace hooks)."""
    from vitcod.hls.network_csim import evaluate_csim
    from vitcod.model.storage import load_model

    model, _ = load_model(tiny_run / DEFAULT_HLS_STAGE)
    x, y = compiled["x"], digits.y_test[:TEST_IMAGES]
    report = evaluate_csim(compiled["hls_model"], model, x, y, trace_samples=8)
    y_keras = model.predict(x, verbose=0, batch_size=64).reshape(len(x), -1)
    y_csim = compiled["y_csim"]
    assert report["samples"] == len(x)
    assert report["csim_accuracy"] == pytest.approx(np.mean(y_csim.argmax(1) == y))
    assert report["top1_agreement"] == pytest.approx(np.mean(y_csim.argmax(1) == y_keras.argmax(1)))
    assert report["max_abs_output_error"] == pytest.approx(np.abs(y_csim - y_keras).max(), abs=1e-6)
    assert report["trace_samples"] == 8
    assert sorted(report["engines_bit_exact"]) == sorted(
        n.name for n in compiled["hls_model"].get_layers() if n.class_name.startswith("Vitcod"))
    assert all(r["mismatches"] == 0 for r in report["engines_bit_exact"].values())
    assert report["per_layer_max_abs_error"]["block0_attention"]["max_abs_error"] < 0.1


@pytest.mark.slow
def test_attention_uses_the_artifact_polarization(compiled, tiny_run):
    """The generated ROMs are the mask artifact's polarization, including the G = 0 head."""
    from vitcod.hls.extension_engines import attention_engine
    from vitcod.model.mask_artifact import load_mask_artifact

    node = compiled["hls_model"].graph["block0_attention"]
    engine = attention_engine(node)
    art = load_mask_artifact(tiny_run / DEFAULT_HLS_STAGE / MASKS_FILE)
    assert [p.num_global for p in engine.heads] == [int(g) for g in art.num_global[0]]
    assert engine.heads[1].num_global == 0
    np.testing.assert_array_equal(engine.masks, art.mask[0])
    params = (compiled["out"] / "firmware" / "parameters.h").read_text()
    assert "namespace block0_attention_tables" in params
    assert f"static const unsigned dense_unroll = {engine.dense_unroll};" in params


@pytest.mark.slow
def test_layernorm_matches_float_layernorm_on_its_traced_input(compiled, tiny_run):
    """hls4ml's LayerNorm with our octave-indexed 1/sqrt table vs a float64 LayerNorm.

    The only approximation is the table: relative error <= its worst bucket error (half a bucket,
    ~2^-(M+2)) plus the entry's rounding, plus a few LSBs of the output. Every LayerNorm calls our
    kernel with its generated table (no float init loop, no 65,536-entry uniform table).
    """
    from vitcod.hls.extension_engines import invsqrt_table
    from vitcod.hls.precision import PrecisionPolicy
    from vitcod.model.storage import load_model

    hls_model, traces = compiled["hls_model"], compiled["traces"]
    model, _ = load_model(tiny_run / DEFAULT_HLS_STAGE)
    params = (compiled["out"] / "firmware" / "parameters.h").read_text()
    checked = 0
    for node in hls_model.get_layers():
        if node.class_name != "LayerNormalization":
            continue
        layer = model.get_layer(node.name)
        x = np.asarray(traces[node.inputs[0]], dtype=np.float64)
        x = x.reshape(len(x), -1, layer.input_shape[-1])
        var = x.var(axis=-1, keepdims=True)
        ref = (x - x.mean(axis=-1, keepdims=True)) / np.sqrt(var + layer.epsilon)
        ref = ref * np.asarray(layer.gamma) + np.asarray(layer.beta)
        got = np.asarray(traces[node.name]).reshape(ref.shape)
        table = invsqrt_table(node)
        assert table.size <= PrecisionPolicy().norm_table_max_size
        assert table.max_relative_error <= 2 * PrecisionPolicy().norm_table_error
        lsb = float(table.table_type.lsb) / float(table.values.min())  # an entry's rounding, relative
        bound = np.abs(ref) * (table.max_relative_error + lsb) + 4 * 2.0 ** -10
        assert np.all(np.abs(got - ref) <= bound), node.name
        call = node.get_attr("function_cpp")
        assert call.startswith("vitcod::layernormalize<") and call.endswith(f"{node.name}_invsqrt::table);"), call
        assert f"namespace {node.name}_invsqrt" in params and f"table[{table.size}]" in params
        checked += 1
    assert checked == 3
    assert "init_invert_sqr_table" not in (compiled["out"] / "firmware" / "myproject.cpp").read_text()


@pytest.mark.slow
def test_synthesis_flow_never_includes_the_bundled_ap_types(compiled, tmp_path):
    """hls4ml's open-source ap_types (#error under __SYNTHESIS__) stays off every synthesis include
    path: hls4ml's build_prj.tcl adds no -I for it, and network.json (whose include_dirs become the
    overlay's Vitis HLS cflags) does not list it."""
    from vitcod.hls.network import write_network_description
    from vitcod.host.contract import NetworkDescription

    build = (compiled["out"] / "build_prj.tcl").read_text()
    for line in build.splitlines():
        if "-cflags" in line:
            assert "ap_types" not in line, line
    path = write_network_description(compiled["hls_model"], _keras(compiled), None, tmp_path / "network.json")
    net = NetworkDescription.load(path)
    for folder in net.include_dirs:
        assert folder.name != "ap_types" and not (folder / "ap_common.h").is_file(), folder


def _keras(compiled):
    """The Keras model the compiled project was converted from."""
    return compiled["hls_model"].vitcod.source.model


@pytest.mark.slow
def test_written_project_compiles_as_cxx11(compiled):
    from vitcod.hls.engine_csim import CXX

    fw = compiled["out"] / "firmware"
    cmd = [CXX, "-std=c++11", "-fsyntax-only", "-I", str(fw), "-I", str(fw / "ap_types"),
           '-DWEIGHTS_DIR="weights"', str(fw / "myproject.cpp")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for header in ("vitcod_attention.h", "vitcod_headmix.h", "vitcod_embed.h", "vitcod_layernorm.h"):
        assert (fw / "nnet_utils" / header).is_file()
    assert compiled["compile_seconds"] > 0


# =============================================================================================
# Precision configuration and profiling
# =============================================================================================


@pytest.fixture(scope="module")
def tiny_profile(tiny_run, digits):
    from vitcod.hls.profiling import profile_activations
    from vitcod.model.storage import load_model

    model, _ = load_model(tiny_run / DEFAULT_HLS_STAGE)
    return model, profile_activations(model, digits.x_train[:200])


def test_precision_plan_avoids_the_pitfalls(tiny_profile):
    from vitcod.hls.fixed_point import parse_type
    from vitcod.hls.precision import PrecisionPolicy, build_precision_config

    model, profile = tiny_profile
    plan = build_precision_config(model, profile)
    policy = PrecisionPolicy()
    names = plan.hls_config["LayerName"]
    logits = parse_type(names["head"]["Precision"]["result"])
    assert logits.width == policy.logits_width and logits.integer <= 8  # narrow softmax input
    assert names["softmax"]["Precision"]["result"] == policy.softmax_result
    for ln in ("block0_norm1", "block0_norm2", "final_norm"):
        cfg = names[ln]
        assert "table_t" in cfg and "table" not in cfg["Precision"]  # the key hls4ml 1.3.0 honours
        assert 2.0 ** -cfg["TableRangePower2"] >= profile[ln].var_max  # variances inside the table
        assert parse_type(cfg["Precision"]["accum"]).frac >= 20
        # the octave-indexed 1/sqrt table: capped, and every entry within the error target
        assert cfg["TableSize"] == cfg["InvSqrtOctaves"] * 2 ** cfg["InvSqrtMantissaBits"] + 1
        assert cfg["TableSize"] <= policy.norm_table_max_size <= 4096
        assert cfg["InvSqrtTopExp"] == -cfg["TableRangePower2"]
        row = next(r for r in plan.report if r["layer"] == ln and r["what"] == "variance")
        assert row["table_size"] == cfg["TableSize"] and row["table_rel_error"] <= policy.norm_table_error
    # Conv/Dense accumulators are exact: all fraction bits of input * weight.
    q = names["block0_q"]["Precision"]
    x_t = parse_type(names["block0_norm1"]["Precision"]["result"])
    assert parse_type(q["accum"]).frac == x_t.frac + 7  # weights quantized_bits(8,0) -> 7 fraction bits
    assert all(row["ok"] for row in plan.report)
    assert all(row["headroom_bits"] >= 0 for row in plan.report)
    rows = {(r["layer"], r["what"]) for r in plan.report}
    assert ("block0_attention", "result") in rows and ("final_norm", "variance") in rows


def test_profiling_flags_a_too_narrow_precision(tiny_profile):
    from vitcod.hls import precision as hp

    model, profile = tiny_profile
    narrow = {"block0_q": {"Precision": {"result": "ap_fixed<8,1>"}}}
    with pytest.raises(hp.PrecisionOverflowError, match=r"block0_q \(QConv1D\) result: ap_fixed<8,1> cannot hold") as err:
        hp.build_precision_config(model, profile, layer_overrides=narrow)
    assert [row["layer"] for row in err.value.rows] == ["block0_q"]
    assert err.value.rows[0]["headroom_bits"] < 0
    # A LayerNorm table narrower than the variances seen is flagged too.
    small_table = {"final_norm": {"TableRangePower2": 4}}
    with pytest.raises(hp.PrecisionOverflowError, match="final_norm"):
        hp.build_precision_config(model, profile, layer_overrides=small_table)
    # ... or widened on request, with the widening reported.
    plan = hp.build_precision_config(model, profile, policy=hp.PrecisionPolicy(on_overflow="widen"),
                                     layer_overrides=narrow)
    assert "block0_q.result" in plan.widened
    row = next(r for r in plan.report if r["layer"] == "block0_q" and r["what"] == "result")
    assert row["widened_from"] == "ap_fixed<8,1>" and row["ok"]
    assert plan.hls_config["LayerName"]["block0_q"]["Precision"]["result"] == row["type"]


# =============================================================================================
# Rejected configurations: nothing may be written
# =============================================================================================


def _copy_run(tiny_run, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(io_type="io_serial"), "UnsupportedConfigurationError", r"expected one of \('io_parallel', 'io_stream'\)"),
        (dict(backend="Quartus"), "UnsupportedConfigurationError", "backend 'Quartus'"),
    ],
)
def test_bad_target_rejected(tiny_run, tmp_path, kwargs, error, message):
    from vitcod.hls import convert as hc

    out = tmp_path / "prj"
    with pytest.raises(getattr(hc, error), match=message):
        hc.convert(tiny_run, out, **kwargs)
    assert not out.exists()


def test_mask_artifact_of_the_wrong_shape_rejected(tiny_run, tmp_path, tiny_config):
    from vitcod.hls import convert as hc
    from vitcod.model.mask_artifact import save_mask_artifact

    n = tiny_config.num_tokens
    bad = save_mask_artifact(tmp_path / "three_heads.npz", np.ones((1, 3, n, n), dtype=bool))
    out = tmp_path / "prj"
    with pytest.raises(hc.InconsistentConfigurationError, match="does not match the model .*num_heads = 2"):
        hc.convert(tiny_run, out, masks=bad)
    assert not out.exists()


def test_mask_artifact_that_differs_from_the_model_rejected(tiny_run, tmp_path, tiny_config):
    from vitcod.hls import convert as hc
    from vitcod.model.mask_artifact import save_mask_artifact

    masks = edge_case_masks(tiny_config.num_tokens)
    masks[0, 0, 9, 9] = not masks[0, 0, 9, 9]
    other = save_mask_artifact(tmp_path / "other.npz", masks)
    out = tmp_path / "prj"
    with pytest.raises(hc.InconsistentConfigurationError, match=r"layer 0 differs .*\(1 entries differ\)"):
        hc.convert(tiny_run, out, masks=other)
    assert not out.exists()


def test_heads_not_matching_config_rejected(tiny_run, tmp_path):
    from vitcod.hls import convert as hc

    run = _copy_run(tiny_run, tmp_path)
    cfg_path = run / DEFAULT_HLS_STAGE / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["num_heads"] = 4
    cfg_path.write_text(json.dumps(cfg))
    out = tmp_path / "prj"
    with pytest.raises(hc.InconsistentConfigurationError, match="block0_attention: 2 heads in the model but config.json says num_heads=4"):
        hc.convert(run, out)
    assert not out.exists()


def test_score_type_that_cannot_hold_the_scores_rejected(tiny_run, tmp_path, digits):
    from vitcod.hls import convert as hc
    from vitcod.hls.extension_types import ExtensionError

    out = tmp_path / "prj"
    narrow = {"block0_attention": {"Precision": {"score": "ap_fixed<8,2>"}}}
    with pytest.raises(ExtensionError, match="block0_attention: score_type ap_fixed<8,2> cannot hold the largest"):
        hc.convert(tiny_run, out, data=digits, profile_samples=50, layer_overrides=narrow)
    assert not out.exists()


def test_lane_split_follows_dense_ratio_and_is_overridable(tiny_run, tmp_path, digits):
    from vitcod.hls import convert as hc
    from vitcod.hls.engines import split_lanes
    from vitcod.hls.extension_engines import attention_engine

    default = hc.convert(tiny_run, tmp_path / "a", data=digits, profile_samples=50,
                         layer_overrides={"block0_attention": {"LaneBudget": 6}})
    engine = attention_engine(default.graph["block0_attention"])
    g_max = max(p.num_global for p in engine.heads)
    nnz_max = max(p.nnz_sparse for p in engine.heads)
    assert (engine.dense_unroll, engine.sparse_lanes) == split_lanes(6, engine.dense_ratio, g_max, nnz_max)
    over = hc.convert(tiny_run, tmp_path / "b", data=digits, profile_samples=50,
                      layer_overrides={"block0_attention": {"DenseUnroll": 1, "SparseLanes": 3}})
    node = over.graph["block0_attention"]
    assert (attention_engine(node).dense_unroll, attention_engine(node).sparse_lanes) == (1, 3)
    assert "static const unsigned sparse_lanes = 3;" in node.get_attr("config_cpp")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # convert() writes nothing


def test_vivado_backend_converts_and_writes(tiny_run, tmp_path, digits):
    """The Vivado backend gets the same layers, templates and engine headers as Vitis."""
    from vitcod.hls import convert as hc

    out = tmp_path / "vivado"
    hls_model = hc.convert(tiny_run, out, backend="Vivado", data=digits, profile_samples=50)
    calls = {n.name: n.get_attr("function_cpp") for n in hls_model.get_layers()}
    assert calls["embed"].startswith("vitcod::cls_pos_embed<")
    assert calls["block0_q_encoder"].startswith("vitcod::head_mix<")
    assert calls["block0_attention"].startswith("vitcod::sparse_attention<")
    summary = hc.engine_summary(hls_model)
    assert summary["block0_attention"]["n_global"][1] == 0
    hc.write_project(hls_model)
    for header in ("vitcod_common.h", "vitcod_attention.h", "vitcod_headmix.h", "vitcod_embed.h"):
        assert (out / "firmware" / "nnet_utils" / header).is_file()
    assert "struct block0_attention_config : vitcod::attention_config" in (out / "firmware" / "parameters.h").read_text()


# =============================================================================================
# One DeiT-Tiny-size attention layer through hls4ml (N=197, 3 heads, D=64, 90% sparse)
# =============================================================================================


@pytest.mark.slow
def test_deit_tiny_attention_layer_bit_exact(tmp_path):
    from vitcod.hls.network_csim import single_attention_csim

    result = single_attention_csim(tmp_path / "attn", tokens=197, heads=3, head_dim=64, sparsity=0.9, samples=4)
    assert 0.89 <= result["achieved_sparsity"] <= 0.95
    assert result["values_compared"] == 4 * 197 * 192
    assert result["mismatches_vs_golden"] == 0
    assert result["max_abs_error_vs_keras"] < 0.1


# =============================================================================================
# Hand-over to overlay/ and host/: network.json
# =============================================================================================


def test_network_json_drives_the_host_bit_exactly(compiled, tiny_run, tmp_path, monkeypatch):
    """The IP top around the hls4ml network, driven through vitcod.host (csim and emulated
    backends), gives exactly hls4ml's own C-simulation outputs: one network, two harnesses."""
    import json

    from vitcod.hls.network import write_network_description
    from vitcod.host import open_driver
    from vitcod.model.storage import load_model
    from vitcod.model.vit import model_masks

    monkeypatch.setenv("VITCOD_CSIM_CACHE", str(tmp_path / "cache"))
    model, _ = load_model(tiny_run / DEFAULT_HLS_STAGE)
    path = write_network_description(compiled["hls_model"], model, model_masks(model))
    description = json.loads(path.read_text())
    assert description["input"]["shape"] == [8, 8, 1]
    assert description["input"]["type"].startswith("ap_fixed<")
    assert description["output"]["shape"] == [10]
    x = compiled["x"][:24]
    outputs = {}
    for backend in ("csim", "emulated"):
        driver = open_driver(None, backend=backend, network=path, max_batch=16)
        outputs[backend] = driver.predict(x)  # 24 images: two transfers of 16 + 8
        assert driver.identity["model_id"] == int(description["model_id"], 16)
    np.testing.assert_array_equal(outputs["csim"], outputs["emulated"])
    np.testing.assert_array_equal(outputs["csim"], compiled["y_csim"][:24])
    # a different mask bit gives a different model identifier
    masks = model_masks(model).copy()
    masks[0, 0, 1, 2] = ~masks[0, 0, 1, 2]
    other = write_network_description(compiled["hls_model"], model, masks, tmp_path / "n.json")
    assert json.loads(other.read_text())["model_id"] != description["model_id"]
