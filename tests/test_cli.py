"""The command-line entry points as a user meets them: Ctrl-C at any moment ends a command with
one line and exit status 130, and a bad flag is refused before anything heavy is imported."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, env_with_venv
from test_api import random_bundle


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return random_bundle(tmp_path_factory.mktemp("cli") / "best", units=8)


def started(module, *args, cwd=ROOT):
    """`python -m module args` as a user starts it (the project on the path wherever it runs)."""
    env = dict(env_with_venv(), PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_loading_tensorflow(proc, timeout=300):
    """Return once TensorFlow's native library is mapped into the process: it is then inside
    its imports, which go on for seconds (Python modules of TensorFlow and Keras) after that."""
    maps = Path(f"/proc/{proc.pid}/maps")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"ended before importing TensorFlow ({proc.returncode}):\n{out}\n{err}")
        try:
            if "/tensorflow/" in maps.read_text():
                return
        except OSError:  # the process ended between poll() and the read
            pass
        time.sleep(0.01)
    proc.kill()
    pytest.fail("TensorFlow was not imported in time")


def entry_points(model_dir, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("the hare said no.\n")
    return {
        "chargen.generate": ["--model", str(model_dir), "--interactive"],
        "chargen.score": ["--model", str(model_dir), "--text", str(text)],
        "chargen.export": ["--model", str(model_dir), "--out", str(tmp_path / "exports")],
    }


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc to see the imports")
@pytest.mark.parametrize("module", ["chargen.generate", "chargen.score", "chargen.export", "stages.train",
                                    "stages.select", "stages.generate", "stages.evaluate"])
def test_ctrl_c_while_a_command_imports_tensorflow_is_one_line_and_status_130(model_dir, tmp_path, module):
    # Stages run in an empty folder: one that got past its imports would stop at the missing
    # params.yaml (another line), never touch this repository.
    args = entry_points(model_dir, tmp_path).get(module, [])
    proc = started(module, *args, cwd=ROOT if module.startswith("chargen.") else tmp_path)
    wait_until_loading_tensorflow(proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    # Nothing else on stderr: an interrupt after start-up would follow generate's prompt line.
    assert (proc.returncode, err, out) == (130, "error: interrupted\n", "")


def test_an_uncaught_interrupt_of_a_library_user_is_left_to_python():
    """Importing chargen from a program changes nothing in how that program is interrupted."""
    code = ("import signal, sys, chargen, chargen.io\n"
            "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
            "assert sys.excepthook is sys.__excepthook__\n"
            "raise KeyboardInterrupt\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env_with_venv(), capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == -signal.SIGINT and "Traceback" in res.stderr and "KeyboardInterrupt" in res.stderr
    import chargen.api  # noqa: F401  (in this process too, with Keras)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not getattr(sys.excepthook, "reports_interrupts", False)
