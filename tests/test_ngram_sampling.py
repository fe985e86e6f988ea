"""The vectorised n-gram step samples what the per-stream one it replaced sampled.

`ReferenceNgramStep` below is the earlier implementation, kept as the reference: one Python
dictionary of count vectors per stream and order, and one training-count lookup per order.
"""

import numpy as np
import pytest

from chargen import ngram, sampling
from chargen.model import numpy_weights
from chargen.numpy_lstm import StepLSTM

_M, _MASK = int(ngram._MULT), (1 << 64) - 1


class ReferenceNgramStep:
    """State per stream: [last `order` chars, {context hash: count vector} per order, the
    current contexts' hashes], all in plain Python."""

    def __init__(self, known):
        self.known, self.order, self.vocab_size = known, known.order, known.vocab_size

    def start(self, batch):
        tail = [int(x) for x in self.known.tail]
        return [[list(tail), [{} for _ in range(self.order + 1)], self._hashes(tail)] for _ in range(batch)]

    def _hashes(self, history):
        out, h = [0], 0
        for k in range(1, self.order + 1):
            h = (h * _M + (history[-k] + 1 if k <= len(history) else 0)) & _MASK
            out.append(h)
        return out

    def predict(self, state):
        hashes = np.array([stream[2] for stream in state], dtype=np.uint64)
        p = np.full((len(state), self.vocab_size), 1.0 / self.vocab_size)
        for k in range(self.order + 1):
            counts = self.known.counts(k, hashes[:, k])
            for row, (_, own, current) in enumerate(state):
                if current[k] in own[k]:
                    counts[row] += own[k][current[k]]
            p = ngram.witten_bell(p, counts)
        return p

    def update(self, state, ids):
        for stream, x in zip(state, np.asarray(ids).tolist()):
            history, own, current = stream
            for k in range(min(len(history), self.order) + 1):
                own[k].setdefault(current[k], np.zeros(self.vocab_size))[x] += 1
            history.append(x)
            del history[:-self.order or len(history)]
            stream[2] = self._hashes(history)
        return state


def reference_mixed(lstm, known, weight):
    mixed = ngram.MixedStep(lstm, known, weight)
    mixed.ngram = ReferenceNgramStep(known)
    return mixed


@pytest.fixture(scope="module")
def lstm():
    from test_sampling import random_model
    return StepLSTM(numpy_weights(random_model(2)))


def texts(vocab, seed):
    """A training text with repeats (so contexts of every order recur) and prompts from it."""
    rng = np.random.default_rng(seed)
    phrases = [rng.integers(0, vocab, int(rng.integers(3, 12))) for _ in range(8)]
    train = np.concatenate([phrases[i] for i in rng.integers(0, 8, 60)])
    return train, rng


@pytest.mark.parametrize("order", [0, 1, 3, 6])
def test_predictions_are_the_reference_ones_bit_for_bit(order):
    vocab = 7
    train, rng = texts(vocab, order)
    for known in (ngram.TrainCounts(train, order, vocab), ngram.TrainCounts(train[:max(order - 1, 0)], order, vocab)):
        new, old = ngram.NgramStep(known), ReferenceNgramStep(known)
        a, b = new.start(5), old.start(5)
        for _ in range(80):
            np.testing.assert_array_equal(new.predict(a), old.predict(b))
            ids = rng.integers(0, vocab, 5)
            new.update(a, ids)
            old.update(b, ids)


@pytest.mark.parametrize("streams,seed,settings", [
    (1, 0, dict(temperature=1.0)),
    (1, 5, dict(temperature=0.6, top_k=4)),
    (4, 1, dict(temperature=0.8)),
    (4, 2, dict(temperature=1.3, top_p=0.9)),
    (3, 3, dict(temperature=0)),
    (40, 4, dict(temperature=0.8, top_k=5, top_p=0.95)),  # two thread groups
])
def test_samples_are_the_reference_ones_byte_for_byte(lstm, streams, seed, settings):
    vocab = lstm.vocab_size
    train, rng = texts(vocab, 10 + seed)
    known = ngram.TrainCounts(train, 6, vocab)
    prompts = np.stack([train[i:i + 12] for i in rng.integers(0, len(train) - 12, streams)])
    got = sampling.sample_stateful(ngram.MixedStep(lstm, known, 0.25), prompts, 60, seed=seed, threads=2, **settings)
    want = sampling.sample_stateful(reference_mixed(lstm, known, 0.25), prompts, 60, seed=seed, threads=2, **settings)
    np.testing.assert_array_equal(got, want)
