"""The io_stream top (overlay/ip/vitcod_top_stream.h) from the host's side: the C-simulation and
emulated backends drive it unchanged, bit-exact with the reference and with its io_parallel twin;
network.json's ``io_type`` / ``element_size`` are checked and enter the model identifier."""

from __future__ import annotations

import json

import numpy as np
import pytest
from overlay_factory import MAX_BATCH, STREAM_TWINS

from vitcod.host import MetadataError, NetworkDescription, OverlayMetadata, open_driver
from vitcod.host.contract import interface_fields

pytestmark = pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:DeprecationWarning")


@pytest.mark.parametrize("backend", ["csim", "emulated"])
@pytest.mark.parametrize("key", sorted(STREAM_TWINS))
def test_stream_top_is_bit_exact_with_reference_and_twin(overlays, backend, key):
    ov, twin = overlays[key], overlays[STREAM_TWINS[key]]
    assert NetworkDescription.load(ov.network_json).io_type == "io_stream"
    raws = ov.random_raws(2 * MAX_BATCH + 3, seed=21)  # three transfers, the last one partial
    stream = open_driver(ov.folder, backend=backend, timeout=5.0).execute_raw(raws)
    np.testing.assert_array_equal(stream, ov.net.reference(raws))
    np.testing.assert_array_equal(stream, open_driver(twin.folder, backend=backend, timeout=5.0).execute_raw(raws))


def test_vitcod_json_records_the_element_sizes(overlays):
    meta = json.loads((overlays["digits_stream"].folder / "vitcod.json").read_text())
    assert (meta["input"]["element_size"], meta["output"]["element_size"]) == (1, 10)
    assert "element_size" not in json.loads((overlays["digits"].folder / "vitcod.json").read_text())["input"]
    loaded = OverlayMetadata.load(overlays["digits_stream"].folder)
    assert (loaded.input.element, loaded.output.element) == (1, 10)


def test_io_type_enters_the_model_id_only_for_io_stream(overlays):
    par = NetworkDescription.load(overlays["digits"].network_json)
    st = NetworkDescription.load(overlays["digits_stream"].network_json)
    assert par.io_type == "io_parallel" and par.model_id != st.model_id and par.content_id == st.content_id
    assert "io_type" not in interface_fields(par.input, par.output)  # io_parallel identifiers unchanged
    assert interface_fields(st.input, st.output)["io_type"] == "io_stream"
    assert st.identifier_problem() is None and NetworkDescription.from_dict(st.to_dict(), st.path.parent) == \
        NetworkDescription.from_dict(st.to_dict(), st.path.parent)


def _edited(ov, edit) -> dict:
    spec = json.loads(ov.network_json.read_text())
    edit(spec)
    return spec


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.update(io_type="io_streaming"), r"io_type: expected one of \['io_parallel', 'io_stream'\], got 'io_streaming'"),
    (lambda s: s.pop("io_type"), r"input.element_size is given but io_type is io_parallel"),
    (lambda s: s["output"].pop("element_size"), r"output.element_size: io_stream needs the values per stream element"),
    (lambda s: s["input"].update(element_size=2), r"input.element_size is 2, but an io_stream input streams one "
                                                  r"element per pixel: its channels, shape\[-1\] = 1"),
    (lambda s: s["output"].update(element_size=3), r"output.element_size: expected a positive integer dividing the 10"),
])
def test_bad_stream_descriptions_are_refused_with_what_was_expected(overlays, edit, message):
    ov = overlays["digits_stream"]
    with pytest.raises(MetadataError, match=message):
        NetworkDescription.from_dict(_edited(ov, edit), ov.network_json.parent)


def test_a_stream_header_without_the_stream_prototype_is_refused(overlays, tmp_path):
    from vitcod.host.contract import render_config_header

    ov = overlays["digits"]  # an io_parallel header declared as io_stream
    spec = _edited(overlays["digits_stream"], lambda s: None)
    spec["include_dirs"] = [str(ov.network_json.parent / d) for d in json.loads(ov.network_json.read_text())["include_dirs"]]
    spec["sources"] = [str(ov.network_json.parent / d) for d in json.loads(ov.network_json.read_text())["sources"]]
    net = NetworkDescription.from_dict(spec, tmp_path)
    with pytest.raises(MetadataError, match=r"expected `void dummy_net\(hls::stream<input_t> &in, "):
        render_config_header(net, MAX_BATCH, "pynq-z2")
