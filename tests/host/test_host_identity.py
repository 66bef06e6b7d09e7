"""A description that disagrees with the IP is refused at open, on every backend (issue #15, part 1).

The cases the issue found returning wrong numbers: an input or output type that keeps the word
geometry (fewer bits, fewer integer bits, another rounding or overflow mode, unsigned), a declared
shape larger than the network reads or writes (with and without a change of word count), and the
digits network declared ``[8, 8, 2]`` instead of 64 values. Each is made two ways:

* in ``network.json`` (what the C simulation is compiled from): the compiled IP still reports its
  own C++ types and array sizes, so the description is refused - even when its ``model_id`` was
  recomputed to match the edited fields (the IP's type registers do not follow the description);
* in ``vitcod.json`` (what the board and emulated drivers are configured by), with every derived
  field consistent and the stale ``model_id`` left in place: refused by the registers, and the
  recorded identifier no longer being the description's own.

Every refusal names the file, the field, the declared value and the value the IP reports. The
pynq backend runs the same check (``VitcodDriver.check_identity``, the emulated backend *is*
``VitcodOverlay``).
"""

from __future__ import annotations

import json

import pytest
from overlay_factory import MAX_BATCH, make_overlay

from vitcod.host import IdentityMismatchError, contract, open_driver
from vitcod.host.contract import ApType, TensorMeta

pytestmark = pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:DeprecationWarning")

# case: (network key, tensor, changes, fields refused, the text naming the difference)
CASES = {
    "input_narrower": ("fixed12", "input", {"type": "ap_fixed<11,4>"}, {"input.type"},
                       "input.type: declared ap_fixed<11,4>, the IP reports ap_fixed<12,4,AP_TRN,AP_WRAP,0> "
                       "(register in_type)"),
    "input_fewer_integer_bits": ("fixed12", "input", {"type": "ap_fixed<11,3>"}, {"input.type"},
                                 "input.type: declared ap_fixed<11,3>"),
    "input_rounding": ("fixed12", "input", {"type": "ap_fixed<12,4,AP_RND>"}, {"input.type"},
                       "input.type: declared ap_fixed<12,4,AP_RND>, the IP reports ap_fixed<12,4,AP_TRN,AP_WRAP,0>"),
    "input_unsigned": ("fixed12", "input", {"type": "ap_ufixed<12,4>"}, {"input.type"},
                       "input.type: declared ap_ufixed<12,4>"),
    "output_integer_bits": ("fixed12", "output", {"type": "ap_fixed<10,2,AP_RND,AP_SAT>"}, {"output.type"},
                            "output.type: declared ap_fixed<10,2,AP_RND,AP_SAT>, the IP reports "
                            "ap_fixed<10,3,AP_RND,AP_SAT,0> (register out_type)"),
    "output_overflow": ("fixed12", "output", {"type": "ap_fixed<10,3,AP_RND>"}, {"output.type"},
                        "output.type: declared ap_fixed<10,3,AP_RND>"),
    "input_shape_larger": ("fixed12", "input", {"shape": [30]}, {"input.shape", "input.words_per_image"},
                           "input.shape: declared [30] (30 values), the IP reports 23 values per image "
                           "(register in_values)"),
    "input_shape_larger_same_words": ("fixed12", "input", {"shape": [25]}, {"input.shape"},
                                      "input.shape: declared [25] (25 values)"),
    "output_shape_larger": ("fixed12", "output", {"shape": [9]}, {"output.shape"},
                            "output.shape: declared [9] (9 values), the IP reports 7 values per image "
                            "(register out_values)"),
    "digits_8x8x2": ("digits", "input", {"shape": [8, 8, 2]}, {"input.shape", "input.words_per_image"},
                     "input.shape: declared [8, 8, 2] (128 values), the IP reports 64 values per image"),
}


def edited_tensor(entry: dict, changes: dict) -> dict:
    spelled = {"type": entry["type"], "shape": entry["shape"], **changes}
    return spelled


def rehash(spec: dict) -> str:
    """The identifier of a description's fields (what a consistent writer would record)."""
    tensors = [TensorMeta(tuple(spec[k]["shape"]), ApType.parse(spec[k]["type"])) for k in ("input", "output")]
    return contract.model_identifier(spec["content_id"], *tensors)


def check(err, path, fields: set[str], text: str) -> None:
    assert set(err.value.fields) - {"model_id"} == fields, err.value.fields
    message = str(err.value)
    assert message.startswith(f"refusing to run: {path} does not match the "), message
    assert text in message, message


# A rehashed description compiles a library of its own (another model_id in the config header, ~3 s
# each): two cases show that a consistent identifier does not get a mismatch through.
NETWORK_CASES = [(case, False) for case in sorted(CASES)] + [("input_rounding", True), ("digits_8x8x2", True)]


@pytest.mark.parametrize("backend", ["csim", "emulated"])
@pytest.mark.parametrize("case, rehashed", NETWORK_CASES,
                         ids=[f"{c}-{'rehashed' if r else 'stale_model_id'}" for c, r in NETWORK_CASES])
def test_a_network_json_that_disagrees_with_the_compiled_network_is_refused(tmp_path, backend, case, rehashed):
    key, tensor, changes, fields, text = CASES[case]
    ov = make_overlay(tmp_path, key)
    spec = json.loads(ov.network_json.read_text())
    spec[tensor] = edited_tensor(spec[tensor], changes)
    if rehashed:
        spec["model_id"] = rehash(spec)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(spec))
    with pytest.raises(IdentityMismatchError) as err:
        open_driver(None, backend=backend, network=edited, max_batch=MAX_BATCH)
    check(err, edited, fields, text)
    if not rehashed:
        assert "model_id: recorded" in str(err.value) and "the file was edited" in str(err.value)


@pytest.mark.parametrize("backend", ["csim", "emulated"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_vitcod_json_that_disagrees_with_the_ip_is_refused(tmp_path, backend, case):
    key, tensor, changes, fields, text = CASES[case]

    def edit(meta):  # consistent geometry, as a careless hand edit that "fixed" every field would be
        spelled = edited_tensor(meta[tensor], changes)
        meta[tensor] = TensorMeta(tuple(spelled["shape"]), ApType.parse(spelled["type"])).to_dict()
    ov = make_overlay(tmp_path, key, edit=edit)
    with pytest.raises(IdentityMismatchError) as err:
        open_driver(ov.folder, backend=backend)
    check(err, ov.folder / "vitcod.json", fields, text)
    assert "model_id: recorded" in str(err.value)


def test_equal_spellings_of_the_same_type_are_accepted(tmp_path):
    ov = make_overlay(tmp_path)
    spec = json.loads(ov.network_json.read_text())
    spec["input"]["type"] = "ap_fixed<12, 4, AP_TRN, AP_WRAP, 0>"  # the defaults, spelled out
    edited = tmp_path / "same.json"
    edited.write_text(json.dumps(spec))
    drv = open_driver(None, backend="csim", network=edited, max_batch=MAX_BATCH)
    assert drv.identity["model_id"] == int(ov.net.model_id, 16)


def test_the_identifier_does_not_depend_on_the_run_folder(tmp_path):
    """The same model converted in two folders (hls4ml's config names the mask artifact by its
    absolute path) gets one identifier; another mask content gets another."""
    import io
    import types
    import zipfile

    import numpy as np

    from vitcod.hls.network import write_network_description

    def converted(folder, masks: np.ndarray, written: tuple[int, ...]):
        (folder / "run").mkdir(parents=True)
        member = io.BytesIO()
        np.save(member, masks)
        with zipfile.ZipFile(folder / "run" / "masks.npz", "w") as z:  # as np.savez writes it, at `written`
            z.writestr(zipfile.ZipInfo("masks.npy", date_time=written), member.getvalue())
        firmware = folder / "prj" / "firmware"
        firmware.mkdir(parents=True)
        var = lambda shape, t: types.SimpleNamespace(  # noqa: E731 - an hls4ml variable, as far as read
            shape=shape, type=types.SimpleNamespace(precision=types.SimpleNamespace(definition_cpp=lambda: t)))
        config = types.SimpleNamespace(get_output_dir=lambda: str(folder / "prj"), get_project_name=lambda: "myproject",
                                       get_config_value=lambda key, default=None: {"IOType": "io_parallel"}.get(key, default),
                                       config={"HLSConfig": {"LayerName": {"att": {
                                           "MaskArtifact": str((folder / "run" / "masks.npz").resolve()),
                                           "Precision": "ap_fixed<16,6>"}}}})
        hls_model = types.SimpleNamespace(config=config, get_input_variables=lambda: [var([8, 8, 1], "ap_fixed<16,6>")],
                                          get_output_variables=lambda: [var([10], "ap_fixed<16,6,AP_RND,AP_SAT,0>")])
        layer = types.SimpleNamespace(name="dense", get_weights=lambda: [np.arange(6.0).reshape(2, 3)])
        path = write_network_description(hls_model, types.SimpleNamespace(layers=[layer]), np.eye(4, dtype=bool))
        return json.loads(path.read_text())

    masks = np.eye(4, dtype=bool)
    a = converted(tmp_path / "a", masks, (2024, 1, 1, 0, 0, 0))
    b = converted(tmp_path / "elsewhere" / "b", masks, (2025, 6, 1, 12, 0, 0))  # elsewhere, written later
    c = converted(tmp_path / "c", ~masks, (2024, 1, 1, 0, 0, 0))
    assert (a["content_id"], a["model_id"]) == (b["content_id"], b["model_id"])
    assert c["content_id"] != a["content_id"] and c["model_id"] != a["model_id"]
    assert a["output"]["type"] == "ap_fixed<16,6,AP_RND,AP_SAT>"
