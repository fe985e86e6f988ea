"""Shared fixtures: small synthetic Gutenberg-style books and a copy of the project to run DVC in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


@pytest.fixture
def mirror(tmp_path) -> Path:
    """A mirror folder with pg11.txt (25k chars) and pg12.txt (extra text)."""
    d = tmp_path / "mirror"
    d.mkdir()
    (d / "pg11.txt").write_text(gutenberg(make_text(25_000, 1)), encoding="utf-8")
    (d / "pg12.txt").write_text(gutenberg(make_text(8_000, 2), "Other"), encoding="utf-8")
    return d


@pytest.fixture
def dataset(tmp_path):
    """A prepared dataset of a tiny lowercase text: 20-char windows, the last 20% validation."""
    from chargen import data as D
    text = make_text(6000, 3).lower()
    vocab = D.build_vocab(text)
    cut = D.split(len(text), 0.2)
    path = tmp_path / "ds.npz"
    D.save_dataset(path, vocab=vocab, train_ids=D.encode(text[:cut], vocab), val_ids=D.encode(text[cut:], vocab),
                   seq_length=20, stride=20, meta={"lowercase": True, "fold_typography": True})
    return path


def tiny_params(mirror: Path) -> dict:
    """The committed params.yaml with everything made tiny and the download pointed at `mirror`."""
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["download"].update(mirror=str(mirror), url="http://127.0.0.1:9/{id}", retries=0, timeout=1,
                         cache_dir="")
    p["prepare"].update(seq_length=20, min_chars=0)
    p["train"].update(layers=1, units=16, embedding_dim=8, batch_size=32, epochs=2, patience=0)
    p["generate"].update(samples=2, length=60)
    return p


def env_with_venv() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


@pytest.fixture
def project(tmp_path, mirror):
    """A git + DVC copy of this project with tiny params, ready for `dvc repro`."""
    dest = tmp_path / "proj"
    dest.mkdir()
    for name in ("chargen", "stages", "texts", "dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    (dest / "params.yaml").write_text(yaml.safe_dump(tiny_params(mirror), sort_keys=False))
    run = lambda *a: subprocess.run(a, cwd=dest, check=True, capture_output=True, env=env_with_venv())  # noqa: E731
    run("git", "init", "-q")
    run("git", "config", "user.email", "test@example.com")
    run("git", "config", "user.name", "test")
    run(sys.executable, "-m", "dvc", "init", "-q")
    run(sys.executable, "-m", "dvc", "config", "core.site_cache_dir", ".dvc/site_cache")
    run(sys.executable, "-m", "dvc", "config", "core.analytics", "false")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "init")
    return dest


def dvc(project: Path, *args, check=True, timeout=600) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=project, capture_output=True,
                         text=True, env=env_with_venv(), timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return res


def stage(project: Path, name: str, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, f"stages/{name}.py"], cwd=project, capture_output=True,
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
