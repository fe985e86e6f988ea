"""Training with Keras `model.fit`: batches from the prepared windows, a checkpoint every epoch,
resume after interruption, early stopping on validation loss, and a per-epoch history.

Checkpoint folder (a DVC `persist` out, so it survives restarts):
  fingerprint.json     what the checkpoints were trained from (params + dataset hash)
  epoch_0001.weights.h5 ...   weights after each epoch (select re-evaluates these)
  resume_0007.keras    the full model with optimizer state after the last finished epoch
  history.csv          one row per finished epoch; the commit record for resuming
Each epoch's files are written to a temporary name and renamed, history last, so a kill at any
moment leaves a consistent folder that resumes from the last finished epoch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import shutil
import time
from pathlib import Path

from chargen.quiet import keras
import numpy as np

from chargen import data as D
from chargen import model as M
from chargen.io import ChargenError, atomic_path, write_json, write_text

HISTORY_FIELDS = ["epoch", "train_loss", "val_loss", "train_bpc", "val_bpc", "learning_rate", "seconds"]
# Params that do not change the trajectory of the epochs already trained.
# (strategy: the same global batch on more replicas is the same computation, up to rounding.)
NOT_FINGERPRINTED = {"epochs", "patience", "sample_every", "strategy"}


class Batches(keras.utils.PyDataset):
    """Batches of windows (inputs, targets) read from a token stream (an array or a memory map).

    Windows start every `stride` chars. Without a seed (validation) they come in order. With
    one, each pass over the text is a seeded shuffle that is recomputed, never stored: the
    windows are cut into blocks of BLOCK, the blocks are visited in a random order and each
    block's windows in a random order, and with `shift` every window of the pass moves by a
    random offset below the stride (the text is cut at different places each pass). Memory is
    O(BLOCK) whatever the size of the corpus; a text of fewer than BLOCK windows (32 M chars at
    stride 32, so every Gutenberg book) gets a full shuffle.

    An epoch is one pass, or with `steps` that many batches, continuing through the passes
    (pass boundaries fall inside epochs), so huge corpora get checkpoints every `steps` batches.
    Epoch e always holds the same batches, so a resumed run sees what an uninterrupted one saw.
    """

    BLOCK = 1 << 20

    def __init__(self, ids, stride, seq_length, batch_size, objective, seed=None, shift=0, steps=0):
        super().__init__()
        self.ids, self.stride, self.seq_length = ids, int(stride), int(seq_length)
        self.batch_size, self.objective, self.seed = int(batch_size), objective, seed
        self.shift, self.steps = int(shift), int(steps)
        self.n = D.n_windows(len(ids), self.seq_length, self.stride)
        self.per_pass = max(1, math.ceil(self.n / self.batch_size))
        self._pass = self._block = (None, None)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self):
        return self.steps or self.per_pass

    def _pass_plan(self, p: int):
        """(offset, windows in the pass, order): order is None (in text order), one permutation,
        or (block order, block sizes, where each block starts in the pass)."""
        if self._pass[0] != p:
            offset, n, order = 0, self.n, None
            if self.seed is not None:
                rng = np.random.default_rng([self.seed, p])
                if self.shift > 1:
                    offset = int(rng.integers(self.shift))
                    n = D.n_windows(len(self.ids), self.seq_length, self.stride, offset)
                if n <= self.BLOCK:
                    order = rng.permutation(n)  # one block: an ordinary full shuffle
                else:
                    blocks = rng.permutation(math.ceil(n / self.BLOCK))
                    sizes = np.minimum(self.BLOCK, n - blocks * self.BLOCK)
                    order = (blocks, sizes, np.concatenate([[0], np.cumsum(sizes)]))
            self._pass = (p, (offset, n, order))
        return self._pass[1]

    def _block_order(self, p: int, block: int, size: int) -> np.ndarray:
        if self._block[0] != (p, block):
            self._block = ((p, block), np.random.default_rng([self.seed, p, block + 1]).permutation(size))
        return self._block[1]

    def _window_indices(self, p: int, lo: int, hi: int) -> np.ndarray:
        """Window numbers (in text order) at positions lo..hi-1 of pass p."""
        offset, n, order = self._pass_plan(p)
        hi = min(hi, n)
        if lo >= hi:  # a shifted pass can have one window fewer than the base grid
            lo, hi = max(0, n - self.batch_size), n
        if order is None:
            return np.arange(lo, hi)
        if isinstance(order, np.ndarray):
            return order[lo:hi]
        blocks, sizes, bounds = order
        parts, pos = [], lo
        while pos < hi:
            k = int(np.searchsorted(bounds, pos, side="right") - 1)
            end = min(hi, int(bounds[k + 1]))
            inner = self._block_order(p, int(blocks[k]), int(sizes[k]))
            parts.append(int(blocks[k]) * self.BLOCK + inner[pos - bounds[k]:end - bounds[k]])
            pos = end
        return np.concatenate(parts)

    def starts(self, i: int) -> np.ndarray:
        """Text offsets of the windows in batch i of the current epoch."""
        g = self.epoch * self.steps + i if self.steps else i
        p = g // self.per_pass if self.steps else self.epoch
        b = g % self.per_pass
        idx = self._window_indices(p, b * self.batch_size, (b + 1) * self.batch_size)
        offset = self._pass_plan(p)[0]
        return offset + idx.astype(np.int64) * self.stride

    def __getitem__(self, i):
        w = D.windows(self.ids, self.starts(i), self.seq_length).astype("int32")
        x = w[:, :-1]
        y = w[:, 1:] if self.objective == "sequence" else w[:, -1]
        return x, y


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(cfg: dict, seed: int, dataset_sha: str) -> dict:
    keep = {k: v for k, v in cfg.items() if k not in NOT_FINGERPRINTED}
    if cfg["lr_schedule"] == "cosine":
        keep["epochs"] = cfg["epochs"]  # the schedule's length depends on it
    body = {"train": keep, "seed": seed, "dataset_sha256": dataset_sha, "format": 1}
    body["id"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return body


def read_history(path) -> list[dict]:
    if not Path(path).is_file():
        return []
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in r.items()} for r in rows]


def history_csv(rows) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]) for k in HISTORY_FIELDS})
    return buf.getvalue()


def _epoch_of(path: Path) -> int:
    return int(re.search(r"(\d+)", path.name.split(".")[0]).group(1))


def _fingerprint_id(ckpt: Path):
    try:
        return json.loads((ckpt / "fingerprint.json").read_text()).get("id")
    except (OSError, ValueError):
        return None


def _last_commit(ckpt: Path) -> tuple[int, list[dict]]:
    """The last epoch with both a history row and a resume file, and the history up to it."""
    history = read_history(ckpt / "history.csv")
    resumes = {_epoch_of(p) for p in ckpt.glob("resume_*.keras")}
    done = max((r["epoch"] for r in history if r["epoch"] in resumes), default=0)
    return done, [r for r in history if r["epoch"] <= done]


def committed_epoch(ckpt: Path, fp: dict) -> tuple[int, list[dict]]:
    """Read-only view of the folder (for the non-chief workers of a multi-host run): the last
    committed epoch of this fingerprint and its history, or (0, []) if there is none."""
    return _last_commit(ckpt) if _fingerprint_id(ckpt) == fp["id"] else (0, [])


def prepare_checkpoints(ckpt: Path, fp: dict, log) -> tuple[int, list[dict]]:
    """Make the folder ready for this fingerprint; return (epochs already done, their history).

    Checkpoints from other params or data are never resumed: the folder is moved aside to
    `<folder>.prev` (one generation kept) and training starts afresh.
    """
    fp_file = ckpt / "fingerprint.json"
    if ckpt.exists() and not ckpt.is_dir():
        raise ChargenError(f"{ckpt} is a file, not a folder: move it away, then dvc repro")
    if ckpt.is_dir():
        for stale in ckpt.glob(".*.tmp"):  # temporaries of a killed run
            shutil.rmtree(stale, ignore_errors=True)
    if ckpt.exists() and any(ckpt.iterdir()):
        if _fingerprint_id(ckpt) != fp["id"]:
            prev = ckpt.with_name(ckpt.name + ".prev")
            shutil.rmtree(prev, ignore_errors=True)
            ckpt.rename(prev)
            log(f"checkpoints in {ckpt} came from other params or data; moved them to {prev}, starting afresh")
    try:
        ckpt.mkdir(parents=True, exist_ok=True)
        if not fp_file.exists():
            write_json(fp_file, fp)
    except OSError as exc:
        raise ChargenError(f"cannot write checkpoints in {ckpt}: {exc.strerror or exc}; free disk space "
                           f"or fix permissions, then dvc repro") from None

    done, history = _last_commit(ckpt)
    for p in ckpt.glob("resume_*.keras"):  # a resume file newer than the history was never committed
        if _epoch_of(p) != done:
            p.unlink()
    for p in ckpt.glob("epoch_*.weights.h5"):
        if _epoch_of(p) > done:
            p.unlink()
    return done, history


def early_stop_due(history: list[dict], patience: int) -> bool:
    if not patience or not history:
        return False
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    return len(history) - 1 - best >= patience


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
            "train_bpc": float(logs["loss"]) / M.LN2,
            "val_bpc": float(logs["val_loss"]) / M.LN2,
            "learning_rate": float(np.asarray(lr)),
            "seconds": seconds,
        }
        if not all(math.isfinite(row[k]) for k in ("train_loss", "val_loss")):
            raise ChargenError(
                f"training diverged at epoch {e} (loss {row['train_loss']}); lower train.learning_rate "
                f"or set train.clipnorm"
            )
        if not self.write:
            self.history.append(row)
        else:
            self.commit(e, row)
        self.log(f"epoch {e}: train {row['train_bpc']:.4f} bpc, val {row['val_bpc']:.4f} bpc, {seconds:.1f} s")
        if self.sampler:
            self.sampler(self.model, e)
        if self.on_history:
            self.on_history(self.history)
        if early_stop_due(self.history, self.patience):
            self.log(f"early stop: no val improvement in {self.patience} epochs")
            self.model.stop_training = True

    def commit(self, e: int, row: dict) -> None:
        try:
            with atomic_path(self.ckpt / f"epoch_{e:04d}.weights.h5") as tmp:
                self.model.save_weights(tmp)
            with atomic_path(self.ckpt / f"resume_{e:04d}.keras") as tmp:
                self.model.save(tmp)
            self.history.append(row)
            write_text(self.ckpt / "history.csv", history_csv(self.history))
            for p in self.ckpt.glob("resume_*.keras"):
                if _epoch_of(p) != e:
                    p.unlink()
        except OSError as exc:
            raise ChargenError(f"cannot write checkpoint in {self.ckpt}: {exc.strerror or exc}; "
                               f"free disk space or fix permissions, then dvc repro resumes") from None


class LiveLog:
    """Per-epoch metrics through dvclive (metrics/live/), for `dvc exp show` during a run.

    The committed history is the one record of what was trained, so the dvclive folder is
    rebuilt from it when a run starts and then extended one committed epoch at a time. After a
    kill and resume it therefore never holds an epoch that was not committed, nor misses one;
    dvclive's own resume reads its step from its own files, which can be an epoch ahead of
    or behind the checkpoints. Steps are epoch numbers (1-based).
    """

    FIELDS = ("train_bpc", "val_bpc", "learning_rate")

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
            self.live.log_metric("epoch", int(row["epoch"]), plot=False)
            self.live.next_step()
        self.logged = len(history)


def train(cfg: dict, seed: int, dataset_path, ckpt_dir, on_history=None, log=print) -> dict:
    """Train (or resume) and return a summary for metrics/train.json.

    Under train.strategy: multiworker every worker runs this; only the chief writes checkpoints
    (the others read the same folder, on shared storage, to resume at the same epoch) and
    returns a summary with "chief": false.
    """
    from chargen.distribute import strategy_for

    if cfg["precision"] != "float32":
        keras.mixed_precision.set_dtype_policy(cfg["precision"])
    ds = D.load_dataset(dataset_path, mmap=True)  # token ids stay on disk, paged in as windows need them
    vocab, T, stride = ds["vocab"], ds["seq_length"], ds["stride"]
    if not D.n_windows(len(ds["train_ids"]), T, stride) or not D.n_windows(len(ds["val_ids"]), T, stride):
        raise ChargenError(f"{dataset_path} has no complete window in train or validation; "
                           f"lower prepare.seq_length or prepare.val_fraction")
    strategy = strategy_for(cfg)
    ckpt = Path(ckpt_dir)
    fp = fingerprint(cfg, seed, file_sha256(dataset_path))
    fp.update(vocab_size=len(vocab), seq_length=T)
    if strategy.chief:
        done, history = prepare_checkpoints(ckpt, fp, log)
    else:
        done, history = committed_epoch(ckpt, fp)
        on_history, log = None, (lambda *a: None)

    keras.utils.set_random_seed(seed)
    train_b = Batches(ds["train_ids"], stride, T, cfg["batch_size"], cfg["objective"],
                      seed=seed, shift=stride, steps=cfg["steps_per_epoch"])
    val_b = Batches(ds["val_ids"], stride, T, cfg["batch_size"], cfg["objective"])
    with strategy.scope():
        if done:
            model = M.load(ckpt / f"resume_{done:04d}.keras", compile=True)
            log(f"resuming from epoch {done} in {ckpt}")
        else:
            model = M.build(len(vocab), cfg)
            M.compile_model(model, cfg, len(train_b))
    strategy.prepare(model)
    if strategy.replicas > 1:
        log(f"{strategy.name}: {strategy.replicas} replicas, {cfg['batch_size'] // strategy.replicas} windows each")

    sampler = None
    if cfg["sample_every"] and strategy.chief:
        sampler = progress_sampler(ckpt / "samples", ds, cfg["sample_every"], seed, log)
    commit = EpochCommit(ckpt, history, cfg["patience"], train_b, on_history, log, sampler, write=strategy.chief)
    if done < cfg["epochs"] and not early_stop_due(history, cfg["patience"]):
        model.fit(train_b, validation_data=val_b, epochs=cfg["epochs"], initial_epoch=done,
                  callbacks=[commit], verbose=0, shuffle=False)
    if on_history:
        on_history(history)
    summary = summarise(history, model, train_b, cfg)
    summary.update(strategy=strategy.name, replicas=strategy.replicas)
    if not strategy.chief:
        summary["chief"] = False
    return summary


def progress_sampler(folder: Path, ds: dict, every: int, seed: int, log, length: int = 300):
    """A callback body that writes a short sample every `every` epochs, to watch the text improve.

    It continues the same seeded validation window each time, at temperature 0.8, so the
    samples differ only by what the model has learned.
    """
    from chargen.sampling import StepLSTM, sample_stateful

    prompt = D.random_prompts(ds["val_ids"], 1, ds["seq_length"], seed)

    def write(model, epoch):
        if epoch % every:
            return
        ids = sample_stateful(StepLSTM(M.numpy_weights(model)), prompt, length, temperature=0.8, seed=seed)
        text = D.decode(ids[0], ds["vocab"])
        write_text(folder / f"epoch_{epoch:04d}.txt",
                   f"prompt: {D.decode(prompt[0], ds['vocab'])!r}\n\n{text}\n")
        log(f"  sample: {text[:70]!r}")

    return write


def summarise(history, model, train_b: Batches, cfg) -> dict:
    best = min(history, key=lambda r: r["val_loss"])
    secs = [r["seconds"] for r in history]
    per_window = train_b.seq_length if cfg["objective"] == "sequence" else 1
    targets = min(len(train_b) * train_b.batch_size, train_b.n) * per_window  # per epoch
    return {
        "best_epoch": int(best["epoch"]),
        "best_val_loss_nats": round(best["val_loss"], 5),
        "best_val_bpc": round(best["val_bpc"], 5),
        "final_train_bpc": round(history[-1]["train_bpc"], 5),
        "epochs_run": len(history),
        "seconds_per_epoch": round(float(np.median(secs)), 3),
        "train_seconds": round(float(np.sum(secs)), 1),
        "targets_per_second": round(targets / float(np.median(secs)), 1),
        "params": M.param_count(model),
        **runtime(),
    }


def runtime() -> dict:
    """Backend, device and library versions, for metrics."""
    backend = keras.config.backend()
    info = {"backend": backend, "keras": keras.__version__}
    if backend == "tensorflow":
        import tensorflow as tf
        info["tensorflow"] = tf.__version__
        info["device"] = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    elif backend == "jax":
        import jax
        info["jax"] = jax.__version__
        info["device"] = jax.devices()[0].platform.upper()
    elif backend == "torch":
        import torch
        info["torch"] = torch.__version__
        info["device"] = "GPU" if torch.cuda.is_available() else "CPU"
    return info
