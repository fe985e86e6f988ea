"""Pick the best weights by validation loss, re-measured here rather than read from a log.

Training logs a validation loss each epoch as it trains (windows that each start from a zeroed
state, unless it trains on streams), which is what early stopping needs. Here the candidates are
scored the way the model is used: the validation text read as 16 continuous streams with the
state carried (chargen.numpy_lstm). The logged loss only shortlists them: the two measures can
rank neighbouring epochs differently, an epoch far down the log's ranking is rarely the best on
streams, and re-scoring every checkpoint of a long run on a big book takes minutes.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from chargen.bundle import save_bundle
from chargen.checkpoints import committed_weights, epoch_of, read_history
from chargen.dataset import load_dataset
from chargen.io import ChargenError, read_json
from chargen.model import LN2, build, numpy_weights
from chargen.numpy_lstm import StepLSTM
from chargen.progress import ticker

STREAMS = 16


def val_loss(model, val_ids) -> float:
    """Validation cross-entropy (nats/char), the text read as continuous streams (state carried)."""
    return StepLSTM(numpy_weights(model)).stream_loss(val_ids, STREAMS)[0]


def load_model_for(ckpt: Path, ds: dict):
    fp = read_json(ckpt / "fingerprint.json")
    cfg = fp["train"]
    if fp.get("vocab_size") != len(ds["vocab"]) or fp.get("seq_length") != ds["seq_length"]:
        raise ChargenError(f"{ckpt} was trained on another dataset than the prepared one: "
                           f"re-run training (dvc repro train)")
    model = build(len(ds["vocab"]), cfg)
    return model, cfg


def shortlist(files: list[Path], history: list[dict], keep: int) -> list[Path]:
    """The `keep` checkpoints with the lowest logged validation loss (ties: the earlier epoch),
    in epoch order; all of them when keep is 0 or no logged loss is a number (a diverged run)."""
    logged = {r["epoch"]: r["val_loss"] for r in history if math.isfinite(r["val_loss"])}
    if not keep or keep >= len(files) or not logged:
        return files
    best = sorted(files, key=lambda p: (logged.get(epoch_of(p), math.inf), epoch_of(p)))[:keep]
    return sorted(best, key=epoch_of)


def select(ckpt, dataset_path, out, average: int = 1, candidates: int = 0, log=print) -> dict:
    ckpt = Path(ckpt)
    ds = load_dataset(dataset_path)
    model, cfg = load_model_for(ckpt, ds)
    val = ds["val_ids"][:cfg.get("val_chars") or None]  # what training validated on (the evaluate stage reads it all)
    finished = committed_weights(ckpt)
    if not finished:
        raise ChargenError(f"no finished checkpoint in {ckpt}: run the train stage first (dvc repro train)")
    files = shortlist(finished, read_history(ckpt / "history.csv"), candidates and max(candidates, average))
    among = f", the {len(files)} of {len(finished)} with the lowest logged loss" if len(files) < len(finished) else ""
    log(f"re-scoring {len(files)} checkpoint{'s' * (len(files) != 1)} on {len(val):,} held-out chars "
        f"({STREAMS} streams, the state carried{among})")
    tick = ticker(len(files), "checkpoint", log, lines=len(files))
    scores, weights = {}, {}
    for n, p in enumerate(files, 1):
        try:
            with warnings.catch_warnings():  # the file also holds optimizer slots, not needed here
                warnings.simplefilter("ignore")
                model.load_weights(p)
        except Exception as exc:
            raise ChargenError(f"checkpoint {p} is unreadable ({type(exc).__name__}); delete it and "
                               f"re-run training (dvc repro train)") from None
        e = epoch_of(p)
        scores[e] = val_loss(model, val)
        weights[e] = [np.array(w) for w in model.get_weights()]
        tick(n, f" (epoch {e}): {scores[e] / LN2:.4f} bits/char")
    ranked = sorted(scores, key=scores.get)
    chosen, best_loss, label = weights[ranked[0]], scores[ranked[0]], f"epoch {ranked[0]}"
    averaged = None
    if average > 1 and len(ranked) > 1:
        top = ranked[:average]
        mean = [np.mean([weights[e][i] for e in top], axis=0) for i in range(len(chosen))]
        model.set_weights(mean)
        log(f"scoring the mean of the {len(top)} best: epochs {', '.join(map(str, top))}")
        averaged = val_loss(model, val)
        if averaged < best_loss:
            chosen, best_loss, label = mean, averaged, f"mean of epochs {', '.join(map(str, top))}"

    final = build(len(ds["vocab"]), cfg)
    final.set_weights(chosen)
    save_bundle(out, final, ds["vocab"],
                {"train": cfg, "seq_length": ds["seq_length"], **ds["meta"], "source": label},
                train_ids=ds["train_ids"])
    result = {
        "epoch": ranked[0],
        "selected": label,
        "val_loss_nats": round(best_loss, 5),
        "val_bpc": round(best_loss / LN2, 5),
        "best_single_val_bpc": round(scores[ranked[0]] / LN2, 5),
        "candidates": len(files),
        "checkpoints": len(finished),
        "val_chars_scored": int(len(val) - 1) // STREAMS * STREAMS,
        "val_streams": STREAMS,
    }
    if averaged is not None:
        result["averaged_val_bpc"] = round(averaged / LN2, 5)
    return result
