"""Vocabulary, ids, windows and the prepared-dataset file (.npz, no pickles)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from chargen.io import ChargenError, atomic_path


def build_vocab(*texts: str) -> list[str]:
    chars = set()
    for t in texts:
        chars.update(t)
    return sorted(chars)


def id_dtype(vocab_size: int):
    """The smallest unsigned dtype that holds every id."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dt).max + 1:
            return dt
    raise ChargenError(f"vocabulary of {vocab_size} characters is too large")


def encode(text: str, vocab: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(vocab)}
    missing = sorted(set(text) - set(index))
    if missing:
        shown = ", ".join(repr(c) for c in missing[:5])
        raise ChargenError(
            f"text has {len(missing)} character(s) outside the vocabulary: {shown}; "
            f"use only characters the model was trained on"
        )
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = {ord(c): i for c, i in index.items()}
    # Map code points to ids through a sorted lookup (fast for long texts).
    keys = np.array(sorted(table), dtype=np.uint32)
    vals = np.array([table[k] for k in keys], dtype=np.int64)
    return vals[np.searchsorted(keys, codes)].astype(id_dtype(len(vocab)))


def decode(ids, vocab) -> str:
    return "".join(vocab[int(i)] for i in ids)


def window_starts(n_ids: int, seq_length: int, stride: int) -> np.ndarray:
    """Start offsets of every window of seq_length inputs plus the char that follows them."""
    last = n_ids - seq_length - 1
    if last < 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.arange(0, last + 1, stride, dtype=np.int64)
    return starts.astype(np.uint32 if n_ids < 2**32 else np.int64)


def windows(ids: np.ndarray, starts: np.ndarray, seq_length: int) -> np.ndarray:
    """Materialise windows (len(starts), seq_length + 1) for a batch of starts."""
    return ids[np.asarray(starts, dtype=np.int64)[:, None] + np.arange(seq_length + 1)]


def random_prompts(val_ids: np.ndarray, n: int, length: int, seed: int) -> np.ndarray:
    """n windows of validation text at seeded random places (the same seed, the same prompts)."""
    length = min(length, len(val_ids))
    rng = np.random.default_rng([seed, 7])
    starts = rng.integers(0, len(val_ids) - length + 1, size=n)
    return np.stack([val_ids[s:s + length] for s in starts]).astype(np.int64)


def split(ids_len: int, val_fraction: float) -> int:
    """Index where validation starts: the last val_fraction of the text, by position."""
    return ids_len - int(round(ids_len * val_fraction))


def save_dataset(path, *, vocab, train_ids, val_ids, seq_length, stride, meta=None) -> None:
    """One .npz: vocab (unicode), ids (smallest dtype), window starts, and a JSON meta string."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                vocab=np.array(vocab, dtype="<U1"),
                train_ids=train_ids,
                val_ids=val_ids,
                train_starts=window_starts(len(train_ids), seq_length, stride),
                val_starts=window_starts(len(val_ids), seq_length, stride),
                seq_length=np.int64(seq_length),
                stride=np.int64(stride),
                meta=np.array(json.dumps(meta or {})),
            )


DATASET_KEYS = ("vocab", "train_ids", "val_ids", "train_starts", "val_starts", "seq_length", "stride", "meta")


def load_dataset(path) -> dict:
    """Load a prepared dataset; a missing, truncated or foreign file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise ChargenError(f"{path} does not exist: run the prepare stage first (dvc repro prepare)")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in DATASET_KEYS if k not in z.files]
            if missing:
                raise ChargenError(f"{path} lacks {', '.join(missing)}: re-run prepare (dvc repro -f prepare)")
            d = {k: z[k] for k in DATASET_KEYS}
    except ChargenError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ChargenError(f"{path} is corrupt ({type(exc).__name__}): re-run prepare (dvc repro -f prepare)") from None
    d["vocab"] = [str(c) for c in d["vocab"]]
    d["seq_length"] = int(d["seq_length"])
    d["stride"] = int(d["stride"])
    d["meta"] = json.loads(str(d["meta"]))
    return d
