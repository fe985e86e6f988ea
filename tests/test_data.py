import numpy as np
import pytest

from chargen import data as D
from chargen.io import ChargenError


def test_vocab_encode_decode_roundtrip():
    text = "hello, wörld!\n"
    vocab = D.build_vocab(text)
    assert vocab == sorted(set(text))
    ids = D.encode(text, vocab)
    assert ids.dtype == np.uint8
    assert D.decode(ids, vocab) == text
    with pytest.raises(ChargenError, match="outside the vocabulary: 'z'"):
        D.encode("z", vocab)


def test_smallest_dtype():
    assert D.id_dtype(256) == np.uint8
    assert D.id_dtype(257) == np.uint16
    assert D.id_dtype(70000) == np.uint32


def test_windows_cover_the_stream_exactly():
    ids = np.arange(25, dtype=np.uint8)
    starts = D.window_starts(len(ids), 4, 4)
    assert starts.tolist() == [0, 4, 8, 12, 16, 20]  # the last window is ids[20:25]
    w = D.windows(ids, starts, 4)
    assert w.shape == (6, 5) and w[-1].tolist() == [20, 21, 22, 23, 24]
    assert len(D.window_starts(4, 4, 1)) == 0  # shorter than one window plus its target


def test_split_is_by_position():
    assert D.split(1000, 0.1) == 900
    assert D.split(1001, 0.25) == 751


def test_dataset_roundtrip_without_pickle(tmp_path):
    vocab = list("abc\n")
    train, val = np.array([0, 1, 2, 3] * 10, np.uint8), np.array([2, 1, 0] * 5, np.uint8)
    path = tmp_path / "ds.npz"
    D.save_dataset(path, vocab=vocab, train_ids=train, val_ids=val, seq_length=5, stride=5, meta={"lowercase": True})
    with np.load(path, allow_pickle=False) as z:
        assert z["vocab"].dtype.kind == "U"
    d = D.load_dataset(path)
    assert d["vocab"] == vocab and d["seq_length"] == 5 and d["meta"] == {"lowercase": True}
    assert (d["train_ids"] == train).all() and d["train_ids"].dtype == np.uint8
    assert d["train_starts"].tolist() == [0, 5, 10, 15, 20, 25, 30]
    assert not list(tmp_path.glob(".*tmp"))  # the temporary name is gone


def test_truncated_or_missing_dataset_is_a_clear_error(tmp_path):
    path = tmp_path / "ds.npz"
    D.save_dataset(path, vocab=list("ab"), train_ids=np.zeros(50, np.uint8), val_ids=np.zeros(20, np.uint8),
                   seq_length=3, stride=3)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ChargenError, match="corrupt.*re-run prepare"):
        D.load_dataset(path)
    with pytest.raises(ChargenError, match="does not exist"):
        D.load_dataset(tmp_path / "none.npz")
