"""Shared fixtures: small synthetic Gutenberg-style books and a copy of the project to run DVC in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _own_home() -> Path:
    """Tests keep to temporary folders: the session, and every process it starts, gets a HOME
    (and XDG folders) of its own, so nothing a library writes under ~ (onnxruntime's telemetry
    ids in ~/.cache/Microsoft, Keras' ~/.keras, matplotlib's font cache) lands in the user's.
    Set here, at import, so it holds before any test module imports those libraries."""
    home = Path(tempfile.mkdtemp(prefix="chargen-tests-home-"))
    os.environ.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), XDG_CONFIG_HOME=str(home / ".config"),
                      XDG_DATA_HOME=str(home / ".local" / "share"), XDG_STATE_HOME=str(home / ".local" / "state"))
    return home


HOME = _own_home()


def pytest_unconfigure(config):
    shutil.rmtree(HOME, ignore_errors=True)

WORDS = ("the a alice rabbit queen said little very what and of to it was in she her you "
         "king hatter time door garden cat mock turtle head off curious dear oh").split()


def make_text(n_chars: int, seed: int = 0) -> str:
    """Pseudo-English with some structure, so a tiny model has something to learn."""
    rng = np.random.default_rng(seed)
    out, size = [], 0
    while size < n_chars:
        sentence = " ".join(rng.choice(WORDS, size=rng.integers(4, 12)))
        line = sentence[0].upper() + sentence[1:] + rng.choice([".", "!", "?", ","]) + "\n"
        out.append(line)
        size += len(line)
    return "".join(out)[:n_chars]


def gutenberg(body: str, title: str = "A Test Book", style: str = "new") -> str:
    word = "THE" if style == "new" else "THIS"
    return (
        "\ufeffThe Project Gutenberg eBook of " + title + "\n\nThis eBook is for the use of anyone.\n\n"
        f"*** START OF {word} PROJECT GUTENBERG EBOOK {title.upper()} ***\n\n"
        + body
        + f"\n*** END OF {word} PROJECT GUTENBERG EBOOK {title.upper()} ***\n\nLicence text.\n"
    )


def pytest_collection_modifyitems(items):
    """Tests that run DVC end to end on a clone (the `project` fixture) are marked slow."""
    for item in items:
        if "project" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


MIRROR = "shared/corpus"  # beside the project, as ../shared/corpus is beside a clone in CI


@pytest.fixture
def mirror(tmp_path) -> Path:
    """A mirror folder with pg11.txt (25k chars) and pg12.txt (extra text), at the place the
    committed params' relative `download.mirror` (../shared/corpus) points to from `project`."""
    d = tmp_path / MIRROR
    d.mkdir(parents=True)
    (d / "pg11.txt").write_text(gutenberg(make_text(25_000, 1)), encoding="utf-8")
    (d / "pg12.txt").write_text(gutenberg(make_text(8_000, 2), "Other"), encoding="utf-8")
    return d


@pytest.fixture
def dataset(tmp_path):
    """A prepared dataset of a tiny lowercase text: 20-char windows, the last 20% validation."""
    from chargen import dataset
    text = make_text(6000, 3).lower()
    vocab = dataset.build_vocab(text)
    cut = dataset.split(len(text), 0.2)
    path = tmp_path / "ds.npz"
    dataset.save_dataset(path, vocab=vocab, train_ids=dataset.encode(text[:cut], vocab), val_ids=dataset.encode(text[cut:], vocab),
                   seq_length=20, stride=20, meta={"lowercase": True, "fold_typography": True})
    return path


def tiny_params() -> dict:
    """The committed params.yaml with everything made tiny; offline (the mirror as committed)."""
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["download"].update(url="http://127.0.0.1:9/{id}", retries=0, timeout=1, cache_dir="")
    p["prepare"].update(seq_length=20, min_chars=0)
    p["train"].update(layers=1, units=16, embedding_dim=8, batch_size=32, epochs=2, patience=0)
    p["generate"].update(samples=2, length=60)
    return p


def env_with_venv() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def git(cwd: Path, *args) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env=env_with_venv()).stdout


def clone_project(dest: Path, identity: bool = True) -> Path:
    """A `git clone` of this repository, as a user gets it (committed .dvc/config, dvc.lock and
    metrics). Uncommitted changes of the working tree under test are laid over it and committed,
    so a developer's run tests their edits; in CI the tree is clean and nothing is laid over.
    `identity=False` leaves the clone without a git identity of its own, as a user's is."""
    git(ROOT.parent, "clone", "-q", "--no-hardlinks", str(ROOT), str(dest))
    changed = git(ROOT, "diff", "-z", "--name-only", "HEAD").split("\0")  # staged or not, deletions too
    changed += git(ROOT, "ls-files", "-z", "--others", "--exclude-standard").split("\0")
    for name in filter(None, changed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
        else:
            (dest / name).unlink(missing_ok=True)
    if identity:
        git(dest, "config", "user.email", "test@example.com")
        git(dest, "config", "user.name", "test")
    if git(dest, "status", "--porcelain"):
        git(dest, "add", "-A")
        git(dest, *AUTHOR, "commit", "-qm", "uncommitted changes under test")
    return dest


AUTHOR = ("-c", "user.name=test", "-c", "user.email=test@example.com")  # for one commit only


@pytest.fixture
def project(tmp_path, mirror):
    """A clone of this repository with tiny params committed, ready for `dvc repro` offline
    (the committed relative mirror, ../shared/corpus, is the `mirror` fixture)."""
    dest = clone_project(tmp_path / "proj")
    (dest / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    git(dest, "commit", "-qam", "tiny params for the tests")
    return dest


def dvc(project: Path, *args, check=True, timeout=600) -> subprocess.CompletedProcess:
    """Run DVC in `project`. Tests that check the pipeline is up to date ask `dvc status dvc.yaml`:
    the benchmarks (bench/dvc.yaml) time the committed default params, so under the tests' tiny
    params they are stale, as they should be."""
    res = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, capture_output=True,
                         text=True, env=env_with_venv(), timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return res


def stage(project: Path, name: str, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"stages.{name}"], cwd=project, capture_output=True,
                          text=True, env=env_with_venv(), timeout=timeout)


def set_params(project: Path, **changes):
    """set_params(p, **{"train.dropout": 0.3})"""
    path = project / "params.yaml"
    p = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        node = p
        *parents, last = key.split(".")
        for k in parents:
            node = node[k]
        node[last] = value
    path.write_text(yaml.safe_dump(p, sort_keys=False))
