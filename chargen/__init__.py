"""chargen: a reproducible character-level LSTM pipeline (DVC + Keras 3)."""

__version__ = "0.1.0"

import os as _os
import sys as _sys

# TensorFlow's C++ start-up chatter (CPU instruction sets, a failed CUDA probe on CPU-only
# machines) is noise in stage logs; Python errors still show. Set the variable to override.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C (128 + SIGINT), as run_stage gives


def started_with_m() -> bool:
    """True while Python locates the module of a `python -m package.module` command: it sets
    sys.argv[0] to "-m" until then, so a package's __init__ that sees it is imported for that
    command, not by a program that uses the package as a library."""
    return _sys.argv[:1] == ["-m"]


def report_interrupts() -> None:
    """Make a KeyboardInterrupt that nothing caught print `error: interrupted` and exit 130.

    chargen.io.run_stage does that for an interrupt inside a command's main(); before main()
    runs, a command is still importing (TensorFlow and Keras take seconds), and Ctrl-C there would
    escape as a long traceback of library frames. Other uncaught exceptions are reported as before.
    """
    previous = _sys.excepthook
    if getattr(previous, "reports_interrupts", False):
        return

    def hook(kind, value, tb):
        if not issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
            return
        # Python would re-raise SIGINT on itself; exit with run_stage's status instead. The
        # program has already unwound (its finally blocks ran): only the streams need flushing.
        try:
            _sys.stdout.flush()
        except (OSError, ValueError):
            pass
        print("error: interrupted", file=_sys.stderr, flush=True)
        _os._exit(INTERRUPTED)

    hook.reports_interrupts = True
    _sys.excepthook = hook


if started_with_m():  # `python -m chargen.<command>`; a library import leaves interrupts alone
    report_interrupts()
