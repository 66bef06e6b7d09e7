"""Faults the host must survive without hanging or losing results (issues #15 and #16):

* timeouts that are timeouts: a hung (emulated) device returns within every accepted timeout
  (constructor, attribute, per call); NaN, 0, negative and non-numbers are refused where set;
* TLAST (#16): a transfer whose length disagrees with ``batch_count`` - short, long, or a batch
  above ``max_batch`` - ends cleanly (no hang: the IP stops at TLAST or drains to it) and raises a
  :class:`StreamError` naming the IP's status bits, on the emulated board and in the C simulation;
* a call of several transfers that fails in transfer k hands back the images that completed;
* long runs: the emulated board reuses freed buffer addresses (50,000 allocate/free cycles).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from overlay_factory import MAX_BATCH

from vitcod.host import DeviceTimeoutError, DmaError, StreamError, open_driver
from vitcod.host.wire import pack

pytestmark = pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:DeprecationWarning")


@pytest.fixture()
def ov(overlays):
    return overlays["fixed12"]


# ---- timeouts ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["constructor", "attribute", "per_call"])
@pytest.mark.parametrize("timeout", [0.05, 0.2, 1])
def test_a_hung_device_returns_within_every_accepted_timeout(ov, how, timeout):
    drv = open_driver(ov.folder, backend="emulated", **({"timeout": timeout} if how == "constructor" else {}))
    if how == "attribute":
        drv.timeout = timeout
    drv.device.inject_fault("hang")
    start = time.monotonic()
    with pytest.raises(DeviceTimeoutError) as err:
        drv.execute_raw(ov.random_raws(3), **({"timeout": timeout} if how == "per_call" else {}))
    elapsed = time.monotonic() - start
    assert timeout <= elapsed < timeout + 1.0, elapsed  # the deadline, plus the recovery (DMA reset, reload)
    assert err.value.timeout == timeout and f"within {timeout:g} s" in str(err.value)
    raws = ov.random_raws(4, seed=1)
    np.testing.assert_array_equal(drv.execute_raw(raws), ov.net.reference(raws))  # usable again
    assert drv.timeout == (timeout if how != "per_call" else 10.0)  # a per-call timeout is that call's only


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0, 0.0, -1, -1e-9, "abc", "1", None, True, [1]])
def test_timeouts_that_are_no_timeouts_are_refused_where_set(ov, bad):
    drv = open_driver(ov.folder, backend="emulated")
    with pytest.raises(ValueError, match="timeout must be a"):
        drv.timeout = bad
    if bad is not None:  # (a call's timeout=None means the driver's)
        with pytest.raises(ValueError, match="timeout must be a"):
            drv.predict(np.zeros((1, 23)), timeout=bad)
    assert drv.timeout == 10.0


# ---- TLAST ---------------------------------------------------------------------------------------------
def transfer(drv, ov, n_images: int, **kwargs) -> StreamError:
    """Run one transfer of ``n_images`` with a mismatch (kwargs of ``_execute``); return its StreamError."""
    raws = ov.random_raws(n_images + 1, seed=n_images)
    ibuf = drv._allocate_words((n_images + 1) * ov.metadata.input.words_per_image)
    obuf = drv._allocate_words(n_images * ov.metadata.output.words_per_image)
    drv._host_view(ibuf)[:] = pack(raws, 12, True)
    start = time.monotonic()
    with pytest.raises(StreamError) as err:
        drv._execute(ibuf, obuf, n_images, **kwargs)
    assert time.monotonic() - start < 0.5  # ended at once: nothing waited for its timeout
    out = ov.metadata.output
    done = err.value.batch_done
    words = drv._host_view(obuf)[:done * out.words_per_image]
    np.testing.assert_array_equal(words, pack(ov.net.reference(raws[:done]), out.format.width, out.format.signed))
    return err.value


TLAST_CASES = {  # kwargs of _execute for 3 images of 5 words, status bits, the text, images processed
    "announced_more_than_sent": ({"batch_count": 4}, ["tlast_early"],
                                 "status register is 0x1 (tlast_early: TLAST came before the batch's last input word", 3),
    "short_transfer": ({"in_words": 3 * 5 - 1}, ["tlast_early"], "the IP processed 2 of 3 images", 2),
    "long_transfer": ({"in_words": 4 * 5}, ["tlast_missing"],
                      "status register is 0x2 (tlast_missing: the batch's last input word had no TLAST (the IP "
                      "drained the rest of the transfer)); the IP read 20 input words, 3 images take 15", 3),
}


@pytest.fixture(params=["fixed12", "fixed12_stream"])
def any_ov(request, overlays):
    """The io_parallel network and its io_stream twin (the DATAFLOW top): TLAST is handled alike."""
    return overlays[request.param]


@pytest.mark.parametrize("backend", ["csim", "emulated"])
@pytest.mark.parametrize("case", sorted(TLAST_CASES))
def test_a_transfer_that_disagrees_with_the_batch_count_ends_cleanly(any_ov, backend, case):
    ov = any_ov
    kwargs, bits, text, processed = TLAST_CASES[case]
    drv = open_driver(ov.folder, backend=backend, timeout=2.0)
    downloads = drv.device.stats["downloads"] if backend == "emulated" else None
    err = transfer(drv, ov, 3, **kwargs)
    assert err.status_bits == bits and err.batch_done == processed
    assert text in str(err), str(err)
    if backend == "emulated":  # both DMA channels finished and the IP is idle: no reset, no reload needed
        from vitcod.host.overlay import DMASR, DMASR_IDLE, MM2S, S2MM

        assert drv._dma.read(MM2S + DMASR) & DMASR_IDLE and drv._dma.read(S2MM + DMASR) & DMASR_IDLE
        assert drv.device.stats["downloads"] == downloads and drv._ip.read(0) & 0x4
    raws = ov.random_raws(2 * MAX_BATCH + 1, seed=3)
    np.testing.assert_array_equal(drv.execute_raw(raws), ov.net.reference(raws))  # and the next call is clean


@pytest.mark.parametrize("backend", ["csim", "emulated"])
def test_a_clamped_batch_is_drained_and_named(any_ov, backend):
    ov = any_ov
    drv = open_driver(ov.folder, backend=backend, timeout=2.0)
    err = transfer(drv, ov, MAX_BATCH + 1)  # one image more than the IP honours
    assert err.status_bits == ["tlast_missing", "batch_clamped"] and err.batch_done == MAX_BATCH
    assert f"the IP processed {MAX_BATCH} of {MAX_BATCH + 1} images" in str(err)
    assert "batch_count exceeded max_batch" in str(err)
    raws = ov.random_raws(3, seed=4)
    np.testing.assert_array_equal(drv.execute_raw(raws), ov.net.reference(raws))


# ---- partial results -----------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["csim", "emulated"])
@pytest.mark.parametrize("method", ["predict", "classify", "execute_raw"])
def test_a_failed_transfer_hands_back_the_images_that_completed(ov, backend, method, monkeypatch):
    drv = open_driver(ov.folder, backend=backend, timeout=2.0)
    calls = []
    execute = drv._execute

    def third_fails(in_buf, out_buf, n):
        calls.append(n)
        if len(calls) == 3:
            if backend == "emulated":
                drv.device.inject_fault("DMASlvErr", "S2MM")
            else:
                raise StreamError("C simulation of the IP: injected")
        return execute(in_buf, out_buf, n)
    monkeypatch.setattr(drv, "_execute", third_fails)
    raws = ov.random_raws(3 * MAX_BATCH + 2, seed=5)
    fmt = ov.metadata.input.format
    args = raws if method == "execute_raw" else fmt.dequantize(raws)  # exact values: no rounding
    with pytest.raises(DmaError if backend == "emulated" else StreamError) as err:
        getattr(drv, method)(args)
    assert err.value.completed == 2 * MAX_BATCH
    reference = ov.net.reference(raws[:2 * MAX_BATCH])
    expected = {"execute_raw": reference, "classify": np.argmax(reference, axis=1),
                "predict": ov.metadata.output.format.dequantize(reference)}[method]
    np.testing.assert_array_equal(err.value.partial, expected)
    assert f"images 0..{2 * MAX_BATCH - 1} of this call completed" in "".join(err.value.__notes__)


# ---- long runs -----------------------------------------------------------------------------------------
def test_the_emulated_board_reuses_freed_buffer_addresses(ov):
    import pynq

    drv = open_driver(ov.folder, backend="emulated")
    device = drv.device
    free = device.free_bytes
    keep = pynq.allocate((1000,), dtype=np.uint64, target=device)  # a live buffer between the cycles
    first = None
    start = time.monotonic()
    for i in range(50_000):
        buf = pynq.allocate((1 + (i % 7) * 700,), dtype=np.uint64, target=device)  # 1 to 2 pages
        first = first or buf.physical_address
        assert buf.physical_address == first  # the freed range comes back
        del buf
    assert time.monotonic() - start < 30
    del keep
    assert device.free_bytes == free  # every range returned, and merged
    raws = ov.random_raws(5)
    np.testing.assert_array_equal(drv.execute_raw(raws), ov.net.reference(raws))


def test_the_emulated_ddr_still_runs_out_when_buffers_are_kept(ov):
    import pynq

    drv = open_driver(ov.folder, backend="emulated")
    with pytest.raises(MemoryError, match="emulated DDR exhausted"):
        pynq.allocate((2 ** 26,), dtype=np.uint64, target=drv.device)  # 512 MiB > the emulated 256 MiB


def test_an_output_longer_than_the_s2mm_length_is_a_dma_error_and_recovered(ov):
    """The one TLAST fault the IP cannot end by itself: it writes more than S2MM was armed for. The
    DMA flags DMAIntErr and (the model's worse case) the IP stays blocked on its output; the
    driver raises at once and the next call reloads the bitstream."""
    from vitcod.host import DmaError

    drv = open_driver(ov.folder, backend="emulated", timeout=2.0)
    raws = ov.random_raws(4, seed=6)
    ibuf, obuf = drv._allocate_words(4 * 5), drv._allocate_words(3 * 2)
    drv._host_view(ibuf)[:] = pack(raws, 12, True)
    start = time.monotonic()
    with pytest.raises(DmaError) as err:
        drv._execute(ibuf, obuf, 3, batch_count=4, in_words=4 * 5)  # 4 results for a 3-result buffer
    assert time.monotonic() - start < 0.5
    assert (err.value.channel, err.value.bits) == ("S2MM", ["DMAIntErr"])
    assert not drv._ip.read(0) & 0x4  # the IP is not idle: blocked on its output stream
    downloads = drv.device.stats["downloads"]
    raws = ov.random_raws(5, seed=7)
    np.testing.assert_array_equal(drv.execute_raw(raws), ov.net.reference(raws))  # found busy: reloaded, then ran
    assert drv.device.stats["downloads"] == downloads + 1
