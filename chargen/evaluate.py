"""Held-out bits per character of the model, beside classic compressors on the same split
(metrics/eval.json: every figure is in bits per validation character).

A compressor's figure is conditional: bits(train + validation) - bits(train), divided by the
number of validation characters, so it too may learn from the training text first. The model
reads the validation text as one continuous stream with its state carried, so it is not
charged for a cold start every window; optionally also with dynamic evaluation (it adapts its
weights to the text already read, as the compressors adapt their statistics).
"""

from __future__ import annotations

import bz2
import lzma
import zlib

import numpy as np
import pyppmd

from chargen.numpy_lstm import one_blas_thread
from chargen.sampling import probabilities


def _ppmd(order: int):
    return lambda b: pyppmd.compress(b, max_order=order, mem_size=256 << 20, variant="H")


COMPRESSORS = {
    "gzip": lambda b: zlib.compress(b, 9),
    "bzip2": lambda b: bz2.compress(b, 9),
    "xz": lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME),
    "ppmd6": _ppmd(6),
    "ppmd16": _ppmd(16),
}


def conditional_bpc(compress, train_text: str, val_text: str) -> float:
    a = train_text.encode("utf-8")
    ab = (train_text + val_text).encode("utf-8")
    return 8 * (len(compress(ab)) - len(compress(a))) / len(val_text)


def compressor_bpc(train_text: str, val_text: str) -> dict:
    return {name: round(conditional_bpc(fn, train_text, val_text), 4) for name, fn in COMPRESSORS.items()}


def bits_per_char(probs, targets) -> float:
    """Mean -log2 of the probability each row of probs gives its target."""
    targets = np.asarray(targets)
    return float(-np.log2(np.maximum(probs[np.arange(len(targets)), targets], 1e-300)).mean())


def model_probs(step, val_ids, tick=None) -> np.ndarray:
    """(len(val_ids) - 1, vocab): the model's prediction of each next validation char, reading
    the validation text as one stream with its state carried. tick(chars done), if given, is
    called after each char (for progress lines)."""
    ids = np.asarray(val_ids, dtype=np.int64)
    state = step.zero_state(1)
    out = np.empty((len(ids) - 1, step.vocab_size))
    with one_blas_thread():  # small products: one BLAS thread is faster, and never waits
        for t in range(len(ids) - 1):
            logits, state = step.step(ids[t:t + 1], state)
            out[t] = probabilities(logits, 1.0)[0]
            if tick:
                tick(t + 1)
    return out


def model_bpc(step, val_ids) -> tuple[float, int]:
    """(bits per char, chars scored) of the model over the validation text as one stream."""
    probs = model_probs(step, val_ids)
    return bits_per_char(probs, np.asarray(val_ids)[1:]), len(probs)


def dynamic_probs(model, val_ids, lr: float, segment: int, tick=None) -> np.ndarray:
    """(len(val_ids) - 1, vocab) predictions with dynamic evaluation: the model keeps learning
    as it reads.

    The validation text is read once, in order, as one stream in segments of `segment`
    characters: each segment is predicted with the current weights and state, and only then is
    one SGD step taken on it (from the same state), so no character is ever predicted by
    weights that have seen it. This is what an adaptive compressor such as PPMd does with the
    text it has already coded. The model copy has no dropout and carries its state across
    segments; the trained model is not changed. tick(segments done), if given, is called after
    each segment (for progress lines).
    """
    from chargen.model import stateful_copy
    from chargen.quiet import keras

    m = stateful_copy(model)
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=lr),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    states = [v for layer in m.layers if isinstance(layer, keras.layers.LSTM) for v in layer.states]
    ids = np.asarray(val_ids, dtype="int32")
    n = len(ids) - 1
    out = np.empty((n, m.output_shape[-1]))
    for s in range(0, n, segment):
        e = min(s + segment, n)
        before = [np.asarray(v) for v in states]
        out[s:e] = probabilities(np.asarray(m.predict_on_batch(ids[None, s:e]))[0], 1.0)
        for v, value in zip(states, before):  # predicting moved the state on: train from where it was
            v.assign(value)
        m.train_on_batch(ids[None, s:e], ids[None, s + 1:e + 1])
        if tick:
            tick(s // segment + 1)
    return out


def dynamic_bpc(model, val_ids, lr: float, segment: int) -> tuple[float, int]:
    """(bits per char, chars scored) with dynamic evaluation (see dynamic_probs)."""
    probs = dynamic_probs(model, val_ids, lr, segment)
    return bits_per_char(probs, np.asarray(val_ids)[1:]), len(probs)
