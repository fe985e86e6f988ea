"""Where the time between two epochs goes: the default model trained for a few short epochs by
the train stage's own code (chargen.train.train), with a timestamp at every callback hook.

    python bench/epoch_overhead.py --dataset data/prepared/dataset.npz [--epochs 4] [--steps 32]

For each epoch after the first it prints the gap from the previous epoch's last batch end to
this epoch's first batch end, less one median batch (the per-epoch overhead), and its parts:
validation, the epoch-end callbacks (checkpoint, history, dvclive, samples), the epoch-begin
callbacks (seeds, the batches' reshuffle), and the wait for the first batch. Run it on an idle
machine and state the load (`uptime`) beside what it prints. EPOCH_OVERHEAD_DUMP=1 also prints
every timestamp.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402
import yaml  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="data/prepared/dataset.npz")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=32, help="batches per epoch (train.steps_per_epoch)")
    ap.add_argument("--sample-every", type=int, default=0, help="train.sample_every")
    args = ap.parse_args()

    from chargen import callbacks, train

    marks = []  # (what, epoch, batch, time)

    def mark(what, epoch=None, batch=None):
        marks.append((what, epoch, batch, time.perf_counter()))

    class FirstSeeds(callbacks.EpochSeeds):  # the first callback of the list
        def on_epoch_begin(self, epoch, logs=None):
            mark("begin0", epoch)
            super().on_epoch_begin(epoch, logs)

        def on_epoch_end(self, epoch, logs=None):
            mark("end0", epoch)

    class LastProgress(callbacks.Progress):  # the last one
        def on_epoch_begin(self, epoch, logs=None):
            mark("begin1", epoch)
            super().on_epoch_begin(epoch, logs)

        def on_train_batch_begin(self, batch, logs=None):
            mark("batch_begin", self.epoch, batch)
            super().on_train_batch_begin(batch, logs)

        def on_train_batch_end(self, batch, logs=None):
            mark("batch_end", self.epoch, batch)
            super().on_train_batch_end(batch, logs)

        def on_test_begin(self, logs=None):
            mark("val_begin", self.epoch)

        def on_test_end(self, logs=None):
            mark("val_end", self.epoch)

        def on_epoch_end(self, epoch, logs=None):
            mark("end1", epoch)
            super().on_epoch_end(epoch, logs)

    class MarkedBatches(train.Batches):  # when the first training batch of an epoch is cut
        def on_epoch_begin(self):
            if self.seed is not None:
                mark("adapter_begin", self.epoch)

        def __getitem__(self, i):
            if self.seed is not None and i == 0:
                mark("get0", self.epoch)
            return super().__getitem__(i)

    train.EpochSeeds, train.Progress, train.Batches = FirstSeeds, LastProgress, MarkedBatches
    p = yaml.safe_load(Path("params.yaml").read_text())
    from chargen.dataset import load_dataset

    ds = load_dataset(args.dataset, mmap=True)
    mode = train.batches_mode(p["train"], len(ds["train_ids"]), ds["seq_length"], len(ds["val_ids"]))
    # the batching the full run gets (fewer epochs and steps would turn `auto` into streams)
    cfg = dict(p["train"], epochs=args.epochs, steps_per_epoch=args.steps, sample_every=args.sample_every,
               batches=mode)
    with tempfile.TemporaryDirectory() as tmp:
        train.train(cfg, p["seed"], args.dataset, Path(tmp) / "ckpt", log=lambda *_: None)

    if os.environ.get("EPOCH_OVERHEAD_DUMP"):
        t00 = marks[0][3]
        for w, e, b, t in marks:
            if w != "batch_begin" and (w != "batch_end" or b in (0, args.steps - 1)):
                print(f"{t - t00:8.3f} {w} {e} {b}")

    def at(what, epoch, batch=None):
        return next(t for w, e, b, t in marks if w == what and e == epoch and (batch is None or b == batch))

    ends = [(e, b, t) for w, e, b, t in marks if w == "batch_end"]
    begins = {(e, b): t for w, e, b, t in marks if w == "batch_begin"}
    per_batch = float(np.median([t - begins[(e, b)] for e, b, t in ends if b > 0]))
    print(f"load {os.getloadavg()[0]:.2f}; median batch {per_batch:.3f} s; {args.steps} batches per epoch")
    print("epoch  overhead  validation  epoch-end cb  epoch-begin cb  to 1st batch (adapter, getitem)  1st batch")
    for e in range(1, args.epochs):
        last = max(t for ee, b, t in ends if ee == e - 1)
        first_end = at("batch_end", e, 0)
        print(f"{e + 1:5d}  {first_end - last - per_batch:7.2f}s  {at('val_end', e - 1) - at('val_begin', e - 1):9.2f}s"
              f"  {at('end1', e - 1) - at('end0', e - 1):11.2f}s  {at('begin1', e) - at('begin0', e):13.2f}s"
              f"  {at('batch_begin', e, 0) - at('begin1', e):11.2f}s ({at('adapter_begin', e) - at('begin1', e):.2f}, "
              f"{at('get0', e) - at('begin1', e):.2f})  {first_end - at('batch_begin', e, 0):8.2f}s")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
