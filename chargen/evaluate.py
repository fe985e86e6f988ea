"""Held-out bits per character of the model, beside classic compressors on the same split.

A compressor's figure is conditional: bits(train + validation) - bits(train), divided by the
number of validation characters, so it too may learn from the training text first. The model
reads the validation text as one continuous stream with its state carried, so it is not
charged for a cold start every window.
"""

from __future__ import annotations

import bz2
import lzma
import math
import zlib

import pyppmd


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


def model_bpc(step, val_ids) -> tuple[float, int]:
    """(bits per char, chars scored) of the model over the validation text as one stream."""
    loss, n = step.stream_loss(val_ids, streams=1)
    return loss / math.log(2), n
