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


class TrainCounts:
    """How often each character followed each context of the training text, for every order
    0..order: per order, the sorted runs of equal (context hash, next char) pairs, counted once
    and then looked up by context for any number of queries."""

    def __init__(self, train_ids, order: int, vocab_size: int):
        seq = np.asarray(train_ids, dtype=np.int64)[-MAX_TRAIN_CHARS:]
        self.tail = seq[-order:] if order else seq[:0]  # the context the first text after it sees
        self.order, self.vocab_size = order, vocab_size
        self.runs = []
        for k in range(order + 1):
            ctx, nxt = _context_hashes(seq, k)[k:], seq[k:]
            sort = np.lexsort((nxt, ctx))
            c, x = ctx[sort], nxt[sort]
            new = np.ones(len(c), dtype=bool)
            new[1:] = (c[1:] != c[:-1]) | (x[1:] != x[:-1])
            starts = np.flatnonzero(new)
            self.runs.append((c[starts], x[starts], np.diff(np.append(starts, len(c)))))

    def counts(self, k: int, ctx_query) -> np.ndarray:
        """(queries, vocab) counts of each next char after each query's order-k context."""
        run_ctx, run_next, run_len = self.runs[k]
        out = np.zeros((len(ctx_query), self.vocab_size))
        lo = np.searchsorted(run_ctx, ctx_query, side="left")
        span = np.searchsorted(run_ctx, ctx_query, side="right") - lo
        rows = np.repeat(np.arange(len(ctx_query)), span)
        runs = np.repeat(lo - np.cumsum(np.append(0, span[:-1])), span) + np.arange(span.sum())
        out[rows, run_next[runs]] = run_len[runs]
        return out


def witten_bell(p_lower: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """One order's step of the interpolation: rows with a seen context move from the lower
    orders' prediction towards this order's counts, the more the more often the context was
    seen and the fewer different characters followed it."""
    total = counts.sum(axis=1, keepdims=True)
    distinct = (counts > 0).sum(axis=1, keepdims=True)
    seen = total[:, 0] > 0
    p = p_lower.copy()
    p[seen] = (counts[seen] + distinct[seen] * p_lower[seen]) / (total[seen] + distinct[seen])
    return p


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
    known = TrainCounts(train, order, vocab_size)
    p = np.full((len(targets), vocab_size), 1.0 / vocab_size)
    for k in range(order + 1):
        h = _context_hashes(seq, k)
        # Training part: positions k..n_train-1 (a full context of k chars, next char in train).
        counts = known.counts(k, h[targets])
        # Validation part: positions n_train.. before each target, with the same context.
        lo = max(k, n_train)
        running = _running_counts(h[lo:], seq[lo:], vocab_size)
        after = targets >= lo  # all of them unless the training text is shorter than the order
        counts[after] += running[targets[after] - lo]
        p = witten_bell(p, counts)
    return p


class NgramStep:
    """The same n-gram model one character at a time, for generation: each stream's prediction
    comes from the training text's counts plus the counts of that stream's own text so far (its
    prompt, then what it generated), read as if it followed the training text. Fed a text one
    character at a time it predicts exactly what ngram_probs predicts for it (tested).

    A stream's state is [its last `order` characters, its own counts (a dict per order from
    context hash to a count vector), the hashes of its current contexts of orders 0..order].
    """

    def __init__(self, known: TrainCounts):
        self.known, self.order, self.vocab_size = known, known.order, known.vocab_size

    def start(self, batch: int):
        tail = [int(x) for x in self.known.tail]
        return [[list(tail), [{} for _ in range(self.order + 1)], self._hashes(tail)] for _ in range(batch)]

    def _hashes(self, history) -> list[int]:
        """Hashes of the last k chars of history, for k = 0..order, as _context_hashes makes them
        (a context reaching before the text is padded the same way), in plain integers."""
        out, h = [0], 0
        for k in range(1, self.order + 1):
            h = (h * _MULT_INT + (history[-k] + 1 if k <= len(history) else 0)) & _MASK
            out.append(h)
        return out

    def predict(self, state) -> np.ndarray:
        """(batch, vocab) next-character probabilities of every stream."""
        hashes = np.array([stream[2] for stream in state], dtype=np.uint64)  # (batch, orders)
        p = np.full((len(state), self.vocab_size), 1.0 / self.vocab_size)
        for k in range(self.order + 1):
            counts = self.known.counts(k, hashes[:, k])
            for row, (_, own, current) in enumerate(state):
                seen = own[k].get(current[k])
                if seen is not None:
                    counts[row] += seen
            p = witten_bell(p, counts)
        return p

    def update(self, state, ids):
        """Each stream has read one more character (ids: (batch,))."""
        for stream, x in zip(state, np.asarray(ids).tolist()):
            history, own, current = stream
            for k in range(min(len(history), self.order) + 1):  # as ngram_probs, never count a
                counts = own[k].get(current[k])                 # context reaching before the text
                if counts is None:
                    counts = own[k][current[k]] = np.zeros(self.vocab_size)
                counts[x] += 1
            history.append(x)
            del history[:-self.order or len(history)]
            stream[2] = self._hashes(history)
        return state


_MULT_INT, _MASK = int(_MULT), (1 << 64) - 1


class MixedStep:
    """The LSTM step and the n-gram step mixed linearly, p = (1 - w) p_lstm + w p_ngram, with
    the LSTM step's interface (feed, step; logits out), so the samplers sample from the mixture
    unchanged: temperature, top-k and top-p then apply to the mixture. The logits are log p."""

    def __init__(self, lstm, known: TrainCounts, weight: float):
        self.lstm, self.ngram, self.weight = lstm, NgramStep(known), float(weight)
        self.vocab_size = lstm.vocab_size

    def _logits(self, lstm_logits, ng_state):
        z = np.asarray(lstm_logits, dtype="float64")
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        mixed = (1.0 - self.weight) * p + self.weight * self.ngram.predict(ng_state)
        return np.log(np.maximum(mixed, 1e-300))

    def feed(self, ids_2d, state=None):
        ids_2d = np.asarray(ids_2d)
        logits, lstm_state = self.lstm.feed(ids_2d, state[0] if state else None)
        ng_state = state[1] if state else self.ngram.start(len(ids_2d))
        for t in range(ids_2d.shape[1]):
            self.ngram.update(ng_state, ids_2d[:, t])
        return self._logits(logits, ng_state), (lstm_state, ng_state)

    def step(self, ids, state):
        logits, lstm_state = self.lstm.step(ids, state[0])
        ng_state = self.ngram.update(state[1], ids)
        return self._logits(logits, ng_state), (lstm_state, ng_state)


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
