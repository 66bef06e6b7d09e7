"""The model vs a published hls4ml synthesis report (vitcod.hls.perf.published)."""

from __future__ import annotations

from vitcod.hls.perf.published import PUBLISHED, compare, markdown


def test_the_published_mlp_is_modelled_from_its_layers_and_the_error_is_stated():
    c = compare(PUBLISHED[0])
    assert c["published"] == {"dsp": 2774, "lut": 109157, "ff": 13339, "bram_18k": 4, "latency_cycles": 10}
    # one DSP per 16 x 16 product: 16*64 + 64*32 + 32*32 + 32*5 = 4256, plus the softmax's 5
    assert c["modelled"]["dsp"] == 4256 + 5
    for k, err in c["error"].items():
        assert err == (c["modelled"][k] - c["published"][k]) / c["published"][k]
    md = "\n".join(markdown())
    assert "AnthonyAportela/lab_notebook" in md and "+54%" in md and "Only one published design" in md
