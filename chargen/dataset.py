"""The prepared dataset: vocabulary, ids, windows and the .npz file that holds them (no pickles)."""

from __future__ import annotations

import contextlib
import json
import struct
import types
import zipfile
from pathlib import Path

import numpy as np

from chargen.io import ChargenError, atomic_path


def build_vocab(*texts: str) -> list[str]:
    chars = set()
    for t in texts:
        chars.update(char_set(t))
    return sorted(chars)


def codes(text: str) -> np.ndarray:
    """Unicode code points of `text` (uint8 for ASCII text: 1 byte per char, else uint32)."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def char_set(text: str) -> set[str]:
    """The distinct characters of `text`, counted with NumPy (fast on long texts)."""
    if not text:
        return set()
    present = np.flatnonzero(np.bincount(codes(text)))
    return {chr(int(c)) for c in present}


def id_dtype(vocab_size: int):
    """The smallest unsigned dtype that holds every id."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dt).max + 1:
            return dt
    raise ChargenError(f"vocabulary of {vocab_size} characters is too large")


class Encoder:
    """Text -> ids through a code-point lookup table (built once, reused for every chunk)."""

    def __init__(self, vocab: list[str]):
        self.vocab, self.dtype = vocab, id_dtype(len(vocab))
        cps = np.array([ord(c) for c in vocab], dtype=np.int64)
        self.table = np.full(int(cps.max(initial=0)) + 1, -1, dtype=np.int32)
        self.table[cps] = np.arange(len(vocab))

    def __call__(self, text: str) -> np.ndarray:
        c = codes(text)
        if len(c) and int(c.max()) >= len(self.table):
            ids = np.full(len(c), -1, dtype=np.int32)
            inside = c < len(self.table)
            ids[inside] = self.table[c[inside]]
        else:
            ids = self.table[c]
        if len(ids) and ids.min() < 0:
            missing = sorted(set(text) - set(self.vocab))
            shown = ", ".join(repr(ch) for ch in missing[:5])
            raise ChargenError(
                f"text has {len(missing)} character(s) outside the vocabulary: {shown}; "
                f"use only characters the model was trained on"
            )
        return ids.astype(self.dtype)


def encode(text: str, vocab: list[str]) -> np.ndarray:
    return Encoder(vocab)(text)


def decode(ids, vocab) -> str:
    return "".join(vocab[int(i)] for i in ids)


def n_windows(n_ids: int, seq_length: int, stride: int, offset: int = 0) -> int:
    """How many windows of seq_length inputs plus their next char start at offset, offset + stride, ..."""
    last = n_ids - seq_length - 1 - offset
    return 0 if last < 0 else last // stride + 1


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


# --- the prepared dataset ---------------------------------------------------------------
# One .npz (a zip of .npy members, no pickles). Its members are stored uncompressed, so the
# token-id arrays can be memory-mapped straight out of the file: training reads windows from
# a corpus larger than memory without loading it. Windows are implicit: every `stride` chars
# of train_ids / val_ids, `seq_length` inputs plus the char that follows.

DATASET_KEYS = ("vocab", "train_ids", "val_ids", "seq_length", "stride", "meta")
FORMAT = 2


def _write_member(zf: zipfile.ZipFile, name: str, array) -> None:
    with zf.open(name + ".npy", "w", force_zip64=True) as fh:
        np.lib.format.write_array(fh, np.asanyarray(array), allow_pickle=False)


class _IdsMember:
    """An .npy member of a known length, written chunk by chunk (nothing held in memory)."""

    def __init__(self, zf: zipfile.ZipFile, name: str, length: int, dtype):
        self.fh = zf.open(name + ".npy", "w", force_zip64=True)
        self.left, self.dtype = int(length), np.dtype(dtype)
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": (self.left,)}
        np.lib.format.write_array_header_2_0(self.fh, header)

    def write(self, ids) -> None:
        ids = np.asarray(ids, dtype=self.dtype)
        if len(ids) > self.left:
            raise RuntimeError("more ids than announced")
        self.fh.write(ids.tobytes())
        self.left -= len(ids)

    def check_complete(self) -> None:
        if self.left:
            raise RuntimeError(f"{self.left} ids short of the announced length")


@contextlib.contextmanager
def dataset_writer(path, *, vocab, n_train: int, seq_length: int, stride: int, meta=None):
    """Write a dataset with the train ids streamed in chunks:

        with dataset_writer(path, vocab=..., n_train=N, ...) as w:
            w.train(ids_chunk)   # any number of times, N ids in all
            w.val(ids_chunk)     # validation ids (one book's tail) are gathered and written last

    The file appears (renamed from a temporary) only if the block completes.
    """
    dtype = id_dtype(len(vocab))
    meta = dict(meta or {}, format=FORMAT)
    val_parts = []
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        _write_member(zf, "vocab", np.array(vocab, dtype="<U1"))
        _write_member(zf, "seq_length", np.int64(seq_length))
        _write_member(zf, "stride", np.int64(stride))
        _write_member(zf, "meta", np.array(json.dumps(meta)))
        train = _IdsMember(zf, "train_ids", n_train, dtype)
        try:
            # np.array copies: a slice would keep its whole chunk alive
            yield types.SimpleNamespace(train=train.write, val=lambda ids: val_parts.append(np.array(ids, dtype)))
        finally:
            train.fh.close()  # a zip cannot be closed with a member open (the error would hide the real one)
        train.check_complete()
        _write_member(zf, "val_ids", np.concatenate(val_parts) if val_parts else np.zeros(0, dtype))


def save_dataset(path, *, vocab, train_ids, val_ids, seq_length, stride, meta=None) -> None:
    """Write a dataset from ids already in memory."""
    with dataset_writer(path, vocab=vocab, n_train=len(train_ids), seq_length=seq_length, stride=stride,
                        meta=meta) as w:
        w.train(train_ids)
        w.val(val_ids)


def _memmap_member(path: Path, zf: zipfile.ZipFile, name: str):
    """The .npy member `name` as a read-only memory map into the zip, or None if it is compressed."""
    info = zf.getinfo(name + ".npy")
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if local[:4] != b"PK\x03\x04":
            raise ValueError("bad local header")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        major, _ = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(fh)
        if dtype.hasobject or fortran or len(shape) != 1:
            raise ValueError(f"{name} is not a flat array of ids")
        offset = fh.tell()
    if shape[0] == 0:
        return np.zeros(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def load_dataset(path, mmap: bool = False) -> dict:
    """Load a prepared dataset; a missing, truncated or foreign file is a one-line error.

    With mmap, train_ids and val_ids are read-only memory maps into the file (pages are read
    as windows touch them), so a corpus larger than memory can be trained on.
    """
    path = Path(path)
    if not path.is_file():
        raise ChargenError(f"{path} does not exist: run the prepare stage first (dvc repro prepare)")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in DATASET_KEYS if k not in z.files]
            if missing:
                raise ChargenError(f"{path} lacks {', '.join(missing)}: re-run prepare (dvc repro -f prepare)")
            lazy = {"train_ids", "val_ids"} if mmap else set()
            d = {k: z[k] for k in DATASET_KEYS if k not in lazy}
            for k in lazy:
                d[k] = _memmap_member(path, z.zip, k)
                if d[k] is None:
                    d[k] = z[k]
    except ChargenError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ChargenError(f"{path} is corrupt ({type(exc).__name__}): re-run prepare (dvc repro -f prepare)") from None
    d["vocab"] = [str(c) for c in d["vocab"]]
    d["seq_length"] = int(d["seq_length"])
    d["stride"] = int(d["stride"])
    d["meta"] = json.loads(str(d["meta"]))
    for k in ("train_ids", "val_ids"):
        if d[k].dtype.kind != "u":
            raise ChargenError(f"{path}: {k} is not unsigned ids: re-run prepare (dvc repro -f prepare)")
    return d
