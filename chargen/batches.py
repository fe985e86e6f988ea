"""Training batches: windows (inputs, targets) cut from the prepared token ids, shuffled per pass
by a seeded, recomputed order, so a corpus larger than memory needs no stored permutation."""

from __future__ import annotations

import math

import numpy as np

from chargen.dataset import n_windows, windows
from chargen.quiet import keras


def feed_without_autotune() -> None:
    """Have Keras feed these batches to TensorFlow without tf.data's autotuning.

    On TensorFlow, Keras wraps a PyDataset in tf.data with an autotuned prefetch and makes a new
    iterator every epoch. Dropping the last epoch's iterator waits for the autotuner's thread,
    which sleeps for longer and longer periods as a run goes on: on a 2-core AMD EPYC, Moby Dick
    epochs of 45 s took 80, the first batch of each waiting 30 to 35 s (Alice: from epoch 16 on).
    A batch is cut in microseconds, so autotuning gains nothing here. Other backends do not use
    tf.data; a Keras without this adapter is left alone.
    """
    if keras.config.backend() != "tensorflow":
        return
    try:
        from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter
    except ImportError:
        return
    if getattr(PyDatasetAdapter.get_tf_dataset, "chargen_no_autotune", False):
        return
    make = PyDatasetAdapter.get_tf_dataset

    def get_tf_dataset(self):
        import tensorflow as tf

        options = tf.data.Options()
        options.autotune.enabled = False
        return make(self).with_options(options)

    get_tf_dataset.chargen_no_autotune = True
    PyDatasetAdapter.get_tf_dataset = get_tf_dataset


class _Passes(keras.utils.PyDataset):
    """An epoch is one pass over the text, or, when `steps` is fewer batches than a pass, that
    many batches continuing through the passes: `steps` caps an epoch, so a longer text makes
    each epoch cover less of it rather than last longer. Epoch e always holds the same batches,
    so a resumed run sees what an uninterrupted one saw. Subclasses set `per_pass` and `steps`,
    then call set_epoch(0)."""

    def set_epoch(self, epoch: int) -> None:
        if self.steps >= self.per_pass:  # a pass fits within the cap: an epoch is one pass
            self.steps = 0
        self.epoch = epoch

    def __len__(self):
        return self.steps or self.per_pass

    def _pass_and_batch(self, i: int) -> tuple[int, int]:
        """(pass, batch within the pass) of batch i of the current epoch."""
        if not self.steps:
            return self.epoch, i
        g = self.epoch * self.steps + i
        return g // self.per_pass, g % self.per_pass


class Batches(_Passes):
    """Batches of windows (inputs, targets) read from a token stream (an array or a memory map).

    Windows start every `stride` chars. Without a seed (validation) they come in order. With
    one, each pass over the text is a seeded shuffle that is recomputed, never stored: the
    windows are cut into blocks of BLOCK, the blocks are visited in a random order and each
    block's windows in a random order, and with `shift` every window of the pass moves by a
    random offset below the stride (the text is cut at different places each pass). Memory is
    O(BLOCK) whatever the size of the corpus; a text of fewer than BLOCK windows (32 M chars at
    stride 32, so every Gutenberg book) gets a full shuffle.

    With `steps`, huge corpora get a checkpoint every `steps` batches (see _Passes).
    """

    BLOCK = 1 << 20

    def __init__(self, ids, stride, seq_length, batch_size, objective, seed=None, shift=0, steps=0):
        super().__init__()
        self.ids, self.stride, self.seq_length = ids, int(stride), int(seq_length)
        self.batch_size, self.objective, self.seed = int(batch_size), objective, seed
        self.shift, self.steps = int(shift), int(steps)
        self.n = n_windows(len(ids), self.seq_length, self.stride)
        self.per_pass = max(1, math.ceil(self.n / self.batch_size))
        self._pass = self._block = (None, None)
        self.set_epoch(0)

    def _pass_plan(self, p: int):
        """(offset, windows in the pass, order): order is None (in text order), one permutation,
        or (block order, block sizes, where each block starts in the pass)."""
        if self._pass[0] != p:
            offset, n, order = 0, self.n, None
            if self.seed is not None:
                rng = np.random.default_rng([self.seed, p])
                if self.shift > 1:
                    offset = int(rng.integers(self.shift))
                    n = n_windows(len(self.ids), self.seq_length, self.stride, offset)
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
        p, b = self._pass_and_batch(i)
        idx = self._window_indices(p, b * self.batch_size, (b + 1) * self.batch_size)
        offset = self._pass_plan(p)[0]
        return offset + idx.astype(np.int64) * self.stride

    def __getitem__(self, i):
        w = windows(self.ids, self.starts(i), self.seq_length).astype("int32")
        x = w[:, :-1]
        y = w[:, 1:] if self.objective == "sequence" else w[:, -1]
        return x, y


class Streams(_Passes):
    """Batches for training with the LSTM state carried over (truncated backpropagation through
    time, as char-rnn trains): row r of every batch is the next `seq_length` chars of row r's
    text, so each batch continues the one before it and the model, made stateful, learns across
    window edges.

    With `chunk` 0 the text is cut into `batch_size` contiguous streams, read in the same order
    every pass. With `chunk` N the text is cut into chunks of N windows, and each pass gives the
    rows the chunks in a seeded random order: a row reads its chunk for N batches, then all rows
    move to new chunks together and the state is zeroed (`chunk_starts`). Each batch then mixes
    places from all over the text, drawn anew every pass, while most windows still start from
    the state of the text before them.

    With a seed, each pass starts at a random offset below seq_length, so the windows are cut at
    different places each pass. The state is reset at every epoch start (see
    chargen.callbacks.ResetStates), so a resumed run sees exactly what an uninterrupted one saw.
    """

    def __init__(self, ids, seq_length, batch_size, seed=None, steps=0, chunk=0):
        super().__init__()
        self.ids, self.seq_length, self.batch_size = ids, int(seq_length), int(batch_size)
        self.seed, self.steps, self.chunk = seed, int(steps), int(chunk)
        if self.chunk:
            # Chunks of every pass fit whatever its offset (below seq_length); the last group of
            # rows is completed with chunks from the start of the pass's order.
            self.n_chunks = max(0, (len(ids) - self.seq_length - 1) // (self.chunk * self.seq_length))
            self.per_pass = math.ceil(self.n_chunks / self.batch_size) * self.chunk
        else:
            self.stream_length = (len(ids) - self.seq_length) // self.batch_size
            self.per_pass = max(0, (self.stream_length - 1) // self.seq_length)
        self.n = self.per_pass * self.batch_size  # windows per pass
        self._order = (None, None)
        self.set_epoch(0)

    def _offset_and_order(self, p: int):
        if self._order[0] != p:
            offset, order = 0, None
            if self.seed is not None:
                rng = np.random.default_rng([self.seed, p])
                offset = int(rng.integers(self.seq_length))
                if self.chunk:
                    order = rng.permutation(self.n_chunks)
            if self.chunk and order is None:
                order = np.arange(self.n_chunks)
            self._order = (p, (offset, order))
        return self._order[1]

    def chunk_starts(self, i: int) -> bool:
        """Whether batch i of the current epoch starts new chunks (the state must be zeroed)."""
        return bool(self.chunk) and self._pass_and_batch(i)[1] % self.chunk == 0

    def starts(self, i: int) -> np.ndarray:
        """Text offsets of the rows of batch i of the current epoch."""
        p, b = self._pass_and_batch(i)
        offset, order = self._offset_and_order(p)
        if self.chunk:
            group, k = divmod(b, self.chunk)
            rows = order[(group * self.batch_size + np.arange(self.batch_size)) % self.n_chunks]
            return offset + (rows.astype(np.int64) * self.chunk + k) * self.seq_length
        rows = np.arange(self.batch_size, dtype=np.int64) * self.stream_length
        return offset + rows + b * self.seq_length

    def __getitem__(self, i):
        w = windows(self.ids, self.starts(i), self.seq_length).astype("int32")
        return w[:, :-1], w[:, 1:]
