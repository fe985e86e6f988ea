"""Charts as standalone SVG files (no plotting library needed).

    python bench/plot_curves.py --committed docs/img     # the README's pictures, from metrics/
    python bench/plot_curves.py --out bench/results/val_default_vs_tutorial.svg \
        default=metrics/train_history.csv tutorial=bench/results/h100-jax/tutorial.log

--committed draws the committed run's loss per epoch (metrics/train_history.csv) and its sample
quality per temperature (metrics/generate_quality.csv). Otherwise each run is NAME=FILE: a train
history CSV or a train stage log (lines `epoch N: train X bpc, val Y bpc, ...`), and the chart
shows validation bits/char per epoch.
"""

import argparse
import csv
import re
from pathlib import Path

import pandas as pd

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def read_curve(path: Path) -> list[tuple[int, float]]:
    text = path.read_text(encoding="utf-8")
    if text.startswith("epoch,"):
        return [(int(r["epoch"]), float(r["val_bpc"])) for r in csv.DictReader(text.splitlines())]
    found = re.findall(r"^epoch (\d+): train [\d.]+ bpc, val ([\d.]+) bpc", text, re.M)
    if not found:
        raise SystemExit(f"{path}: no history CSV header and no 'epoch N: ... val X bpc' lines")
    return [(int(e), float(v)) for e, v in found]


def svg(curves: dict, title: str, xlabel="epoch", ylabel="validation bits per character",
        xticks=None, best=min, width=640, height=360) -> str:
    """Lines of (x, y) points, one per named series; `best` marks each series' best point."""
    left, right, top, bottom = 60, 150, 40, 50
    xs = [e for c in curves.values() for e, _ in c]
    ys = [v for c in curves.values() for _, v in c]
    x0, x1 = (0, max(xs)) if xticks is None else (min(xticks), max(xticks))
    pad = (max(ys) - min(ys)) * 0.1 or 0.1
    y0, y1 = min(ys) - pad, max(ys) + pad
    pw, ph = width - left - right, height - top - bottom

    def px(e):
        return left + (e - x0) / (x1 - x0) * pw

    def py(v):
        return top + (y1 - v) / (y1 - y0) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2 - right / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
           f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>']
    for e in xticks if xticks is not None else range(0, x1 + 1, max(1, round(x1 / 6))):
        out.append(f'<text x="{px(e):.1f}" y="{top + ph + 16}" text-anchor="middle">{e:g}</text>')
    n = 6
    for i in range(n + 1):
        v = y0 + (y1 - y0) * i / n
        out.append(f'<line x1="{left}" y1="{py(v):.1f}" x2="{left + pw}" y2="{py(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 12}" text-anchor="middle">{xlabel}</text>')
    out.append(f'<text transform="translate(16,{top + ph / 2}) rotate(-90)" text-anchor="middle">'
               f'{ylabel}</text>')
    for i, (name, c) in enumerate(curves.items()):
        colour = COLOURS[i % len(COLOURS)]
        pts = " ".join(f"{px(e):.1f},{py(v):.1f}" for e, v in c)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        top_point = best(c, key=lambda p: p[1])
        out.append(f'<circle cx="{px(top_point[0]):.1f}" cy="{py(top_point[1]):.1f}" r="3" fill="{colour}"/>')
        y = top + 16 + 18 * i
        out.append(f'<line x1="{left + pw + 12}" y1="{y - 4}" x2="{left + pw + 32}" y2="{y - 4}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{left + pw + 36}" y="{y}">{name} (best {top_point[1]:.2f})</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def committed(folder: Path) -> None:
    """The committed run's loss curves and sample quality per temperature, from metrics/."""
    folder.mkdir(parents=True, exist_ok=True)
    history = pd.read_csv("metrics/train_history.csv")
    curves = {name: list(zip(history["epoch"], history[col]))
              for name, col in (("train", "train_bpc"), ("validation", "val_bpc"))}
    (folder / "loss.svg").write_text(svg(curves, "Loss per epoch (committed default run)",
                                         ylabel="bits per character"), encoding="utf-8")
    quality = pd.read_csv("metrics/generate_quality.csv")
    temps = [float(t) for t in quality["temperature"]]
    shares = {name: list(zip(temps, quality[col])) for name, col in (
        ("real words", "real_word_share"), ("distinct bigrams", "distinct_2"), ("distinct trigrams", "distinct_3"))}
    (folder / "quality.svg").write_text(svg(shares, "Samples per temperature (committed default run)",
                                            xlabel="sampling temperature", ylabel="share",
                                            xticks=temps, best=max), encoding="utf-8")
    print(f"wrote {folder / 'loss.svg'} and {folder / 'quality.svg'}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="*", metavar="NAME=FILE")
    ap.add_argument("--out")
    ap.add_argument("--committed", metavar="FOLDER", help="draw the committed run's charts into FOLDER")
    ap.add_argument("--title", default="Validation loss per epoch on Alice")
    args = ap.parse_args()
    if args.committed:
        return committed(Path(args.committed))
    if not args.runs or not args.out:
        ap.error("give NAME=FILE runs and --out, or --committed FOLDER")
    curves = {}
    for item in args.runs:
        name, _, file = item.partition("=")
        curves[name] = read_curve(Path(file))
    Path(args.out).write_text(svg(curves, args.title), encoding="utf-8")
    print(f"wrote {args.out}: " + ", ".join(f"{n} {len(c)} epochs, best {min(v for _, v in c):.3f}"
                                           for n, c in curves.items()))


if __name__ == "__main__":
    main()
