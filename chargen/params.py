"""Load and validate params.yaml before any work is done.

Every key has a type and an allowed range; an unknown key, a wrong type or a value out of range
is a ChargenError naming the key, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path

import yaml

from chargen.io import SOURCE_SCHEMES, ChargenError, scheme


class Key:
    def __init__(self, types, allowed: str, check=lambda v: True, nullable=False, hint=lambda v: None):
        self.types = types if isinstance(types, tuple) else (types,)
        self.allowed = allowed
        self.check = check
        self.nullable = nullable
        self.hint = hint  # value -> a specific message for a likely mistake, or None

    def validate(self, name, value):
        if value is None and self.nullable:
            return
        hint = self.hint(value)
        if hint:
            raise ChargenError(f"params.yaml: {name} = {value!r} {hint}")
        ok_type = isinstance(value, self.types) and not (
            isinstance(value, bool) and bool not in self.types
        )
        if float in self.types and isinstance(value, int) and not isinstance(value, bool):
            ok_type = True
        if not ok_type or not self.check(value):
            raise ChargenError(f"params.yaml: {name} = {value!r} is not allowed; use {self.allowed}")


def _int(lo=None, hi=None, nullable=False, extra=""):
    desc = "an integer" + (f" >= {lo}" if lo is not None else "") + (f" <= {hi}" if hi is not None else "")
    return Key(int, desc + extra, lambda v: (lo is None or v >= lo) and (hi is None or v <= hi), nullable)


def _float(lo, hi, lo_open=False, hi_open=False):
    def check(v):
        v = float(v)
        return (
            math.isfinite(v)
            and (v > lo if lo_open else v >= lo)
            and (v < hi if hi_open else v <= hi)
        )
    return Key(float, f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}", check)


def _choice(*options):
    return Key(str, " or ".join(repr(o) for o in options), lambda v: v in options)


def _str(allowed="a string", check=lambda v: True):
    return Key(str, allowed, check)


_BOOL = Key(bool, "true or false")

UNROLL_MAX = 64  # the longest window chargen's LSTM unrolls (chargen.model); weight_drop needs it

SCHEMA = {
    "seed": _int(0),
    "download": {
        "book": _int(1, extra=" (a Project Gutenberg ebook number)"),
        "extra_books": Key(list, "a list of ebook numbers (extra training text)",
                           lambda v: all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in v)),
        "text": _str("'' (use `book`), or a path or http(s) URL of a text file of your own",
                     lambda v: _source_ok(v, allow_empty=True)),
        "extra_texts": Key(list, "a list of paths or http(s) URLs of text files (extra training text)",
                           lambda v: all(isinstance(t, str) and _source_ok(t) for t in v)),
        "url": _str("an http(s) URL template containing {id}",
                    lambda v: v.split("://")[0] in ("http", "https") and "{id}" in v),
        "mirror": _str("a folder holding pg<ID>.txt files, or '' for none"),
        "sha256": Key((str, dict), "'' (no pin), a 64-hex-digit sha256, or a map {ebook: sha256}",
                      lambda v: _sha_ok(v), hint=lambda v: _unquoted_pin(v)),
        "cache_dir": _str("a folder path, or '' to disable the cache"),
        "timeout": _float(0, 3600, lo_open=True),
        "retries": _int(0, 20),
        "max_bytes": _int(1),
    },
    "prepare": {
        "strip_gutenberg": _BOOL,
        "encoding": _str("a text encoding such as utf-8, latin-1 or cp1252", lambda v: _codec_ok(v)),
        "lowercase": _BOOL,
        "fold_typography": _BOOL,
        "val_fraction": _float(0, 1, lo_open=True, hi_open=True),
        "seq_length": _int(1, 100000),
        "stride": _int(1, nullable=True, extra=", or null for seq_length (windows that do not overlap)"),
        "min_chars": _int(0),
        "max_space_run": _int(0, extra=" (0 = keep runs of spaces as they are)"),
    },
    "train": {
        "objective": _choice("sequence", "last"),
        "batches": _choice("auto", "streams", "windows"),
        "stream_chunk": _int(0, extra=" (windows per chunk of batches: streams; 0 = batch_size whole streams)"),
        "input": _choice("embedding", "onehot", "scaled"),
        "embedding_dim": _int(1, 4096),
        "layers": _int(1, 16),
        "units": _int(1, 16384),
        "dropout": _float(0, 1, hi_open=True),
        "weight_drop": _float(0, 1, hi_open=True),
        "batch_size": _int(1, 1 << 20),
        "epochs": _int(1, 100000),
        "learning_rate": _float(0, 10, lo_open=True),
        "lr_schedule": _choice("constant", "cosine"),
        "clipnorm": _float(0, 1e6),
        "patience": _int(0, extra=" (0 turns early stopping off)"),
        "precision": _choice("float32", "mixed_float16", "mixed_bfloat16"),
        "sample_every": _int(0, extra=" (0 = no samples during training)"),
        "steps_per_epoch": _int(0, extra=" (the most batches in an epoch; 0 = an epoch is one pass over the training text)"),
        "val_chars": _int(0, extra=" (the most validation characters read each epoch and by select; 0 = all)"),
        "strategy": _choice("single", "mirrored", "multiworker"),
    },
    "select": {
        "average": _int(1, extra=" (1 = the single best checkpoint; N > 1 also tries the mean "
                        "of the N best and keeps it if its validation loss is lower)"),
        "candidates": _int(0, extra=" (re-score the N checkpoints with the lowest logged validation loss; 0 = all)"),
    },
    "evaluate": {
        "dynamic_lr": Key(float, "a number >= 0 (SGD step size of dynamic evaluation; 0 = off)",
                          lambda v: math.isfinite(float(v)) and 0 <= float(v) <= 100),
        "dynamic_segment": _int(1, 100000, extra=" (characters scored between two dynamic-evaluation steps)"),
        "ngram_order": _int(0, 32, extra=" (longest context of the n-gram model mixed with the LSTM; 0 = no mixture)"),
        "mix_lr": Key(float, "a number >= 0 (step size of the online mixing weights)",
                      lambda v: math.isfinite(float(v)) and 0 <= float(v) <= 100),
        "max_chars": _int(0, extra=" (the most held-out characters scored, from its beginning; 0 = all)"),
    },
    "generate": {
        "method": _choice("stateful", "window"),
        "temperature": Key((float, list), "a number >= 0, or a list of them (one set of samples each)",
                           lambda v: all(isinstance(t, (int, float)) and not isinstance(t, bool)
                                         and 0 <= t <= 100 for t in (v if isinstance(v, list) else [v]))
                           and v != []),
        "top_k": _int(0, extra=" (0 = off)"),
        "top_p": _float(0, 1, lo_open=True),
        "samples": _int(1, 100000),
        "length": _int(1, 10_000_000),
        "prompt": _str("a string ('' for a seeded random window of validation text)"),
        "prompt_file": _str("'' or the path of a UTF-8 file holding the prompt"),
        "ngram_weight": _float(0, 1, hi_open=True),
        "ngram_order": _int(0, 64),
    },
}


def _source_ok(v, allow_empty=False):
    if v == "":
        return allow_empty
    return scheme(v) in ("", *SOURCE_SCHEMES)


def _codec_ok(v):
    """A text encoding: codecs.lookup also knows bytes-to-bytes and str-to-str codecs (hex,
    base64, rot13), which cannot decode a file into text, and 'undefined', a text encoding
    that refuses to decode anything, even no bytes at all."""
    import codecs
    try:
        if not codecs.lookup(v)._is_text_encoding:
            return False
        codecs.decode(b"", v)
    except (LookupError, UnicodeError):
        return False
    return True


def _unquoted_pin(v):
    """YAML reads an unquoted pin of digits (or digits and one e) as a number."""
    numbers = list(v.values()) if isinstance(v, dict) else [v]
    if any(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
        return ("is a number: YAML reads an unquoted sha256 made of digits as one; put each pin in "
                "quotes, as in sha256: \"<64 hex digits>\"")
    return None


def _sha_ok(v):
    def one(s):
        return isinstance(s, str) and (s == "" or (len(s) == 64 and all(c in "0123456789abcdefABCDEF" for c in s)))
    if isinstance(v, dict):
        return all(isinstance(k, int) and one(s) for k, s in v.items())
    return one(v)


def _unknown(name, options):
    close = difflib.get_close_matches(name.split(".")[-1], options, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(options))}"
    return ChargenError(f"params.yaml: unknown key '{name}'; {hint}")


def validate(params: dict) -> dict:
    """Check every key of a params dict against SCHEMA; return it unchanged if all is well."""
    if not isinstance(params, dict):
        raise ChargenError("params.yaml must be a mapping of sections (download, prepare, ...)")
    for name, value in params.items():
        if name not in SCHEMA:
            raise _unknown(name, SCHEMA)
        spec = SCHEMA[name]
        if isinstance(spec, Key):
            spec.validate(name, value)
            continue
        if not isinstance(value, dict):
            raise ChargenError(f"params.yaml: section '{name}' must be a mapping of keys")
        for key, v in value.items():
            if key not in spec:
                raise _unknown(f"{name}.{key}", spec)
            spec[key].validate(f"{name}.{key}", v)
        missing = sorted(set(spec) - set(value))
        if missing:
            raise ChargenError(f"params.yaml: section '{name}' lacks {', '.join(missing)}; add them (see README)")
    for name in SCHEMA:
        if name not in params:
            raise ChargenError(f"params.yaml: missing '{name}'; add it (see README)")
    # Settings that conflict with each other.
    prep, train = params["prepare"], params["train"]
    if prep["stride"] is not None and prep["stride"] > prep["seq_length"] and train["objective"] == "sequence":
        raise ChargenError(
            f"params.yaml: prepare.stride = {prep['stride']} is larger than prepare.seq_length = "
            f"{prep['seq_length']}, so some text would never be trained on; use a stride <= seq_length"
        )
    if train["batches"] == "streams" and train["objective"] != "sequence":
        raise ChargenError("params.yaml: train.batches: streams needs train.objective: sequence; "
                           "set train.batches: windows for objective 'last'")
    if train["batches"] == "streams" and train["strategy"] != "single":
        raise ChargenError(f"params.yaml: train.batches: streams runs on one device only; set "
                           f"train.batches: windows for train.strategy: {train['strategy']}")
    if train["weight_drop"] and prep["seq_length"] > UNROLL_MAX:
        raise ChargenError(f"params.yaml: train.weight_drop needs prepare.seq_length <= {UNROLL_MAX} "
                           f"(got {prep['seq_length']}); lower seq_length or set train.weight_drop: 0")
    gen = params["generate"]
    if gen["prompt"] and gen["prompt_file"]:
        raise ChargenError("params.yaml: generate.prompt and generate.prompt_file are both set; "
                           "keep one and set the other to ''")
    return params


def load(path: str | Path = "params.yaml") -> dict:
    """params.yaml as the stages read it, validated. This module alone reads params.yaml (io
    holds only generic helpers, so io never imports it). The check_params stage, first in the
    pipeline, stops a whole `dvc repro` on bad params before DVC removes any output; a stage run
    alone (`dvc repro -s train`, `python -m stages.train`) skips it, and refuses bad params
    itself, in the same one line."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChargenError(f"{path} not found: run from the project folder") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ChargenError(f"{path} is not valid YAML{where}: fix the syntax") from None
    return validate(raw)
