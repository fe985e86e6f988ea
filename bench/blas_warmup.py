"""Time the step's matrix products in a fresh thread with and without `sampling.warm_blas()`.

    python bench/blas_warmup.py [--reps 500]

Each case runs in its own Python process with OPENBLAS_NUM_THREADS=1, so every measurement
starts from a thread whose BLAS has done nothing yet. Prints one table of microseconds per
product; the figures in warm_blas's docstring and the README come from it.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASE = """
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from chargen.numpy_lstm import warm_blas
rows, units, warm, reps = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
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
    args = ap.parse_args()
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    print("| product (streams x units by units x 4 units) | cold thread, us | after warm_blas, us | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for rows, units in ((16, 256), (32, 256), (64, 256), (32, 512)):
        us = [float(subprocess.run([sys.executable, "-c", CASE, str(ROOT), str(rows), str(units), warm,
                                    str(args.reps)], env=env, check=True, capture_output=True,
                                   text=True).stdout) for warm in ("0", "1")]
        print(f"| {rows} x {units} by {units} x {4 * units} | {us[0]:.0f} | {us[1]:.0f} | "
              f"{us[0] / us[1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
