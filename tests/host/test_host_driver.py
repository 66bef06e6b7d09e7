"""The driver API (vitcod.host.driver) under each execution mode, as FINN runs one check per mode:
``csim`` (the C-simulated IP top through ctypes) and ``emulated`` (pynq.Overlay + pynq's own DMA
driver against register models that compute with the same C simulation). The ``pynq`` backend on
a real board runs the same checks when a board is attached (marker ``board``).

Networks: the dummy network of vitcod.overlay.example, whose exact numpy reference the
outputs must equal bit for bit.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
from json_edit import set_path
from overlay_factory import MAX_BATCH, make_overlay

from vitcod.host import (IdentityMismatchError, InputError, SaturationWarning, VitcodDriver, WireFormatError,
                         contract, open_driver)

BACKENDS = ["csim", "emulated"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture()
def driver(overlays, backend) -> VitcodDriver:
    return open_driver(overlays["fixed12"].folder, backend=backend)


def host_reference(ov, images: np.ndarray) -> np.ndarray:
    """Output raws the accelerator must produce: host quantization, then the network's reference."""
    raws, _ = ov.metadata.input.format.quantize(np.asarray(images).reshape(len(images), -1))
    return ov.net.reference(raws)


# ---- bit-exact results -------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 5, MAX_BATCH, 3 * MAX_BATCH + 2])
def test_raw_results_equal_the_reference(driver, overlays, batch):
    ov = overlays["fixed12"]
    raws = ov.random_raws(batch, seed=batch)
    np.testing.assert_array_equal(driver.execute_raw(raws), ov.net.reference(raws))


@pytest.mark.parametrize("key", ["fixed12", "digits"])
def test_predict_and_classify(overlays, backend, key):
    ov = overlays[key]
    drv = open_driver(ov.folder, backend=backend)
    fmt = ov.metadata.input.format
    rng = np.random.default_rng(11)
    images = rng.uniform(fmt.min_value, fmt.max_value, size=(13,) + drv.input_shape).astype(np.float32)
    expected = host_reference(ov, images)
    probabilities = drv.predict(images)
    assert probabilities.shape == (13,) + drv.output_shape and probabilities.dtype == np.float64
    np.testing.assert_array_equal(probabilities, ov.metadata.output.format.dequantize(expected))
    np.testing.assert_array_equal(drv.classify(images), np.argmax(expected, axis=1))
    np.testing.assert_array_equal(drv.predict(images.reshape(13, -1)), probabilities)  # flat images too
    assert drv.last_saturated == 0


def test_backends_agree_bit_for_bit(overlays):
    ov = overlays["fixed12"]
    images = np.random.default_rng(5).normal(0.0, 4.0, size=(2 * MAX_BATCH + 3, 23))  # some saturate
    results = {b: open_driver(ov.folder, backend=b) for b in BACKENDS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SaturationWarning)
        outputs = {b: d.predict(images) for b, d in results.items()}
    np.testing.assert_array_equal(outputs["csim"], outputs["emulated"])
    np.testing.assert_array_equal(outputs["csim"], ov.metadata.output.format.dequantize(host_reference(ov, images)))
    assert results["csim"].last_saturated == results["emulated"].last_saturated > 0


# ---- batching ---------------------------------------------------------------------------------------------
def count_transfers(drv: VitcodDriver, monkeypatch) -> list[int]:
    sizes: list[int] = []
    execute = drv._execute

    def counting(in_buf, out_buf, n):
        sizes.append(n)
        return execute(in_buf, out_buf, n)
    monkeypatch.setattr(drv, "_execute", counting)
    return sizes


def test_large_calls_are_split_into_transfers(driver, overlays, monkeypatch):
    sizes = count_transfers(driver, monkeypatch)
    raws = overlays["fixed12"].random_raws(2 * MAX_BATCH + 3, seed=2)
    np.testing.assert_array_equal(driver.execute_raw(raws), overlays["fixed12"].net.reference(raws))
    assert sizes == [MAX_BATCH, MAX_BATCH, 3]
    assert driver.batch_size == driver.max_images_per_transfer == MAX_BATCH


def test_batch_size_is_configurable_and_bounded(driver, overlays, monkeypatch):
    sizes = count_transfers(driver, monkeypatch)
    driver.batch_size = 3
    raws = overlays["fixed12"].random_raws(7, seed=4)
    np.testing.assert_array_equal(driver.execute_raw(raws), overlays["fixed12"].net.reference(raws))
    assert sizes == [3, 3, 1]
    for bad in (0, -1, MAX_BATCH + 1, 2.5, True):
        with pytest.raises(ValueError):
            driver.batch_size = bad
    assert driver.batch_size == 3


def test_buffers_are_allocated_once_per_batch_size(driver, overlays, monkeypatch):
    allocations: list[int] = []
    allocate = driver._allocate_words

    def counting(n_words):
        allocations.append(n_words)
        return allocate(n_words)
    monkeypatch.setattr(driver, "_allocate_words", counting)
    raws = overlays["fixed12"].random_raws(2 * MAX_BATCH + 1, seed=6)
    for _ in range(3):
        driver.execute_raw(raws)
        driver.execute_raw(raws[:2])
    assert allocations == [MAX_BATCH * 5, MAX_BATCH * 2]  # in (5 words/image) and out (2 words/image), once
    driver.batch_size = 4
    driver.execute_raw(raws)
    driver.batch_size = MAX_BATCH
    driver.execute_raw(raws)
    assert allocations == [MAX_BATCH * 5, MAX_BATCH * 2, 4 * 5, 4 * 2]


def test_narrow_dma_length_register_splits_transfers(tmp_path, overlays, backend, monkeypatch):
    def narrow(meta):  # 255-byte transfers hold 6 images of 40 bytes, although max_batch is 8
        meta["dma"]["length_width"] = 8
    ov = make_overlay(tmp_path, edit=narrow)
    drv = open_driver(ov.folder, backend=backend)
    assert drv.max_images_per_transfer == 6
    sizes = count_transfers(drv, monkeypatch)
    raws = ov.random_raws(13, seed=8)
    np.testing.assert_array_equal(drv.execute_raw(raws), ov.net.reference(raws))
    assert sizes == [6, 6, 1]


# ---- bad inputs: clear errors, nothing sent, driver still usable ---------------------------------------
BAD_INPUTS = {
    "wrong_width": (np.zeros((2, 22)), "expected (batch, 23)"),
    "single_image": (np.zeros(23), "add a batch axis"),
    "extra_axis": (np.zeros((2, 23, 1)), "shape (2, 23, 1)"),
    "scalar": (np.float64(1.0), "shape ()"),
    "empty": (np.zeros((0, 23)), "empty batch"),
    "nan": (np.where(np.arange(46).reshape(2, 23) == 30, np.nan, 0.0), "NaN/Inf value(s) (first: image 1, value 7"),
    "inf": (np.full((1, 23), -np.inf), "23 NaN/Inf"),
    "bool": (np.ones((1, 23), dtype=bool), "dtype bool"),
    "complex": (np.ones((1, 23), dtype=complex), "dtype complex128"),
    "strings": (np.full((1, 23), "1"), "dtype <U1"),
    "objects": (np.array([[None] * 23]), "dtype object"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_raise_and_leave_the_driver_usable(driver, overlays, monkeypatch, case):
    images, message = BAD_INPUTS[case]
    sizes = count_transfers(driver, monkeypatch)
    with pytest.raises(InputError) as err:
        driver.predict(images)
    assert message in str(err.value)
    assert sizes == []  # refused before anything was sent
    raws = overlays["fixed12"].random_raws(3, seed=9)
    np.testing.assert_array_equal(driver.execute_raw(raws), overlays["fixed12"].net.reference(raws))


def test_raw_inputs_out_of_range_are_refused(driver):
    with pytest.raises(WireFormatError, match="holds"):
        driver.execute_raw(np.full((1, 23), 2048))
    with pytest.raises(InputError, match="integers"):
        driver.execute_raw(np.zeros((1, 23)))


def test_out_of_range_values_saturate_are_counted_and_warned_once(driver, overlays):
    ov = overlays["fixed12"]
    images = np.zeros((4, 23))
    images[0, :3] = [100.0, -100.0, 8.0]  # ap_fixed<12,4> holds [-8, 7.99609375]
    with pytest.warns(SaturationWarning, match="3 of 92 input values"):
        probabilities = driver.predict(images)
    assert driver.last_saturated == 3 and driver.saturated_inputs == 3
    np.testing.assert_array_equal(probabilities, ov.metadata.output.format.dequantize(host_reference(ov, images)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SaturationWarning)  # a second warning would fail the test
        driver.classify(images)
        driver.predict(np.zeros((1, 23)))
    assert driver.saturated_inputs == 6 and driver.last_saturated == 0


# ---- identity (the mismatch cases of a description: tests/host/test_host_identity.py) ------------------------
def test_identity_registers_are_read_and_checked(driver, overlays):
    regs = driver.identify()
    assert regs["model_id"] == int(overlays["fixed12"].net.model_id, 16)
    assert (regs["format_version"], regs["in_values"], regs["in_words"], regs["out_values"], regs["out_words"],
            regs["max_batch"]) == (2, 23, 5, 7, 2, MAX_BATCH)
    assert contract.describe_type_code(regs["in_type"]) == "ap_fixed<12,4,AP_TRN,AP_WRAP,0>"
    assert contract.describe_type_code(regs["out_type"]) == "ap_fixed<10,3,AP_RND,AP_SAT,0>"
    assert driver.identity["model_id"] == regs["model_id"]


def test_an_edited_model_id_is_refused(tmp_path, overlays, backend):
    ov = make_overlay(tmp_path, edit=set_path("model_id", "0x00000000deadbeef"))
    with pytest.raises(IdentityMismatchError) as err:
        open_driver(ov.folder, backend=backend)
    derived = int(ov.net.model_id, 16)
    assert err.value.mismatches == {"model_id (recorded)": (0xDEADBEEF, derived)}
    assert (f"{ov.folder / 'vitcod.json'} does not match the {backend} IP: model_id: recorded 0x00000000deadbeef, "
            f"but its content_id and interface give {ov.net.model_id} (the file was edited") in str(err.value)
    assert "refusing to run" in str(err.value)


def test_a_description_of_another_model_is_refused(tmp_path, overlays, backend):
    def other_model(meta):  # a consistent vitcod.json - of another model than the IP's
        meta["content_id"] = "0x00000000deadbeef"
        meta["model_id"] = contract.model_identifier(0xDEADBEEF, *(contract.TensorMeta(
            tuple(meta[k]["shape"]), contract.ApType.parse(meta[k]["type"])) for k in ("input", "output")))
    ov = make_overlay(tmp_path, edit=other_model)
    with pytest.raises(IdentityMismatchError) as err:
        open_driver(ov.folder, backend=backend)
    assert set(err.value.mismatches) == {"model_id"} and err.value.fields == ["model_id"]
    assert err.value.mismatches["model_id"][0] == int(ov.net.model_id, 16)
    assert f"the IP reports {ov.net.model_id} (register model_id)" in str(err.value)


def test_a_geometry_mismatch_is_refused(tmp_path, overlays, backend):
    ov = make_overlay(tmp_path)
    spec = json.loads(ov.network_json.read_text())  # metadata says 25 values; network says 23 values
    meta = json.loads((ov.folder / "vitcod.json").read_text())
    meta["input"].update(shape=[25], values=25, words_per_image=5, bytes_per_image=40)
    (ov.folder / "vitcod.json").write_text(json.dumps(meta))
    with pytest.raises(IdentityMismatchError) as err:
        open_driver(ov.folder, backend=backend, network=ov.network_json)
    assert set(err.value.mismatches) == {"in_values", "model_id (recorded)"} and spec["input"]["shape"] == [23]
    assert "input.shape: declared [25] (25 values), the IP reports 23 values per image (register in_values)" \
        in str(err.value)


# ---- measuring ----------------------------------------------------------------------------------------------
def test_throughput_test_reports_stage_times(driver):
    result = driver.throughput_test(repeats=2)
    assert result["backend"] == driver.backend and result["batch_size"] == MAX_BATCH
    for key in ("runtime[ms]", "quantize_pack[ms]", "transfer_compute[ms]", "unpack[ms]", "throughput[images/s]",
                "end_to_end[images/s]", "DRAM_in_bandwidth[MB/s]", "DRAM_out_bandwidth[MB/s]"):
        assert result[key] > 0, key
    assert result["throughput[images/s]"] == pytest.approx(MAX_BATCH / (result["runtime[ms]"] / 1e3))
    assert result["end_to_end[images/s]"] < result["throughput[images/s]"]
    assert result["DRAM_in_bandwidth[MB/s]"] == pytest.approx(result["DRAM_out_bandwidth[MB/s]"] * 40 / 16)
    assert result["fclk[mhz]"] == 100.0


# ---- on a board ---------------------------------------------------------------------------------------------
BOARD_OVERLAY = os.environ.get("VITCOD_BOARD_OVERLAY")


@pytest.mark.board
@pytest.mark.skipif(not BOARD_OVERLAY, reason="needs a PYNQ board: set VITCOD_BOARD_OVERLAY to the unpacked "
                                              "vitcod-<board> folder (vitcod.bit, vitcod.hwh, vitcod.json)")
def test_pynq_backend_on_a_board():
    drv = open_driver(BOARD_OVERLAY, backend="pynq")
    assert drv.identify()["model_id"] == drv.metadata.model_id
    fmt = drv.metadata.input.format
    images = np.random.default_rng(0).uniform(fmt.min_value, fmt.max_value, size=(2 * drv.batch_size + 1,)
                                              + drv.input_shape)
    whole = drv.predict(images)
    assert whole.shape == (len(images),) + drv.output_shape
    parts = np.concatenate([drv.predict(images[i:i + 3]) for i in range(0, len(images), 3)])
    np.testing.assert_array_equal(whole, parts)  # how a call is split into transfers changes nothing
    assert drv.throughput_test()["throughput[images/s]"] > 0
