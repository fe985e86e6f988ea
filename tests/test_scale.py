"""Corpora bigger than memory: the batch order is computed, not stored, and prepare + train run
under a hard cap on private memory that is smaller than the corpus."""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys

import numpy as np
import pytest

from chargen.batches import Batches, Streams
from conftest import WORDS, env_with_venv, set_params, stage

# Raise RLIMIT_DATA (private writable memory: heap, anonymous maps) to what the process already
# uses plus CAP, after its imports, then run a stage. Read-only file maps do not count.
CAPPED = r"""
import re, resource, runpy, sys
cap, module = int(sys.argv[1]), sys.argv[2]
if module == "stages.train":
    import chargen.train  # TensorFlow and Keras are loaded before the cap is set
def vmdata():
    return int(re.search(r"VmData:\s+(\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
resource.setrlimit(resource.RLIMIT_DATA, (vmdata() + cap, resource.RLIM_INFINITY))
if len(sys.argv) > 3:  # the control: materialise a file of this size in memory under the same cap
    open(sys.argv[3], "rb").read()
sys.argv = [module]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""

MB = 1 << 20


def all_starts(b: Batches, epoch: int) -> list[np.ndarray]:
    b.set_epoch(epoch)
    return [b.starts(i) for i in range(len(b))]


@pytest.mark.parametrize("block", [Batches.BLOCK, 7])
def test_every_window_once_per_pass(block):
    """A pass visits each window exactly once, whether the shuffle is one block or many; each
    pass cuts the text at its own offset; the same seed gives the same order."""
    ids = np.zeros(10_000, np.uint8)
    b = Batches(ids, 10, 10, 16, "sequence", seed=3, shift=10)
    b.BLOCK = block
    orders = []
    for epoch in range(3):
        starts = np.concatenate(all_starts(b, epoch))
        offset = int(starts[0] % 10)
        assert (starts % 10 == offset).all()
        grid = np.arange(offset, len(ids) - 10, 10)
        assert len(starts) >= len(grid) and sorted(set(starts.tolist())) == grid.tolist()
        assert not (np.diff(starts) > 0).all()  # shuffled
        orders.append(starts)
    assert not all(np.array_equal(orders[0][:50], o[:50]) for o in orders[1:])
    again = Batches(ids, 10, 10, 16, "sequence", seed=3, shift=10)
    again.BLOCK = block
    assert np.array_equal(np.concatenate(all_starts(again, 1)), orders[1])


def test_steps_per_epoch_continue_through_the_text():
    """With steps_per_epoch, epochs are consecutive slices of the same sequence of passes that
    epochs of one pass would make: nothing is skipped or repeated by a short epoch."""
    ids = np.zeros(1_000, np.uint8)
    whole = Batches(ids, 10, 10, 8, "sequence", seed=5, shift=10)
    passes = [s for p in range(3) for s in all_starts(whole, p)]  # 13 batches per pass
    short = Batches(ids, 10, 10, 8, "sequence", seed=5, shift=10, steps=4)
    stepped = [s for e in range(9) for s in all_starts(short, e)]
    assert len(short) == 4 and len(whole) == 13
    assert all(np.array_equal(a, b) for a, b in zip(stepped, passes[:36]))


def test_steps_per_epoch_caps_an_epoch_at_one_pass():
    """A cap of a pass or more is one pass per epoch: a short text costs no more than a pass."""
    ids = np.zeros(1_000, np.uint8)
    whole = Batches(ids, 10, 10, 8, "sequence", seed=5, shift=10)
    capped = Batches(ids, 10, 10, 8, "sequence", seed=5, shift=10, steps=100)
    assert len(capped) == len(whole) == 13
    for e in range(3):
        whole.set_epoch(e)
        assert all(np.array_equal(a, b) for a, b in zip(all_starts(capped, e), all_starts(whole, e)))
    assert len(Streams(np.arange(1_000), 10, 4, seed=5, steps=100)) == 24


def test_validation_batches_are_in_order():
    b = Batches(np.arange(100, dtype=np.uint8), 5, 5, 4, "sequence")
    starts = np.concatenate(all_starts(b, 0))
    assert starts.tolist() == list(range(0, 95, 5))
    x, y = b[0]
    assert x[1].tolist() == [5, 6, 7, 8, 9] and y[1].tolist() == [6, 7, 8, 9, 10]


def test_streams_continue_row_by_row_and_cover_the_text():
    """Row r of each batch is the text right after row r of the batch before (so the carried
    LSTM state is the state of the text before it); the rows are disjoint streams that together
    cover the text; each pass starts at its own seeded offset below seq_length."""
    ids = np.arange(1_000, dtype=np.int32)
    b = Streams(ids, 10, 4, seed=5)
    assert b.stream_length == 247 and len(b) == b.per_pass == 24
    offsets = set()
    for epoch in range(4):
        starts = np.stack(all_starts(b, epoch))  # (batches, rows)
        assert (np.diff(starts, axis=0) == 10).all() and (np.diff(starts[0]) == b.stream_length).all()
        offsets.add(int(starts[0, 0]))
        x, y = b[len(b) - 1]
        assert x.shape == y.shape == (4, 10) and (y[:, :-1] == x[:, 1:]).all() and y.max() < len(ids)
        read = np.concatenate([b[i][0].ravel() for i in range(len(b))])
        assert len(set(read.tolist())) == len(read) > 0.9 * len(ids)  # no char read twice, few left out
    assert len(offsets) > 1 and offsets <= set(range(10))
    again = Streams(ids, 10, 4, seed=5)
    assert np.array_equal(np.stack(all_starts(again, 2)), np.stack(all_starts(b, 2)))
    # steps_per_epoch: epochs continue through the same passes.
    short = Streams(ids, 10, 4, seed=5, steps=5)
    stepped = [s for e in range(10) for s in all_starts(short, e)]
    passes = [s for p in range(3) for s in all_starts(b, p)]
    assert all(np.array_equal(a, c) for a, c in zip(stepped, passes[:50]))


def test_stream_chunks_are_dealt_anew_each_pass_and_read_through():
    """train.stream_chunk: each row reads one chunk of N consecutive windows, then every row
    moves to a new chunk together (the batch that must zero the state); each pass deals the
    chunks in its own seeded order and reads every chunk once (the last group of rows topped up
    from the pass's first chunks)."""
    ids = np.arange(1_000, dtype=np.int32)
    b = Streams(ids, 10, 4, seed=5, chunk=3)
    assert b.n_chunks == 32 and len(b) == b.per_pass == 24
    orders = []
    for epoch in range(3):
        starts = np.stack(all_starts(b, epoch))  # (batches, rows)
        assert [b.chunk_starts(i) for i in range(6)] == [True, False, False, True, False, False]
        assert (np.diff(starts.reshape(8, 3, 4), axis=1) == 10).all()  # within a chunk: the next window
        firsts = starts[::3].ravel()
        offset = int(firsts.min() % 30)
        assert ((firsts - offset) % 30 == 0).all() and offset < 10
        chunks = (firsts - offset) // 30
        assert set(chunks.tolist()) == set(range(32))  # every chunk read in the pass
        orders.append(chunks[:32].tolist())
        x, y = b[len(b) - 1]
        assert (y[:, :-1] == x[:, 1:]).all() and y.max() < len(ids)
    assert orders[0] != orders[1] != orders[2]
    assert not Streams(ids, 10, 4, seed=5).chunk_starts(0)  # whole streams: only the epoch start


def write_corpus(path, n_bytes: int) -> None:
    """Random words, 8 different blocks of ~4 MB written in a seeded random order."""
    rng = np.random.default_rng(0)
    blocks = []
    for _ in range(8):
        words = np.array(WORDS)[rng.integers(len(WORDS), size=700_000)].tolist()
        breaks = np.where(rng.random(len(words)) < 0.1, "\n", " ").tolist()
        blocks.append("".join(w + b for w, b in zip(words, breaks)).encode("ascii"))
    with open(path, "wb") as fh:
        while fh.tell() < n_bytes:
            fh.write(blocks[rng.integers(len(blocks))])


def small_thread_stacks():
    # Every thread's stack is reserved private memory, so it counts against RLIMIT_DATA although
    # almost none of it is touched: TensorFlow's ~20 threads would reserve 8 MB each by default.
    # glibc sizes new threads' stacks from RLIMIT_STACK at start-up.
    resource.setrlimit(resource.RLIMIT_STACK, (MB, resource.getrlimit(resource.RLIMIT_STACK)[1]))


def capped(project, cap: int, module: str, control=None) -> subprocess.CompletedProcess:
    args = [sys.executable, "-c", CAPPED, str(cap), module] + ([str(control)] if control else [])
    return subprocess.run(args, cwd=project, capture_output=True, text=True, env=env_with_venv(), timeout=900,
                          preexec_fn=small_thread_stacks)


def test_corpus_larger_than_the_memory_cap_trains(project, tmp_path):
    """A 384 MiB text is prepared and trained on while each process may add at most 160 MiB of
    private memory; the same cap is shown to be real (reading the file into memory fails)."""
    cap, size = 160 * MB, 384 * MB
    corpus = tmp_path / "big.txt"
    write_corpus(corpus, size)
    set_params(project, **{"download.text": str(corpus), "download.max_bytes": 2 * size,
                           "prepare.val_fraction": 0.002, "train.steps_per_epoch": 20, "train.epochs": 2,
                           "train.batch_size": 64})
    assert stage(project, "download").returncode == 0  # a plain copy (DVC would also cache it)
    control = capped(project, cap, "stages.prepare", control=corpus)
    assert control.returncode != 0 and "MemoryError" in control.stderr  # the cap holds

    res = capped(project, cap, "stages.prepare")
    assert res.returncode == 0, res.stderr
    meta = json.loads((project / "metrics/prepare.json").read_text())
    assert meta["train_chars"] + meta["val_chars"] >= size * 0.99
    dataset = project / "data/prepared/dataset.npz"
    assert dataset.stat().st_size > size  # the ids are stored, one byte per char, uncompressed

    res = capped(project, cap, "stages.train")
    assert res.returncode == 0, res.stderr[-2000:]
    history = (project / "metrics/train_history.csv").read_text().splitlines()
    assert len(history) == 3  # header + 2 epochs of 20 steps
    summary = json.loads((project / "metrics/train.json").read_text())
    assert summary["best_val_bpc"] < math.log2(meta["vocab_size"]) - 0.25  # better than uniform guessing
