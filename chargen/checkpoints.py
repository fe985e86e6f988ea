"""The checkpoint folder (models/checkpoints, a DVC `persist` out, so it survives restarts):

  fingerprint.json            what the checkpoints were trained from (params + dataset hash)
  epoch_0001.weights.h5 ...   weights after each epoch (select re-evaluates these)
  resume_0007.keras           the full model with optimizer state after the last finished epoch
  history.csv                 one row per finished epoch; the commit record for resuming

Each epoch's files are written to a temporary name and renamed, history last, so a kill at any
moment leaves a consistent folder that resumes from the last finished epoch. This module holds
the folder's rules only (names, fingerprint, history, what is committed); the training code
writes the files.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import pandas as pd

from chargen.io import ChargenError, os_error_advice, write_json

# No timings: the same params and data give the same history, byte for byte (timings go to
# metrics/run/, see chargen.train).
HISTORY_FIELDS = ["epoch", "train_loss", "val_loss", "train_bpc", "val_bpc", "learning_rate"]
# Params that do not change the trajectory of the epochs already trained.
# (strategy: the same global batch on more replicas is the same computation, up to rounding.)
NOT_FINGERPRINTED = {"epochs", "patience", "sample_every", "strategy"}


def weights_name(epoch: int) -> str:
    return f"epoch_{epoch:04d}.weights.h5"


def resume_name(epoch: int) -> str:
    return f"resume_{epoch:04d}.keras"


def epoch_of(path: Path) -> int:
    """The epoch number in a checkpoint file's name."""
    return int(re.search(r"(\d+)", Path(path).name.split(".")[0]).group(1))


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
    if not cfg.get("weight_drop"):  # off: the same fingerprint as before the key existed
        keep.pop("weight_drop", None)
    body = {"train": keep, "seed": seed, "dataset_sha256": dataset_sha, "format": 1}
    body["id"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    return body


def read_history(path) -> list[dict]:
    """The rows of a history CSV (epoch an int, the rest floats); [] when there is none."""
    if not Path(path).is_file():
        return []
    table = pd.read_csv(path).reindex(columns=HISTORY_FIELDS).astype(float).astype({"epoch": int})
    return table.to_dict("records")


def history_csv(rows) -> str:
    """History rows as CSV text, floats with 6 decimals (the committed metrics' format)."""
    buf = io.StringIO()
    pd.DataFrame(list(rows), columns=HISTORY_FIELDS).to_csv(buf, index=False, float_format="%.6f",
                                                             lineterminator="\n")
    return buf.getvalue()


def fingerprint_id(ckpt: Path):
    try:
        return json.loads((ckpt / "fingerprint.json").read_text()).get("id")
    except (OSError, ValueError):
        return None


def last_commit(ckpt: Path) -> tuple[int, list[dict]]:
    """The last epoch with both a history row and a resume file, and the history up to it."""
    history = read_history(ckpt / "history.csv")
    resumes = {epoch_of(p) for p in ckpt.glob("resume_*.keras")}
    done = max((r["epoch"] for r in history if r["epoch"] in resumes), default=0)
    return done, [r for r in history if r["epoch"] <= done]


def committed_weights(ckpt: Path) -> list[Path]:
    """The per-epoch weight files that the history commits, in epoch order."""
    committed = {r["epoch"] for r in read_history(ckpt / "history.csv")}
    return sorted((p for p in ckpt.glob("epoch_*.weights.h5") if epoch_of(p) in committed), key=epoch_of)


def committed_epoch(ckpt: Path, fp: dict) -> tuple[int, list[dict]]:
    """Read-only view of the folder (for the non-chief workers of a multi-host run): the last
    committed epoch of this fingerprint and its history, or (0, []) if there is none."""
    return last_commit(ckpt) if fingerprint_id(ckpt) == fp["id"] else (0, [])


def set_aside(ckpt: Path, fp: dict, log) -> None:
    """Checkpoints of other params or data are never resumed, and never lost: they are kept in
    `<folder>.prev/<their fingerprint id>/`, one folder per fingerprint. When params change back,
    the folder kept for them is put back and training resumes where it stopped."""
    kept = ckpt.with_name(ckpt.name + ".prev")
    if (kept / "fingerprint.json").is_file():  # the older layout: one generation, directly in .prev
        old = kept.with_name(kept.name + ".old")
        kept.rename(old)
        kept.mkdir()
        old.rename(kept / (fingerprint_id(old) or "unknown"))
    kept.mkdir(exist_ok=True)
    place = kept / (fingerprint_id(ckpt) or "unknown")
    shutil.rmtree(place, ignore_errors=True)  # the same fingerprint: this copy is the newer one
    ckpt.rename(place)
    log(f"checkpoints in {ckpt} came from other params or data; kept them in {place}")
    earlier = kept / fp["id"]
    if earlier.is_dir():
        earlier.rename(ckpt)
        log(f"put back the checkpoints of these params and data from {earlier}")


def start_over(ckpt: Path, fp: dict, log) -> None:
    """Keep a folder whose last epoch cannot be resumed in `<folder>.prev/<id>-unusable-N/` and
    begin an empty one for the same fingerprint."""
    kept = ckpt.with_name(ckpt.name + ".prev")
    kept.mkdir(exist_ok=True)
    n = 1
    while (kept / f"{fp['id']}-unusable-{n}").exists():
        n += 1
    place = kept / f"{fp['id']}-unusable-{n}"
    ckpt.rename(place)
    ckpt.mkdir()
    write_json(ckpt / "fingerprint.json", fp)
    log(f"kept the unusable checkpoints in {place}")


def prepare_checkpoints(ckpt: Path, fp: dict, log) -> tuple[int, list[dict]]:
    """Make the folder ready for this fingerprint; return (epochs already done, their history).

    Checkpoints from other params or data are set aside (see `set_aside`); training starts
    afresh or from the checkpoints kept for this fingerprint.
    """
    fp_file = ckpt / "fingerprint.json"
    if ckpt.exists() and not ckpt.is_dir():
        raise ChargenError(f"{ckpt} is a file, not a folder: move it away, then dvc repro")
    if ckpt.is_dir():
        for stale in ckpt.glob(".*.tmp"):  # temporaries of a killed run
            shutil.rmtree(stale, ignore_errors=True)
    if ckpt.exists() and any(ckpt.iterdir()) and fingerprint_id(ckpt) != fp["id"]:
        set_aside(ckpt, fp, log)
    try:
        ckpt.mkdir(parents=True, exist_ok=True)
        if not fp_file.exists():
            write_json(fp_file, fp)
    except OSError as exc:
        problem, fix = os_error_advice(exc)
        raise ChargenError(f"cannot write checkpoints in {ckpt}: {problem}; {fix}, then dvc repro") from None

    done, history = last_commit(ckpt)
    for p in ckpt.glob("resume_*.keras"):  # a resume file newer than the history was never committed
        if epoch_of(p) != done:
            p.unlink()
    for p in ckpt.glob("epoch_*.weights.h5"):
        if epoch_of(p) > done:
            p.unlink()
    return done, history


def early_stop_due(history: list[dict], patience: int) -> bool:
    if not patience or not history:
        return False
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    return len(history) - 1 - best >= patience
