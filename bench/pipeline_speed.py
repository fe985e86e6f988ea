"""The prepare stage's speed: on the largest shared book, and its throughput on a generated text
of many MB (the streaming path for corpora bigger than memory).

    python bench/pipeline_speed.py                          # target: prepare on a book < 10 s
    python bench/pipeline_speed.py --big-mb 512 --out FILE  # also a 512 MB text; write results

prepare runs in a temporary copy of the project, as a subprocess timed from the outside (Python
and NumPy start-up included), so the figures are what a user waits for. The book comes from
`download.mirror` as params.yaml has it (or gutenberg.org when the mirror is missing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from bench.machine import write_results

ROOT = Path(__file__).resolve().parents[1]


def timed(args, cwd, repeat: int) -> tuple[list[float], str]:
    times, out = [], ""
    for _ in range(repeat):
        t = time.perf_counter()
        res = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if res.returncode:
            sys.exit(f"{' '.join(map(str, args))} failed:\n{res.stdout}\n{res.stderr}")
        out = res.stdout
    return times, out


def copy_project(dest: Path, params: dict) -> None:
    for name in ("chargen", "stages", "texts"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def write_text(path: Path, n_bytes: int) -> None:
    """Random words from a small English list, ~10 to a line, in 4 MB blocks."""
    words = np.array("the and of to a in that it was he said she her you i as with for his on".split())
    rng = np.random.default_rng(0)
    blocks = []
    for _ in range(4):
        w = words[rng.integers(len(words), size=800_000)].tolist()
        br = np.where(rng.random(len(w)) < 0.1, "\n", " ").tolist()
        blocks.append("".join(a + b for a, b in zip(w, br)).encode())
    with open(path, "wb") as fh:
        while fh.tell() < n_bytes:
            fh.write(blocks[rng.integers(len(blocks))])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--book", type=int, default=2701, help="the largest shared book: Moby Dick, 1.25 MB")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--big-mb", type=int, default=0, help="also time prepare on a generated text this big")
    ap.add_argument("--out", help="also write the figures, with the machine, to this JSON file")
    args = ap.parse_args()
    py = sys.executable
    results = {}
    load_before = os.getloadavg()[0]

    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        proj = Path(tmp) / "proj"
        params = dict(base, download=dict(base["download"], book=args.book, extra_books=[], text="", extra_texts=[]))
        mirror = Path(base["download"]["mirror"])
        params["download"]["mirror"] = str(mirror if mirror.is_absolute() else (ROOT / mirror).resolve())
        copy_project(proj, params)
        timed([py, "-m", "stages.download"], proj, 1)
        size = sum(p.stat().st_size for p in (proj / "data/raw").glob("*.txt"))
        t, out = timed([py, "-m", "stages.prepare"], proj, args.repeat)
        results["prepare_book"] = {"book": args.book, "bytes": size, "seconds": statistics.median(t)}
        print(f"prepare, ebook {args.book} ({size / 1e6:.2f} MB): median {statistics.median(t):.2f} s, "
              f"min {min(t):.2f} s (target < 10 s)")
        print(f"  {out.strip()}")

        if args.big_mb:
            big = Path(tmp) / "big.txt"
            write_text(big, args.big_mb << 20)
            params["download"].update(text=str(big), max_bytes=2 * big.stat().st_size)
            params["prepare"]["val_fraction"] = 0.01
            (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            timed([py, "-m", "stages.download"], proj, 1)
            t, out = timed([py, "-m", "stages.prepare"], proj, 1)
            mb = big.stat().st_size / 1e6
            results["prepare_big"] = {"bytes": big.stat().st_size, "seconds": t[0], "mb_per_s": mb / t[0]}
            print(f"prepare, generated text of {mb:.0f} MB: {t[0]:.1f} s, {mb / t[0]:.0f} MB/s")
    if args.out:
        write_results(args.out, results, {"book": args.book, "big_mb": args.big_mb, "repeat": args.repeat},
                      "python bench/pipeline_speed.py " + " ".join(sys.argv[1:]), load_before)


if __name__ == "__main__":
    main()
