"""The tests keep to temporary folders: a run of them leaves the user's HOME as it was."""

import os
import subprocess
import sys

from conftest import ROOT


def test_the_export_tests_write_nothing_into_home(tmp_path):
    """The ONNX export test loads onnxruntime, which writes its telemetry ids under
    ~/.cache/Microsoft: run it as a user would, with HOME an empty folder, and that folder stays
    empty."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)
    res = subprocess.run([sys.executable, "-m", "pytest", "tests/test_export.py", "-k", "onnx", "-q",
                          "-p", "no:cacheprovider", "-n", "0"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "1 passed" in res.stdout
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == []
