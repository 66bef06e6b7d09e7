"""Threads and drivers (issue #15): one driver serializes its calls, so N threads x M calls give
exactly the single-threaded results; a second driver on a device already driven in this process is
refused; on a board an advisory lock file refuses a driver of another process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from overlay_factory import MAX_BATCH

from vitcod.host import DeviceError, DeviceInUseError, NetworkDescription, SaturationWarning, open_driver
from vitcod.host.guards import process_lock

pytestmark = pytest.mark.filterwarnings("ignore:pkg_resources is deprecated:DeprecationWarning")

THREADS, CALLS = 6, 8


@pytest.mark.parametrize("backend", ["csim", "emulated"])
def test_threads_sharing_one_driver_get_the_single_threaded_results(overlays, backend):
    ov = overlays["fixed12"]
    drv = open_driver(ov.folder, backend=backend)
    rng = np.random.default_rng(1)
    # each call its own images and size (1..3 transfers), some values saturating
    calls = [[rng.normal(0.0, 3.0, size=(int(rng.integers(1, 3 * MAX_BATCH)), 23)) for _ in range(CALLS)]
             for _ in range(THREADS)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SaturationWarning)
        expected = [[drv.predict(x) for x in thread] for thread in calls]  # one thread, one call at a time
        barrier = threading.Barrier(THREADS)

        def work(t: int) -> list[np.ndarray]:
            barrier.wait()  # start together, so that the calls overlap
            return [drv.predict(x) if i % 2 else drv.classify(x) for i, x in enumerate(calls[t])]

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(work, range(THREADS)))
    for t in range(THREADS):
        for i in range(CALLS):
            want = expected[t][i] if i % 2 else np.argmax(expected[t][i], axis=1)
            np.testing.assert_array_equal(results[t][i], want, err_msg=f"thread {t}, call {i}")
    # and the numbers are the network's, not merely repeatable
    fmt = ov.metadata.input.format
    raws = fmt.quantize(calls[0][0])[0]
    np.testing.assert_array_equal(expected[0][0], ov.metadata.output.format.dequantize(ov.net.reference(raws)))


def test_csim_drivers_of_one_network_may_share_its_library(overlays):
    """A C simulation has no device state between runs; its library serializes the runs (the
    simulated network keeps static state), so two csim drivers of one network are allowed."""
    ov = overlays["fixed12"]
    drivers = [open_driver(ov.folder, backend="csim") for _ in range(2)]
    assert drivers[0].library._run_lock is drivers[1].library._run_lock
    raws = [ov.random_raws(2 * MAX_BATCH + 1, seed=s) for s in range(8)]
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda i: drivers[i % 2].execute_raw(raws[i]), range(8)))
    for i in range(8):
        np.testing.assert_array_equal(outs[i], ov.net.reference(raws[i]))


def test_a_second_driver_on_a_driven_device_is_refused(overlays):
    from vitcod.host.emulated import EmulatedDevice
    from vitcod.host.csim_backend import CsimLibrary
    from vitcod.host.overlay import VitcodOverlay

    ov = overlays["fixed12"]
    first = open_driver(ov.folder, backend="emulated")
    device = first.device
    with pytest.raises(DeviceInUseError, match=r"device 'vitcod-emulated' is already driven by a driver of this "
                                               r"process \(<VitcodOverlay backend=emulated"):
        VitcodOverlay(ov.folder, device=device, metadata=first.metadata, bitfile=first.bitfile_name, verify_files=False)
    assert device.stats["downloads"] == 1  # refused before anything was downloaded under the first driver
    raws = ov.random_raws(3)
    np.testing.assert_array_equal(first.execute_raw(raws), ov.net.reference(raws))  # undisturbed
    first.close()
    with pytest.raises(DeviceError, match="was closed"):
        first.execute_raw(raws)
    second = VitcodOverlay(ov.folder, device=device, metadata=first.metadata, bitfile=first.bitfile_name,
                           verify_files=False)
    np.testing.assert_array_equal(second.execute_raw(raws), ov.net.reference(raws))
    # another device is another device
    library = CsimLibrary.build(NetworkDescription.load(ov.network_json), MAX_BATCH, board="pynq-z2")
    other = VitcodOverlay(ov.folder, device=EmulatedDevice(library, ov.metadata.ip_vlnv, ov.metadata.registers),
                          metadata=first.metadata, bitfile=first.bitfile_name, verify_files=False)
    other.close()
    second.close()


def test_a_dropped_driver_frees_its_device(overlays):
    from vitcod.host.overlay import VitcodOverlay

    ov = overlays["fixed12"]
    first = open_driver(ov.folder, backend="emulated")
    device, meta, bitfile = first.device, first.metadata, first.bitfile_name
    del first  # kept alive only by pynq's reference cycles: not "driven" any more
    with VitcodOverlay(ov.folder, device=device, metadata=meta, bitfile=bitfile, verify_files=False) as again:
        assert again.identify()["max_batch"] == MAX_BATCH


def test_the_board_lock_refuses_another_process(tmp_path):
    holder = process_lock("pynq board/0", tmp_path)
    script = textwrap.dedent(f"""
        from vitcod.host.guards import process_lock
        from vitcod.host.errors import DeviceInUseError
        try:
            process_lock("pynq board/0", {str(tmp_path)!r})
        except DeviceInUseError as exc:
            print(exc)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "device pynq board/0 is driven by another process (pid" in proc.stdout, proc.stdout + proc.stderr
    holder.close()  # released: the next process gets it
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "" and proc.returncode == 0
