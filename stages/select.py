"""select: re-evaluate every checkpoint on the validation split; keep the best in models/best/."""

from pathlib import Path

from chargen.io import read_params, run_stage, write_json
from chargen.select import select

DATASET = Path("data/prepared/dataset.npz")
CKPT = Path("models/checkpoints")
OUT = Path("models/best")
METRICS = Path("metrics/select.json")


def main():
    p = read_params()
    result = select(CKPT, DATASET, OUT, p["select"]["average"])
    write_json(METRICS, result)
    print(f"selected epoch {result['epoch']}: val {result['val_bpc']:.4f} bits/char "
          f"of {result['candidates']} checkpoints")


if __name__ == "__main__":
    run_stage(main)
