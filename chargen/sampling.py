"""Sampling: temperature / top-k / top-p distributions, one seeded generator per stream, stateful
generation (one LSTM step per character, many streams in thread groups) and the tutorial's
window method."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from chargen.numpy_lstm import one_blas_thread, stream_groups


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


def _sample_group(step, prompts, u, temperature, top_k, top_p) -> np.ndarray:
    logits, state = step.feed(prompts)
    out = np.empty((len(prompts), len(u)), dtype=np.int64)
    for t in range(len(u)):
        nxt = draw(probabilities(logits, temperature, top_k, top_p), u[t])
        out[:, t] = nxt
        if t + 1 < len(u):
            logits, state = step.step(nxt, state)
    return out


def sample_stateful(step, prompts, length: int, *, temperature: float, top_k: int = 0,
                    top_p: float = 1.0, seed: int = 0, threads: int | None = None) -> np.ndarray:
    """Generate `length` ids after each prompt (a (batch, T) id array), one LSTM step per char.

    Streams never interact, so a large batch is cut into contiguous groups sampled side by side
    in threads, one per core (NumPy releases the GIL inside its array operations). BLAS is held
    to one thread throughout (numpy_lstm.one_blas_thread), so each group's matrix product runs
    on its own core, and one stream's steps never wait on BLAS threads. Stream i always draws
    from its own generator (seed + i), and the samples do not depend on the grouping (tested).
    """
    prompts = np.asarray(prompts)
    u = uniforms(seed, len(prompts), length)
    groups = stream_groups(len(prompts), threads)
    with one_blas_thread():
        if len(groups) == 1:
            return _sample_group(step, prompts, u, temperature, top_k, top_p)
        with ThreadPoolExecutor(len(groups)) as pool:
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
