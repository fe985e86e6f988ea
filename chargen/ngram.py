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
        self._merged = None

    def all_orders(self, keys) -> np.ndarray:
        """keys.shape + (vocab,): counts of each next char after each queried context, any
        order, keyed as NgramStep makes them (hash * M + order), so every order is one lookup."""
        if self._merged is None:
            self._merged = self._merge_orders()
        context, starts, spans, run_next, run_len, width = self._merged
        flat = keys.ravel()
        at = np.searchsorted(context[:-1], flat)
        lo = starts[at]
        span = spans[at] * (context[at] == flat)
        # Each query's runs, `width` places from lo on (the places past its span count 0), summed
        # into (query, char) cells.
        runs = lo[:, None] + np.arange(width)
        weight = run_len[runs] * (np.arange(width) < span[:, None])
        cells = run_next[runs] + np.arange(0, len(flat) * self.vocab_size, self.vocab_size)[:, None]
        out = np.bincount(cells.ravel(), weight.ravel(), minlength=len(flat) * self.vocab_size)
        return out.reshape(keys.shape + (self.vocab_size,))

    def _merge_orders(self):
        """All orders' runs in one array sorted by key: (the distinct keys and one past the last,
        where each key's runs start and how many it has, the runs' next chars and counts padded
        with `width` empty runs, width: the most runs a key has)."""
        keys = np.concatenate([ctx * _MULT + np.uint64(k) for k, (ctx, _, _) in enumerate(self.runs)])
        order = np.argsort(keys, kind="stable")  # a context's runs stay together
        keys = keys[order]
        new = np.ones(len(keys), dtype=bool)
        new[1:] = keys[1:] != keys[:-1]
        first = np.flatnonzero(new)
        spans = np.diff(np.append(first, len(keys)))
        width = int(spans.max(initial=0))
        # One more key past the end (the last repeated: a query it finds there is not equal to it)
        # with no runs, so a query past every key needs no special case.
        context = np.append(keys[first], keys[-1:] if len(keys) else np.uint64(0))
        pad = np.zeros(width, dtype=np.int64)
        run_next = np.concatenate([np.concatenate([r[1] for r in self.runs])[order], pad])
        run_len = np.concatenate([np.concatenate([r[2] for r in self.runs])[order], pad])
        return context, np.append(first, len(keys)), np.append(spans, 0), run_next, run_len, width

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

    Every stream and every order is handled in one pass of array operations per character, so a
    step costs a few dozen NumPy calls whatever the batch: the training counts of all orders
    are one sorted table (TrainCounts.all_orders) looked up with one searchsorted, and each
    stream's own counts are rows of one array (see _Streams).
    """

    def __init__(self, known: TrainCounts):
        self.known, self.order, self.vocab_size = known, known.order, known.vocab_size
        # M^j mod 2^64 for j = 0..order-1: the factor of the newest char in the order-(j+1) hash.
        self._powers = np.array([pow(int(_MULT), j, 1 << 64) for j in range(self.order)], dtype=np.uint64)[:, None]
        self._orders = np.arange(self.order + 1, dtype=np.uint64)[:, None]
        known.all_orders(np.zeros((self.order + 1, 0), dtype=np.uint64))  # build its table now, not in threads

    def start(self, batch: int):
        state = _Streams(batch, self.order, self.vocab_size)
        for x in self.known.tail:  # the training text's last chars are every stream's context
            self._read(state, np.full(batch, x))
        self._look_up(state)
        return state

    def _read(self, state, ids):
        """Move every stream's contexts on by one char: its order-k context is the new char
        followed (in _context_hashes' fold) by its old order-(k-1) context."""
        new = np.zeros_like(state.hashes)
        sym = np.asarray(ids).astype(np.uint64) + np.uint64(1)
        new[1:] = state.hashes[:-1] + self._powers * sym  # uint64 arrays wrap silently
        state.hashes = new
        state.read += 1

    def _look_up(self, state):
        """Keys of the current contexts (the order mixed into the hash, so that all orders share
        one table) and the rows of state.own that count them in each stream (0: not yet seen)."""
        state.keys = state.hashes * _MULT + self._orders
        own_keys = (state.keys * _MULT + state.stream_ids).ravel().tolist()
        get = state.rows.get
        state.own_keys = own_keys
        state.current = np.array([get(key, 0) for key in own_keys], dtype=np.int64).reshape(state.keys.shape)

    def predict(self, state) -> np.ndarray:
        """(batch, vocab) next-character probabilities of every stream."""
        # (orders, batch, vocab): orders first, so that each order below is one cheap view.
        counts = self.known.all_orders(state.keys)
        counts += state.own[state.current]
        total = counts.sum(axis=2, keepdims=True)
        # Distinct chars after each context; 1 where it is unseen (then it is 0 and so is total),
        # which leaves p as it is: (0 + 1 p) / (0 + 1).
        distinct = np.maximum(np.add.reduce(counts > 0, axis=2, dtype=np.float64, keepdims=True), 1.0)
        denominator = total + distinct
        # The same operations, in the same order, as witten_bell from a uniform p.
        p = counts[0] + distinct[0] * (1.0 / self.vocab_size)
        p /= denominator[0]
        for k in range(1, self.order + 1):
            p *= distinct[k]
            p += counts[k]
            p /= denominator[k]
        return p

    def update(self, state, ids):
        """Each stream has read one more character (ids: (batch,))."""
        ids = np.asarray(ids)
        top = min(state.read, self.order)  # as ngram_probs, never count a context reaching before the text
        rows = state.current[:top + 1]
        new = np.flatnonzero(rows == 0)  # contexts this stream sees for the first time: a row each
        if len(new):
            state.reserve(len(new))
            numbers = np.arange(state.used, state.used + len(new))
            state.rows.update(zip([state.own_keys[i] for i in new.tolist()], numbers.tolist()))
            rows.reshape(-1)[new] = numbers  # rows is a view of the contiguous first rows of current
            state.used += len(new)
        state.own[rows, ids] += 1  # rows differ within a step: one per stream and order
        self._read(state, ids)
        self._look_up(state)
        return state


class _Streams:
    """NgramStep's state for a batch of streams, orders first: the hashes of each stream's
    current contexts of orders 0..order (orders, batch), how many chars the streams have read
    (the training text's tail included), and their own counts: row `rows[key]` of `own` counts
    the chars that followed one context in one stream (the key mixes context, order and
    stream); row 0 stays zero for every unseen one."""

    def __init__(self, batch: int, order: int, vocab_size: int):
        self.hashes = np.zeros((order + 1, batch), dtype=np.uint64)
        self.stream_ids = np.arange(batch, dtype=np.uint64)
        self.read = 0
        self.rows = {}
        self.own = np.zeros((max(64, 4 * batch * (order + 1)), vocab_size), dtype=np.uint32)
        self.used = 1
        self.keys = self.own_keys = self.current = None  # set by NgramStep._look_up

    def reserve(self, n: int):
        """Room for n more rows (doubling, so growing costs little per row)."""
        if self.used + n > len(self.own):
            grown = np.zeros((2 * (self.used + n), self.own.shape[1]), dtype=self.own.dtype)
            grown[:self.used] = self.own[:self.used]
            self.own = grown


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
