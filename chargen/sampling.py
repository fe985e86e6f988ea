"""Text generation: a NumPy LSTM step (one step per character, state carried, many streams in
one batch), temperature / top-k / top-p sampling, the tutorial's window method, and measures of
sample quality.

The step function reproduces Keras' LSTM exactly (gates i, f, c, o; sigmoid and tanh) from the
trained weights; tests check it against the Keras model. Running the step in NumPy avoids a
framework call per character, which is what makes single-stream sampling fast on a CPU.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits


def _prescale(kernel, units):
    """Columns scaled so one exp serves all gates: exp(-z) for i, f, o and exp(-2z) for g."""
    scale = np.full(4 * units, -1.0, dtype="float32")
    scale[2 * units:3 * units] = -2.0
    return kernel * scale


_warmed = threading.local()


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

        The text is cut into `streams` contiguous pieces scored side by side as one batch, so a
        model pays for a cold start `streams` times in the whole text rather than once per
        window. streams=1 is the exact single-stream figure. Returns (loss, chars scored).
        """
        ids = np.asarray(ids, dtype=np.int64)
        streams = max(1, min(streams, (len(ids) - 1) // 2))
        L = (len(ids) - 1) // streams
        x = ids[:streams * L].reshape(streams, L)
        y = ids[1:streams * L + 1].reshape(streams, L)
        state = self.zero_state(streams)
        total = 0.0
        rows = np.arange(streams)
        for t in range(L):
            logits, state = self.step(x[:, t], state)
            z = logits.astype("float64")
            m = z.max(axis=1)
            lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
            total += float((lse - z[rows, y[:, t]]).sum())
        return total / (streams * L), streams * L


def probabilities(logits, temperature: float, top_k: int = 0, top_p: float = 1.0) -> np.ndarray:
    """Next-char distributions (batch, vocab) after temperature, top-k and top-p filtering.

    Temperature 0 is argmax: all mass on the most likely character.
    """
    logits = np.asarray(logits, dtype="float64")
    if temperature <= 0:
        p = np.zeros_like(logits)
        p[np.arange(len(logits)), logits.argmax(axis=1)] = 1.0
        return p
    z = logits / temperature
    if top_k and top_k < z.shape[1]:
        kth = np.partition(z, -top_k, axis=1)[:, -top_k][:, None]
        z = np.where(z >= kth, z, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-p, axis=1)
        sorted_p = np.take_along_axis(p, order, axis=1)
        # Keep the smallest set of most likely characters whose mass reaches top_p.
        keep_sorted = np.cumsum(sorted_p, axis=1) - sorted_p < top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=1, keepdims=True)
    return p


def stream_rngs(seed: int, n: int) -> list:
    """One generator per stream: stream i is seeded with seed + i, so it can be re-made alone."""
    return [np.random.default_rng(seed + i) for i in range(n)]


def uniforms(seed: int, streams: int, length: int) -> np.ndarray:
    """(length, streams) uniform draws; column i is stream i's generator (seed + i) in order."""
    return np.stack([r.random(length) for r in stream_rngs(seed, streams)], axis=1)


def draw(p, u) -> np.ndarray:
    """One sample per row of a (batch, vocab) probability matrix, given one uniform per row."""
    idx = (np.cumsum(p, axis=1) < np.asarray(u)[:, None]).sum(axis=1)
    return np.minimum(idx, p.shape[1] - 1)


MIN_STREAMS_PER_THREAD = 16


def stream_groups(streams: int, threads: int | None = None) -> list[slice]:
    """Contiguous groups of streams, one per thread: at most the CPU count, at least
    MIN_STREAMS_PER_THREAD streams each (below that, thread overhead outweighs the gain)."""
    threads = threads or len(os.sched_getaffinity(0))
    n = max(1, min(threads, streams // MIN_STREAMS_PER_THREAD))
    bounds = np.linspace(0, streams, n + 1).astype(int)
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _sample_group(step: StepLSTM, prompts, u, temperature, top_k, top_p) -> np.ndarray:
    logits, state = step.feed(prompts)
    out = np.empty((len(prompts), len(u)), dtype=np.int64)
    for t in range(len(u)):
        nxt = draw(probabilities(logits, temperature, top_k, top_p), u[t])
        out[:, t] = nxt
        if t + 1 < len(u):
            logits, state = step.step(nxt, state)
    return out


def sample_stateful(step: StepLSTM, prompts, length: int, *, temperature: float, top_k: int = 0,
                    top_p: float = 1.0, seed: int = 0, threads: int | None = None) -> np.ndarray:
    """Generate `length` ids after each prompt (a (batch, T) id array), one LSTM step per char.

    Streams never interact, so a large batch is cut into contiguous groups sampled side by side
    in threads, one per core (NumPy releases the GIL inside its array operations); meanwhile
    the BLAS library is held to one thread, so each group's matrix product runs on its own core
    instead of every product being spread thinly over all of them. Stream i always draws from
    its own generator (seed + i), and the samples do not depend on the grouping (tested).
    """
    prompts = np.asarray(prompts)
    u = uniforms(seed, len(prompts), length)
    groups = stream_groups(len(prompts), threads)
    if len(groups) == 1:
        return _sample_group(step, prompts, u, temperature, top_k, top_p)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(len(groups)) as pool:
        parts = pool.map(lambda g: _sample_group(step, prompts[g], u[:, g], temperature, top_k, top_p), groups)
        return np.concatenate(list(parts))


def sample_window(model, prompts, length: int, seq_length: int, *, temperature: float,
                  top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> np.ndarray:
    """The tutorial's way: re-feed the last seq_length chars through the Keras model per new char."""
    u = uniforms(seed, len(prompts), length)
    ctx = np.asarray(prompts, dtype=np.int64)
    out = np.empty((len(ctx), length), dtype=np.int64)
    for t in range(length):
        logits = np.asarray(model.predict_on_batch(ctx[:, -seq_length:].astype("int32")))
        if logits.ndim == 3:
            logits = logits[:, -1]
        nxt = draw(probabilities(logits, temperature, top_k, top_p), u[t])
        out[:, t] = nxt
        ctx = np.concatenate([ctx, nxt[:, None]], axis=1)
    return out


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t


# --- measuring samples ------------------------------------------------------------------------

def _longest(found, text: str) -> int:
    """Longest L such that some text[i:i+L] satisfies found(i, sub); linear in checks."""
    best, i = 0, 0
    while i + best < len(text):
        sub = text[i:i + best + 1]
        if found(i, sub):
            best += 1
        else:
            i += 1
    return best


def longest_repeat(text: str) -> int:
    """Length of the longest substring that occurs at least twice in text (loops)."""
    return _longest(lambda i, sub: text.find(sub, i + 1) != -1, text)


def longest_copy(text: str, source: str) -> int:
    """Length of the longest span of text found verbatim in source (memorisation)."""
    return _longest(lambda i, sub: sub in source, text)


def words(text: str) -> list[str]:
    import re
    return re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text.lower())


def distinct_ngrams(tokens, n: int) -> float:
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def quality(samples: list[str], train_text: str, train_words: set | None = None) -> dict:
    """Mean word validity and n-gram diversity, worst loop and worst copy over the samples."""
    train_words = train_words if train_words is not None else set(words(train_text))
    valid, total, d2, d3 = 0, 0, [], []
    for s in samples:
        w = words(s)
        valid += sum(1 for x in w if x in train_words)
        total += len(w)
        d2.append(distinct_ngrams(w, 2))
        d3.append(distinct_ngrams(w, 3))
    return {
        "real_word_share": round(valid / total, 4) if total else 0.0,
        "distinct_2": round(float(np.mean(d2)), 4),
        "distinct_3": round(float(np.mean(d3)), 4),
        "longest_repeat": max(longest_repeat(s) for s in samples),
        "longest_copy": max(longest_copy(s, train_text) for s in samples),
    }
