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


@pytest.mark.parametrize("trial", range(4))
def test_step_by_step_predicts_what_ngram_probs_predicts(trial):
    """Generation's n-gram (NgramStep), fed a text one character at a time, is the model the
    evaluate stage scores: the same numbers, also when the training text is shorter than the
    order."""
    rng = np.random.default_rng(10 + trial)
    vocab = int(rng.integers(2, 6))
    train = rng.integers(0, vocab, int(rng.integers(0, 80)))
    val = rng.integers(0, vocab, int(rng.integers(2, 50)))
    for order in (0, 1, 3, 7):
        step = ngram.NgramStep(ngram.TrainCounts(train, order, vocab))
        state = step.update(step.start(1), val[:1])
        got = []
        for t in range(1, len(val)):
            got.append(step.predict(state)[0])
            step.update(state, val[t:t + 1])
        assert np.array_equal(np.array(got), ngram.ngram_probs(train, val, order, vocab)), (trial, order)


def test_streams_count_only_their_own_text():
    train = np.array([0, 1, 2, 0, 1, 2])
    step = ngram.NgramStep(ngram.TrainCounts(train, 2, 4))
    state = step.start(2)
    for ids in ([3, 0], [3, 0], [3, 0]):  # stream 0 reads 3 3 3, stream 1 reads 0 0 0
        step.update(state, np.array(ids))
    p = step.predict(state)
    assert p[0].argmax() == 3 and p[1].argmax() == 0 and p[1, 3] < p[0, 3]


def test_mixed_step_is_the_mixture_evaluate_scores():
    """Sampling from MixedStep at temperature 1 is sampling from (1 - w) LSTM + w n-gram, the
    distribution whose held-out score is evaluate's lstm_ngram."""
    from chargen.evaluate import model_probs
    from chargen.model import numpy_weights
    from chargen.numpy_lstm import StepLSTM
    from test_sampling import random_model

    keras_model = random_model(1)
    vocab = keras_model.output_shape[-1]
    rng = np.random.default_rng(3)
    train, val = rng.integers(0, vocab, 300), rng.integers(0, vocab, 60)
    lstm = StepLSTM(numpy_weights(keras_model))
    w = 0.3
    mixed = ngram.MixedStep(lstm, ngram.TrainCounts(train, 4, vocab), w)
    logits, state = mixed.feed(val[None, :1])
    got = [np.exp(logits[0])]
    for t in range(1, len(val) - 1):
        logits, state = mixed.step(val[t:t + 1], state)
        got.append(np.exp(logits[0]))
    expected = (1 - w) * model_probs(lstm, val) + w * ngram.ngram_probs(train, val, 4, vocab)
    np.testing.assert_allclose(np.array(got), expected, rtol=1e-6, atol=1e-9)
