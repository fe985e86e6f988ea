"""The pipeline's stage scripts, run by DVC as `python -m stages.<name>`.

DVC runs each stage through the shell, so `python` is whatever comes first on PATH. Importing
this package first checks that this interpreter has the project's packages, so a stage started
from the wrong environment stops with one line that says how to get the right one, before it
writes anything, instead of failing later with an import traceback. Ctrl-C while a stage is
still importing (TensorFlow takes seconds) ends it as an interrupt later does: one line, exit 130.
"""

import importlib.util
import sys

import chargen

if chargen.started_with_m():  # run as `python -m stages.<name>`, not imported by a test
    chargen.report_interrupts()

# Import names of the requirements.txt packages the stages use.
_NEEDED = ("numpy", "yaml", "pandas", "keras", "dvclive", "pyppmd", "threadpoolctl", "numba")


def _check_interpreter() -> None:
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        print(f"error: {sys.executable} cannot import {', '.join(missing)}: it is not the project's "
              f"environment; run `make repro`, or `. .venv/bin/activate` first (make sets .venv up)",
              file=sys.stderr)
        sys.exit(1)


_check_interpreter()
