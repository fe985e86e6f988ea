"""prepare: raw text -> clean text -> vocab, ids and windows in data/prepared/dataset.npz.

Gutenberg files lose their header and licence (prepare.strip_gutenberg); texts of your own are
used whole. The validation split is the last val_fraction of the target text only; extra texts
are training text. Texts are read in pieces, twice (characters, then ids), so a corpus larger
than memory can be prepared; train ids are written straight into the dataset file.
"""

import json
import sys
from pathlib import Path

from chargen.cleaning import check_controls, gutenberg_markers, iter_clean, squeeze_spaces
from chargen.dataset import Encoder, char_set, dataset_writer, n_windows, split
from chargen.io import ChargenError, read_json, run_stage, write_json
from chargen.params import load as read_params

RAW = Path("data/raw")
RAW_ORIGINS = Path("metrics/run/download.json")  # where download read each file, on this machine
OUT = Path("data/prepared/dataset.npz")
METRICS = Path("metrics/prepare.json")


def pieces(rec: dict, cfg: dict):
    path = RAW / rec["file"]
    if not path.is_file():
        raise ChargenError(f"{path} is missing: re-run the download stage (dvc repro -f download)")
    cleaned = iter_clean(path, str(path), strip=rec["kind"] == "gutenberg" and cfg["strip_gutenberg"],
                         lowercase=cfg["lowercase"], fold=cfg["fold_typography"], encoding=cfg["encoding"])
    return (squeeze_spaces(piece, cfg["max_space_run"]) for piece in cleaned)


def origin_of(rec: dict) -> str:
    """Where the download stage read a file (its run record, for messages only), else its source."""
    try:
        runs = json.loads(RAW_ORIGINS.read_text(encoding="utf-8"))["books"]
        return next(r["origin"] for r in runs if r["file"] == rec["file"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return rec["source"]


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def check_unstripped(rec: dict, cfg: dict) -> None:
    """A Gutenberg book used whole keeps its licence at the end, where the validation split is."""
    path = RAW / rec["file"]
    found = gutenberg_markers(path.read_bytes(), str(path), cfg["encoding"])
    if found:
        warn(f"prepare.strip_gutenberg is false but {path} has Project Gutenberg markers: its header "
             f"({found[0]:,} characters) and licence ({found[1]:,} characters) stay in the text, and the "
             f"licence is where the validation split is; set prepare.strip_gutenberg: true to cut them")


def main():
    cfg = read_params()["prepare"]
    books = read_json(RAW / "source.json")["books"]
    target_rec = next(r for r in books if r["role"] == "target")
    extras = [r for r in books if r is not target_rec]
    target = target_rec["file"]

    # Pass 1: lengths and characters of every cleaned text, one piece at a time.
    lengths, chars, has_text = {}, set("\n" if extras else ""), False
    for rec in books:
        if rec["kind"] == "gutenberg" and not cfg["strip_gutenberg"]:
            check_unstripped(rec, cfg)
        n, found = 0, set()
        for piece in pieces(rec, cfg):
            n += len(piece)
            found |= char_set(piece)
            has_text = has_text or (rec is target_rec and not piece.isspace())
        lengths[rec["file"]] = n
        chars |= found
        problem = check_controls(found, str(RAW / rec["file"]), cfg["encoding"])
        if problem:
            warn(problem)
    if not has_text:
        origin = origin_of(target_rec)
        if target_rec["kind"] == "gutenberg" and cfg["strip_gutenberg"]:
            raise ChargenError(f"the Project Gutenberg START and END markers of {RAW / target} enclose no text "
                               f"(it came from {origin}): replace that file with the whole book, or set "
                               f"prepare.strip_gutenberg: false to use the file as it is")
        raise ChargenError(f"{RAW / target} holds no text (it came from {origin}): check that file")

    T = cfg["seq_length"]
    stride = cfg["stride"] or T
    n = lengths[target]
    cut = split(n, cfg["val_fraction"])
    need = T + 1
    if n - cut < need or cut < need:
        raise ChargenError(
            f"the text has {n:,} characters: too short for windows of {T} + 1 in both the train "
            f"({cut:,}) and validation ({n - cut:,}) parts; lower prepare.seq_length or use a longer text"
        )
    if n < cfg["min_chars"]:
        warn(f"{target} has only {n:,} characters (< prepare.min_chars = {cfg['min_chars']:,}); a "
             f"character model trained on so little text mostly produces gibberish")

    # Pass 2: ids, streamed into the dataset. Train text: each extra text and a line break, then
    # the target's first part; validation: the target's last val_fraction.
    vocab = sorted(chars)
    encode = Encoder(vocab)
    n_train = sum(lengths[r["file"]] + 1 for r in extras) + cut
    meta = {"book": target_rec.get("book"), "source": target, "lowercase": cfg["lowercase"],
            "fold_typography": cfg["fold_typography"]}
    with dataset_writer(OUT, vocab=vocab, n_train=n_train, seq_length=T, stride=stride, meta=meta) as w:
        for rec in extras:
            for piece in pieces(rec, cfg):
                w.train(encode(piece))
            w.train(encode("\n"))
        done = 0
        for piece in pieces(target_rec, cfg):
            ids = encode(piece)
            head = max(0, min(len(ids), cut - done))
            w.train(ids[:head])
            if head < len(ids):
                w.val(ids[head:])
            done += len(ids)
    metrics = {
        "chars": n,
        "train_chars": n_train,
        "val_chars": n - cut,
        "extra_chars": n_train - cut,
        "vocab_size": len(vocab),
        "train_windows": n_windows(n_train, T, stride),
        "val_windows": n_windows(n - cut, T, stride),
    }
    write_json(METRICS, metrics)
    print(", ".join(f"{k} {v:,}" for k, v in metrics.items()))


if __name__ == "__main__":
    run_stage(main)
