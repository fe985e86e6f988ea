"""The README's pictures are the figures stage's drawing of the committed metrics: redrawn from
them they are the same bytes, dvc.lock records them as made from exactly those files, and what
they show is what the metrics say."""

import hashlib
import json
import re

import yaml

from chargen.figures import draw, read_rows
from conftest import ROOT


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_committed_pictures_are_drawn_from_the_committed_metrics(tmp_path):
    drawn = draw(ROOT / "metrics", tmp_path)
    for path in drawn:
        assert path.read_bytes() == (ROOT / "docs/img" / path.name).read_bytes(), \
            f"docs/img/{path.name} is stale: run dvc repro (the figures stage redraws it)"


def test_dvc_lock_records_the_pictures_as_made_from_the_committed_metrics():
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]["figures"]
    for entry in lock["deps"] + lock["outs"]:
        if entry["path"].startswith(("metrics/", "docs/")):
            assert entry["md5"] == md5(ROOT / entry["path"]), entry["path"]


def test_pictures_show_the_metrics(tmp_path):
    draw(ROOT / "metrics", tmp_path)
    loss = (tmp_path / "loss.svg").read_text()
    history = read_rows(ROOT / "metrics/train_history.csv")
    best = min(history, key=lambda r: r["val_loss"])
    scores = json.loads((ROOT / "metrics/eval.json").read_text())
    assert f"selected: epoch {int(best['epoch'])}, {best['val_bpc']:.3f}" in loss
    assert f"{scores['ppmd16']:.3f}" in loss and f"{scores['lstm']:.3f}" in loss
    assert f"{len(history)} epochs" in loss
    # Tick labels are round numbers (the old hand-drawn axis had 3.21, 2.82, 2.43).
    ticks = [float(t) for t in re.findall(r">(\d+\.\d+)</text>", loss)]
    assert ticks and all(round(t * 4) == t * 4 for t in ticks), ticks
    quality = (tmp_path / "quality.svg").read_text()
    assert "distinct word bigrams" in quality and "longest copy of the book" in quality
