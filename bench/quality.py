"""Held-out quality of several configurations on one table, each trained from scratch.

    python bench/quality.py                      # every configuration below
    python bench/quality.py default tutorial     # some of them
    python bench/quality.py --set train.epochs=2 tutorial   # extra overrides for all
    python bench/quality.py moby-dick --out bench/results/quality/moby-dick.json
    python bench/quality.py hour --out bench/results/quality/hour-alice.json   # the hour recipe
    python bench/quality.py hour-large-moby-dick --out bench/results/quality/hour-large-moby-dick.json

Each configuration takes as long as `make repro`, so the bench pipeline leaves them to be run on
purpose; --out writes the figures with the machine, params and commit as a results file.

Each configuration runs prepare, train, select and evaluate in its own temporary copy of the
project (the download stage reads the books already in data/raw, or the mirror), with the
params.yaml of this checkout plus the configuration's overrides. Prints a Markdown table:
training time, epochs, held-out bits/char (the evaluate stage's figures: one continuous
stream, with dynamic evaluation, and mixed with the n-gram model), the samples' statistics at
temperature 0.8 (the generate stage's: real words, longest loop and longest copy of the book,
in characters) and the compressors' figures on the same split.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from math import nan
from pathlib import Path

from bench.machine import git_commit, write_results
from bench.run_stages import apply

ROOT = Path(__file__).resolve().parents[1]

TUTORIAL = ["prepare.seq_length=100", "prepare.stride=1", "train.objective=last", "train.batches=windows",
            "train.input=scaled", "train.layers=1", "train.units=256", "train.dropout=0.2", "train.batch_size=128",
            "train.learning_rate=0.001", "train.lr_schedule=constant", "train.clipnorm=0", "train.patience=0",
            "train.epochs=20", "train.steps_per_epoch=0"]

# The default before issue 15 (1x256, dropout 0.4, 24 epochs, windows); most rows below start from it.
OLD = ["train.layers=1", "train.units=256", "train.dropout=0.4", "train.epochs=24", "train.batches=windows"]
WHOLE_STREAMS = ["train.batches=streams", "train.stream_chunk=0"]  # streams before chunks (issue 24)

# The hour recipe (docs/results.md "An hour of training"; README and docs render its command from
# this list): a wider network held back by weight drop, trained for a fixed 64 epochs.
HOUR = ["train.units=512", "train.weight_drop=0.5", "train.epochs=64", "train.patience=0", "select.average=4"]
# The same network for books near a million characters (Origin, Moby Dick), which an hour reads 7 to 9
# times: half the regularisation (with HOUR, Moby Dick's training loss stays above its validation loss).
HOUR_LARGE = ["train.units=512", "train.dropout=0.2", "train.weight_drop=0.2", "train.epochs=60", "train.patience=0",
              "select.average=4"]

CONFIGS = {
    "default": [],
    "hour": HOUR,
    "hour-moby-dick": ["download.book=2701"] + HOUR,
    "hour-large-moby-dick": ["download.book=2701"] + HOUR_LARGE,
    "hour-large-origin": ["download.book=1228"] + HOUR_LARGE,
    "hour-large-origin-streams": ["download.book=1228"] + HOUR_LARGE + ["train.batches=streams"],
    "tutorial": TUTORIAL,
    "2x384-d0.5-e24": ["train.dropout=0.5", "train.epochs=24"],
    "2x512-d0.5": ["train.units=512", "train.dropout=0.5"],
    "1x256-d0.4": OLD,
    "1x256-streams": OLD + WHOLE_STREAMS,
    "1x256-streams-d0.5": OLD + WHOLE_STREAMS + ["train.dropout=0.5"],
    "2x256-d0.3": OLD + ["train.layers=2", "train.dropout=0.3"],
    "1x512-d0.5": OLD + ["train.units=512", "train.dropout=0.5"],
    "2x192-d0.3": OLD + ["train.layers=2", "train.units=192", "train.dropout=0.3"],
    "seq64": OLD + ["prepare.seq_length=64"],
    "avg3": OLD + ["select.average=3"],
    "extra-books": OLD + ["download.extra_books=[1513, 1228, 2701]", "train.epochs=6"],
    # issue 24 (the embedding-dropout rows used a train.embed_dropout option, since removed)
    "seq64-b16": ["prepare.seq_length=64", "train.batch_size=16"],
    # streams cut into chunks of N windows, dealt to the rows in a new order every pass
    "1x256-chunks8": OLD + ["train.batches=streams", "train.stream_chunk=8"],
    # larger books with the default params (the book is the only change: batches auto picks
    # chunked streams there), and with the windows Alice trains on
    "moby-dick": ["download.book=2701"],
    "origin": ["download.book=1228"],
    "moby-windows": ["download.book=2701", "train.batches=windows"],
    "origin-windows": ["download.book=1228", "train.batches=windows"],
    "moby-1x256": ["download.book=2701"] + OLD,
    "moby-1x256-chunks8": ["download.book=2701"] + OLD + ["train.batches=streams", "train.stream_chunk=8"],
}


def run(name, overrides, workdir: Path, mirror: Path) -> dict:
    proj = workdir / name
    for item in ("chargen", "stages", "bench", "params.yaml"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, proj / item)
    apply([f"download.mirror={mirror}", *overrides], proj / "params.yaml")
    log = proj / "run.log"
    seconds = {}
    with open(log, "w") as fh:
        for stage in ("check_params", "download", "prepare", "train", "select", "generate", "evaluate"):
            start = time.perf_counter()
            if subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=proj, stdout=fh,
                              stderr=subprocess.STDOUT).returncode:
                return {"error": f"{stage} failed, see {log}"}
            seconds[stage] = round(time.perf_counter() - start, 1)
    m = {f: json.loads((proj / "metrics" / f"{f}.json").read_text()) for f in ("train", "select", "eval")}
    m["train"].update(json.loads((proj / "metrics/run/train.json").read_text()))  # timings, device
    rows = (proj / "metrics/generate_quality.csv").read_text().splitlines()
    table = [dict(zip(rows[0].split(","), r.split(","))) for r in rows[1:]]
    m["samples"] = next((r for r in table if float(r["temperature"]) == 0.8), table[-1])
    m["stage_seconds"] = seconds
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("configs", nargs="*", default=list(CONFIGS))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", help="also write the results, with the machine, to this JSON file")
    ap.add_argument("--note", help="what the results file should say about how the run went, e.g. what "
                                   "else ran on the machine")
    ap.add_argument("--mirror", default=str(ROOT.parent / "shared" / "corpus"),
                    help="folder of pg<ID>.txt files (default: ../shared/corpus)")
    args = ap.parse_args()
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        sys.exit(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")

    results = {}
    load_before, commit = os.getloadavg()[0], git_commit()  # the code the runs copy, as they begin
    with tempfile.TemporaryDirectory(prefix="chargen-quality-") as tmp:
        print("| configuration | all stages s | train s | s/epoch | epochs (best) | static | sampled (+ n-gram) | "
              "dynamic | mixed online | ppmd16 | real words | loop | copy | device |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
              flush=True)
        for name in args.configs:
            m = run(name, CONFIGS[name] + args.set, Path(tmp), Path(args.mirror).resolve())
            results[name] = m
            if "error" in m:
                print(f"| {name} | {m['error']} | | | | | | | | | | | | |", flush=True)
                continue
            t, e, q = m["train"], m["eval"], m["samples"]
            print(f"| {name} | {sum(m['stage_seconds'].values()):.0f} | {t.get('train_seconds', 0):.0f} | "
                  f"{t.get('seconds_per_epoch', 0):.1f} | "
                  f"{t['epochs_run']} ({t['best_epoch']}) | {e['lstm']:.3f} | {e.get('lstm_ngram', nan):.3f} | "
                  f"{e.get('lstm_dynamic', nan):.3f} | {e.get('lstm_mix', nan):.3f} | {e['ppmd16']:.3f} | "
                  f"{float(q['real_word_share']):.1%} | {q['longest_repeat']} | {q['longest_copy']} | "
                  f"{t['device']} ({t['backend']}) |", flush=True)
    for name, m in results.items():  # compressors see the same training text as that model
        if "eval" in m:
            print(f"\ncompressors, {name}'s split (bits/char): " + ", ".join(
                f"{k} {v:.3f}" for k, v in m["eval"].items() if not k.startswith(("lstm", "ngram"))))
            print(f"seconds per stage: " + ", ".join(f"{k} {v:.0f}" for k, v in m["stage_seconds"].items()))
    if args.out:
        params = {name: CONFIGS[name] + args.set for name in args.configs}
        write_results(args.out, results, params, "python bench/quality.py " + " ".join(sys.argv[1:]), load_before)
        # This process never loads Keras: the device is the one the runs trained on, and the
        # commit the one they copied, not whatever was checked out by the time they ended.
        out = Path(args.out)
        record = json.loads(out.read_text())
        record["commit"] = commit
        trained = [m["train"] for m in results.values() if "train" in m]
        if trained:
            record["machine"]["device"] = f"{trained[0]['device']} ({trained[0]['backend']})"
        if args.note:
            record["note"] = args.note
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, out)


if __name__ == "__main__":
    main()
