"""The README's two pictures, drawn with matplotlib from a run's own metrics files, so that
every `dvc repro` redraws them from what it measured:

  loss.svg     train and validation bits per character per epoch, the epoch the select stage
               chose (from metrics/select.json), and the held-out scores of the model and of
               PPMd for scale
  quality.svg  sample quality per temperature: real words, distinct n-grams, loops and copies

The SVG files are deterministic (no date, a fixed id salt, text kept as text), so the same
metrics give the same bytes and DVC sees no change when nothing changed.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from chargen.io import ChargenError, write_bytes  # noqa: E402

SVG_SETTINGS = {"svg.hashsalt": "chargen", "svg.fonttype": "none", "font.size": 10}


def read_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def selected_point(history: list[dict], selected: dict) -> tuple[int, float, str]:
    """(epoch, its validation-windows bpc, legend label) of the checkpoint the select stage chose.

    Select ranks checkpoints by the validation text read as one stream, not by training's
    windowed validation loss, so its epoch need not be the curve's lowest point: the marker
    follows select's own record (metrics/select.json), the model in models/best.
    """
    epoch = int(selected["epoch"])
    row = next((r for r in history if int(r["epoch"]) == epoch), None)
    if row is None:
        raise ChargenError(f"metrics/select.json selects epoch {epoch}, which metrics/train_history.csv "
                           f"lacks: the two come from different runs; run dvc repro")
    averaged = selected.get("averaged_val_bpc") == selected["val_bpc"]
    what = f"the mean of the best epochs (epoch {epoch} best alone)" if averaged else f"epoch {epoch}"
    return epoch, row["val_bpc"], f"selected: {what}, {selected['val_bpc']:.3f} on held-out streams"


def loss_figure(history: list[dict], train: dict, scores: dict, selected: dict) -> Figure:
    epochs = [int(r["epoch"]) for r in history]
    chosen, chosen_bpc, chosen_label = selected_point(history, selected)
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(epochs, [r["train_bpc"] for r in history], "o-", ms=3, label="training windows")
    ax.plot(epochs, [r["val_bpc"] for r in history], "o-", ms=3, label="validation windows")
    ax.plot([chosen], [chosen_bpc], "o", ms=9, mfc="none", mec="black", label=chosen_label)
    for key, style, name in (("lstm", "-.", "this model"), ("ppmd16", ":", "PPMd order 16")):
        if key in scores:
            ax.axhline(scores[key], ls=style, color="gray" if key == "ppmd16" else "black", lw=1,
                       label=f"{name} on the held-out text read whole: {scores[key]:.3f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bits per character")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    ax.set_title(f"Loss per epoch: {train['params']:,}-parameter LSTM, {train['epochs_run']} epochs")
    return fig


def quality_figure(rows: list[dict]) -> Figure:
    temps = [r["temperature"] for r in rows]
    fig = Figure(figsize=(8.5, 3.6), layout="constrained")
    shares, spans = fig.subplots(1, 2)
    for key, name in (("real_word_share", "real words"), ("distinct_2", "distinct word bigrams"),
                      ("distinct_3", "distinct word trigrams")):
        shares.plot(temps, [r[key] for r in rows], "o-", ms=4, label=name)
    shares.set_ylabel("share of the samples' words")
    shares.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
    for key, name in (("longest_repeat", "longest loop"), ("longest_copy", "longest copy of the book")):
        spans.plot(temps, [r[key] for r in rows], "o-", ms=4, label=name)
    spans.set_ylabel("characters")
    spans.set_ylim(bottom=0)
    spans.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10], integer=True))
    for ax in (shares, spans):
        ax.set_xlabel("sampling temperature")
        ax.set_xticks(temps)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle("Sample quality per temperature")
    return fig


def svg_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with matplotlib.rc_context(SVG_SETTINGS):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def draw(metrics: Path, out: Path) -> list[Path]:
    """Draw both pictures from the metrics folder of a run into `out`; return their paths."""
    history = read_rows(metrics / "train_history.csv")
    train = json.loads((metrics / "train.json").read_text(encoding="utf-8"))
    scores = json.loads((metrics / "eval.json").read_text(encoding="utf-8"))
    selected = json.loads((metrics / "select.json").read_text(encoding="utf-8"))
    figures = {"loss.svg": loss_figure(history, train, scores, selected),
               "quality.svg": quality_figure(read_rows(metrics / "generate_quality.csv"))}
    for name, fig in figures.items():
        write_bytes(out / name, svg_bytes(fig))
    return [out / name for name in figures]
