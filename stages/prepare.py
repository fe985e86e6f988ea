"""prepare: raw text -> clean text -> vocab, ids and windows in data/prepared/dataset.npz.

Gutenberg files lose their header and licence (prepare.strip_gutenberg); texts of your own are
used whole. The validation split is the last val_fraction of the target text only; extra texts
are training text.
"""

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project, not stages/ (select.py would shadow a stdlib module)

from chargen import data as D  # noqa: E402
from chargen import params  # noqa: E402
from chargen.corpus import clean  # noqa: E402
from chargen.io import ChargenError, read_json, run_stage, write_json  # noqa: E402

RAW = Path("data/raw")
OUT = Path("data/prepared/dataset.npz")
METRICS = Path("metrics/prepare.json")


def main():
    cfg = params.load()["prepare"]
    books = read_json(RAW / "source.json")["books"]
    texts = {}
    for rec in books:
        path = RAW / rec["file"]
        if not path.is_file():
            raise ChargenError(f"{path} is missing: re-run the download stage (dvc repro -f download)")
        gutenberg = rec["kind"] == "gutenberg"
        texts[rec["file"]] = clean(path.read_bytes(), str(path), strip=gutenberg and cfg["strip_gutenberg"],
                                   lowercase=cfg["lowercase"], fold=cfg["fold_typography"],
                                   encoding=cfg["encoding"])
    target_rec = next(r for r in books if r["role"] == "target")
    target = target_rec["file"]
    text = texts[target]
    if not text.strip():
        raise ChargenError(f"the text of {target} is empty after preparation: check the source file")

    T = cfg["seq_length"]
    stride = cfg["stride"] or T
    cut = D.split(len(text), cfg["val_fraction"])
    train_text = "".join(texts[f] + "\n" for f in texts if f != target) + text[:cut]
    val_text = text[cut:]
    need = T + 1
    if len(val_text) < need or len(text[:cut]) < need:
        raise ChargenError(
            f"the text has {len(text):,} characters: too short for windows of {T} + 1 in both the train "
            f"({len(text[:cut]):,}) and validation ({len(val_text):,}) parts; lower prepare.seq_length "
            f"or use a longer text"
        )
    if len(text) < cfg["min_chars"]:
        print(f"warning: {target} has only {len(text):,} characters (< prepare.min_chars = "
              f"{cfg['min_chars']:,}); a character model trained on so little text mostly produces "
              f"gibberish", file=sys.stderr)

    vocab = D.build_vocab(train_text, val_text)
    train_ids, val_ids = D.encode(train_text, vocab), D.encode(val_text, vocab)
    D.save_dataset(OUT, vocab=vocab, train_ids=train_ids, val_ids=val_ids, seq_length=T, stride=stride,
                   meta={"book": target_rec.get("book"), "source": target, "lowercase": cfg["lowercase"],
                         "fold_typography": cfg["fold_typography"]})
    ds = D.load_dataset(OUT)
    metrics = {
        "chars": len(text),
        "train_chars": len(train_text),
        "val_chars": len(val_text),
        "extra_chars": len(train_text) - cut,
        "vocab_size": len(vocab),
        "train_windows": int(len(ds["train_starts"])),
        "val_windows": int(len(ds["val_starts"])),
    }
    write_json(METRICS, metrics)
    print(", ".join(f"{k} {v:,}" for k, v in metrics.items()))


if __name__ == "__main__":
    run_stage(main)
