"""Training speed: targets per second and seconds per epoch for the tutorial's setup and the
default, beside the machine's float32 matrix-multiply rate, in one run.

    python bench/train_speed.py [--steps 30] [--repeat 3] [--diagnose] [--dataset data/prepared/dataset.npz]
    KERAS_BACKEND=jax python bench/train_speed.py          # the same on another backend

Each setup trains `--steps` batches with `model.fit` (after one warm-up pass that compiles the
step; the fastest of `--repeat` timed passes counts) on windows cut from the prepared dataset's training ids, exactly as the train stage cuts
them. The epoch time is extrapolated from the measured step time and the number of batches an
epoch of that setup has on this text. Achieved FLOP/s counts the LSTM's and the output layer's
multiply-adds, forward and backward (3x forward), and is set against the rate of one large
float32 matrix product on the same backend.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402

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


def measure(name: str, cfg: dict, ds: dict, steps: int, arrays: bool = False, jit: bool = False,
            repeat: int = 3) -> dict:
    """Time `steps` batches of `model.fit`. arrays: feed NumPy arrays (Keras's own tf.data path)
    instead of the train stage's PyDataset; jit: compile the step with XLA."""
    from chargen.batches import Batches
    from chargen.model import build, compile_model

    ids = ds["train_ids"]
    T = cfg["seq_length"]
    full = Batches(ids, cfg["stride"], T, cfg["batch_size"], cfg["objective"], seed=0, shift=cfg["stride"])
    part = Batches(ids, cfg["stride"], T, cfg["batch_size"], cfg["objective"], seed=0, steps=steps)
    train_cfg = dict(cfg, epochs=1, patience=0, precision="float32", sample_every=0, steps_per_epoch=0,
                     strategy="single")
    model = build(len(ds["vocab"]), train_cfg)
    compile_model(model, train_cfg, len(full))
    if jit:
        model.compile(optimizer=model.optimizer, loss=model.loss, jit_compile=True)
    data = {"x": part}
    if arrays:
        xs, ys = zip(*(part[i] for i in range(len(part))))
        data = {"x": np.concatenate(xs), "y": np.concatenate(ys), "batch_size": cfg["batch_size"], "shuffle": False}
    model.fit(**data, epochs=1, verbose=0)  # compiles the step
    secs = float("inf")
    for _ in range(repeat):  # the best of a few: a shared or virtual machine adds noise, never speed
        t = time.perf_counter()
        model.fit(**data, epochs=1, verbose=0)
        secs = min(secs, time.perf_counter() - t)
    per_step = secs / len(part)
    targets_per_step = cfg["batch_size"] * (T if cfg["objective"] == "sequence" else 1)
    tps = targets_per_step / per_step
    return {"setup": name, "batches_per_epoch": len(full), "seconds_per_step": per_step,
            "seconds_per_epoch": per_step * len(full), "targets_per_second": tps,
            "flops": tps * flops_per_target(cfg, len(ds["vocab"]))}


DIAGNOSE = [  # (name, changes to the default, arrays, jit)
    ("default, NumPy arrays instead of the PyDataset", {}, True, False),
    ("default, XLA (jit_compile)", {}, False, True),
    ("default, batch 128 (larger products)", {"batch_size": 128}, False, False),
    ("default, batch 512", {"batch_size": 512}, False, False),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="data/prepared/dataset.npz")
    ap.add_argument("--params", default="params.yaml", help="the default setup is read from here")
    ap.add_argument("--steps", type=int, default=30, help="batches timed per setup")
    ap.add_argument("--repeat", type=int, default=3, help="timed passes per setup; the fastest counts")
    ap.add_argument("--diagnose", action="store_true",
                    help="also time variants of the default that isolate what holds it back")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    from chargen.dataset import load_dataset
    from chargen.train import runtime

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
    print("| setup | s/step | batches/epoch | s/epoch | targets/s | GFLOP/s achieved | share of matmul |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        r["share_of_matmul"] = r["flops"] / peak
        print(f"| {r['setup']} | {r['seconds_per_step']:.4f} | {r['batches_per_epoch']} | "
              f"{r['seconds_per_epoch']:.1f} | {r['targets_per_second']:,.0f} | {r['flops'] / 1e9:.1f} | "
              f"{r['share_of_matmul']:.0%} |")
    ratio = rows[1]["targets_per_second"] / rows[0]["targets_per_second"]
    print(f"default / tutorial targets per second: {ratio:.0f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"runtime": info, "matmul_flops": peak, "rows": rows,
                                               "ratio": ratio}, indent=2))


if __name__ == "__main__":
    main()
