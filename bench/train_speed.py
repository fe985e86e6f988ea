"""Training speed: targets per second and seconds per epoch for the tutorial's setup and the
default, beside the machine's float32 matrix-multiply rate; then the default under each speed
lever beside Keras' own LSTM, interleaved in one run.

    python bench/train_speed.py [--steps 30] [--repeat 3] [--rounds 5] [--diagnose] [--out results.json]
    python bench/train_speed.py --jax-python /path/to/venv/bin/python   # adds the default on JAX
    python bench/train_speed.py --no-levers                              # the first table only

Each setup trains `--steps` batches with `model.fit` (after one warm-up pass that compiles the
step; the fastest of `--repeat` timed passes counts) on windows cut from the prepared dataset's
training ids, exactly as the train stage cuts them, with the LSTM layer the train stage uses.
The epoch time is extrapolated from the measured step time and the number of batches an epoch
of that setup has on this text. Achieved FLOP/s counts the LSTM's and the output layer's
multiply-adds, forward and backward (3x forward), and is set against the rate of one large
float32 matrix product on the same backend.

The levers table times the default with Keras' own LSTM (the layer the train stage used before
chargen's) and with each lever, every configuration in its own worker process (thread settings
and the backend are fixed when a process starts) with the same model and seed. The workers take
turns, one timed pass each per round, so a busy machine slows them alike; the fastest pass of
`--rounds` counts, and the machine's 1-minute load average is printed beside each figure.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

TUTORIAL = dict(seq_length=100, stride=1, objective="last", input="scaled", embedding_dim=1, layers=1,
                units=256, dropout=0.2, batch_size=128, learning_rate=0.001, lr_schedule="constant",
                clipnorm=0.0)


def default_setup(params_file: str = "params.yaml") -> dict:
    """The default as params.yaml has it, so the benchmark never times a model chargen no longer
    ships (the train section and the prepare section's window length and stride)."""
    import yaml

    p = yaml.safe_load(Path(params_file).read_text())
    seq = p["prepare"]["seq_length"]
    return dict(p["train"], seq_length=seq, stride=p["prepare"]["stride"] or seq)


def matmul_rate(n=2048, reps=5) -> float:
    """float32 FLOP/s of an n x n product on the Keras backend (best of `reps`)."""
    from chargen.quiet import keras
    ops = keras.ops
    a = ops.convert_to_tensor(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    ops.convert_to_numpy(ops.matmul(a, a))
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        ops.convert_to_numpy(ops.sum(ops.matmul(a, a)))
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def flops_per_target(cfg: dict, vocab: int) -> float:
    """Multiply-adds x2 x3 (forward + backward) per trained target."""
    width = vocab if cfg["input"] == "onehot" else (1 if cfg["input"] == "scaled" else cfg["embedding_dim"])
    lstm = 0
    for i in range(cfg["layers"]):
        x = width if i == 0 else cfg["units"]
        lstm += 2 * (x + cfg["units"]) * 4 * cfg["units"]
    dense = 2 * cfg["units"] * vocab
    # `last`: one target per window, but the LSTM still runs over all seq_length steps.
    steps_per_target = cfg["seq_length"] if cfg["objective"] == "last" else 1
    return 3 * (lstm * steps_per_target + dense)


def keras_unrolled(model, seq_length: int):
    """A copy of `model` whose LSTMs are Keras' own with unroll=True (which needs the window
    length in the input shape)."""
    from chargen.quiet import keras

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.LSTM):
            return keras.layers.LSTM.from_config(dict(config, unroll=True))
        return layer.__class__.from_config(config)

    ids = keras.Input(shape=(seq_length,), dtype="int32", name="ids")
    return keras.models.clone_model(model, input_tensors=ids, clone_function=clone)


LAYERS = ("chargen", "keras", "keras-unroll")  # the train stage's LSTM; Keras' own; Keras' own unrolled


def setup(cfg: dict, ds: dict, steps: int, layer: str = "chargen", arrays: bool = False, jit: bool = False):
    """What timing `steps` batches of the setup needs: model, fit arguments (data), batches
    (timed per pass), batches_per_epoch and targets_per_step."""
    from chargen.batches import Batches
    from chargen.model import build, compile_model
    from chargen.quiet import keras

    ids = ds["train_ids"]
    T = cfg["seq_length"]
    full = Batches(ids, cfg["stride"], T, cfg["batch_size"], cfg["objective"], seed=0, shift=cfg["stride"])
    part = Batches(ids, cfg["stride"], T, cfg["batch_size"], cfg["objective"], seed=0, steps=steps)
    train_cfg = dict(cfg, epochs=1, patience=0, precision="float32", sample_every=0, steps_per_epoch=0,
                     strategy="single")
    keras.utils.set_random_seed(0)
    model = build(len(ds["vocab"]), train_cfg, for_training=layer == "chargen")
    if layer == "keras-unroll":
        model = keras_unrolled(model, T)
    compile_model(model, train_cfg, len(full))
    if jit:
        model.compile(optimizer=model.optimizer, loss=model.loss, jit_compile=True)
    data = {"x": part}
    if arrays:
        xs, ys = zip(*(part[i] for i in range(len(part))))
        data = {"x": np.concatenate(xs), "y": np.concatenate(ys), "batch_size": cfg["batch_size"]}
    return {"model": model, "data": data, "batches": len(part), "batches_per_epoch": len(full),
            "targets_per_step": cfg["batch_size"] * (T if cfg["objective"] == "sequence" else 1)}


def timed_pass(run: dict) -> float:
    """Seconds one pass of `model.fit` over the setup's batches spends training: from the start
    of training to its end, without what `fit` does before and after (setting up and shutting
    down the data feed: per call, not per batch, and on a busy machine seconds of noise that hit
    every setup alike; bench/epoch_overhead.py measures it)."""
    from chargen.quiet import keras

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()

        def on_train_end(self, logs=None):
            self.seconds = time.perf_counter() - self.start

    clock = Clock()
    run["model"].fit(**run["data"], epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    return clock.seconds


def measure(name: str, cfg: dict, ds: dict, steps: int, arrays: bool = False, jit: bool = False,
            repeat: int = 3) -> dict:
    """Time `steps` batches of `model.fit`. arrays: feed NumPy arrays (Keras's own tf.data path)
    instead of the train stage's PyDataset; jit: compile the step with XLA."""
    run = setup(cfg, ds, steps, arrays=arrays, jit=jit)
    timed_pass(run)  # compiles the step
    # The best of a few: a shared or virtual machine adds noise, never speed.
    per_step = min(timed_pass(run) for _ in range(repeat)) / run["batches"]
    tps = run["targets_per_step"] / per_step
    return {"setup": name, "batches_per_epoch": run["batches_per_epoch"], "seconds_per_step": per_step,
            "seconds_per_epoch": per_step * run["batches_per_epoch"], "targets_per_second": tps,
            "flops": tps * flops_per_target(cfg, len(ds["vocab"]))}


DIAGNOSE = [  # (name, changes to the default, arrays, jit)
    ("default, NumPy arrays instead of the PyDataset", {}, True, False),
    ("default, XLA (jit_compile)", {}, False, True),
    ("default, batch 128 (larger products)", {"batch_size": 128}, False, False),
    ("default, batch 512", {"batch_size": 512}, False, False),
]


LEVERS = [  # (name, LSTM layer, intra-op threads, inter-op threads; 0 = TensorFlow's own choice)
    ("today: Keras' LSTM", "keras", 0, 0),
    ("Keras' LSTM, unroll=True", "keras-unroll", 0, 0),
    ("chargen's LSTM (input product per window, unrolled)", "chargen", 0, 0),
    ("chargen's LSTM, intra-op 2, inter-op 1", "chargen", 2, 1),
    ("chargen's LSTM, intra-op 1, inter-op 1", "chargen", 1, 1),
    ("Keras' LSTM, intra-op 1, inter-op 1", "keras", 1, 1),
]
JAX_LEVERS = [("Keras' LSTM on JAX", "keras"), ("chargen's LSTM on JAX", "chargen")]
REPLY = "@result "  # marks the worker's replies on its stdout, apart from anything a library prints


def worker(spec: dict) -> None:
    """One lever's process: build and compile its setup, then time one pass per line on stdin."""
    from chargen.dataset import load_dataset
    from chargen.quiet import keras

    threads = {}
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf
        if spec["intra"]:
            tf.config.threading.set_intra_op_parallelism_threads(spec["intra"])
        if spec["inter"]:
            tf.config.threading.set_inter_op_parallelism_threads(spec["inter"])
    run = setup(default_setup(spec["params"]), load_dataset(spec["dataset"]), spec["steps"], layer=spec["layer"])
    compile_seconds = timed_pass(run)
    if keras.config.backend() == "tensorflow":
        threads = {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
                   "inter": tf.config.threading.get_inter_op_parallelism_threads()}
    reply = {"compile_seconds": compile_seconds, "backend": keras.config.backend(), "threads": threads,
             "targets_per_pass": run["targets_per_step"] * run["batches"]}
    print(REPLY + json.dumps(reply), flush=True)
    for _ in sys.stdin:
        print(REPLY + json.dumps({"seconds": timed_pass(run)}), flush=True)


class Worker:
    """A worker process of this script for one lever, spoken to line by line."""

    def __init__(self, name: str, spec: dict, python: str = sys.executable, env: dict | None = None):
        self.name, self.spec, self.seconds, self.loads = name, spec, [], []
        self.proc = subprocess.Popen([python, __file__, "--worker", json.dumps(spec)], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env={**os.environ, **(env or {})})
        self.info = self._reply()

    def _reply(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
        raise RuntimeError(f"the worker for {self.name!r} ended (exit {self.proc.wait()}); see its stderr above")

    def timed_pass(self) -> float:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        secs = self._reply()["seconds"]
        self.seconds.append(secs)
        self.loads.append(os.getloadavg()[0])
        return secs

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def compare_levers(args) -> list[dict]:
    """Each lever's targets/s beside today's (Keras' LSTM), the workers taking turns."""
    spec = {"dataset": args.dataset, "params": args.params, "steps": args.steps}
    chosen = [(name, dict(spec, layer=layer, intra=intra, inter=inter), sys.executable, {"KERAS_BACKEND": "tensorflow"})
              for name, layer, intra, inter in LEVERS]
    if args.jax_python:
        chosen += [(name, dict(spec, layer=layer, intra=0, inter=0), args.jax_python, {"KERAS_BACKEND": "jax"})
                   for name, layer in JAX_LEVERS]
    workers = []
    try:
        for name, lever_spec, python, env in chosen:  # one at a time: each compiles on an otherwise idle set
            print(f"starting: {name}", flush=True)
            workers.append(Worker(name, lever_spec, python, env))
        for r in range(args.rounds):
            for w in workers:
                w.timed_pass()
            print(f"round {r + 1}/{args.rounds}: load {os.getloadavg()[0]:.1f}; "
                  + ", ".join(f"{w.seconds[-1]:.1f} s" for w in workers), flush=True)
    finally:
        for w in workers:
            w.close()
    today = workers[0]
    rows = []
    for w in workers:
        paired = statistics.median(a / b for a, b in zip(today.seconds, w.seconds))
        rows.append({"lever": w.name, **w.spec, **{k: w.info[k] for k in ("backend", "threads")},
                     "seconds": w.seconds, "loads": w.loads,
                     "targets_per_second": w.info["targets_per_pass"] / min(w.seconds),
                     "ratio": min(today.seconds) / min(w.seconds), "paired_ratio": paired})
    print("\n" + levers_table(rows))
    return rows


def levers_table(levers: list[dict]) -> str:
    r0 = levers[0]
    lines = [f"The default ({r0['steps']} batches a pass), the fastest of {len(r0['seconds'])} interleaved passes "
             "each; ratio: today's fastest pass over the lever's; paired: the median of the rounds' ratios.", "",
             "| lever | targets/s | ratio to today | paired | load (1 min) at its passes |",
             "| --- | ---: | ---: | ---: | --- |"]
    lines += [f"| {r['lever']} | {r['targets_per_second']:,.0f} | {r['ratio']:.2f}x | {r['paired_ratio']:.2f}x | "
              f"{min(r['loads']):.1f} to {max(r['loads']):.1f} |" for r in levers]
    return "\n".join(lines)


def rows_table(rows: list[dict]) -> str:
    lines = ["| setup | s/step | batches/epoch | s/epoch | targets/s | GFLOP/s achieved | share of matmul |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['setup']} | {r['seconds_per_step']:.4f} | {r['batches_per_epoch']} | "
              f"{r['seconds_per_epoch']:.1f} | {r['targets_per_second']:,.0f} | {r['flops'] / 1e9:.1f} | "
              f"{r['share_of_matmul']:.0%} |" for r in rows]
    return "\n".join(lines)


def render_table(rec: dict, rel: str = "") -> str:
    """The results as docs/performance.md shows them (bench/render.py): the setups' rates, then
    each lever beside today's, then the machine."""
    from bench.machine import describe

    f = rec["figures"]
    text = rows_table(f["rows"]) + f"\n\nfloat32 2048x2048 matmul: {f['matmul_flops'] / 1e9:.1f} GFLOP/s."
    if f.get("levers"):
        text += "\n\n" + levers_table(f["levers"])
    load = f", load {rec['load_before']:.1f} when it began" if rec.get("load_before") is not None else ""
    return text + f"\n\nMachine: {describe(rec['machine'])} (`{rel}`, code at {rec['commit']}{load})."


def random_dataset(path: Path, params_file: str) -> Path:
    """A prepared dataset the size of Alice's (130,377 training and 14,486 validation ids over 46
    characters) of seeded random ids, windowed as params.yaml's prepare section says."""
    from chargen import dataset

    prep = yaml.safe_load(Path(params_file).read_text())["prepare"]
    rng = np.random.default_rng(0)
    vocab = [chr(32 + i) for i in range(45)] + ["\n"]
    seq = prep["seq_length"]
    dataset.save_dataset(path, vocab=vocab, train_ids=rng.integers(0, 46, 130_377), val_ids=rng.integers(0, 46, 14_486),
                         seq_length=seq, stride=prep["stride"] or seq, meta={"lowercase": True, "fold_typography": True})
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", help="a prepared dataset to cut the windows from (default: an Alice-sized random "
                                      "text over 46 characters; speed does not depend on the text)")
    ap.add_argument("--params", default="params.yaml", help="the default setup is read from here")
    ap.add_argument("--steps", type=int, default=30, help="batches timed per setup")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes per setup; the fastest counts")
    ap.add_argument("--diagnose", action="store_true",
                    help="also time variants of the default that isolate what holds it back")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timed passes per lever; the fastest counts")
    ap.add_argument("--no-levers", action="store_true", help="skip the levers table")
    ap.add_argument("--jax-python", help="a Python with jax and keras (not chargen's venv): adds the default on JAX")
    ap.add_argument("--out", "--json", dest="out", help="also write the results here (JSON)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    for path, what, fix in ((args.dataset, "--dataset", "run the prepare stage (dvc repro prepare) or give another"),
                            (args.params, "--params", "give the params.yaml to read the default from"),
                            (args.jax_python, "--jax-python", "give a Python that has jax and keras installed")):
        if path and not Path(path).is_file():
            sys.exit(f"error: {what} {path} does not exist; {fix}")

    from chargen.dataset import load_dataset
    from chargen.train import runtime

    load_before = os.getloadavg()[0]
    if not args.dataset:  # the bench pipeline's case: nothing a fresh clone lacks
        args.dataset = str(random_dataset(Path(tempfile.mkdtemp(prefix="train-speed-")) / "dataset.npz", args.params))
    ds = load_dataset(args.dataset)
    peak = matmul_rate()
    default = default_setup(args.params)
    print(f"default (params.yaml): {default['layers']}x{default['units']} LSTM, batch {default['batch_size']}, "
          f"{default['seq_length']}-char windows")
    rows = [measure("tutorial", TUTORIAL, ds, args.steps, repeat=args.repeat),
            measure("default", default, ds, args.steps, repeat=args.repeat)]
    if args.diagnose:
        rows += [measure(name, dict(default, **changes), ds, args.steps, arrays, jit, args.repeat)
                 for name, changes, arrays, jit in DIAGNOSE]
    info = runtime()
    print(f"device: {info['device']} ({info['backend']}); float32 2048x2048 matmul: {peak / 1e9:.1f} GFLOP/s")
    for r in rows:
        r["share_of_matmul"] = r["flops"] / peak
    print(rows_table(rows))
    ratio = rows[1]["targets_per_second"] / rows[0]["targets_per_second"]
    print(f"default / tutorial targets per second: {ratio:.0f}x")
    levers = [] if args.no_levers else compare_levers(args)
    if args.out:
        from bench.machine import write_results
        figures = {"runtime": info, "matmul_flops": peak, "rows": rows, "ratio": ratio, "levers": levers}
        write_results(args.out, figures, params=default, command="python bench/train_speed.py " + " ".join(sys.argv[1:]),
                      load_before=load_before)


if __name__ == "__main__":
    main()
