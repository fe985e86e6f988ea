"""Does pretraining on other books help Alice? Pretrain the model on the extra books, fine-tune
it on Alice's training text, and print Alice's held-out bits/char (one continuous stream, as the
evaluate stage's `lstm`) after every epoch of both.

    python bench/pretrain_finetune.py                       # 2 passes over the books, 10 on Alice
    python bench/pretrain_finetune.py --pretrain 0          # the same fine-tuning from scratch

The dataset is made by the repository's own check_params, download and prepare stages in a
temporary copy, with download.extra_books set (the vocabulary then covers every book).
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from bench.run_stages import apply


def prepared(proj: Path, mirror: Path, books: list[int]) -> Path:
    for item in ("chargen", "stages", "params.yaml"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, proj / item)
    apply([f"download.mirror={mirror}", f"download.extra_books={books}"], proj / "params.yaml")
    for stage in ("check_params", "download", "prepare"):
        subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=proj, check=True, capture_output=True)
    return proj / "data/prepared/dataset.npz"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pretrain", type=int, default=2, help="passes over the extra books")
    ap.add_argument("--finetune", type=int, default=10, help="epochs on Alice")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--units", type=int, default=256)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--finetune-lr", type=float, default=0.001)
    ap.add_argument("--books", default="1513,1228,2701")
    ap.add_argument("--mirror", default=str(ROOT.parent / "shared" / "corpus"))
    args = ap.parse_args()

    from chargen.batches import Batches
    from chargen.dataset import load_dataset
    from chargen.evaluate import bits_per_char, model_probs
    from chargen.model import build, compile_model, numpy_weights
    from chargen.numpy_lstm import StepLSTM
    from chargen.quiet import keras

    with tempfile.TemporaryDirectory(prefix="chargen-pretrain-") as tmp:
        path = prepared(Path(tmp), Path(args.mirror).resolve(), [int(b) for b in args.books.split(",")])
        ds = load_dataset(path)
        n_extra = json.loads((Path(tmp) / "metrics/prepare.json").read_text())["extra_chars"]
    train_ids, val = np.asarray(ds["train_ids"]), np.asarray(ds["val_ids"])
    extra, alice = train_ids[:n_extra], train_ids[n_extra:]
    print(f"extra books {len(extra):,} chars, Alice train {len(alice):,}, validation {len(val):,}", flush=True)

    cfg = dict(objective="sequence", input="embedding", embedding_dim=64, layers=args.layers, units=args.units,
               dropout=args.dropout, learning_rate=0.003, lr_schedule="cosine", clipnorm=1.0)
    keras.utils.set_random_seed(42)
    model = build(len(ds["vocab"]), cfg)

    def phase(name, ids, epochs, lr, seed):
        batches = Batches(ids, 32, 32, 32, "sequence", seed=seed, shift=32)
        compile_model(model, dict(cfg, learning_rate=lr, epochs=epochs), len(batches))
        t0, scores = time.perf_counter(), []

        class Report(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                batches.set_epoch(epoch)

            def on_epoch_end(self, epoch, logs=None):
                scores.append(bits_per_char(model_probs(StepLSTM(numpy_weights(model)), val), val[1:]))
                print(f"{name} epoch {epoch + 1}: train {logs['loss'] / np.log(2):.4f}, "
                      f"Alice validation {scores[-1]:.4f} bits/char, {time.perf_counter() - t0:.0f} s", flush=True)

        model.fit(batches, epochs=epochs, callbacks=[Report()], verbose=0, shuffle=False)
        return scores, time.perf_counter() - t0

    pre_s = 0.0
    if args.pretrain:
        _, pre_s = phase("pretrain", extra, args.pretrain, 0.003, 42)
    scores, ft_s = phase("finetune", alice, args.finetune, args.finetune_lr, 43)
    print(f"best on Alice: {min(scores):.4f} bits/char (fine-tuning epoch {int(np.argmin(scores)) + 1}); "
          f"pretraining {pre_s:.0f} s, fine-tuning {ft_s:.0f} s")


if __name__ == "__main__":
    main()
