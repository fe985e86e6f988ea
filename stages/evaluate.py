"""evaluate: held-out bits/char of models/best (static, dynamic, and mixed online with an adaptive
n-gram model) beside gzip, bzip2, xz and PPMd -> metrics/eval.json."""

import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project, not stages/ (select.py would shadow a stdlib module)

import numpy as np  # noqa: E402

from chargen import params  # noqa: E402
from chargen.io import run_stage, write_json  # noqa: E402

MODEL = Path("models/best")
DATASET = Path("data/prepared/dataset.npz")
METRICS = Path("metrics/eval.json")


def main():
    cfg = params.load()["evaluate"]
    from chargen import data as D
    from chargen import evaluate as E
    from chargen import ngram as G
    from chargen.model import numpy_weights
    from chargen.sampling import StepLSTM
    from chargen.select import load_best

    model, vocab, _ = load_best(MODEL)
    ds = D.load_dataset(DATASET)
    val_ids = ds["val_ids"]
    targets = np.asarray(val_ids)[1:]
    t0 = time.perf_counter()
    probs = E.model_probs(StepLSTM(numpy_weights(model)), val_ids)
    secs = time.perf_counter() - t0
    bpc, n = E.bits_per_char(probs, targets), len(targets)
    dyn = {}
    if cfg["dynamic_lr"] > 0:
        t0 = time.perf_counter()
        probs = E.dynamic_probs(model, val_ids, cfg["dynamic_lr"], cfg["dynamic_segment"])
        dyn = {"model_dynamic_bpc": round(E.bits_per_char(probs, targets), 4),
               "dynamic_seconds": round(time.perf_counter() - t0, 1)}
    mix = {}
    if cfg["ngram_order"] > 0:  # mixed with the dynamic predictions when there are any
        t0 = time.perf_counter()
        ngram = G.ngram_probs(ds["train_ids"], val_ids, cfg["ngram_order"], len(vocab))
        mix = {"ngram_bpc": round(E.bits_per_char(ngram, targets), 4),
               "model_mix_bpc": round(G.mix_bpc([probs, ngram], targets, cfg["mix_lr"]), 4),
               "mix_seconds": round(time.perf_counter() - t0, 1)}
    comp = E.compressor_bpc(D.decode(ds["train_ids"], vocab), D.decode(ds["val_ids"], vocab))
    result = {"model_bpc": round(bpc, 4), "model_nats": round(bpc * 0.6931471805599453, 4),
              **dyn, **mix, "val_chars": n, "scored_chars_per_second": round(n / secs, 1),
              **{f"{k}_bpc": v for k, v in comp.items()}}
    write_json(METRICS, result)
    print("  ".join(f"{k} {v}" for k, v in result.items()))


if __name__ == "__main__":
    run_stage(main)
