"""Time the step's matrix products in a fresh thread with and without `sampling.warm_blas()`.

    python bench/blas_warmup.py [--reps 500] [--out FILE]     # in the project folder

The products are those of one stateful step of the default LSTM (train.units in params.yaml)
for 16, 32 and 64 streams.

Each case runs in its own Python process with OPENBLAS_NUM_THREADS=1, so every measurement
starts from a thread whose BLAS has done nothing yet. Prints one table of microseconds per
product; --out also writes it as a results file with the machine (docs/performance.md's table).
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import yaml

from bench.machine import write_results

CASE = """
import sys, time
import numpy as np
from chargen.numpy_lstm import warm_blas
rows, units, warm, reps = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
rng = np.random.default_rng(0)
h = rng.standard_normal((rows, units), dtype=np.float32)
w = rng.standard_normal((units, 4 * units), dtype=np.float32)
if warm:
    warm_blas()
h @ w
t = time.perf_counter()
for _ in range(reps):
    h @ w
print((time.perf_counter() - t) / reps * 1e6)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--out", help="also write the figures, with the machine, to this JSON file")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    rows_out = []
    print("| product (streams x units by units x 4 units) | cold thread, us | after warm_blas, us | ratio |")
    print("| --- | ---: | ---: | ---: |")
    units = yaml.safe_load(Path("params.yaml").read_text())["train"]["units"]  # the default's width
    for rows in (16, 32, 64):
        us = [float(subprocess.run([sys.executable, "-c", CASE, str(rows), str(units), warm,
                                    str(args.reps)], env=env, check=True, capture_output=True,
                                   text=True).stdout) for warm in ("0", "1")]
        print(f"| {rows} x {units} by {units} x {4 * units} | {us[0]:.0f} | {us[1]:.0f} | "
              f"{us[0] / us[1]:.2f} |", flush=True)
        rows_out.append({"rows": rows, "units": units, "cold_us": round(us[0], 1), "warm_us": round(us[1], 1)})
    if args.out:
        write_results(args.out, {"products": rows_out}, {"reps": args.reps, "train.units": units},
                      "python bench/blas_warmup.py " + " ".join(sys.argv[1:]), load_before)


if __name__ == "__main__":
    main()
