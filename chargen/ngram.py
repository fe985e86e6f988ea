"""An adaptive character n-gram model, and an online mixture of it with the LSTM.

The LSTM generalises (spelling, grammar, style) but a 256-unit network cannot memorise a book's
long exact repeats: names, refrains, whole phrases. Counting contexts can, which is why the best
text compressors mix a neural predictor with count-based ones. Here the n-gram model predicts
each validation character from the counts of every context of orders 0..N seen before it (the
training text, then the validation text read so far), interpolated from the lowest order up
with Witten-Bell weights; the two predictions are then mixed geometrically with weights learnt
online, character by character.

Nothing is predicted from what it has not yet read: the counts a position uses come only from
earlier positions (an exclusive running count), and the mixing weights are updated only after
the character was scored. Tests check both.

Contexts are keyed by a 64-bit polynomial hash of their characters, so two contexts of the same
order collide with probability about 2^-64 per pair: with a few million contexts, never in
practice. Everything is vectorised over positions, one order at a time: memory is a few
(validation length x vocabulary) arrays and a few 8-byte arrays per training character.
"""

from __future__ import annotations

import math

import numpy as np

_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier; uint64 arithmetic wraps mod 2^64
# The n-gram counts are built from at most this many characters of training text before the
# validation text (the most recent ones), which bounds time and memory on a large corpus.
MAX_TRAIN_CHARS = 1 << 22


def _context_hashes(seq: np.ndarray, order: int) -> np.ndarray:
    """hash of seq[p-order:p] for every p (positions p < order hash a shorter, padded context,
    which no full context equals in practice; they are excluded by the callers anyway)."""
    h = np.zeros(len(seq), dtype=np.uint64)
    sym = seq.astype(np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):
        for j in range(1, order + 1):
            shifted = np.zeros(len(seq), dtype=np.uint64)
            shifted[j:] = sym[:-j]
            h = h * _MULT + shifted
    return h


def _train_counts(ctx_train, next_train, ctx_query, vocab_size):
    """(queries, vocab) counts of each next char after each query's context in the training part."""
    out = np.zeros((len(ctx_query), vocab_size))
    if len(ctx_train) == 0:
        return out
    order = np.lexsort((next_train, ctx_train))
    c, x = ctx_train[order], next_train[order]
    # Runs of equal (context, next) pairs: their count, context and next char.
    new = np.ones(len(c), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (x[1:] != x[:-1])
    starts = np.flatnonzero(new)
    run_len = np.diff(np.append(starts, len(c)))
    run_ctx, run_next = c[starts], x[starts]
    lo = np.searchsorted(run_ctx, ctx_query, side="left")
    hi = np.searchsorted(run_ctx, ctx_query, side="right")
    span = hi - lo
    rows = np.repeat(np.arange(len(ctx_query)), span)
    runs = np.repeat(lo - np.cumsum(np.append(0, span[:-1])), span) + np.arange(span.sum())
    out[rows, run_next[runs]] = run_len[runs]
    return out


def _running_counts(ctx, nxt, vocab_size):
    """(positions, vocab): for each position, counts of each next char after the same context at
    earlier positions of this sequence only (exclusive of the position itself)."""
    n = len(ctx)
    order = np.lexsort((np.arange(n), ctx))
    onehot = np.zeros((n, vocab_size))
    onehot[np.arange(n), nxt[order]] = 1.0
    before = np.cumsum(onehot, axis=0) - onehot
    c = ctx[order]
    group_start = np.flatnonzero(np.append(True, c[1:] != c[:-1]))
    first = np.repeat(group_start, np.diff(np.append(group_start, n)))
    before -= before[first]
    out = np.empty_like(before)
    out[order] = before
    return out


def ngram_probs(train_ids, val_ids, order: int, vocab_size: int) -> np.ndarray:
    """(len(val_ids) - 1, vocab) predictions of val_ids[1:], each from counts of orders 0..order
    over the training text and the validation text before it (Witten-Bell interpolation)."""
    train = np.asarray(train_ids, dtype=np.int64)[-MAX_TRAIN_CHARS:]
    val = np.asarray(val_ids, dtype=np.int64)
    seq = np.concatenate([train, val])
    n_train, n = len(train), len(seq)
    targets = np.arange(n_train + 1, n)          # positions of val_ids[1:]
    p = np.full((len(targets), vocab_size), 1.0 / vocab_size)
    for k in range(order + 1):
        h = _context_hashes(seq, k)
        # Training part: positions k..n_train-1 (a full context of k chars, next char in train).
        counts = _train_counts(h[k:n_train], seq[k:n_train], h[targets], vocab_size)
        # Validation part: positions n_train.. before each target, with the same context.
        lo = max(k, n_train)
        running = _running_counts(h[lo:], seq[lo:], vocab_size)
        after = targets >= lo  # all of them unless the training text is shorter than the order
        counts[after] += running[targets[after] - lo]
        total = counts.sum(axis=1, keepdims=True)
        distinct = (counts > 0).sum(axis=1, keepdims=True)
        seen = total[:, 0] > 0
        p[seen] = (counts[seen] + distinct[seen] * p[seen]) / (total[seen] + distinct[seen])
    return p


def mix_bpc(expert_probs, targets, lr: float) -> float:
    """Bits per char of an online geometric mixture p ~ prod_i e_i ** w_i of expert predictions.

    expert_probs: list of (n, vocab) arrays predicting `targets` (n,). The weights start at
    (1, 0, ...), i.e. the first expert alone, and after each character take one gradient step
    of size lr on its log-likelihood: w_i += lr * (log e_i(y) - E_p[log e_i]).
    """
    logs = np.log(np.maximum(np.stack(expert_probs, axis=1), 1e-30))  # (n, experts, vocab)
    targets = np.asarray(targets)
    w = np.zeros(logs.shape[1])
    w[0] = 1.0
    total = 0.0
    for t in range(len(targets)):
        lt = logs[t]
        s = w @ lt
        s -= s.max()
        p = np.exp(s)
        p /= p.sum()
        y = targets[t]
        total -= math.log(p[y])
        w += lr * (lt[:, y] - lt @ p)
    return total / len(targets) / math.log(2)
