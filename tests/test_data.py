import numpy as np
import pytest

from chargen import dataset
from chargen.io import ChargenError


def test_vocab_encode_decode_roundtrip():
    text = "hello, wörld!\n"
    vocab = dataset.build_vocab(text)
    assert vocab == sorted(set(text))
    ids = dataset.encode(text, vocab)
    assert ids.dtype == np.uint8
    assert dataset.decode(ids, vocab) == text
    with pytest.raises(ChargenError, match="outside the vocabulary: 'z'"):
        dataset.encode("z", vocab)


def test_smallest_dtype():
    assert dataset.id_dtype(256) == np.uint8
    assert dataset.id_dtype(257) == np.uint16
    assert dataset.id_dtype(70000) == np.uint32


def test_windows_cover_the_stream_exactly():
    ids = np.arange(25, dtype=np.uint8)
    starts = np.arange(dataset.n_windows(len(ids), 4, 4)) * 4
    assert starts.tolist() == [0, 4, 8, 12, 16, 20]  # the last window is ids[20:25]
    w = dataset.windows(ids, starts, 4)
    assert w.shape == (6, 5) and w[-1].tolist() == [20, 21, 22, 23, 24]
    assert dataset.n_windows(4, 4, 1) == 0  # shorter than one window plus its target
    assert dataset.n_windows(25, 4, 4) == 6 and dataset.n_windows(25, 4, 4, offset=1) == 5 and dataset.n_windows(5, 4, 1) == 1


def test_split_is_by_position():
    assert dataset.split(1000, 0.1) == 900
    assert dataset.split(1001, 0.25) == 751


def test_dataset_roundtrip_without_pickle(tmp_path):
    vocab = list("abc\n")
    train, val = np.array([0, 1, 2, 3] * 10, np.uint8), np.array([2, 1, 0] * 5, np.uint8)
    path = tmp_path / "ds.npz"
    dataset.save_dataset(path, vocab=vocab, train_ids=train, val_ids=val, seq_length=5, stride=5, meta={"lowercase": True})
    with np.load(path, allow_pickle=False) as z:
        assert z["vocab"].dtype.kind == "U"
    d = dataset.load_dataset(path)
    assert d["vocab"] == vocab and d["seq_length"] == 5 and d["stride"] == 5
    assert d["meta"] == {"lowercase": True, "format": dataset.FORMAT}
    assert (d["train_ids"] == train).all() and d["train_ids"].dtype == np.uint8
    assert not list(tmp_path.glob(".*tmp"))  # the temporary name is gone
    m = dataset.load_dataset(path, mmap=True)  # the ids are mapped from the file, not read into memory
    assert isinstance(m["train_ids"], np.memmap) and str(m["train_ids"].filename) == str(path.resolve())
    assert (m["train_ids"] == train).all() and (m["val_ids"] == val).all()


def test_streamed_writer_and_wide_ids(tmp_path):
    """Train ids written in chunks of any size (uint16 ids for a 300-char vocabulary) map back exactly;
    a writer that fails midway, or is given the wrong count, leaves no file."""
    vocab = [chr(0x100 + i) for i in range(300)]
    ids = np.random.default_rng(0).integers(0, 300, size=10_001).astype(np.uint16)
    path = tmp_path / "wide.npz"
    with dataset.dataset_writer(path, vocab=vocab, n_train=len(ids), seq_length=8, stride=8) as w:
        for part in np.array_split(ids, 7):
            w.train(part)
        w.val(ids[:50])
    m = dataset.load_dataset(path, mmap=True)
    assert m["train_ids"].dtype == np.uint16 and (m["train_ids"] == ids).all() and (m["val_ids"] == ids[:50]).all()
    assert dataset.encode("".join(vocab[i] for i in ids[:20]), vocab).tolist() == ids[:20].tolist()
    with pytest.raises(RuntimeError, match="short"):
        with dataset.dataset_writer(tmp_path / "short.npz", vocab=vocab, n_train=10, seq_length=2, stride=2) as w:
            w.train(ids[:9])
    with pytest.raises(ChargenError, match="outside the vocabulary"):
        with dataset.dataset_writer(tmp_path / "bad.npz", vocab=vocab, n_train=10, seq_length=2, stride=2) as w:
            w.train(dataset.encode("a", vocab))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.npz"]


def test_truncated_or_missing_dataset_is_a_clear_error(tmp_path):
    path = tmp_path / "ds.npz"
    dataset.save_dataset(path, vocab=list("ab"), train_ids=np.zeros(50, np.uint8), val_ids=np.zeros(20, np.uint8),
                   seq_length=3, stride=3)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ChargenError, match="corrupt.*re-run prepare"):
        dataset.load_dataset(path)
    with pytest.raises(ChargenError, match="does not exist"):
        dataset.load_dataset(tmp_path / "none.npz")
