"""The LSTM in NumPy, one step at a time for a batch of streams, from the trained Keras weights.

It reproduces Keras' LSTM exactly (gates i, f, c, o; sigmoid and tanh); tests check it against
the Keras model. Running the step in NumPy avoids a framework call per character, which is what
makes sampling and stream scoring fast on a CPU.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import ThreadpoolController


def _prescale(kernel, units):
    """Columns scaled so one exp serves all gates: exp(-z) for i, f, o and exp(-2z) for g."""
    scale = np.full(4 * units, -1.0, dtype="float32")
    scale[2 * units:3 * units] = -2.0
    return kernel * scale


_warmed = threading.local()
_BLAS = ThreadpoolController()  # NumPy's BLAS, found once: a limit then costs ~15 us, not a scan


def one_blas_thread():
    """Context manager holding NumPy's BLAS to one thread. A step's products are too small to
    share: split over BLAS threads, every step waits for all of them, which on a busy machine
    means waiting for the scheduler to run each one (`python bench/generate_speed.py --load 2`).
    Enter it around many steps, not in threads that overlap (each exit restores the setting it
    found)."""
    return _BLAS.limit(limits=1, user_api="blas")


def warm_blas():
    """One 64x256 by 256x1024 float32 product, once per thread, before the step's first.

    Measured with NumPy's OpenBLAS (0.3.31) on this project's 2-core AMD EPYC machines
    (`python bench/blas_warmup.py`): in a thread whose first products are small, later products
    of the step's size stay slow for the thread's whole life (16x256 by 256x1024 2.2-2.4x
    slower, 32 rows 1.3-1.5x, a 512-unit layer 1.4-1.5x), until one product of at least this size
    has run in it. The cost is about a millisecond per thread; elsewhere it is merely harmless.
    """
    if not getattr(_warmed, "done", False):
        np.ones((64, 256), "float32") @ np.ones((256, 1024), "float32")
        _warmed.done = True


MIN_STREAMS_PER_THREAD = 16


def stream_groups(streams: int, threads: int | None = None,
                  min_per_thread: int = MIN_STREAMS_PER_THREAD) -> list[slice]:
    """Contiguous groups of streams, one per thread: at most the CPU count, at least
    min_per_thread streams each (below that, thread overhead outweighs the gain)."""
    threads = threads or len(os.sched_getaffinity(0))
    n = max(1, min(threads, streams // min_per_thread))
    bounds = np.linspace(0, streams, n + 1).astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


class StepLSTM:
    """One LSTM step at a time for a batch of streams, from `model.numpy_weights` output.

    Computes Keras' LSTM cell (gates i, f, c, o; sigmoid and tanh) with one exp per step:
    sigmoid(x) = 1 / (1 + exp(-x)) and tanh(x) = 2 * sigmoid(2x) - 1, the signs and factors
    folded into the weights beforehand.
    """

    def __init__(self, weights: dict):
        self.embed = weights["embed"]
        self.dense_w, self.dense_b = weights["dense"]
        self.units = [rk.shape[0] for _, rk, _ in weights["lstm"]]
        self.layers = [(_prescale(k, u), _prescale(rk, u), _prescale(b, u))
                       for (k, rk, b), u in zip(weights["lstm"], self.units)]
        k0, _, b0 = self.layers[0]
        # The first layer's input projection is a row lookup: embed @ kernel + bias, per id.
        self.first_proj = self.embed @ k0 + b0
        self.vocab_size = self.dense_w.shape[1]

    def zero_state(self, batch: int):
        return [(np.zeros((batch, u), "float32"), np.zeros((batch, u), "float32")) for u in self.units]

    def step(self, ids, state):
        """Feed ids (batch,) and return (logits (batch, vocab), new state)."""
        warm_blas()
        new = []
        x = None
        for n, ((kernel, recurrent, bias), (h, c)) in enumerate(zip(self.layers, state)):
            z = self.first_proj[ids] if n == 0 else x @ kernel + bias
            z += h @ recurrent
            with np.errstate(over="ignore"):  # exp overflows to inf for saturated gates: 1/inf = 0
                np.exp(z, out=z)
            z += 1.0
            np.reciprocal(z, out=z)  # sigmoid of every gate; the g block holds sigmoid(2 g)
            u = h.shape[1]
            g = 2.0 * z[:, 2 * u:3 * u] - 1.0
            c = z[:, u:2 * u] * c + z[:, :u] * g
            with np.errstate(over="ignore"):
                h = z[:, 3 * u:] * (2.0 / (1.0 + np.exp(-2.0 * c)) - 1.0)
            new.append((h, c))
            x = h
        return x @ self.dense_w + self.dense_b, new

    def feed(self, ids_2d, state=None):
        """Feed a (batch, T) block of ids step by step; return logits after the last and the state."""
        ids_2d = np.asarray(ids_2d)
        state = state or self.zero_state(ids_2d.shape[0])
        logits = None
        for t in range(ids_2d.shape[1]):
            logits, state = self.step(ids_2d[:, t], state)
        return logits, state

    def stream_loss(self, ids, streams: int = 16) -> tuple[float, int]:
        """Mean cross-entropy (nats) of each char given all text before it, state carried.

        The text is cut into `streams` contiguous pieces scored side by side, so a model pays
        for a cold start `streams` times in the whole text rather than once per window.
        streams=1 is the exact single-stream figure. Returns (loss, chars scored).

        Like sampling.sample_stateful, the streams are scored in contiguous groups, one thread
        per core, with BLAS held to one thread (one_blas_thread): as fast as BLAS's own threads
        on an idle machine, and no step waits on another thread on a busy one. Each stream's
        losses are summed alone first, so the figure does not depend on the grouping.
        """
        ids = np.asarray(ids, dtype=np.int64)
        streams = max(1, min(streams, (len(ids) - 1) // 2))
        L = (len(ids) - 1) // streams
        x = ids[:streams * L].reshape(streams, L)
        y = ids[1:streams * L + 1].reshape(streams, L)
        groups = stream_groups(streams, min_per_thread=4)
        with one_blas_thread(), ThreadPoolExecutor(len(groups)) as pool:
            per_stream = np.concatenate(list(pool.map(lambda g: self._stream_losses(x[g], y[g]), groups)))
        return float(per_stream.sum()) / (streams * L), streams * L

    def _stream_losses(self, x, y) -> np.ndarray:
        """(streams,) summed cross-entropy of y[:, t] given x[:, :t + 1], for each stream."""
        state = self.zero_state(len(x))
        totals = np.zeros(len(x))
        rows = np.arange(len(x))
        for t in range(x.shape[1]):
            logits, state = self.step(x[:, t], state)
            z = logits.astype("float64")
            m = z.max(axis=1)
            totals += m + np.log(np.exp(z - m[:, None]).sum(axis=1)) - z[rows, y[:, t]]
        return totals
