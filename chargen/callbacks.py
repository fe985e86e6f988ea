"""The training callbacks: commit an epoch to the checkpoint folder, and mirror the committed
history into dvclive (metrics/live/) for `dvc exp show` during a run."""

from __future__ import annotations

import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from chargen.batches import Batches
from chargen.checkpoints import early_stop_due, epoch_of, history_csv, resume_name, weights_name
from chargen.io import ChargenError, atomic_path, os_error_advice, write_text
from chargen.model import LN2, save_model
from chargen.progress import duration
from chargen.quiet import keras


class EpochCommit(keras.callbacks.Callback):
    """At each epoch end: weights, resumable model, history (the commit), then early stopping.

    Early stopping is decided from the saved history rather than in-memory counters, so it
    behaves the same whether or not the run was interrupted and resumed.
    """

    def __init__(self, ckpt: Path, history: list[dict], patience: int, batches: Batches,
                 on_history=None, log=print, sampler=None, write=True):
        super().__init__()
        self.ckpt, self.history, self.patience = ckpt, history, patience
        self.batches, self.on_history, self.log, self.sampler = batches, on_history, log, sampler
        self.write = write  # False on the non-chief workers of a multi-host run: they keep the history only
        self.seconds = []  # per epoch trained in this process (a timing: kept out of the history)

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.t0
        e = epoch + 1
        lr = self.model.optimizer.learning_rate
        row = {
            "epoch": e,
            "train_loss": float(logs["loss"]),
            "val_loss": float(logs["val_loss"]),
            "train_bpc": float(logs["loss"]) / LN2,
            "val_bpc": float(logs["val_loss"]) / LN2,
            "learning_rate": float(np.asarray(lr)),
        }
        # Kept at the precision history.csv stores, so a resumed run, which reads the earlier
        # epochs back from it, summarises and early-stops exactly as an uninterrupted one.
        row = {k: v if k == "epoch" else round(v, 6) for k, v in row.items()}
        if not all(math.isfinite(row[k]) for k in ("train_loss", "val_loss")):
            raise ChargenError(
                f"training diverged at epoch {e} (loss {row['train_loss']}); lower train.learning_rate "
                f"or set train.clipnorm"
            )
        self.seconds.append(seconds)
        if not self.write:
            self.history.append(row)
        else:
            self.commit(e, row)
        self.log(f"epoch {e}: train {row['train_bpc']:.4f} bpc, val {row['val_bpc']:.4f} bpc, {seconds:.1f} s")
        if self.sampler:
            self.sampler(self.model, e)
        if self.on_history:
            self.on_history(self.history)
        ended = run_end(self.history, self.params["epochs"], self.patience)
        if ended:
            self.log(ended)
            self.model.stop_training = True

    def commit(self, e: int, row: dict) -> None:
        try:
            with atomic_path(self.ckpt / weights_name(e)) as tmp:
                self.model.save_weights(tmp)
            with atomic_path(self.ckpt / resume_name(e)) as tmp:
                save_model(self.model, tmp)
            self.history.append(row)
            write_text(self.ckpt / "history.csv", history_csv(self.history))
            for p in self.ckpt.glob("resume_*.keras"):
                if epoch_of(p) != e:
                    p.unlink()
        except OSError as exc:
            problem, fix = os_error_advice(exc)
            raise ChargenError(f"cannot write checkpoint in {self.ckpt}: {problem}; {fix}, then dvc repro "
                               f"resumes") from None


def run_end(history: list[dict], epochs: int, patience: int) -> str | None:
    """What ends the run after the last epoch of `history`, said in one line, or None while it
    goes on: the epoch budget (train.epochs) or early stopping (train.patience)."""
    e = int(history[-1]["epoch"]) if history else 0
    stalled = early_stop_due(history, patience)
    if e >= epochs:
        also = f"; no val improvement in its last {patience} epochs either" if stalled else ""
        return f"done: the epoch budget ended the run after epoch {e} of {epochs} (train.epochs){also}"
    if stalled:
        return (f"early stop after epoch {e} of {epochs}: no val improvement in {patience} epochs "
                f"(train.patience)")
    return None


class EpochSeeds(keras.callbacks.Callback):
    """Set the state of every random-number generator in the model (Dropout's) from the run's
    seed and the epoch number when an epoch starts.

    Keras keeps that state in variables that `model.save` does not store, and a model loaded to
    resume draws fresh ones, so without this a resumed run drops other units than the
    uninterrupted run did and ends with other weights. Derived from (seed, epoch, generator) it
    is the same whether the epoch follows the one before in this process or a resume.
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch, logs=None):
        states = [v for v in self.model.variables if v.name == "seed_generator_state"]
        for i, state in enumerate(states):
            start = int(np.random.default_rng([self.seed, epoch, i]).integers(1, 2**31 - 1))
            state.assign(np.array([start, 0], dtype=keras.backend.standardize_dtype(state.dtype)))


class ResetStates(keras.callbacks.Callback):
    """Zero the LSTM states of a model trained on streams (chargen.batches.Streams) when an
    epoch starts, before validation, whose streams are other text, and when the rows move to
    new chunks (train.stream_chunk)."""

    def __init__(self, batches=None):
        super().__init__()
        self.batches = batches

    def on_train_batch_begin(self, batch, logs=None):
        if batch and self.batches is not None and self.batches.chunk_starts(batch):
            self._reset()

    def _reset(self):
        for layer in self.model.layers:
            if getattr(layer, "stateful", False):
                layer.reset_state()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset()

    def on_test_begin(self, logs=None):
        self._reset()


class LiveLog:
    """Per-epoch metrics through dvclive (metrics/live/), for `dvc exp show` during a run.

    The committed history is the one record of what was trained, so the dvclive folder is
    rebuilt from it when a run starts and then extended one committed epoch at a time. After a
    kill and resume it therefore never holds an epoch that was not committed, nor misses one;
    dvclive's own resume reads its step from its own files, which can be an epoch ahead of
    or behind the checkpoints. Steps are epoch numbers (1-based).
    """

    FIELDS = ("val_bpc",)  # the rest is in the history and its plots; few columns for exp show

    def __init__(self, folder):
        self.folder, self.live, self.logged = Path(folder), None, 0

    def __call__(self, history: list[dict]) -> None:
        if self.live is None:
            from dvclive import Live

            shutil.rmtree(self.folder, ignore_errors=True)
            self.live = Live(str(self.folder), dvcyaml=False, save_dvc_exp=False, resume=False, report=None)
        for row in history[self.logged:]:
            self.live.step = int(row["epoch"])
            for k in self.FIELDS:
                self.live.log_metric(k, round(float(row[k]), 6))
            self.live.next_step()
        self.logged = len(history)


class Progress(keras.callbacks.Callback):
    """Signs of life within an epoch, and how long the run will take.

    Once enough batches are timed it says how long an epoch and the whole run should take on
    this machine. Within an epoch it shows Keras' progress bar on a terminal, and a plain line
    every `every` seconds otherwise (CI logs, `dvc exp run --queue`); after each epoch, the time
    left at most.

    An estimate is never drawn from a few batches: the first batches of a run compile the step,
    and the first batch of any epoch can be slow for reasons that are not the epoch's (the
    machine's load, the previous epoch's validation and checkpoint still in flight). So the
    first batch of each epoch is left out, and a rate counts only once it rests on at least
    MIN_BATCHES batches and MIN_SECONDS seconds; until then an epoch's line uses the previous
    epoch's rate, or gives no estimate.
    """

    WARMUP = 2  # batches of a run left out of its first estimate (they compile the step)
    MIN_BATCHES, MIN_SECONDS = 10, 5.0  # the least a rate is measured on before it is extrapolated

    def __init__(self, log=print, every: float = 30.0, tty: bool | None = None, clock=time.perf_counter):
        super().__init__()
        self.log, self.every, self.clock = log, every, clock
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.estimated, self.epoch_seconds, self.last_rate = False, [], None

    def on_train_begin(self, logs=None):
        self.epochs, self.steps = self.params["epochs"], self.params["steps"]

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.t0 = epoch, self.clock()
        self.last_line, self.first_end, self.timing_start, self.batch_end = self.t0, None, None, None
        self.bar = keras.utils.Progbar(self.steps, unit_name="batch") if self.tty and self.steps else None

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.WARMUP and not self.estimated:
            self.timing_start = self.clock()

    def rate(self, batches: int, seconds: float) -> float | None:
        """Seconds per batch, or None while too little has been timed to extrapolate from."""
        if batches < self.MIN_BATCHES or seconds < self.MIN_SECONDS:
            return None
        return seconds / batches

    def on_train_batch_end(self, batch, logs=None):
        now, done = self.clock(), batch + 1
        self.batch_end = now
        if batch == 0:
            self.first_end = now
        if not self.estimated and self.timing_start is not None:
            per_batch = self.rate(done - self.WARMUP, now - self.timing_start)
            if per_batch is not None:
                self.estimated = True
                left = self.epochs - self.epoch
                self.log(f"timing: {per_batch:.3f} s per batch, so about {duration(per_batch * self.steps)} per "
                         f"epoch of {self.steps} batches and {duration(per_batch * self.steps * left)} for the "
                         f"{left} epochs to go, plus validation (this machine)")
        if self.bar is not None:
            self.bar.update(done, values=[("loss", float(logs["loss"]))] if logs and "loss" in logs else None)
        elif self.steps and now - self.last_line >= self.every and done < self.steps:
            self.last_line = now
            per_batch = self.rate(batch, now - self.first_end) or self.last_rate
            eta = (f", about {duration(per_batch * (self.steps - done))} to the end of its training part"
                   if per_batch is not None else "")
            self.log(f"  epoch {self.epoch + 1}: batch {done}/{self.steps}, {duration(now - self.t0)} in{eta}")

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(self.clock() - self.t0)
        if self.first_end is not None and self.batch_end > self.first_end:  # this epoch's rate, its first batch left out
            self.last_rate = self.rate(self.steps - 1, self.batch_end - self.first_end) or self.last_rate
        left = self.epochs - epoch - 1
        if left > 0:
            per_epoch = float(np.median(self.epoch_seconds))
            self.log(f"  at most {duration(per_epoch * left)} left: {left} epoch{'s' * (left > 1)} at {per_epoch:.0f} s "
                     f"(fewer if early stopping ends the run)")
