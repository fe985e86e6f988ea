"""Pick the best weights by validation loss, re-measured here rather than read from a log.

Training logs a validation loss over windows that each start from a zeroed state, which is
what early stopping needs. Here every candidate is scored the way the model is used: the
validation text read as continuous streams with the state carried (chargen.sampling).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from chargen import data as D
from chargen import model as M
from chargen.io import ChargenError, atomic_path, read_json
from chargen.train import _epoch_of, read_history

LN2 = M.LN2


STREAMS = 16


def val_loss(model, val_ids) -> float:
    """Validation cross-entropy (nats/char), the text read as continuous streams (state carried)."""
    from chargen.sampling import StepLSTM

    return StepLSTM(M.numpy_weights(model)).stream_loss(val_ids, STREAMS)[0]


def load_model_for(ckpt: Path, ds: dict):
    fp = read_json(ckpt / "fingerprint.json")
    cfg = fp["train"]
    if fp.get("vocab_size") != len(ds["vocab"]) or fp.get("seq_length") != ds["seq_length"]:
        raise ChargenError(f"{ckpt} was trained on another dataset than the prepared one: "
                           f"re-run training (dvc repro train)")
    model = M.build(len(ds["vocab"]), cfg)
    return model, cfg


def select(ckpt, dataset_path, out, average: int = 1) -> dict:
    ckpt = Path(ckpt)
    ds = D.load_dataset(dataset_path)
    model, cfg = load_model_for(ckpt, ds)
    val = ds["val_ids"]
    committed = {r["epoch"] for r in read_history(ckpt / "history.csv")}
    files = sorted((p for p in ckpt.glob("epoch_*.weights.h5") if _epoch_of(p) in committed), key=_epoch_of)
    if not files:
        raise ChargenError(f"no finished checkpoint in {ckpt}: run the train stage first (dvc repro train)")

    scores, weights = {}, {}
    for p in files:
        try:
            with warnings.catch_warnings():  # the file also holds optimizer slots, not needed here
                warnings.simplefilter("ignore")
                model.load_weights(p)
        except Exception as exc:
            raise ChargenError(f"checkpoint {p} is unreadable ({type(exc).__name__}); delete it and "
                               f"re-run training (dvc repro train)") from None
        e = _epoch_of(p)
        scores[e] = val_loss(model, val)
        weights[e] = [np.array(w) for w in model.get_weights()]
    ranked = sorted(scores, key=scores.get)
    chosen, best_loss, label = weights[ranked[0]], scores[ranked[0]], f"epoch {ranked[0]}"
    averaged = None
    if average > 1 and len(ranked) > 1:
        top = ranked[:average]
        mean = [np.mean([weights[e][i] for e in top], axis=0) for i in range(len(chosen))]
        model.set_weights(mean)
        averaged = val_loss(model, val)
        if averaged < best_loss:
            chosen, best_loss, label = mean, averaged, f"mean of epochs {', '.join(map(str, top))}"

    final = M.build(len(ds["vocab"]), cfg)
    final.set_weights(chosen)
    with atomic_path(out) as tmp:
        tmp.mkdir()
        final.save(tmp / "model.keras")
        (tmp / "vocab.json").write_text(json.dumps(ds["vocab"], ensure_ascii=False))
        config = {"train": cfg, "seq_length": ds["seq_length"], **ds["meta"], "source": label}
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
    result = {
        "epoch": ranked[0],
        "selected": label,
        "val_loss_nats": round(best_loss, 5),
        "val_bpc": round(best_loss / LN2, 5),
        "best_single_val_bpc": round(scores[ranked[0]] / LN2, 5),
        "candidates": len(files),
        "val_chars_scored": int(len(val) - 1) // STREAMS * STREAMS,
        "val_streams": STREAMS,
    }
    if averaged is not None:
        result["averaged_val_bpc"] = round(averaged / LN2, 5)
    return result


def load_best(folder) -> tuple:
    """(Keras model, vocab list, config dict) from a models/best folder; clear errors if damaged."""
    folder = Path(folder)
    for name in ("model.keras", "vocab.json", "config.json"):
        if not (folder / name).is_file():
            raise ChargenError(f"{folder / name} is missing: run the select stage (dvc repro select)")
    vocab = read_json(folder / "vocab.json")
    config = read_json(folder / "config.json")
    model = M.load(folder / "model.keras")
    if model.output_shape[-1] != len(vocab):
        raise ChargenError(f"{folder}: model has {model.output_shape[-1]} outputs but the vocabulary "
                           f"{len(vocab)} characters; re-run select (dvc repro select)")
    return model, vocab, config
