"""The training loop: Keras `model.fit` on the prepared windows, a committed checkpoint every
epoch, resume after interruption, early stopping on validation loss, and the run's summary.

The checkpoint folder's rules are in chargen.checkpoints, the batches in chargen.batches, the
callbacks in chargen.callbacks and the tf.distribute strategies in chargen.distribute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chargen.batches import Batches, Streams, feed_without_autotune
from chargen.callbacks import EpochCommit, EpochSeeds, Progress, ResetStates, run_end
from chargen.checkpoints import (committed_epoch, file_sha256, fingerprint,
                                 prepare_checkpoints, resume_name, start_over, weights_name)
from chargen.dataset import decode, load_dataset, n_windows, random_prompts
from chargen.io import ChargenError, write_text
from chargen.model import build, compile_model, load_model, numpy_weights, param_count
from chargen.quiet import keras


def train(cfg: dict, seed: int, dataset_path, ckpt_dir, on_history=None, log=print) -> dict:
    """Train (or resume) and return a summary for metrics/train.json.

    Under train.strategy: multiworker every worker runs this; only the chief writes checkpoints
    (the others read the same folder, on shared storage, to resume at the same epoch) and
    returns a summary with "chief": false.
    """
    from chargen.distribute import strategy_for

    if cfg["precision"] != "float32":
        keras.mixed_precision.set_dtype_policy(cfg["precision"])
    ds = load_dataset(dataset_path, mmap=True)  # token ids stay on disk, paged in as windows need them
    vocab, T, stride = ds["vocab"], ds["seq_length"], ds["stride"]
    val_ids = ds["val_ids"][:cfg.get("val_chars") or None]  # per-epoch validation: bounded on a big book
    if not n_windows(len(ds["train_ids"]), T, stride) or not n_windows(len(val_ids), T, stride):
        raise ChargenError(f"{dataset_path} has no complete window in train or validation; "
                           f"lower prepare.seq_length or prepare.val_fraction, or raise train.val_chars")
    streams = batches_mode(cfg, len(ds["train_ids"]), T, len(val_ids), log) == "streams"
    strategy = strategy_for(cfg)
    ckpt = Path(ckpt_dir)
    fp = fingerprint(cfg, seed, file_sha256(dataset_path))
    fp.update(vocab_size=len(vocab), seq_length=T)
    if strategy.chief:
        done, history = prepare_checkpoints(ckpt, fp, log)
    else:
        done, history = committed_epoch(ckpt, fp)
        on_history, log = None, (lambda *a: None)

    feed_without_autotune()
    keras.utils.set_random_seed(seed)
    if streams:
        train_b = Streams(ds["train_ids"], T, cfg["batch_size"], seed=seed, steps=cfg["steps_per_epoch"],
                          chunk=cfg.get("stream_chunk", 0))
        val_b = Streams(val_ids, T, cfg["batch_size"])
        if not len(val_b) or not train_b.per_pass:
            raise ChargenError(
                f"the validation text ({len(val_ids)} chars) is too short for {cfg['batch_size']} "
                f"streams of {T} chars (train.batches: streams); lower train.batch_size or "
                f"prepare.seq_length, or raise prepare.val_fraction")
    else:
        train_b = Batches(ds["train_ids"], stride, T, cfg["batch_size"], cfg["objective"],
                          seed=seed, shift=stride, steps=cfg["steps_per_epoch"])
        val_b = Batches(val_ids, stride, T, cfg["batch_size"], cfg["objective"])
    def fresh():
        model = build(len(vocab), cfg, stateful_batch=cfg["batch_size"] if streams else 0, for_training=True)
        compile_model(model, cfg, len(train_b))
        return model

    with strategy.scope():
        model = None
        if done:
            model, done, history = resume(ckpt, fp, done, history, fresh, log, strategy.chief)
        if model is None:
            model = fresh()
    if strategy.replicas > 1:
        log(f"{strategy.name}: {strategy.replicas} replicas, {cfg['batch_size'] // strategy.replicas} windows each")

    sampler = None
    if cfg["sample_every"] and strategy.chief:
        sampler = progress_sampler(ckpt / "samples", ds, cfg["sample_every"], seed, log)
    commit = EpochCommit(ckpt, history, cfg["patience"], train_b, on_history, log, sampler, write=strategy.chief)
    ended = run_end(history, cfg["epochs"], cfg["patience"])
    if ended:  # a finished run, found again: nothing to train
        log(ended)
    else:
        log(budget(cfg, train_b, done))
        callbacks = [EpochSeeds(seed), *([ResetStates(train_b)] if streams else []), commit]
        with strategy.fitting(model):
            model.fit(train_b, validation_data=val_b, epochs=cfg["epochs"], initial_epoch=done,
                      callbacks=[*callbacks, Progress(log)], verbose=0, shuffle=False)
    if on_history:
        on_history(history)
    summary = summarise(history, model)
    summary["run"] = run_info(commit.seconds, train_b, cfg, strategy)
    if not strategy.chief:
        summary["chief"] = False
    return summary


AUTO_PASSES = 8  # batches: auto trains windows when the budget reads the text at least this many times


def budget_passes(cfg: dict, n_train: int, seq_length: int) -> float:
    """How many times the training budget (epochs x steps_per_epoch batches) reads the text."""
    if not cfg["steps_per_epoch"]:
        return float(cfg["epochs"])
    per_epoch = cfg["steps_per_epoch"] * cfg["batch_size"] * seq_length / max(1, n_train)
    return cfg["epochs"] * min(1.0, per_epoch)


def _streams_fit(n: int, seq_length: int, batch_size: int, chunk: int = 0) -> bool:
    """Whether n chars make at least one batch of streams (a zero-byte stand-in for the ids)."""
    return Streams(np.broadcast_to(np.uint8(0), (n,)), seq_length, batch_size, chunk=chunk).per_pass > 0


def batches_mode(cfg: dict, n_train: int, seq_length: int, n_val: int, log=lambda *_: None) -> str:
    """'windows' or 'streams'. `auto` follows the book's size against the budget: a text the
    budget reads many times (Alice: 20) is where windows, each from a zeroed state, overfit
    less; a text read only a few times (Moby Dick: 2.4) is where the budget limits the model,
    and streams, which learn faster, score better (docs/results.md)."""
    if cfg["batches"] != "auto":
        return cfg["batches"]
    passes = budget_passes(cfg, n_train, seq_length)
    chunk = cfg.get("stream_chunk", 0)
    if passes >= AUTO_PASSES:
        why = f"the budget reads the training text {passes:.1f} times, at least {AUTO_PASSES}"
        mode = "windows"
    elif cfg["objective"] != "sequence" or cfg["strategy"] != "single":
        why, mode = "streams need objective: sequence on a single device", "windows"
    elif not _streams_fit(n_train, seq_length, cfg["batch_size"], chunk) or not _streams_fit(
            n_val, seq_length, cfg["batch_size"]):
        why, mode = f"the text is too short for {cfg['batch_size']} streams", "windows"
    else:
        why = f"the budget reads the training text {passes:.1f} times, fewer than {AUTO_PASSES}"
        mode = "streams"
    kind = f"streams in chunks of {chunk} windows" if mode == "streams" and chunk else mode
    log(f"train.batches: auto -> {kind} ({why})")
    return mode


def resume(ckpt: Path, fp: dict, done: int, history: list, fresh, log, chief: bool = True):
    """(model, epochs done, history) to go on from: the last epoch's resume file; if that is
    unusable, a fresh model given the same epoch's weights file, which also holds the optimizer's
    state, so the run still continues exactly; if that fails too, (None, 0, []): start over.
    Nothing unusable is deleted: the resume file is kept beside as `.unusable`, and on a fresh
    start the whole folder goes to models/checkpoints.prev/."""
    path = ckpt / resume_name(done)
    kept = path.with_name(path.name + ".unusable")
    try:
        model = load_model(path, compile=True, fix=f"kept as {kept.name}")
        log(f"resuming from epoch {done} in {ckpt}")
        return model, done, history
    except ChargenError as exc:
        why = str(exc)
    if chief:
        path.replace(kept)
    weights = ckpt / weights_name(done)
    try:
        model = fresh()
        model.optimizer.build(model.trainable_variables)
        model.load_weights(weights)
        log(f"warning: {why}; resuming from epoch {done} with {weights.name} (weights and optimizer state)")
        return model, done, history
    except Exception as exc:  # Keras raises many types for a bad file
        log(f"warning: {why}; {weights.name} is unusable too ({type(exc).__name__}), so training starts over")
    if chief:
        start_over(ckpt, fp, log)
    return None, 0, []


def budget(cfg: dict, train_b, done: int) -> str:
    """What the run will train, said before it starts: epochs, batches and characters."""
    epochs, steps = cfg["epochs"] - done, len(train_b)
    chars = (train_b.steps * train_b.batch_size if train_b.steps else train_b.n) * train_b.seq_length
    start = f" (resuming after epoch {done})" if done else ""
    share = (f"{chars / (train_b.n * train_b.seq_length):.0%} of the text per epoch" if train_b.steps
             else "the whole text each epoch")
    return (f"training {epochs} epoch{'s' if epochs != 1 else ''}{start} of {steps} batches of {train_b.batch_size} x "
            f"{train_b.seq_length} chars ({share}): {chars:,} chars per epoch, {epochs * chars:,} in all")


def progress_sampler(folder: Path, ds: dict, every: int, seed: int, log, length: int = 300):
    """A callback body that writes a short sample every `every` epochs, to watch the text improve.

    It continues the same seeded validation window each time, at temperature 0.8, so the
    samples differ only by what the model has learned.
    """
    from chargen.numpy_lstm import StepLSTM
    from chargen.sampling import sample_stateful

    prompt = random_prompts(ds["val_ids"], 1, ds["seq_length"], seed)

    def write(model, epoch):
        if epoch % every:
            return
        ids = sample_stateful(StepLSTM(numpy_weights(model)), prompt, length, temperature=0.8, seed=seed)
        text = decode(ids[0], ds["vocab"])
        write_text(folder / f"epoch_{epoch:04d}.txt",
                   f"prompt: {decode(prompt[0], ds['vocab'])!r}\n\n{text}\n")
        log(f"  sample: {text[:70]!r}")

    return write


def summarise(history, model) -> dict:
    """What was trained (metrics/train.json): the same params and data give the same summary."""
    best = min(history, key=lambda r: r["val_loss"])
    return {
        "best_epoch": int(best["epoch"]),
        "best_val_loss_nats": round(best["val_loss"], 5),
        "best_val_bpc": round(best["val_bpc"], 5),
        "final_train_bpc": round(history[-1]["train_bpc"], 5),
        "epochs_run": len(history),
        "params": param_count(model),
    }


def run_info(seconds: list[float], train_b: Batches, cfg, strategy) -> dict:
    """How this run went on this machine (metrics/run/train.json, not compared by DVC): the
    epochs trained in this process and their speed, the strategy, backend and versions."""
    info = {"epochs_timed": len(seconds), "batches": "streams" if isinstance(train_b, Streams) else "windows"}
    if seconds:
        per_window = train_b.seq_length if cfg["objective"] == "sequence" else 1
        targets = min(len(train_b) * train_b.batch_size, train_b.n) * per_window  # per epoch
        info.update(seconds_per_epoch=round(float(np.median(seconds)), 3),
                    train_seconds=round(float(np.sum(seconds)), 1),
                    targets_per_second=round(targets / float(np.median(seconds)), 1))
    return {**info, "strategy": strategy.name, "replicas": strategy.replicas, **runtime()}


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
