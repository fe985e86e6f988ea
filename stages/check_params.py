"""check_params: validate the whole params.yaml before any stage runs.

Every stage depends on data/params.ok, whose content stays the same while params are valid, so
a valid edit re-runs only the stages whose own params changed; a typo or a bad value stops
`dvc repro` here, before DVC removes any stage's outputs.
"""

from pathlib import Path

from chargen.io import run_stage, write_text
from chargen.params import load

OUT = Path("data/params.ok")


def main():
    load("params.yaml")
    write_text(OUT, "params.yaml is valid\n")


if __name__ == "__main__":
    run_stage(main)
