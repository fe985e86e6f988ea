"""The README's pictures are the figures stage's drawing of the committed metrics: redrawn from
them they are the same bytes, dvc.lock records them as made from exactly those files, and what
they show is what the metrics say."""

import hashlib
import json
import re

import pytest
import yaml

from chargen.figures import draw, read_rows
from chargen.io import ChargenError
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
    selected = json.loads((ROOT / "metrics/select.json").read_text())
    scores = json.loads((ROOT / "metrics/eval.json").read_text())
    assert f"selected: epoch {selected['epoch']}, {selected['val_bpc']:.3f}" in loss
    assert f"{scores['ppmd16']:.3f}" in loss and f"{scores['lstm']:.3f}" in loss
    assert f"{len(history)} epochs" in loss
    # Tick labels are round numbers (the old hand-drawn axis had 3.21, 2.82, 2.43).
    ticks = [float(t) for t in re.findall(r">(\d+\.\d+)</text>", loss)]
    assert ticks and all(round(t * 4) == t * 4 for t in ticks), ticks
    quality = (tmp_path / "quality.svg").read_text()
    assert "distinct word bigrams" in quality and "longest copy of the book" in quality


def synthetic_run(folder, history_rows, selected):
    """A metrics folder with a tiny history and select's record of what it chose."""
    folder.mkdir()
    lines = ["epoch,train_loss,val_loss,train_bpc,val_bpc,learning_rate"]
    lines += [f"{e},{t},{v},{t / 0.693147},{v / 0.693147},0.001" for e, t, v in history_rows]
    (folder / "train_history.csv").write_text("\n".join(lines) + "\n")
    (folder / "train.json").write_text(json.dumps({"params": 1234, "epochs_run": len(history_rows)}))
    (folder / "eval.json").write_text(json.dumps({"lstm": 1.5, "ppmd16": 1.6}))
    (folder / "select.json").write_text(json.dumps(selected))
    (folder / "generate_quality.csv").write_text(
        "temperature,real_word_share,distinct_2,distinct_3,longest_repeat,longest_copy\n"
        "0.5,0.9,0.5,0.6,40,30\n1.0,0.8,0.7,0.8,20,25\n")
    return folder


def marked_epoch(svg: str) -> str:
    """The legend's 'selected: ...' line of loss.svg."""
    found = re.findall(r"selected: [^<]*", svg)
    assert len(found) == 1, found
    return found[0]


HISTORY = [(1, 2.0, 1.9), (2, 1.6, 1.5), (3, 1.4, 1.45), (4, 1.3, 1.47)]  # lowest val_loss: epoch 3


def test_the_loss_picture_marks_the_epoch_select_chose_not_the_lowest_windowed_loss(tmp_path):
    metrics = synthetic_run(tmp_path / "metrics", HISTORY, {"epoch": 4, "val_bpc": 1.912})
    draw(metrics, tmp_path / "img")
    svg = (tmp_path / "img/loss.svg").read_text()
    assert marked_epoch(svg) == "selected: epoch 4, 1.912 on held-out streams"


def test_an_averaged_selection_says_so(tmp_path):
    selected = {"epoch": 2, "val_bpc": 1.901, "averaged_val_bpc": 1.901}
    draw(synthetic_run(tmp_path / "metrics", HISTORY, selected), tmp_path / "img")
    label = marked_epoch((tmp_path / "img/loss.svg").read_text())
    assert label == "selected: the mean of the best epochs (epoch 2 best alone), 1.901 on held-out streams"
    # The mean was tried and lost: the single best epoch is what select kept.
    selected = {"epoch": 2, "val_bpc": 1.901, "averaged_val_bpc": 1.95}
    (tmp_path / "metrics/select.json").write_text(json.dumps(selected))
    draw(tmp_path / "metrics", tmp_path / "img")
    assert marked_epoch((tmp_path / "img/loss.svg").read_text()) == "selected: epoch 2, 1.901 on held-out streams"


def test_a_selection_from_another_run_is_refused(tmp_path):
    metrics = synthetic_run(tmp_path / "metrics", HISTORY, {"epoch": 9, "val_bpc": 1.9})
    with pytest.raises(ChargenError, match="selects epoch 9, which metrics/train_history.csv lacks"):
        draw(metrics, tmp_path / "img")
    assert not (tmp_path / "img").exists()
