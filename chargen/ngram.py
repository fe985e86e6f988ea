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
practice. Scoring is vectorised over positions, one order at a time: memory is a few
(validation length x vocabulary) arrays and a few 8-byte arrays per training character.
Generation reads one character at a time, a few hundred scalar steps per stream, so its step
(NgramStep) is compiled with numba.
"""

from __future__ import annotations

import math

import numba
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

    def merged_orders(self):
        """All orders' runs in one table, for NgramStep: made on first use, then kept."""
        if self._merged is None:
            self._merged = self._merge_orders()
        return self._merged

    def _merge_orders(self):
        """All orders' runs in one array sorted by key (hash * M + order): (the distinct keys and
        one past the last, where each key's runs start and how many it has, the runs' next chars
        and counts)."""
        keys = np.concatenate([ctx * _MULT + np.uint64(k) for k, (ctx, _, _) in enumerate(self.runs)])
        order = np.argsort(keys, kind="stable")  # a context's runs stay together
        keys = keys[order]
        new = np.ones(len(keys), dtype=bool)
        new[1:] = keys[1:] != keys[:-1]
        first = np.flatnonzero(new)
        spans = np.diff(np.append(first, len(keys)))
        # One more key past the end (the last repeated: a query it finds there is not equal to it)
        # with no runs, so a query past every key needs no special case.
        context = np.append(keys[first], keys[-1:] if len(keys) else np.uint64(0))
        run_next = np.concatenate([r[1] for r in self.runs])[order]
        run_len = np.concatenate([r[2] for r in self.runs])[order].astype(np.float64)
        return context, np.append(first, len(keys)), np.append(spans, 0), run_next, run_len

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

    A step is two compiled calls for the whole batch (_interpolate, _count_and_move_on): the
    training counts of all orders are one sorted table (TrainCounts.merged_orders), and the
    streams' own counts are rows of one array found through one hash table (_Streams).
    """

    def __init__(self, known: TrainCounts):
        self.known, self.order, self.vocab_size = known, known.order, known.vocab_size
        # How a context's key moves on when a char is read (see _count_and_move_on): M^(k+1)
        # and M^(k+2) for k = 0..order-1, mod 2^64.
        self._key_steps = np.array([pow(int(_MULT), k + 1, 1 << 64) for k in range(self.order)], dtype=np.uint64)
        self._own_steps = np.array([pow(int(_MULT), k + 2, 1 << 64) for k in range(self.order)], dtype=np.uint64)
        known.merged_orders()  # made now, not in the sampling threads

    def start(self, batch: int):
        state = _Streams(batch, self.order, self.vocab_size)
        tail = np.asarray(self.known.tail, dtype=np.int64)
        for x in tail:  # the training text's last chars are every stream's context, not counted
            self._move_on(state, np.full(batch, x), counted_orders=0)
        return state

    def predict(self, state) -> np.ndarray:
        """(batch, vocab) next-character probabilities of every stream."""
        context, starts, spans, run_next, run_len = self.known.merged_orders()
        return _interpolate(state.keys, state.rows, context, starts, spans, run_next, run_len, state.own,
                            self.vocab_size)

    def update(self, state, ids):
        """Each stream has read one more character (ids: (batch,))."""
        # As ngram_probs, never count a context reaching before the text.
        self._move_on(state, np.asarray(ids, dtype=np.int64), counted_orders=min(state.read, self.order) + 1)
        return state

    def _move_on(self, state, ids, counted_orders: int):
        state.make_room(counted_orders * len(ids))
        state.used = _count_and_move_on(state.keys, state.own_keys, state.rows, ids, counted_orders,
                                        self._key_steps, self._own_steps, state.table_keys, state.table_rows,
                                        state.own, state.used)
        state.read += 1


class _Streams:
    """NgramStep's state for a batch of streams. For every order k and stream b (arrays of
    (orders, batch)): keys[k, b], the key of the stream's current order-k context in the
    training table (the context's hash * M + k, so all orders share one table; the hash as
    _context_hashes makes it); own_keys[k, b] = keys[k, b] * M + b, the key of that context in
    this stream; rows[k, b], the row of `own` counting what followed it in the stream so far, 0
    (a row that stays zero) while it has not been seen. The hash table maps own keys to rows:
    open addressing, table_rows 0 for an empty slot, at most half full. `read`: chars read so
    far, the training text's tail included."""

    def __init__(self, batch: int, order: int, vocab_size: int):
        orders = np.arange(order + 1, dtype=np.uint64)[:, None]
        self.keys = np.repeat(orders, batch, axis=1)  # every context all padding: hash 0
        self.own_keys = self.keys * _MULT + np.arange(batch, dtype=np.uint64)
        self.rows = np.zeros((order + 1, batch), dtype=np.int64)
        self.read = 0
        self.own = np.zeros((64, vocab_size), dtype=np.uint32)
        self.used = 1
        self.table_keys = np.zeros(128, dtype=np.uint64)
        self.table_rows = np.zeros(128, dtype=np.int64)

    def make_room(self, new_rows: int):
        """Room for new_rows more rows, in `own` and in the hash table (doubling each as needed)."""
        need = self.used + new_rows
        if need > len(self.own):
            grown = np.zeros((2 * need, self.own.shape[1]), dtype=self.own.dtype)
            grown[:self.used] = self.own[:self.used]
            self.own = grown
        if 2 * need > len(self.table_keys):
            size = len(self.table_keys)
            while 2 * need > size:
                size *= 2
            keys, rows = np.zeros(size, dtype=np.uint64), np.zeros(size, dtype=np.int64)
            _rehash(self.table_keys, self.table_rows, keys, rows)
            self.table_keys, self.table_rows = keys, rows


_SPREAD = np.uint64(0xD6E8FEB86659FD93)  # odd: multiplied into a key, its high bits pick the slot


@numba.njit(cache=True, nogil=True)
def _slot(table_keys, table_rows, key):
    """The hash table slot holding key, or the empty one where it belongs (linear probing)."""
    mask = np.uint64(len(table_keys) - 1)
    slot = ((key * _SPREAD) >> np.uint64(32)) & mask
    while table_rows[slot] != 0 and table_keys[slot] != key:
        slot = (slot + np.uint64(1)) & mask
    return slot


@numba.njit(cache=True, nogil=True)
def _rehash(old_keys, old_rows, keys, rows):
    for i in range(len(old_keys)):
        if old_rows[i] != 0:
            slot = _slot(keys, rows, old_keys[i])
            keys[slot], rows[slot] = old_keys[i], old_rows[i]


@numba.njit(cache=True, nogil=True)
def _count_and_move_on(keys, own_keys, rows, ids, counted_orders, key_steps, own_steps, table_keys, table_rows,
                       own, used):
    """Each stream b reads ids[b]: it is counted after the stream's current contexts of orders
    below counted_orders (a row made for each one seen for the first time), then every context
    moves on: the order-k context becomes the new char followed by the old order-(k-1) context,
    whose hash h gives h + M^(k-1) (char + 1), i.e. key + 1 + M^k (char + 1), as
    _context_hashes folds them. Then each new context's row is looked up. Returns the rows used."""
    orders, batch = keys.shape
    for b in range(batch):
        for k in range(counted_orders):
            if rows[k, b] == 0:
                slot = _slot(table_keys, table_rows, own_keys[k, b])
                table_keys[slot], table_rows[slot] = own_keys[k, b], used
                rows[k, b] = used
                used += 1
            own[rows[k, b], ids[b]] += 1
        sym = np.uint64(ids[b] + 1)
        for k in range(orders - 1, 0, -1):  # from the top, so each reads the old one below it
            keys[k, b] = keys[k - 1, b] + np.uint64(1) + key_steps[k - 1] * sym
            own_keys[k, b] = own_keys[k - 1, b] + _MULT + own_steps[k - 1] * sym
        for k in range(orders):
            rows[k, b] = table_rows[_slot(table_keys, table_rows, own_keys[k, b])]
    return used


@numba.njit(cache=True, nogil=True)
def _interpolate(keys, own_rows, context, starts, spans, run_next, run_len, own, vocab_size):
    """(batch, vocab) Witten-Bell predictions of every stream, from its contexts' keys (orders,
    batch) and own-count rows: for each order, the training counts (the context's runs, found
    by binary search) plus the stream's own counts, then witten_bell's very operations, in its
    order, so the numbers are the same to the last bit (tested). Compiled, since per character
    this is a few hundred scalar steps that NumPy could only do as a hundred small array calls;
    the GIL is released, so thread groups of streams run it side by side."""
    orders, batch = keys.shape
    p = np.empty((batch, vocab_size))
    counts = np.empty(vocab_size)
    n_keys = len(context) - 1  # the last is the end marker
    for b in range(batch):
        p[b] = 1.0 / vocab_size
        for k in range(orders):
            at = np.searchsorted(context[:n_keys], keys[k, b])
            row = own_rows[k, b]
            for v in range(vocab_size):
                counts[v] = own[row, v]
            if context[at] == keys[k, b]:
                for run in range(starts[at], starts[at] + spans[at]):
                    counts[run_next[run]] += run_len[run]
            total, distinct = 0.0, 0.0
            for v in range(vocab_size):
                total += counts[v]
                distinct += counts[v] > 0
            if total > 0:
                for v in range(vocab_size):
                    p[b, v] = (counts[v] + distinct * p[b, v]) / (total + distinct)
    return p


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
