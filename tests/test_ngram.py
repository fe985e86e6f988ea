"""The adaptive n-gram model and the online mixture the evaluate stage scores."""

import math

import numpy as np
import pytest

from chargen import ngram


def direct(train, val, order, vocab):
    """Witten-Bell interpolation from counts made by comparing every earlier context by hand."""
    seq = list(train) + list(val)
    rows = []
    for t in range(len(train) + 1, len(seq)):
        p = np.full(vocab, 1.0 / vocab)
        for k in range(order + 1):
            c = np.zeros(vocab)
            for q in range(k, t):
                if seq[q - k:q] == seq[t - k:t]:
                    c[seq[q]] += 1
            if c.sum():
                d = (c > 0).sum()
                p = (c + d * p) / (c.sum() + d)
        rows.append(p)
    return np.array(rows).reshape(-1, vocab)


@pytest.mark.parametrize("trial", range(4))
def test_counts_equal_direct_counting(trial):
    rng = np.random.default_rng(trial)
    vocab = int(rng.integers(2, 6))
    train = rng.integers(0, vocab, int(rng.integers(0, 80)))
    val = rng.integers(0, vocab, int(rng.integers(2, 50)))
    for order in (0, 1, 3, 7):
        got = ngram.ngram_probs(train, val, order, vocab)
        np.testing.assert_allclose(got, direct(train, val, order, vocab), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.sum(axis=1), 1.0)


def test_a_prediction_never_depends_on_the_char_it_predicts_or_later_ones():
    rng = np.random.default_rng(5)
    train, val = rng.integers(0, 4, 300), rng.integers(0, 4, 120)
    base = ngram.ngram_probs(train, val, 6, 4)
    for j in (1, 40, 100):
        changed = val.copy()
        changed[j:] = (changed[j:] + 1) % 4
        other = ngram.ngram_probs(train, changed, 6, 4)
        # Row i predicts val[i + 1] from val[:i + 1], so rows up to j - 1 (which predicts the
        # first changed char) are untouched, and later ones see the change.
        np.testing.assert_array_equal(base[:j], other[:j])
        assert not np.array_equal(base[j:], other[j:])


def test_it_memorises_what_the_lstm_cannot():
    rng = np.random.default_rng(6)
    phrase = rng.integers(0, 30, 400)
    train = np.concatenate([rng.integers(0, 30, 2000), phrase])
    val = np.concatenate([rng.integers(0, 30, 200), phrase])  # a long repeat of training text
    p = ngram.ngram_probs(train, val, 8, 30)
    bits = -np.log2(p[np.arange(len(val) - 1), val[1:]])
    assert bits[:199].mean() > 4          # fresh random text: close to log2(30) = 4.9
    assert bits[210:].mean() < 0.5        # the repeat, once 8 chars of it have been read


def test_mixture_starts_at_the_first_expert_and_learns_to_trust_the_better_one():
    rng = np.random.default_rng(7)
    n, vocab = 3000, 10
    y = rng.integers(0, vocab, n)
    flat = np.full((n, vocab), 1.0 / vocab)
    sharp = np.full((n, vocab), 0.1 / (vocab - 1))
    sharp[np.arange(n), y] = 0.9                     # right nine times in ten
    assert ngram.mix_bpc([flat, sharp], y, 0.0) == pytest.approx(math.log2(vocab))
    learnt = ngram.mix_bpc([flat, sharp], y, 0.01)
    assert learnt < math.log2(vocab) - 1.5
    # A useless second expert costs nothing (the geometric weights may even sharpen the first).
    assert ngram.mix_bpc([sharp, flat], y, 0.01) <= ngram.mix_bpc([sharp, flat], y, 0.0) + 0.01
