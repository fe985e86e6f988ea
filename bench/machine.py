"""What a benchmark ran on and with what, recorded beside its figures, so that every committed
results file says which machine made it (a timing means nothing without its machine).

    from bench.machine import write_results
    write_results("bench/results/x.json", figures={...}, params={...})
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("numpy", "tensorflow", "keras", "jax")


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (e.g. 'AMD EPYC'), else the platform's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas() -> str:
    """NumPy's BLAS library and version (threadpoolctl reads it from the loaded library)."""
    import numpy  # noqa: F401  (loads the BLAS library threadpoolctl inspects)
    from threadpoolctl import threadpool_info

    libs = [f"{i.get('internal_api')} {i.get('version')}" for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(libs) or "unknown"


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def device() -> str:
    """The Keras backend and whether it sees a GPU; only asked when Keras is already imported,
    so a NumPy-only benchmark does not pay for importing TensorFlow."""
    import sys

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if "keras" not in sys.modules:
        return f"CPU (NumPy; Keras backend {backend} not loaded)"
    keras = sys.modules["keras"]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
    elif backend == "jax":
        import jax
        gpus = [d for d in jax.devices() if d.platform == "gpu"]
    else:
        gpus = []
    return f"{'GPU x' + str(len(gpus)) if gpus else 'CPU'} ({backend})"


def git_commit() -> str:
    """The commit the code ran at, with '+changes' when the working tree differed from it."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "chargen", "bench"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return sha + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def machine_info() -> dict:
    """The machine a figure came from: CPU, cores, BLAS, library versions, device."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "blas": blas(), "device": device(),
            "versions": versions(), "os": platform.system() + " " + platform.machine()}


def describe(machine: dict) -> str:
    """One line naming a machine, as the docs' tables print it."""
    v = machine.get("versions", {})
    libs = ", ".join(f"{k} {v[k]}" for k in ("tensorflow", "keras", "jax", "numpy") if k in v)
    return f"{machine['cores']}-core {machine['cpu']}, {machine['device']}, {machine['blas']}; {libs}"


def write_results(path: str | Path, figures: dict, params: dict, command: str, load_before: float | None = None) -> None:
    """Write a results file atomically: the figures with the machine, params, command and commit
    that made them, and the one-minute load average when the run began (a busy machine's figures
    are not the machine's)."""
    path = Path(path)
    record = {"command": command, "machine": machine_info(), "commit": git_commit(),
              "load_before": load_before, "params": params, "figures": figures}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)
