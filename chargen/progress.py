"""Progress lines for work of a known size (select's checkpoints, evaluate's passes): where it
is, how long it has run and, once a few seconds are timed, about how long is left.

Light on purpose (no TensorFlow), so anything may use it.
"""

from __future__ import annotations

import math
import time

MIN_SECONDS = 5.0  # the least time measured before the rest is extrapolated from it


def duration(seconds: float) -> str:
    """A time span a person reads at a glance: 45 s, 7.5 min, 2.1 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def ticker(total: int, label: str, log, lines: int = 10, clock=time.perf_counter):
    """A function tick(done, note="") to call after each of `total` equal steps: it logs about
    `lines` lines in all (every step when there are fewer), the last when the work is done."""
    t0, every = clock(), max(1, math.ceil(total / max(1, lines)))

    def tick(done: int, note: str = "") -> None:
        if done % every and done < total:
            return
        elapsed = clock() - t0
        eta = (f", about {duration(elapsed / done * (total - done))} to go"
               if done < total and elapsed >= MIN_SECONDS else "")
        log(f"  {label} {done:,}/{total:,}{note}, {duration(elapsed)} in{eta}")

    return tick
