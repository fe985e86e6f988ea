"""figures: the README's pictures (docs/img/*.svg), redrawn from this run's metrics files."""

from pathlib import Path

from chargen.figures import draw
from chargen.io import run_stage

METRICS = Path("metrics")
OUT = Path("docs/img")


def main():
    for path in draw(METRICS, OUT):
        print(f"wrote {path}")


if __name__ == "__main__":
    run_stage(main)
