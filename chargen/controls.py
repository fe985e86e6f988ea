"""The sampling controls (length, temperature, top-k, top-p, ...): their defaults and checks.

Apart from the model, so the command line checks its flags as soon as it has parsed them, in
a fraction of a second, before it imports TensorFlow and loads a model for seconds.
"""

from __future__ import annotations

import math

from chargen.io import ChargenError

# The CLI shows these as its defaults, so the API and the command line start from the same place.
# ngram_weight and ngram_order: sampling mixes the LSTM with the n-gram model of the training text
# (the generate params' defaults; 0 = the LSTM alone).
DEFAULTS = dict(length=500, temperature=0.8, top_k=0, top_p=1.0, samples=1, seed=0, method="stateful",
                ngram_weight=0.25, ngram_order=6)
METHODS = ("stateful", "window")


def check_controls(*, length, temperature, top_k, top_p, samples, seed, method, ngram_weight=0.0,
                   ngram_order=0, cli: bool = False) -> None:
    """One-line errors for sampling controls out of range (the same rules as generate params),
    naming the control (as a command-line flag when `cli`) and the value at fault."""
    def finite(v):
        return isinstance(v, (int, float)) and math.isfinite(v)

    rules = [
        ("temperature", temperature, finite(temperature) and temperature >= 0, "a number >= 0 (0 = greedy)"),
        ("length", length, length >= 1, "at least 1"),
        ("samples", samples, samples >= 1, "at least 1"),
        ("top_k", top_k, top_k >= 0, "at least 0 (0 = off)"),
        ("top_p", top_p, finite(top_p) and 0 < top_p <= 1, "above 0 and at most 1 (1 = off)"),
        ("seed", seed, seed >= 0, "at least 0"),
        ("ngram_weight", ngram_weight, finite(ngram_weight) and 0 <= ngram_weight < 1,
         "at least 0 and below 1 (0 = the LSTM alone)"),
        ("ngram_order", ngram_order, ngram_order >= 0, "at least 0"),
    ]
    for name, value, ok, allowed in rules:
        if not ok:
            shown = "--" + name.replace("_", "-") if cli else name
            raise ChargenError(f"{shown} must be {allowed}, got {value}")
    if method not in METHODS:
        raise ChargenError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
