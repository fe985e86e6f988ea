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

from chargen import data as D
from chargen import model as M
from chargen.io import ChargenError
from conftest import dvc, env_with_venv, make_text, set_params, stage

STAGES = ["download", "prepare", "train", "select", "generate", "evaluate"]
# Metrics that measure time, so differ between runs; everything else must be identical.
TIMING = {"seconds_per_epoch", "train_seconds", "targets_per_second", "chars_per_second",
          "scored_chars_per_second", "dynamic_seconds", "mix_seconds", "seconds"}


def results(project) -> dict:
    """Every metric (timings left out), the samples and the selected weights' digest."""
    out = {}
    for f in sorted((project / "metrics").glob("*.json")):
        out[f.name] = {k: v for k, v in json.loads(f.read_text()).items() if k not in TIMING}
        for v in out[f.name].values():
            if isinstance(v, dict):
                for k in TIMING & set(v):
                    del v[k]
    hist = (project / "metrics/train_history.csv").read_text().splitlines()
    out["history"] = [",".join(r.split(",")[:-1]) for r in hist]  # last column: seconds
    out["samples"] = (project / "samples/samples.json").read_text()
    from chargen.select import load_best
    model, _, _ = load_best(project / "models/best")
    out["weights"] = [hashlib.sha256(np.asarray(w).tobytes()).hexdigest() for w in model.get_weights()]
    return out


def leftovers(project) -> list[str]:
    return sorted(str(p.relative_to(project)) for p in project.rglob("*.tmp")
                  if ".dvc" not in p.parts and ".git" not in p.parts)


def test_sigkill_at_random_points_then_repro_recovers_and_runs_are_deterministic(project):
    set_params(project, **{"train.epochs": 3})
    dvc(project, "repro")
    baseline = results(project)
    rng = np.random.default_rng(2024)
    for name in STAGES:
        # `dvc repro -f -s STAGE`, killed with SIGKILL (dvc and the stage process) at a random moment.
        proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-f", "-s", name], cwd=project,
                                env=env_with_venv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(float(rng.uniform(1.0, 6.0)))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # What the stage writes is either the previous version or absent, never half-written.
        for f in ("metrics/train.json", "metrics/eval.json", "metrics/generate.json", "metrics/select.json"):
            if (project / f).exists():
                json.loads((project / f).read_text())
        if (project / "data/prepared/dataset.npz").exists():
            D.load_dataset(project / "data/prepared/dataset.npz")
        if lock_was_cut(project):  # the kill landed inside DVC's own write of dvc.lock (see below)
            (project / "dvc.lock").unlink()  # the README's recovery: every stage re-runs, training resumes
        out = dvc(project, "repro").stdout  # DVC recovers from the kill (stale lock) and finishes
        assert "Data and pipelines are up to date" in dvc(project, "status").stdout, out
        assert results(project) == baseline, name
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
    assert "Data and pipelines are up to date" in dvc(project, "status").stdout


def lock_was_cut(project) -> bool:
    """DVC refuses dvc.lock as incomplete (a kill inside DVC's own write of it)."""
    return "dvc.lock' validation failed" in dvc(project, "status", check=False).stderr
