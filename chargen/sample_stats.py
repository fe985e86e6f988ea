"""Measures of generated samples: the share of real words, distinct word n-grams, the longest
loop (a repeated span) and the longest span copied from the training text."""

from __future__ import annotations

import re

import numpy as np


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
