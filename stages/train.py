"""train: fit the LSTM on data/prepared, one checkpoint per epoch in models/checkpoints (resumable)."""

from functools import partial
from pathlib import Path

from chargen.callbacks import LiveLog
from chargen.checkpoints import history_csv
from chargen.io import run_stage, write_json, write_text
from chargen.params import load as read_params
from chargen.train import train

DATASET = Path("data/prepared/dataset.npz")
CKPT = Path("models/checkpoints")
METRICS = Path("metrics/train.json")
HISTORY = Path("metrics/train_history.csv")
LIVE = Path("metrics/live")
RUN = Path("metrics/run/train.json")  # timings and versions: not an output DVC compares


def main():
    p = read_params()
    live = LiveLog(LIVE)

    def publish(history):  # after every committed epoch
        write_text(HISTORY, history_csv(history))
        live(history)

    log = partial(print, flush=True)  # lines as they happen, also into a pipe (CI logs, dvc queue)
    summary = train(p["train"], p["seed"], DATASET, CKPT, on_history=publish, log=log)
    if summary.get("chief") is False:  # another worker of a multi-host run: the chief writes the outputs
        print(f"worker done: {summary['epochs_run']} epochs, val {summary['best_val_bpc']:.4f} bits/char")
        return
    run = summary.pop("run")
    write_json(METRICS, summary)
    write_json(RUN, run)
    speed = f", {run['seconds_per_epoch']:.1f} s/epoch" if run["epochs_timed"] else ""
    print(f"best epoch {summary['best_epoch']}: val {summary['best_val_bpc']:.4f} bits/char{speed}")


if __name__ == "__main__":
    run_stage(main)
