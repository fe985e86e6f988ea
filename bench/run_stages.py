"""Run pipeline stages without DVC, with params overrides: for machines that have no DVC, such
as a lent GPU box running Keras on JAX.

    KERAS_BACKEND=jax python bench/run_stages.py --set train.epochs=3 prepare train select

Overrides are applied to params.yaml in place (as `dvc exp run -S` would), the whole file is
validated (the check_params stage), then each named stage runs in order; the first failure stops
the run.
"""

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def apply(overrides, path=ROOT / "params.yaml"):
    p = yaml.safe_load(path.read_text())
    for item in overrides:
        key, _, raw = item.partition("=")
        node = p
        *parents, last = key.split(".")
        for k in parents:
            node = node[k]
        node[last] = yaml.safe_load(raw)
    path.write_text(yaml.safe_dump(p, sort_keys=False))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("stages", nargs="+")
    args = ap.parse_args()
    apply(args.set)
    for name in ["check_params", *args.stages]:
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"stages.{name}"], cwd=ROOT).returncode:
            sys.exit(1)


if __name__ == "__main__":
    main()
