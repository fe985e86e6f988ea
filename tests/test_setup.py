"""`make`'s set-up of .venv installs quietly: a pip deprecation warning is not the first thing a
new user reads. Needs the package index (it is skipped without one)."""

import shlex
import subprocess
import sys

import pytest

from conftest import ROOT

OLD_PIP = "23.0.1"  # the pip a venv gets from Debian 12's Python 3.11
# Pulled in by dvc (through hydra-core and omegaconf): an sdist without a pyproject.toml, which
# such a pip installs with the legacy `setup.py install`, with a warning, unless `wheel` is there.
SDIST = "antlr4-python3-runtime==4.9.3"


def bootstrap_line() -> str:
    """The Makefile's recipe line that installs current packaging tools before anything else."""
    lines = [line.strip() for line in (ROOT / "Makefile").read_text().splitlines()
             if "pip install" in line and "pip==" in line]
    assert len(lines) == 1, lines
    return lines[0]


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def venv_with_old_pip(path):
    """A venv whose pip is OLD_PIP, or a skip when the package index is out of reach."""
    assert run(sys.executable, "-m", "venv", str(path)).returncode == 0
    res = run(str(path / "bin" / "python"), "-m", "pip", "install", "-q", f"pip=={OLD_PIP}")
    if res.returncode:
        pytest.skip(f"the package index is out of reach: {res.stderr.strip()[-300:]}")
    return path / "bin" / "python"


def install_sdist(python) -> subprocess.CompletedProcess:
    res = run(str(python), "-m", "pip", "install", "--no-cache-dir", SDIST)  # no cache: it really builds
    assert res.returncode == 0, res.stderr[-2000:]
    return res


@pytest.mark.slow
def test_the_makefile_bootstrap_silences_the_legacy_install_warning(tmp_path):
    # Without the bootstrap line the old pip warns: what a new user read first.
    python = venv_with_old_pip(tmp_path / "without")
    res = install_sdist(python)
    assert "DEPRECATION" in res.stdout + res.stderr and "setup.py install" in res.stdout + res.stderr
    # With it, as `make` runs it (.venv/bin/python being this venv's), nothing of the kind.
    python = venv_with_old_pip(tmp_path / "with")
    line = bootstrap_line().replace("$(BIN)/python", str(python))
    res = run(*shlex.split(line))
    assert res.returncode == 0, res.stderr[-2000:]
    out = install_sdist(python)
    assert "DEPRECATION" not in res.stdout + res.stderr + out.stdout + out.stderr
