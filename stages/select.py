"""select: re-evaluate every checkpoint on the validation split; keep the best in models/best/."""

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project, not stages/ (select.py would shadow a stdlib module)

from chargen import params  # noqa: E402
from chargen.io import run_stage, write_json  # noqa: E402

DATASET = Path("data/prepared/dataset.npz")
CKPT = Path("models/checkpoints")
OUT = Path("models/best")
METRICS = Path("metrics/select.json")


def main():
    p = params.load()
    from chargen import select

    result = select.select(CKPT, DATASET, OUT, p["select"]["average"])
    write_json(METRICS, result)
    print(f"selected epoch {result['epoch']}: val {result['val_bpc']:.4f} bits/char "
          f"of {result['candidates']} checkpoints")


if __name__ == "__main__":
    run_stage(main)
