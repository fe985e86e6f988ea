"""Characters per second of generation: the tutorial's window method vs the stateful sampler,
alone and mixed with the n-gram model as the generate stage samples by default.

    python bench/generate_speed.py [--model models/best] [--load N] [--out FILE]

Times a randomly initialised model of the default shape (speed does not depend on the weights,
and a fresh clone has no trained model), or the model folder given by --model. The stateful rows keep the fastest of --repeat runs, the LSTM
step alone and the default sampler taking turns, so that their ratio compares like with like on
a shared machine (the tutorial's rows are too slow to repeat). --load N then starts N busy
processes (one core each) and times the stateful rows again beside them: a sampler that slows
down much more than the machine's load explains is waiting on something. Prints the tables;
--out also writes the figures, with the machine, as a results file (the bench pipeline's
generate_speed stage; docs/performance.md's table is rendered from it).
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.machine import describe, write_results
from chargen import params

BUSY = "while True:\n    pass\n"


def arguments(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="a model folder to time instead of a random default-shape model")
    ap.add_argument("--tutorial-chars", type=int, default=30)
    ap.add_argument("--window-chars", type=int, default=100)
    ap.add_argument("--stateful-chars", type=int, default=5000, help="per stream for 1 stream; a fifth of it for many")
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each stateful row; the fastest counts")
    ap.add_argument("--load", type=int, default=0, help="also time the stateful rows beside this many busy processes")
    ap.add_argument("--out", help="also write the figures, with the machine, to this JSON file")
    args = ap.parse_args(argv)
    for name, least in (("tutorial_chars", 1), ("window_chars", 1), ("stateful_chars", 5), ("streams", 1),
                        ("repeat", 1), ("load", 0)):
        if getattr(args, name) < least:
            flag = "--" + name.replace("_", "-")
            sys.exit(f"error: {flag} is {getattr(args, name)}; give {least} or more")
    return args


def busy_processes(n: int) -> list:
    """n Python processes that only spin, each keeping one core busy, until terminated."""
    return [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(n)]


def stop(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()


def fastest_rates(runs: dict, repeat: int) -> dict:
    """chars/s of each named run (fn, chars per stream, streams), the fastest of `repeat` rounds
    in which every run takes its turn, after one short warm-up each."""
    for fn, _, _ in runs.values():
        fn(2)
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):  # the fastest of a few: a shared or virtual machine adds noise, never speed
        for name, (fn, chars, _) in runs.items():
            t = time.perf_counter()
            fn(chars)
            best[name] = min(best[name], time.perf_counter() - t)
    return {name: chars * streams / best[name] for name, (_, chars, streams) in runs.items()}


def main(argv=None):
    args = arguments(argv)
    load_before = os.getloadavg()[0]
    from chargen import sampling  # TensorFlow: after the arguments are read
    from chargen.model import build, numpy_weights
    from chargen.ngram import MixedStep, TrainCounts
    from chargen.numpy_lstm import StepLSTM

    if args.model and not (Path(args.model) / "model.keras").is_file():
        sys.exit(f"error: {args.model} holds no model.keras; give a folder written by the select stage, or leave "
                 "--model out to time a random model of the default shape")
    if args.model:
        from chargen.bundle import load_bundle, load_train_ids
        model, vocab, config = load_bundle(args.model)
        source = args.model
        train_ids = load_train_ids(args.model)
    else:
        cfg = params.load()["train"]
        model, vocab = build(46, cfg), list(range(46))
        source = f"random weights, {cfg['layers']}x{cfg['units']}"
        train_ids = np.random.default_rng(0).integers(0, 46, 130_000)  # an Alice-sized text
    T = 100  # the tutorial's window
    step = StepLSTM(numpy_weights(model))
    gen = params.load()["generate"]  # the default sampler: the LSTM mixed with the n-gram model
    mixed = MixedStep(step, TrainCounts(train_ids, gen["ngram_order"], len(vocab)), gen["ngram_weight"])
    prompt = np.random.default_rng(0).integers(0, len(vocab), size=(1, T))
    many_prompts = np.repeat(prompt, args.streams, 0)
    kw = dict(temperature=0.8, seed=1)

    def window(n):
        return sampling.sample_window(model, prompt, n, T, **kw)

    def tutorial(n):  # the tutorial's loop as written: model.predict per character, argmax
        ctx = prompt[0].tolist()
        for _ in range(n):
            p = model.predict(np.array([ctx[-T:]], dtype="int32"), verbose=0)
            ctx.append(int(np.argmax(p[0, -1] if p.ndim == 3 else p[0])))

    def sampler(s, prompts):
        return lambda n: sampling.sample_stateful(s, prompts, n, **kw)

    few, many = args.stateful_chars, args.stateful_chars // 5
    stateful = {"lstm_1": (sampler(step, prompt), few, 1), "mixed_1": (sampler(mixed, prompt), few, 1),
                f"lstm_{args.streams}": (sampler(step, many_prompts), many, args.streams),
                f"mixed_{args.streams}": (sampler(mixed, many_prompts), many, args.streams)}
    rates = {**fastest_rates({"tutorial": (tutorial, args.tutorial_chars, 1),
                              "window": (window, args.window_chars, 1)}, 1),
             **fastest_rates(stateful, args.repeat)}
    figures = {"model": source, "streams": args.streams, "chars_per_s": rates,
               "mixed_vs_lstm": {str(n): rates[f"mixed_{n}"] / rates[f"lstm_{n}"] for n in (1, args.streams)}}
    if args.load:
        procs = busy_processes(args.load)
        try:
            time.sleep(0.5)  # let them start spinning
            loaded = fastest_rates(stateful, args.repeat)
        finally:
            stop(procs)
        figures["busy_processes"] = args.load
        figures["chars_per_s_loaded"] = loaded
        figures["slowdown_loaded"] = {name: rates[name] / loaded[name] for name in loaded}
    record = {"figures": figures, "load_before": round(load_before, 2)}
    print(render_table(record))
    if args.out:
        command = "python bench/generate_speed.py " + " ".join(argv or sys.argv[1:])
        write_results(args.out, figures=figures, command=command, load_before=round(load_before, 2),
                      params={"train.layers": model_shape(model)[0], "train.units": model_shape(model)[1],
                              "generate.ngram_order": gen["ngram_order"], "generate.ngram_weight": gen["ngram_weight"],
                              "streams": args.streams, "stateful_chars": args.stateful_chars,
                              "repeat": args.repeat, "load": args.load})


def model_shape(model) -> tuple[int, int]:
    """(layers, units) of the model's LSTM stack."""
    lstms = [layer for layer in model.layers if "lstm" in type(layer).__name__.lower()]
    return len(lstms), int(lstms[0].units) if lstms else 0


def render_table(rec: dict, rel: str = "") -> str:
    """The results as docs/performance.md shows them: each sampler's rate, the default sampler's
    share of the LSTM step's, and (when measured) the slowdown beside busy processes."""
    f = rec["figures"]
    r, n = f["chars_per_s"], f["streams"]

    def times(x):
        return f"{x:,.0f}x" if x >= 10 else f"{x:.1f}x"

    rows = [("tutorial as written: model.predict per char", r["tutorial"]),
            ("window re-feed (method: window), 1 stream", r["window"]),
            ("stateful, the LSTM step alone, 1 stream", r["lstm_1"]),
            (f"stateful, the LSTM step alone, {n} streams", r[f"lstm_{n}"]),
            ("stateful + n-gram (the default sampler), 1 stream", r["mixed_1"]),
            (f"stateful + n-gram (the default sampler), {n} streams", r[f"mixed_{n}"])]
    lines = ["| method | chars/s | vs tutorial | vs window |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {x:,.0f} | {times(x / r['tutorial'])} | {times(x / r['window'])} |" for name, x in rows]
    share = f["mixed_vs_lstm"]
    text = "\n".join(lines) + (f"\n\nThe default sampler runs at {share['1']:.2f} of the LSTM step's rate on one "
                               f"stream and {share[str(n)]:.2f} on {n} ({f['model']}).")
    if "chars_per_s_loaded" in f:
        loaded, slow = f["chars_per_s_loaded"], f["slowdown_loaded"]
        lines = [f"| stateful | chars/s | beside {f['busy_processes']} busy processes | slowdown |",
                 "| --- | ---: | ---: | ---: |"]
        for key, name in (("lstm_1", "the LSTM step, 1 stream"), ("mixed_1", "the default sampler, 1 stream"),
                          (f"lstm_{n}", f"the LSTM step, {n} streams"),
                          (f"mixed_{n}", f"the default sampler, {n} streams")):
            lines.append(f"| {name} | {r[key]:,.0f} | {loaded[key]:,.0f} | {slow[key]:.1f}x |")
        text += "\n\n" + "\n".join(lines)
    if "machine" in rec:
        load = f", load {rec['load_before']:.1f} when it began" if rec.get("load_before") is not None else ""
        text += f"\n\nMachine: {describe(rec['machine'])} (`{rel}`, code at {rec['commit']}{load})."
    elif rec.get("load_before") is not None:
        text += f"\n\nLoad {rec['load_before']:.1f} when it began."
    return text


if __name__ == "__main__":
    main()
