"""The command-line entry points as a user meets them: Ctrl-C at any moment ends a command with
one line and exit status 130, and a bad flag is refused before anything heavy is imported."""

import json
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


@pytest.mark.parametrize("package", ["chargen", "stages"])
def test_every_command_of_a_package_reports_an_interrupt_that_escapes_it(package):
    """What `python -m chargen.<command>` or `stages.<name>` does first, importing its package
    while Python has sys.argv[0] == "-m", makes an interrupt that nothing catches, at any moment
    (a light stage's imports take a fraction of a second), one line; other errors stay as they were."""
    for raised, status, stderr in (("KeyboardInterrupt", 130, "error: interrupted\n"), ("ValueError('x')", 1, None)):
        code = f"import sys\nsys.argv[0] = '-m'\nimport {package}\nraise {raised}\n"
        res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env_with_venv(), capture_output=True,
                             text=True, timeout=120)
        assert res.returncode == status and res.stdout == ""
        assert res.stderr == stderr if stderr else res.stderr.endswith("ValueError: x\n")


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


# Runs `python -m <module> <args>` (sys.argv[1:]) and, as the process exits, writes the names of
# every module it imported to the file $IMPORTED. (`python -X importtime` would not do: chargen
# imports Keras with stderr closed, to hide TensorFlow's C++ start-up lines.)
WATCH_IMPORTS = """import atexit, json, os, runpy, sys
atexit.register(lambda: open(os.environ["IMPORTED"], "w").write(json.dumps(sorted(sys.modules))))
module = sys.argv.pop(1)
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("module,args,message", [
    ("chargen.generate", ["--temperature", "nan"], "--temperature must be a number >= 0 (0 = greedy), got nan"),
    ("chargen.generate", ["--length", "0"], "--length must be at least 1, got 0"),
    ("chargen.generate", ["--seed", "-1"], "--seed must be at least 0, got -1"),
    ("chargen.generate", ["--top-k", "-1"], "--top-k must be at least 0 (0 = off), got -1"),
    ("chargen.generate", ["--top-p", "2"], "--top-p must be above 0 and at most 1 (1 = off), got 2.0"),
    ("chargen.generate", ["--samples", "0"], "--samples must be at least 1, got 0"),
    ("chargen.generate", ["--prompt-file", "{tmp}/none.txt"], "cannot read --prompt-file {tmp}/none.txt"),
    ("chargen.generate", ["--model", "{tmp}/none"], "{tmp}/none/model.keras is missing"),
    ("chargen.score", ["--text", "{tmp}/none.txt"], "cannot read --text {tmp}/none.txt"),
    ("chargen.score", ["--text", "{tmp}/t.txt", "--limit", "0"], "--limit must be at least 1, got 0"),
    ("chargen.score", ["--text", "{tmp}/t.txt", "--model", "{tmp}/none"], "{tmp}/none/model.keras is missing"),
    ("chargen.export", ["--formats", "tflite"], "unknown export format(s) ['tflite']"),
    ("chargen.export", ["--model", "{tmp}/none"], "{tmp}/none/model.keras is missing"),
])
def test_bad_arguments_are_refused_before_tensorflow_is_imported(tmp_path, module, args, message):
    (tmp_path / "t.txt").write_text("the hare said no.\n")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    imported = tmp_path / "imported.json"
    res = subprocess.run([sys.executable, "-c", WATCH_IMPORTS, module, *args], cwd=ROOT, capture_output=True,
                         text=True, env=dict(env_with_venv(), IMPORTED=str(imported)), timeout=300)
    assert res.returncode == 1 and res.stdout == "" and len(res.stderr.splitlines()) == 1, res.stderr[-2000:]
    assert res.stderr.startswith("error: " + message.replace("{tmp}", str(tmp_path)))
    modules = json.loads(imported.read_text())
    assert "chargen.io" in modules  # the watch saw the command's imports
    assert [m for m in modules if m.split(".")[0] in ("tensorflow", "keras")] == []


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env_with_venv(), timeout=300, **kw)


@pytest.fixture(scope="module")
def old_model_dir(tmp_path_factory):
    """A model folder as chargen wrote it before folders held their training text: no
    train_ids.npy, and the format number its dataset had (2)."""
    folder = random_bundle(tmp_path_factory.mktemp("cli") / "old", units=8, train_text=None)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "format": 2}, indent=2))
    assert not (folder / "train_ids.npy").exists()
    return folder


def test_a_model_folder_of_an_earlier_chargen_is_refused_before_a_prompt_is_printed(old_model_dir):
    for extra in ([], ["--interactive"]):
        res = run("chargen.generate", "--model", str(old_model_dir), "--prompt", "alice", *extra, input="alice\n")
        assert res.returncode == 1 and res.stdout == "" and len(res.stderr.splitlines()) == 1, res.stderr
        assert res.stderr.startswith(f"error: {old_model_dir} holds no training text (train_ids.npy)")
        assert "earlier chargen (model folder format 2; this one writes format 3" in res.stderr
        assert "dvc repro -f select, or python -m stages.select" in res.stderr and "--ngram-weight 0" in res.stderr
    # What such a folder can do, it still does: sample from the LSTM alone, and score.
    res = run("chargen.generate", "--model", str(old_model_dir), "--prompt", "alice", "--ngram-weight", "0",
              "--length", "20")
    assert res.returncode == 0 and res.stdout.startswith("alice") and len(res.stdout) == len("alice") + 20 + 1
    (old_model_dir.parent / "t.txt").write_text("the hare said no.\n")
    res = run("chargen.score", "--model", str(old_model_dir), "--text", str(old_model_dir.parent / "t.txt"))
    assert res.returncode == 0, res.stderr


def test_a_model_folder_says_its_format_and_one_from_a_newer_chargen_is_refused(model_dir, tmp_path):
    from chargen import api, bundle
    from chargen.io import ChargenError

    assert json.loads((model_dir / "config.json").read_text())["format"] == bundle.FORMAT
    assert bundle.has_train_text(model_dir)
    newer = tmp_path / "newer"
    newer.mkdir()
    for name in bundle.FILES:
        (newer / name).write_bytes((model_dir / name).read_bytes())
    (newer / "config.json").write_text(json.dumps({"seq_length": 20, "format": bundle.FORMAT + 1}))
    with pytest.raises(ChargenError, match=f"written by a newer chargen \\(model folder format {bundle.FORMAT + 1}"):
        api.load(newer)
