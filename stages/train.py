"""train: fit the LSTM on data/prepared, one checkpoint per epoch in models/checkpoints (resumable)."""

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project, not stages/ (select.py would shadow a stdlib module)

from chargen import params  # noqa: E402
from chargen.io import run_stage, write_json, write_text  # noqa: E402

DATASET = Path("data/prepared/dataset.npz")
CKPT = Path("models/checkpoints")
METRICS = Path("metrics/train.json")
HISTORY = Path("metrics/train_history.csv")
LIVE = Path("metrics/live")


def main():
    p = params.load()
    from chargen import train  # imports Keras: after the params are known to be good

    live = train.LiveLog(LIVE)

    def publish(history):  # after every committed epoch
        write_text(HISTORY, train.history_csv(history))
        live(history)

    summary = train.train(p["train"], p["seed"], DATASET, CKPT, on_history=publish)
    if summary.get("chief") is False:  # another worker of a multi-host run: the chief writes the outputs
        print(f"worker done: {summary['epochs_run']} epochs, val {summary['best_val_bpc']:.4f} bits/char")
        return
    write_json(METRICS, summary)
    print(f"best epoch {summary['best_epoch']}: val {summary['best_val_bpc']:.4f} bits/char, "
          f"{summary['seconds_per_epoch']:.1f} s/epoch")


if __name__ == "__main__":
    run_stage(main)
