"""select: re-evaluate the checkpoints on the validation split; keep the best in models/best/."""

from functools import partial
from pathlib import Path

from chargen.io import run_stage, write_json
from chargen.params import load as read_params
from chargen.select import select

DATASET = Path("data/prepared/dataset.npz")
CKPT = Path("models/checkpoints")
OUT = Path("models/best")
METRICS = Path("metrics/select.json")
RUN = Path("metrics/run/select.json")  # the details: what was scored, how many candidates
COMPARED = ("epoch", "val_bpc", "averaged_val_bpc")  # what `dvc metrics show` and `exp show` compare


def main():
    p = read_params()
    result = select(CKPT, DATASET, OUT, p["select"]["average"], p["select"]["candidates"],
                    log=partial(print, flush=True))
    write_json(METRICS, {k: result[k] for k in COMPARED if k in result})
    write_json(RUN, {k: v for k, v in result.items() if k not in COMPARED})
    print(f"selected epoch {result['epoch']}: val {result['val_bpc']:.4f} bits/char "
          f"of {result['candidates']} checkpoints re-scored ({result['checkpoints']} saved)")


if __name__ == "__main__":
    run_stage(main)
