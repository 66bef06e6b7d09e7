"""The board-side package must not pull in the design flow (no TensorFlow on a PYNQ image)."""

import json
import subprocess
import sys

HEAVY = ("tensorflow", "qkeras", "hls4ml", "keras", "sklearn", "matplotlib")


def test_importing_vitcod_host_imports_no_flow_package():
    code = ("import sys, json, vitcod.host; "
            "print(json.dumps(sorted(m for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "vitcod.host" in loaded
    leaked = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert leaked == [], f"vitcod.host imported flow packages: {leaked[:10]}"
