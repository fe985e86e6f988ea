"""Where the time between two epochs goes: the default model trained for a few short epochs by
the train stage's own code (chargen.train.train), with a timestamp at every callback hook.

    python bench/epoch_overhead.py --dataset data/prepared/dataset.npz [--epochs 4] [--steps 32]

For each epoch after the first it prints the gap from the previous epoch's last batch end to
this epoch's first batch end, less one median batch (the per-epoch overhead), and its parts:
validation, the epoch-end callbacks (checkpoint, history, dvclive, samples), the epoch-begin
callbacks (seeds, the batches' reshuffle), and the wait for the first batch. Run it on an idle
machine and state the load (`uptime`) beside what it prints. EPOCH_OVERHEAD_DUMP=1 also prints
every timestamp, Python's garbage-collector pauses and each tf.data iterator Keras starts;
--watch N prints every thread's stack when an epoch's first batch has not begun after N s;
--keep-iterators keeps Keras' discarded iterators alive and times their deletion at the end.

What it found on a shared 2-core machine (load 5 to 8): validation 0.6 to 3 s, the epoch-end
callbacks 0.2 to 0.7 s, the epoch-begin callbacks (seeds, the reshuffle) under 0.01 s, no
garbage-collector pause; but in a few epochs the first batch began 2 to 8 s late, inside Keras'
start of the epoch's batch iterator, after every callback had run.
"""

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="data/prepared/dataset.npz")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=32, help="batches per epoch (train.steps_per_epoch)")
    ap.add_argument("--sample-every", type=int, default=0, help="train.sample_every")
    ap.add_argument("--watch", type=float, default=0,
                    help="print every thread's stack when an epoch's first batch has not begun after this many s")
    ap.add_argument("--keep-iterators", action="store_true",
                    help="keep every tf.data iterator alive to the end, then time their deletion")
    args = ap.parse_args()

    from chargen import callbacks, train

    marks = []  # (what, epoch, batch, time)
    kept = []  # iterators kept alive (--keep-iterators)

    def mark(what, epoch=None, batch=None):
        marks.append((what, epoch, batch, time.perf_counter(), None))

    class FirstSeeds(callbacks.EpochSeeds):  # the first callback of the list
        def on_epoch_begin(self, epoch, logs=None):
            mark("begin0", epoch)
            super().on_epoch_begin(epoch, logs)

        def on_epoch_end(self, epoch, logs=None):
            mark("end0", epoch)

    def stacks():  # where every thread is, when an epoch's first batch is late
        import traceback
        print(f"--- first batch not begun {args.watch} s into the epoch; threads:", flush=True)
        for ident, frame in sys._current_frames().items():
            print(f"thread {ident}:\n" + "".join(traceback.format_stack(frame)[-6:]), flush=True)

    class LastProgress(callbacks.Progress):  # the last one
        def on_epoch_begin(self, epoch, logs=None):
            mark("begin1", epoch)
            super().on_epoch_begin(epoch, logs)
            if args.watch and epoch:
                import threading
                self.watch = threading.Timer(args.watch, stacks)
                self.watch.start()

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0 and getattr(self, "watch", None):
                self.watch.cancel()
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
    gc_start = {}

    def on_gc(phase, info):  # Python's garbage collector: its pauses, by generation
        if phase == "start":
            gc_start["t"] = time.perf_counter()
        else:
            marks.append((f"gc{info['generation']}", None, info["collected"], gc_start["t"], time.perf_counter()))

    gc.callbacks.append(on_gc)
    from keras.src.backend.tensorflow import trainer as tf_trainer

    get_iterator = tf_trainer.TFEpochIterator._get_iterator

    class TimedIter:  # how long starting a tf.data iterator over the batches takes
        def __init__(self, dataset):
            self.dataset = dataset

        def __iter__(self):
            t0 = time.perf_counter()
            it = iter(self.dataset)
            marks.append(("iter", None, None, t0, time.perf_counter()))
            if args.keep_iterators:
                kept.append(it)
            return it

    tf_trainer.TFEpochIterator._get_iterator = lambda self: TimedIter(get_iterator(self))
    p = yaml.safe_load(Path("params.yaml").read_text())
    from chargen.dataset import load_dataset

    ds = load_dataset(args.dataset, mmap=True)
    mode = train.batches_mode(p["train"], len(ds["train_ids"]), ds["seq_length"], len(ds["val_ids"]))
    # the batching the full run gets (fewer epochs and steps would turn `auto` into streams)
    cfg = dict(p["train"], epochs=args.epochs, steps_per_epoch=args.steps, sample_every=args.sample_every,
               batches=mode)
    with tempfile.TemporaryDirectory() as tmp:
        train.train(cfg, p["seed"], args.dataset, Path(tmp) / "ckpt", log=lambda *_: None)
    gc.callbacks.remove(on_gc)
    if kept:
        deletions = []
        while kept:
            t0 = time.perf_counter()
            kept.pop()
            deletions.append(time.perf_counter() - t0)
        print(f"deleting {len(deletions)} kept iterators: {' '.join(f'{d:.2f}' for d in deletions)} s")
    pauses = [(t0, t1) for w, _, _, t0, t1 in marks if w.startswith("gc")]
    iters = [(t0, t1) for w, _, _, t0, t1 in marks if w == "iter"]
    marks = [m[:4] for m in marks if m[0] != "iter" and not m[0].startswith("gc")]

    def gc_seconds(start, end):
        return sum(min(t1, end) - max(t0, start) for t0, t1 in pauses if t1 > start and t0 < end)

    if os.environ.get("EPOCH_OVERHEAD_DUMP"):
        t00 = marks[0][3]
        for w, e, b, t in marks:
            if w != "batch_begin" and (w != "batch_end" or b in (0, args.steps - 1)):
                print(f"{t - t00:8.3f} {w} {e} {b}")
        for t0, t1 in pauses:
            if t1 - t0 > 0.05:
                print(f"{t0 - t00:8.3f} gc pause {t1 - t0:.2f} s")
        for t0, t1 in iters:
            print(f"{t0 - t00:8.3f} iterator started in {t1 - t0:.2f} s")

    def at(what, epoch, batch=None):
        return next(t for w, e, b, t in marks if w == what and e == epoch and (batch is None or b == batch))

    ends = [(e, b, t) for w, e, b, t in marks if w == "batch_end"]
    begins = {(e, b): t for w, e, b, t in marks if w == "batch_begin"}
    per_batch = float(np.median([t - begins[(e, b)] for e, b, t in ends if b > 0]))
    print(f"load {os.getloadavg()[0]:.2f}; median batch {per_batch:.3f} s; {args.steps} batches per epoch")
    print("epoch  overhead  validation  epoch-end cb  epoch-begin cb  to 1st batch (of it GC)  1st batch")
    for e in range(1, args.epochs):
        last = max(t for ee, b, t in ends if ee == e - 1)
        first_end = at("batch_end", e, 0)
        print(f"{e + 1:5d}  {first_end - last - per_batch:7.2f}s  {at('val_end', e - 1) - at('val_begin', e - 1):9.2f}s"
              f"  {at('end1', e - 1) - at('end0', e - 1):11.2f}s  {at('begin1', e) - at('begin0', e):13.2f}s"
              f"  {at('batch_begin', e, 0) - at('begin1', e):11.2f}s ({gc_seconds(at('begin1', e), at('batch_begin', e, 0)):.2f}s)"
              f"  {first_end - at('batch_begin', e, 0):8.2f}s")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
