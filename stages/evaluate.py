"""evaluate: held-out bits/char of models/best (static and dynamic) beside gzip, bzip2, xz and PPMd
-> metrics/eval.json."""

import sys
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project, not stages/ (select.py would shadow a stdlib module)

from chargen import params  # noqa: E402
from chargen.io import run_stage, write_json  # noqa: E402

MODEL = Path("models/best")
DATASET = Path("data/prepared/dataset.npz")
METRICS = Path("metrics/eval.json")


def main():
    cfg = params.load()["evaluate"]
    from chargen import data as D
    from chargen import evaluate as E
    from chargen.model import numpy_weights
    from chargen.sampling import StepLSTM
    from chargen.select import load_best

    model, vocab, _ = load_best(MODEL)
    ds = D.load_dataset(DATASET)
    t0 = time.perf_counter()
    bpc, n = E.model_bpc(StepLSTM(numpy_weights(model)), ds["val_ids"])
    secs = time.perf_counter() - t0
    dyn = {}
    if cfg["dynamic_lr"] > 0:
        t0 = time.perf_counter()
        dbpc, _ = E.dynamic_bpc(model, ds["val_ids"], cfg["dynamic_lr"], cfg["dynamic_segment"])
        dyn = {"model_dynamic_bpc": round(dbpc, 4), "dynamic_seconds": round(time.perf_counter() - t0, 1)}
    comp = E.compressor_bpc(D.decode(ds["train_ids"], vocab), D.decode(ds["val_ids"], vocab))
    result = {"model_bpc": round(bpc, 4), "model_nats": round(bpc * 0.6931471805599453, 4),
              **dyn, "val_chars": n, "scored_chars_per_second": round(n / secs, 1),
              **{f"{k}_bpc": v for k, v in comp.items()}}
    write_json(METRICS, result)
    print("  ".join(f"{k} {v}" for k, v in result.items()))


if __name__ == "__main__":
    run_stage(main)
