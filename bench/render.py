"""Fill the docs' tables from the results files, so a published figure is an output like any
other: every table in README.md and docs/ sits between marker comments

    <!-- table: NAME -->
    ...generated...
    <!-- /table -->

and is rewritten from the committed results (bench/results/, metrics/, params.yaml) by

    python bench/render.py            # rewrite the tables in place
    python bench/render.py --check    # exit 1, naming each table that differs from its files

tests/test_doc_tables.py runs the check, so a doc that disagrees with its files fails the tests.
Each table names the machine its figures came from, once.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/results.md", "docs/performance.md", "docs/model.md", "docs/pipeline.md")
MARKER = re.compile(r"(<!-- table: ([\w-]+) -->\n)(.*?)(<!-- /table -->)", re.S)


def load(rel: str) -> dict:
    return json.loads((ROOT / rel).read_text())


def machine_name(rec: dict) -> str:
    """The machine and libraries a results file was measured with."""
    m = rec["machine"]
    v = m.get("versions", {})
    libs = ", ".join(f"{k} {v[k]}" for k in ("tensorflow", "keras", "jax", "numpy") if k in v)
    return f"{m['cores']}-core {m['cpu']}, {m['device']}, {m['blas']}; {libs}"


def run_source(rec: dict, rel: str) -> str:
    """The results file, the commit the code ran at and the load when it began."""
    load_note = f", load {rec['load_before']:.1f} when it began" if rec.get("load_before") is not None else ""
    return f"`{rel}`, code at {rec['commit']}{load_note}"


def machine_line(rec: dict, rel: str) -> str:
    """'Machine: ...' naming the machine, the results file and the commit the code ran at."""
    return f"Machine: {machine_name(rec)} ({run_source(rec, rel)})."


def table(header: list[str], rows: list[list], align: str = "") -> str:
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = [header, rule] + [[str(c) for c in r] for r in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def bpc(x) -> str:
    return "" if x is None else f"{x:.3f}"


def pct(x) -> str:
    return f"{float(x):.1%}"


def num(x) -> str:
    """A metric as `dvc metrics show` prints it: at most 5 decimals, no trailing zeros."""
    if isinstance(x, float):
        return f"{round(x, 5):.5f}".rstrip("0").rstrip(".")
    return str(x)


# --- the committed default run (metrics/) -------------------------------------------------

def metrics_show() -> str:
    """`dvc metrics show --md` of the committed run: dvc.yaml's top-level metrics files."""
    files = yaml.safe_load((ROOT / "dvc.yaml").read_text())["metrics"]
    data = {f: load(f) for f in files}
    cols = sorted({k for d in data.values() for k in d})
    rows = [[f] + [num(d[c]) if c in d else "-" for c in cols] for f, d in data.items()]
    return table(["Path"] + cols, rows, "l" * (len(cols) + 1))


def params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def default_alice() -> str:
    p, tr, sel, ev, gen = (params(), load("metrics/train.json"), load("metrics/select.json"),
                           load("metrics/eval.json"), load("metrics/generate.json"))
    t = p["train"]
    temps = [k for k in gen if k.startswith("temp_")]
    names = " / ".join(k[5:].replace("_", ".") for k in temps)

    def per_temp(key, fmt=str):
        return " / ".join(fmt(gen[k][key]) for k in temps)

    rows = [
        ["training", f"{t['layers']} x LSTM({t['units']}), dropout {t['dropout']}, {tr['epochs_run']} epochs of "
                     f"{t['steps_per_epoch']} batches of {t['batch_size']}, {tr['params']:,} params"],
        [f"validation, windows of {p['prepare']['seq_length']} chars from a cold state (logged per epoch; lowest "
         f"at epoch {tr['best_epoch']})", f"{tr['best_val_bpc']:.3f}"],
        [f"validation, continuous streams (select; the model selected: epoch {sel['epoch']})", f"{sel['val_bpc']:.3f}"],
        ["held-out text as one stream, the network alone (`lstm`)", f"**{ev['lstm']:.3f}**"],
        [f"what the samples are drawn from: that mixed with the adaptive {p['generate']['ngram_order']}-gram at "
         f"weight {p['generate']['ngram_weight']} (`lstm_ngram`)", f"**{ev['lstm_ngram']:.3f}**"],
        [f"dynamic evaluation (SGD {p['evaluate']['dynamic_lr']} every {p['evaluate']['dynamic_segment']} chars; "
         "`lstm_dynamic`)", f"**{ev['lstm_dynamic']:.3f}**"],
        [f"that mixed online with an adaptive {p['evaluate']['ngram_order']}-gram (`lstm_mix`; the n-gram alone: "
         f"{ev['ngram']:.3f})", f"**{ev['lstm_mix']:.3f}**"],
        ["gzip / bzip2 / xz on the same text, after the training text", f"{ev['gzip']:.3f} / {ev['bzip2']:.3f} / {ev['xz']:.3f}"],
        ["PPMd order 6 / order 16", f"{ev['ppmd6']:.3f} / {ev['ppmd16']:.3f}"],
        [f"samples at temperature {names}: real words", per_temp("real_word_share", pct)],
        ["distinct word bigrams", per_temp("distinct_2", lambda x: f"{x:.3f}")],
        ["longest loop within a sample / longest copy of the training text (chars)",
         " / ".join(f"{gen[k]['longest_repeat']}, {gen[k]['longest_copy']}" for k in temps)],
    ]
    return table(["", "bits per character"], rows, "ll")


def sample_intro() -> str:
    """The README's line above its sample, with the committed run's share of real words."""
    share = load("metrics/generate.json")["temp_0_8"]["real_word_share"]
    return ("A sample at temperature 0.8, continuing a validation-text prompt that ends `\"please your maj`\n"
            f"(`samples/samples.txt`; at this temperature {share:.1%} of the samples' words are words of the book):")


def train_time() -> str:
    """The README's one line on training time, from the train_speed benchmark's default row."""
    rel = "bench/results/train_speed.json"
    rec = load(rel)
    row = next(r for r in rec["figures"]["rows"] if r["setup"] == "default")
    epochs = params()["train"]["epochs"]
    m = rec["machine"]
    return (f"Training the default takes about {row['seconds_per_epoch']:.0f} s per epoch on a {m['cores']}-core "
            f"{m['cpu']} (`{rel}`), so about {row['seconds_per_epoch'] * epochs / 60:.0f} minutes for its {epochs} "
            "epochs.")


# --- the quality benchmarks (bench/results/quality/, levers.json, h100-jax/) -------------

BOOKS = {"alice": "Alice (11)", "moby-dick": "Moby Dick (2701)", "origin": "On the Origin of Species (1228)"}


def larger_books() -> str:
    rows, machines = [], {}
    base = None
    for key, name in BOOKS.items():
        rel = f"bench/results/quality/{key}.json"
        rec = load(rel)
        (cfg, m), = rec["figures"].items()
        total = sum(m["stage_seconds"].values())
        base = base or total
        e, s = m["eval"], m["samples"]
        rows.append([name, m["train"].get("batches", ""), f"{total:.0f}", f"{total / base:.2f}",
                     f"{m['stage_seconds']['train']:.0f}", bpc(e["lstm"]), bpc(e["lstm_ngram"]), bpc(e["lstm_dynamic"]),
                     bpc(e["lstm_mix"]), bpc(e["ppmd16"]), pct(s["real_word_share"])])
        machines.setdefault(machine_line(rec, "bench/results/quality/*.json").replace(rel, ""), []).append(key)
    out = table(["book", "batches", "all stages s", "x Alice", "train s", "static", "sampled", "dynamic",
                 "mixed online", "PPMd16", "real words (0.8)"], rows, "ll" + "r" * 9)
    return out + "\n\n" + " ".join(machines)


def levers() -> str:
    rec = load("bench/results/levers.json")
    rows = []
    for r in rec["figures"]["levers"]:
        if r["bpc"] is None:
            effect = "not measured"
        else:
            effect = f"{r['bpc']:.3f} against {r['baseline_bpc']:.3f} ({r['bpc'] - r['baseline_bpc']:+.3f})"
        rows.append([r["lever"], r["setting"], r["book"], f"{r['metric']}: {effect}, vs {r['baseline']}",
                     f"{r['outcome']}: {r['why']}", f"{code(r['command'])}; {r['machine']}"])
    return table(["lever", "setting", "book", "effect (bits/char)", "outcome and why", "measured by"], rows, "l" * 6)


def code(command: str) -> str:
    """A command in backticks; a description (e.g. of a script not kept) as it is."""
    if command.startswith(("python ", "dvc ")):
        cmd, _, rest = command.partition(" (")
        return f"`{cmd}`" + (f" ({rest}" if rest else "")
    return command


def last_epoch(log: str) -> tuple[int, float]:
    lines = re.findall(r"^epoch (\d+): train ([\d.]+) bpc", (ROOT / log).read_text(), re.M)
    return int(lines[-1][0]), float(lines[-1][1])


def h100() -> str:
    d = "bench/results/h100-jax/"
    tr, sel = load(d + "default_train.json"), load(d + "default_select.json")
    tsel = load(d + "tutorial_select.json")
    epochs, train_bpc = last_epoch(d + "tutorial.log")
    rows = [
        ["1x256, dropout 0.2, 32-char windows", f"{tr['seconds_per_epoch']:.2f}",
         f"{tr['epochs_run']} (early stop)", f"validation {sel['val_bpc']:.3f} (streams), {tr['best_val_bpc']:.3f} (windows)"],
        ["the tutorial's setup (objective `last`, input `scaled`, stride 1, batch 128)", "",
         str(epochs), f"train loss {train_bpc:.3f} bits/char = **{train_bpc * 0.693147:.3f} nats** after {epochs} "
         f"epochs (tutorial: 1.92); best validation {tsel['val_bpc']:.2f} (epoch {tsel['epoch']})"],
    ]
    return (table(["setup", "s/epoch", "epochs", "result"], rows, "lrrl") + "\n\n"
            f"Machine: one NVIDIA H100, Keras {tr['keras']} on JAX {tr['jax']} ({tr['device']}), "
            f"code at 8ae878d (`{d}`).")


# --- the hour recipes (bench/quality.py HOUR, HOUR_LARGE; bench/results/quality/hour-*.json) --

# results file -> (book, its default run's results file, recipe); Alice first
HOUR_RUNS = {"hour-alice": ("Alice (11)", "alice", "`hour`"),
             "hour-moby-dick": ("Moby Dick (2701)", "moby-dick", "`hour`"),
             "hour-large-moby-dick": ("Moby Dick (2701)", "moby-dick", "`hour-large`"),
             "hour-large-origin": ("On the Origin of Species (1228)", "origin", "`hour-large`"),
             "hour-large-origin-streams": ("On the Origin of Species (1228)", "origin", "`hour-large`, streams")}
HOUR_MINUTES = 60  # the recipes' promise: at most an hour of training on a 2-core machine


def hour_command(recipe: str = "hour", book: int | None = None) -> str:
    """The one command that runs a recipe, from bench/quality.py's HOUR or HOUR_LARGE list."""
    from bench.quality import HOUR, HOUR_LARGE

    sets = ([f"download.book={book}"] if book else []) + {"hour": HOUR, "hour-large": HOUR_LARGE}[recipe]
    return "dvc exp run " + " ".join(f"-S {s}" for s in sets)


def hour_runs() -> list[tuple[str, str, dict, dict]]:
    """(name, file, record, figures) of each hour run that has a results file, Alice first."""
    runs = []
    for name in HOUR_RUNS:
        rel = f"bench/results/quality/{name}.json"
        if (ROOT / rel).is_file():
            rec = load(rel)
            (_, m), = rec["figures"].items()
            runs.append((name, rel, rec, m))
    return runs


def hour_goals(name: str, m: dict) -> list[tuple[str, bool]]:
    """The recipes' goals (issue 30) for one run: (what, met)."""
    e, s, minutes = m["eval"], m["samples"], m["train"]["train_seconds"] / 60
    goals = [(f"training {minutes:.0f} min, at most {HOUR_MINUTES}", minutes <= HOUR_MINUTES)]
    if name == "hour-alice":
        goals += [(f"static {e['lstm']:.3f}, at most 1.85", e["lstm"] <= 1.85),
                  (f"mixed online {e['lstm_mix']:.3f}, at most 1.72", e["lstm_mix"] <= 1.72),
                  (f"real words at 0.8 {pct(s['real_word_share'])}, at least 94%", float(s["real_word_share"]) >= 0.94),
                  (f"longest loop {s['longest_repeat']} chars, at most 60", int(s["longest_repeat"]) <= 60),
                  (f"longest copy {s['longest_copy']} chars, at most 50", int(s["longest_copy"]) <= 50)]
    elif "moby-dick" in name:
        goals.append((f"static {e['lstm']:.3f}, below PPMd16's {e['ppmd16']:.3f}", e["lstm"] < e["ppmd16"]))
    return goals  # Origin is reported beside Moby Dick, with no goal but the time


def hour() -> str:
    rows, notes, machines = [], [], {}
    for name, rel, rec, m in hour_runs():
        title, default, recipe = HOUR_RUNS[name]
        t, e, s = m["train"], m["eval"], m["samples"]
        base = next(iter(load(f"bench/results/quality/{default}.json")["figures"].values()))["eval"]["lstm"]
        rows.append([title, recipe, f"{t['train_seconds'] / 60:.0f} min", f"{t['epochs_run']} ({t['best_epoch']})",
                     f"{bpc(e['lstm'])} ({bpc(base)})", bpc(e["lstm_ngram"]), bpc(e["lstm_dynamic"]),
                     bpc(e["lstm_mix"]), bpc(e["ppmd16"]), pct(s["real_word_share"]),
                     f"{s['longest_repeat']} / {s['longest_copy']}"])
        who = f"{title.split(' (')[0]}, {recipe} ({run_source(rec, rel)})"
        notes.append(f"- {who}: " + "; ".join(f"{what} ({'met' if ok else 'not met'})"
                                                for what, ok in hour_goals(name, m)))
        if rec.get("note"):
            notes.append(f"  Conditions: {rec['note']}")
        machines.setdefault(machine_name(rec), []).append(name)
    if not rows:
        return "No hour run has a results file yet: `python bench/quality.py hour --out bench/results/quality/hour-alice.json`."
    out = table(["book", "recipe", "training", "epochs (best)", "static (default)", "sampled", "dynamic",
                 "mixed online", "PPMd16", "real words (0.8)", "loop / copy"], rows, "ll" + "r" * 9)
    where = " ".join(f"Machine: {name}." for name in machines)
    return out + "\n\nGoals:\n" + "\n".join(notes) + "\n\n" + where


def hour_summary() -> str:
    """The README's lines on the recipes: their commands, what they cost and what they give."""
    found = hour_runs()
    runs = {name: m for name, _, _, m in found}
    machines = {name: rec["machine"] for name, _, rec, _ in found}
    lines = [f"```bash\n{hour_command()}   # a text of Alice's size\n"
             f"{hour_command('hour-large')}   # a book near a million characters: add -S download.book=2701\n```", ""]
    if "hour-alice" in runs:
        a, mach = runs["hour-alice"], machines["hour-alice"]
        speed = next(r for r in load("bench/results/train_speed.json")["figures"]["rows"] if r["setup"] == "default")
        default_min = speed["seconds_per_epoch"] * params()["train"]["epochs"] / 60
        alice = next(iter(load("bench/results/quality/alice.json")["figures"].values()))["eval"]["lstm"]
        longest = max(m["train"]["train_seconds"] for m in runs.values()) / 60
        line = (f"Each trained for at most {longest:.0f} minutes on a {mach['cores']}-core {mach['cpu']} (the default: about "
                f"{default_min:.0f} minutes). The first scores Alice's held-out text at {a['eval']['lstm']:.3f} "
                f"bits/char against the default's {alice:.3f} and PPMd's {a['eval']['ppmd16']:.3f}")
        large = [f"{book} at {runs[name]['eval']['lstm']:.3f} against PPMd's {runs[name]['eval']['ppmd16']:.3f}"
                 for name, book in (("hour-large-moby-dick", "Moby Dick's"), ("hour-large-origin", "Origin of Species'"),
                                    ("hour-large-origin-streams", "with `-S train.batches=streams` Origin's"))
                 if name in runs]
        if large:
            line += "; the second scores " + ", ".join(large[:-1]) + " and " * (len(large) > 1) + large[-1]
        lines.append(line + " ([results](docs/results.md#an-hour-of-training)).")
    return "\n".join(lines)


# --- speed benchmarks (bench/results/*.json, from bench/dvc.yaml) -------------------------

def blas_warmup() -> str:
    rel = "bench/results/blas_warmup.json"
    rec = load(rel)
    rows = [[f"{p['rows']} x {p['units']} by {p['units']} x {4 * p['units']}", f"{p['cold_us']:.0f}",
             f"{p['warm_us']:.0f}", f"{p['cold_us'] / p['warm_us']:.2f}"] for p in rec["figures"]["products"]]
    return table(["product (streams x units by units x 4 units)", "cold thread, us", "after warm_blas, us", "ratio"],
                 rows) + "\n\n" + machine_line(rec, rel)


def pipeline_speed() -> str:
    rel = "bench/results/pipeline_speed.json"
    rec = load(rel)
    f = rec["figures"]
    rows = [[f"prepare on ebook {f['prepare_book']['book']} ({f['prepare_book']['bytes'] / 1e6:.2f} MB; the stage as "
             "a process, Python start-up included)", f"{f['prepare_book']['seconds']:.2f} s"]]
    if "prepare_big" in f:
        b = f["prepare_big"]
        rows.append([f"prepare on a generated {b['bytes'] / 2**20:.0f} MiB text of your own (streamed)",
                     f"{b['seconds']:.1f} s ({b['mb_per_s']:.0f} MB/s)"])
    return table(["what", "time"], rows) + "\n\n" + machine_line(rec, rel)


def export_speed() -> str:
    rel = "bench/results/export_speed.json"
    rec = load(rel)
    f = rec["figures"]
    g, b = f["greedy_chars_per_second_batch1"], f["bytes"]
    rows = [["`model.keras` (chargen's NumPy step)", f"{b['model.keras']:,}", f"{g['numpy_step']:,.0f}"],
            ["`chargen.api` stream, the LSTM alone", "", f"{g['api_stream_lstm_alone']:,.0f}"],
            ["SavedModel (TensorFlow)", f"{b['savedmodel']:,}", f"{g['savedmodel']:,.0f}"],
            ["`model.onnx` (onnxruntime)", f"{b['model.onnx']:,}", f"{g['onnxruntime']:,.0f}"]]
    return (table(["runtime", "bytes", "greedy chars/s, batch 1"], rows) + "\n\n"
            f"The export itself took {f['export_seconds']} s ({f['model']}). " + machine_line(rec, rel))


RENDERERS = {
    "metrics-show": metrics_show, "train-time": train_time, "sample-intro": sample_intro, "default-alice": default_alice,
    "larger-books": larger_books, "levers": levers, "h100": h100, "blas-warmup": blas_warmup,
    "pipeline-speed": pipeline_speed, "export-speed": export_speed, "hour": hour, "hour-summary": hour_summary,
    "hour-command": lambda: f"```bash\n{hour_command()}\n{hour_command('hour-large', 2701)}\n```",
}


def renderers() -> dict:
    """Every table's renderer; the speed tables are drawn by the benchmark that measures them."""
    from bench import generate_speed, train_speed

    def speed(module, name):
        rel = f"bench/results/{name}.json"
        return lambda: module.render_table(load(rel), rel)

    return {**RENDERERS, "train-speed": speed(train_speed, "train_speed"),
            "generate-speed": speed(generate_speed, "generate_speed")}


def render(text: str, renderers: dict) -> tuple[str, list[str]]:
    """The text with every marked table regenerated, and the names of unknown markers."""
    unknown = []

    def fill(m):
        name = m.group(2)
        if name not in renderers:
            unknown.append(name)
            return m.group(0)
        return f"{m.group(1)}{renderers[name]()}\n{m.group(4)}"
    return MARKER.sub(fill, text), unknown


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Fill the docs' tables from the results files.")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table differs from its files")
    args = ap.parse_args(argv)
    table_renderers = renderers()
    stale, errors = [], []
    for rel in DOCS:
        path = ROOT / rel
        text = path.read_text()
        new, unknown = render(text, table_renderers)
        errors += [f"{rel}: no renderer for table {u!r}" for u in unknown]
        if new != text:
            stale.append(rel)
            if not args.check:
                path.write_text(new)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if args.check and stale:
        print(f"error: tables in {', '.join(stale)} differ from the results files; run python bench/render.py",
              file=sys.stderr)
        return 1
    for rel in ([] if args.check else stale):
        print(f"rendered the tables of {rel}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
