"""File sizes and single-stream generation speed of the exports (chargen.export) beside the
model folder and the NumPy step, for a default-size model.

    python bench/export_speed.py [--model models/best] [--chars 3000] [--out FILE]

By default it builds a random model of the default shape in params.yaml (vocabulary 46): speed
does not depend on the weights, and a fresh clone has no trained model; --model times a model
folder instead. Each runtime generates greedily, one character per step with its state fed back,
batch 1, after a short warm-up. Prints one JSON object; --out also writes it as a results file
with the machine (the bench pipeline's `export_speed` stage, which docs/model.md's table reads).
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.machine import write_results


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def greedy(step, zeros, n):
    """chars per second of n greedy steps; step(ids, h, c) -> (logits, h, c)."""
    h, c, nxt = zeros, zeros, np.zeros(1, "int32")
    for _ in range(20):
        lg, h, c = step(nxt, h, c)
    t = time.perf_counter()
    for _ in range(n):
        lg, h, c = step(nxt, h, c)
        nxt = np.asarray(lg).argmax(1).astype("int32")
    return round(n / (time.perf_counter() - t), 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="a model folder to time instead of a random default-shape model")
    ap.add_argument("--chars", type=int, default=3000)
    ap.add_argument("--out", help="also write the figures, with the machine, to this JSON file")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    from chargen import api, bundle, export  # TensorFlow: after the arguments are read
    from chargen.model import build

    tmp = Path(tempfile.mkdtemp())
    folder = Path(args.model or "")
    source = str(folder)
    if not args.model:
        import keras
        keras.utils.set_random_seed(0)
        from chargen import params
        cfg = params.load()["train"]
        m = build(46, cfg)
        folder, source = tmp / "best", f"random weights, {cfg['layers']}x{cfg['units']}, vocab 46"
        bundle.save_bundle(folder, m, [chr(32 + i) for i in range(45)] + ["\n"],
                           {"seq_length": 32, "lowercase": False, "fold_typography": False})
    t = time.perf_counter()
    export.export(folder, tmp / "exports")
    export_secs = round(time.perf_counter() - t, 1)
    out = tmp / "exports"
    model = api.load(folder)
    cfg = json.loads((out / "config.json").read_text())
    zeros = np.zeros((cfg["layers"], 1, cfg["units"]), "float32")

    def numpy_step(ids, h, c):
        lg, st = model.step.step(ids.astype(np.int64), [(h[0], c[0])])
        return lg, st[0][0][None], st[0][1][None]

    import tensorflow as tf
    sig = tf.saved_model.load(str(out / "savedmodel")).signatures["serving_default"]

    def tf_step(ids, h, c):
        r = sig(ids=tf.constant(ids), h=tf.constant(h), c=tf.constant(c))
        return r["logits"].numpy(), r["new_h"].numpy(), r["new_c"].numpy()

    import onnxruntime as ort
    opts = ort.SessionOptions()
    sess = ort.InferenceSession(str(out / "model.onnx"), opts, providers=["CPUExecutionProvider"])

    def onnx_step(ids, h, c):
        return sess.run(["logits", "new_h", "new_c"], {"ids": ids, "h": h, "c": c})

    t = time.perf_counter()
    stream = sum(1 for _ in model.stream("\n", length=args.chars, temperature=0, ngram_weight=0))
    api_cps = round(stream / (time.perf_counter() - t), 1)
    figures = {
        "model": source, "export_seconds": export_secs,
        "bytes": {"model.keras": size(folder / "model.keras"), "savedmodel": size(out / "savedmodel"),
                  "model.onnx": size(out / "model.onnx")},
        "greedy_chars_per_second_batch1": {"numpy_step": greedy(numpy_step, zeros, args.chars),
                                           "api_stream_lstm_alone": api_cps,
                                           "savedmodel": greedy(tf_step, zeros, args.chars),
                                           "onnxruntime": greedy(onnx_step, zeros, args.chars)},
    }
    print(json.dumps(figures, indent=1))
    if args.out:
        write_results(args.out, figures, {"chars": args.chars, "layers": cfg["layers"], "units": cfg["units"]},
                      "python bench/export_speed.py " + " ".join(sys.argv[1:]), load_before)


if __name__ == "__main__":
    main()
