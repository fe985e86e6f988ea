"""Reliability: killed stages, two runs at once, damaged or untrusted files, a full disk, and
determinism. Each case runs for real and checks the message and that no partial output is left.
(Bad params, download faults and bad text are in test_params, test_download, test_corpus and
test_pipeline.)"""

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from chargen.dataset import load_dataset
from chargen.model import load_model
from chargen.io import ChargenError
from conftest import MIRROR, ROOT, dvc, env_with_venv, make_text, set_params, stage

STAGES = ["download", "prepare", "train", "select", "generate", "evaluate"]
def results(project) -> dict:
    """Every metrics file byte for byte (timings live in metrics/run/, which DVC does not
    compare), the samples and the selected weights' digest."""
    out = {str(f.relative_to(project)): f.read_bytes() for f in sorted((project / "metrics").rglob("*"))
           if f.is_file() and "run" not in f.parts}
    assert "metrics/train.json" in out and "metrics/live/metrics.json" in out
    out["samples"] = (project / "samples/samples.json").read_text()
    from chargen.bundle import load_bundle
    model, _, _ = load_bundle(project / "models/best")
    out["weights"] = [hashlib.sha256(np.asarray(w).tobytes()).hexdigest() for w in model.get_weights()]
    return out


def leftovers(project) -> list[str]:
    return sorted(str(p.relative_to(project)) for p in project.rglob("*.tmp")
                  if ".dvc" not in p.parts and ".git" not in p.parts)


def test_sigkill_at_random_points_then_repro_recovers_and_runs_are_deterministic(project):
    set_params(project, **{"train.epochs": 3})
    dvc(project, "repro")
    baseline, baseline_lock = results(project), (project / "dvc.lock").read_text()
    rng = np.random.default_rng(2024)
    for name in STAGES:
        # `dvc repro -f -s STAGE`, killed with SIGKILL (dvc and the stage process) at a random moment;
        # train from scratch, killed once its first epoch is committed, so that the re-run resumes
        # (with dropout on: the tiny params keep the default 0.4) and must end where the
        # uninterrupted run ended, to the last digit.
        if name == "train":
            subprocess.run(["rm", "-rf", str(project / "models/checkpoints")], check=True)
        proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-f", "-s", name], cwd=project,
                                env=env_with_venv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        if name == "train":
            deadline = time.time() + 300
            # history.csv is written last when an epoch is committed (resume_0001.keras before it)
            while not (project / "models/checkpoints/history.csv").exists() and time.time() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None, "training ended before it could be killed"
        else:
            time.sleep(float(rng.uniform(1.0, 6.0)))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # What the stage writes is either the previous version or absent, never half-written.
        for f in ("metrics/train.json", "metrics/eval.json", "metrics/generate.json", "metrics/select.json"):
            if (project / f).exists():
                json.loads((project / f).read_text())
        if (project / "data/prepared/dataset.npz").exists():
            load_dataset(project / "data/prepared/dataset.npz")
        if lock_was_cut(project):  # the kill landed inside DVC's own write of dvc.lock (see below)
            (project / "dvc.lock").unlink()  # the README's recovery: every stage re-runs, training resumes
        out = dvc(project, "repro").stdout  # DVC recovers from the kill (stale lock) and finishes
        assert "Data and pipelines are up to date" in dvc(project, "status", "dvc.yaml").stdout, out
        assert name != "train" or "resuming from epoch" in out, out
        assert results(project) == baseline, name
        if name == "train":  # the resumed checkpoints are the same bytes: DVC records the same hashes
            assert yaml.safe_load((project / "dvc.lock").read_text()) == yaml.safe_load(baseline_lock)
        assert leftovers(project) == []

    # DVC writes dvc.lock by truncating it and then writing it, not atomically, so a kill in that
    # moment leaves it empty and DVC refuses to run: one line naming the file.
    (project / "dvc.lock").write_text("")
    refused = dvc(project, "status", check=False)
    assert refused.returncode != 0 and "dvc.lock' validation failed" in refused.stderr
    # Recovery: delete it (or `git checkout dvc.lock`). Here, with every output deleted as well, this
    # is also the determinism check: the whole pipeline again from nothing gives the same metrics,
    # samples and weights.
    (project / "dvc.lock").unlink()
    for d in ("data", "models", "samples"):
        subprocess.run(["rm", "-rf", str(project / d)], check=True)
    dvc(project, "repro")
    assert results(project) == baseline
    # Every stage's outputs are the same bytes (the .keras files carry no save date), so the
    # from-scratch run records the first run's dvc.lock (stages listed in another order), and
    # against that lock nothing has changed.
    assert yaml.safe_load((project / "dvc.lock").read_text()) == yaml.safe_load(baseline_lock)
    (project / "dvc.lock").write_text(baseline_lock)
    assert "Data and pipelines are up to date" in dvc(project, "status", "dvc.yaml").stdout


def lock_was_cut(project) -> bool:
    """DVC refuses dvc.lock as incomplete (a kill inside DVC's own write of it)."""
    return "dvc.lock' validation failed" in dvc(project, "status", check=False).stderr


def test_two_repros_at_once_the_second_gets_the_lock_error(project):
    set_params(project, **{"train.epochs": 4})
    first = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=project, env=env_with_venv(),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (project / "models/checkpoints/fingerprint.json").exists() and time.time() < deadline:
        time.sleep(0.2)  # the first is inside the train stage now
    second = dvc(project, "repro", check=False)
    # DVC refuses: the repository lock, or the per-output lock of a stage the first one holds.
    assert second.returncode != 0, second.stdout
    assert "Unable to acquire lock" in second.stderr or "it is being blocked by" in second.stderr, second.stderr
    assert "Running stage" not in second.stdout  # the second ran nothing
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out
    assert "Data and pipelines are up to date" in dvc(project, "status", "dvc.yaml").stdout
    assert json.loads((project / "metrics/train.json").read_text())["epochs_run"] == 4


def one_line_error(res, *fragments):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_damaged_files_are_clear_errors_and_keep_what_exists(project):
    dvc(project, "repro")
    samples = (project / "samples/samples.json").read_text()
    best = project / "models/best/model.keras"
    good = best.read_bytes()
    vocab = (project / "models/best/vocab.json").read_text()

    best.write_bytes(good[: len(good) // 2])  # a truncated model
    one_line_error(stage(project, "generate"), "models/best/model.keras is corrupt or truncated",
                   "dvc repro -f select")
    one_line_error(stage(project, "evaluate"), "models/best/model.keras is corrupt or truncated")
    assert (project / "samples/samples.json").read_text() == samples
    best.write_bytes(good)

    (project / "models/best/vocab.json").write_text("[\"a\", ")  # a broken vocabulary
    one_line_error(stage(project, "generate"), "vocab.json is corrupt")
    (project / "models/best/vocab.json").unlink()
    one_line_error(stage(project, "generate"), "vocab.json is missing", "dvc repro select")
    (project / "models/best/vocab.json").write_text(vocab)

    ckpt = project / "models/checkpoints/epoch_0002.weights.h5"
    ckpt.write_bytes(b"\x89HDF\r\n garbage")  # a corrupted checkpoint
    one_line_error(stage(project, "select"), "epoch_0002.weights.h5 is unreadable", "delete it")
    assert (project / "models/best/model.keras").read_bytes() == good  # select replaced nothing

    npz = project / "data/prepared/dataset.npz"
    npz.write_bytes(npz.read_bytes()[:200])  # a truncated dataset
    for name in ("train", "select", "generate", "evaluate"):
        one_line_error(stage(project, name), "dataset.npz is corrupt", "dvc repro -f prepare")
    assert (project / "models/checkpoints/epoch_0001.weights.h5").exists()  # nothing lost
    assert "history.csv" in os.listdir(project / "models/checkpoints")

    # A non-UTF-8 own text: the error names the fix; declaring the encoding accepts it.
    (project / "texts/latin.txt").write_bytes(("caf\u00e9 " + make_text(9000, 4)).encode("latin-1"))
    set_params(project, **{"download.text": "texts/latin.txt"})
    assert stage(project, "download").returncode == 0
    kept = npz.read_bytes()
    one_line_error(stage(project, "prepare"), "is not utf-8", "prepare.encoding")
    assert npz.read_bytes() == kept  # the failed prepare replaced nothing
    set_params(project, **{"prepare.encoding": "latin-1", "prepare.min_chars": 100_000})
    res = stage(project, "prepare")
    assert res.returncode == 0 and "warning:" in res.stderr and "gibberish" in res.stderr  # < min_chars
    set_params(project, **{"prepare.min_chars": 0})
    assert stage(project, "prepare").stderr == ""

    # A Gutenberg file without its markers: a clear error naming the param that accepts it whole.
    (project.parent / MIRROR / "pg14.txt").write_text(make_text(9000, 5), encoding="utf-8")
    set_params(project, **{"download.text": "", "download.book": 14, "prepare.encoding": "utf-8"})
    assert stage(project, "download").returncode == 0
    kept = npz.read_bytes()
    one_line_error(stage(project, "prepare"), "pg14.txt has no '*** START OF THE PROJECT GUTENBERG EBOOK' marker",
                   "prepare.strip_gutenberg: false")
    assert npz.read_bytes() == kept
    set_params(project, **{"prepare.strip_gutenberg": False})
    assert stage(project, "prepare").returncode == 0 and npz.read_bytes() != kept


def test_a_keras_zip_with_damaged_members_is_said_to_be_corrupt(tmp_path):
    """A .keras file can be a sound zip with a damaged member (a bad checksum, a config that is
    not JSON): it is corrupt, and the message names the fix, not only Keras' exception."""
    import zipfile

    from chargen.model import build, save_model
    from test_train import CFG

    good = tmp_path / "good.keras"
    save_model(build(5, CFG), good)
    flipped = bytearray(good.read_bytes())
    member = zipfile.ZipFile(good).getinfo("model.weights.h5")
    start = member.header_offset + 30 + len(member.filename) + len(member.extra) + 100
    flipped[start:start + 50] = bytes(b ^ 0xFF for b in flipped[start:start + 50])
    (tmp_path / "flipped.keras").write_bytes(bytes(flipped))
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "config.keras", "w") as dst:
        for name in src.namelist():
            dst.writestr(name, b"{not json" if name == "config.json" else src.read(name))
    for name, why in (("flipped.keras", "BadZipFile: Bad CRC-32"), ("config.keras", "JSONDecodeError")):
        assert zipfile.is_zipfile(tmp_path / name)
        with pytest.raises(ChargenError) as bad:
            load_model(tmp_path / name, fix="dvc repro -f select")
        message = str(bad.value)
        assert message.startswith(f"{tmp_path / name} is corrupt ({why}") and message.endswith("): dvc repro -f select"), message


def test_untrusted_files_are_refused(tmp_path):
    import keras

    # A model with a Lambda layer (arbitrary Python) does not load: safe mode.
    x = keras.Input((3,))
    m = keras.Model(x, keras.layers.Lambda(lambda t: t * 2)(x))
    m.save(tmp_path / "evil.keras")
    with pytest.raises(ChargenError) as refused:
        load_model(tmp_path / "evil.keras")
    # The reason whole, not cut mid-sentence, and what to do.
    assert str(refused.value) == (f"{tmp_path / 'evil.keras'} holds Python code (a Lambda layer or function), "
                                  f"which safe mode refuses to load because loading would run it; use a model "
                                  f"written by chargen: re-run the stage that wrote it")
    # An array file holding pickled objects does not load: allow_pickle=False.
    np.savez(tmp_path / "evil.npz", vocab=np.array([object()], dtype=object), train_ids=np.zeros(3),
             val_ids=np.zeros(3), train_starts=np.zeros(1), val_starts=np.zeros(1), seq_length=1, stride=1,
             meta="{}")
    with pytest.raises(ChargenError, match="evil.npz is corrupt"):
        load_dataset(tmp_path / "evil.npz")


def test_full_disk_or_unwritable_checkpoints_are_clear_errors(tmp_path, monkeypatch, dataset):
    from test_train import CFG

    from chargen import checkpoints, train
    ds = dataset
    ckpt = tmp_path / "ckpt"
    train.train(dict(CFG, epochs=1, lr_schedule="constant"), 1, ds, ckpt, log=lambda *_: None)
    before = sorted(p.name for p in ckpt.iterdir())

    import keras

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(keras.Model, "save", full)
    with pytest.raises(ChargenError, match="cannot write checkpoint in .*No space left on device; free disk space"):
        train.train(dict(CFG, epochs=3, lr_schedule="constant"), 1, ds, ckpt, log=lambda *_: None)
    monkeypatch.undo()
    # The committed epoch is intact and training resumes from it.
    assert checkpoints.prepare_checkpoints(ckpt, json.loads((ckpt / "fingerprint.json").read_text()), print)[0] == 1
    assert sorted(p.name for p in ckpt.iterdir()) == before

    # A checkpoint "folder" that is a file: a clear error, and the file is left alone.
    blocker = tmp_path / "blocked"
    blocker.write_text("mine")
    with pytest.raises(ChargenError, match="is a file, not a folder"):
        train.train(dict(CFG, epochs=1), 1, ds, blocker, log=lambda *_: None)
    assert blocker.read_text() == "mine"


def test_full_disk_while_select_saves_is_one_line_and_keeps_the_model(tmp_path, monkeypatch, dataset, capsys):
    """Every stage that writes turns a full disk into one line; models/best stays as it was."""
    from test_train import CFG

    import keras

    from chargen import train
    from chargen.io import run_stage
    from stages import select as select_stage

    train.train(dict(CFG, epochs=1), 1, dataset, tmp_path / "models/checkpoints", log=lambda *_: None)
    (tmp_path / "data/prepared").mkdir(parents=True)
    (tmp_path / "data/prepared/dataset.npz").write_bytes(dataset.read_bytes())
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "models/best").mkdir()
    (tmp_path / "models/best/model.keras").write_bytes(b"the model the user has")
    monkeypatch.chdir(tmp_path)

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(keras.Model, "save", full)
    with pytest.raises(SystemExit) as stop:
        run_stage(select_stage.main)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 1 and len(err) == 1 and err[0].startswith("error: No space left on device"), err
    assert "free disk space" in err[0]
    assert (tmp_path / "models/best/model.keras").read_bytes() == b"the model the user has"
    assert not list((tmp_path / "models").glob(".*.tmp"))
