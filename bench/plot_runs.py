"""Validation loss per epoch of several runs on one chart (matplotlib), e.g. the default against
the tutorial's setup:

    python bench/plot_runs.py --out bench/results/val_default_vs_tutorial.svg \
        default=metrics/train_history.csv tutorial=bench/results/h100-jax/tutorial.log

Each run is NAME=FILE: a train history CSV, or a train stage log (its `epoch N: train X bpc,
val Y bpc, ...` lines). The README's own pictures are the figures stage's (chargen.figures).
"""

import argparse
import re
from pathlib import Path


from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from chargen.figures import read_rows, svg_bytes


def read_curve(path: Path) -> list[tuple[int, float]]:
    if path.read_text(encoding="utf-8").startswith("epoch,"):
        return [(int(r["epoch"]), r["val_bpc"]) for r in read_rows(path)]
    found = re.findall(r"^epoch (\d+): train [\d.]+ bpc, val ([\d.]+) bpc", path.read_text(encoding="utf-8"), re.M)
    if not found:
        raise SystemExit(f"{path}: no history CSV header and no 'epoch N: ... val X bpc' lines")
    return [(int(e), float(v)) for e, v in found]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("runs", nargs="+", help="NAME=FILE")
    args = ap.parse_args()
    fig = Figure(figsize=(7.5, 4), layout="constrained")
    ax = fig.add_subplot()
    for run in args.runs:
        name, _, file = run.partition("=")
        curve = read_curve(Path(file))
        best = min(curve, key=lambda p: p[1])
        ax.plot(*zip(*curve), "o-", ms=3, label=f"{name} (best {best[1]:.3f}, epoch {best[0]})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation bits per character")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    Path(args.out).write_bytes(svg_bytes(fig))


if __name__ == "__main__":
    main()
