"""run_stage's one-line answers to the disk errors a stage can meet."""

import subprocess
import sys
import textwrap

import pytest

from chargen.io import run_stage
from conftest import env_with_venv


def stage_error(capsys, error) -> list[str]:
    def main():
        raise error

    with pytest.raises(SystemExit) as stop:
        run_stage(main)
    assert stop.value.code == 1
    return capsys.readouterr().err.strip().splitlines()


def test_numpys_short_write_is_named_a_full_disk(capsys):
    # What np.save raises when the disk fills during the array's data: a bare OSError, no errno.
    err = stage_error(capsys, OSError("130377 requested and 16256 written"))
    assert err == ["error: the disk is full or over quota (a write stopped short: 130377 requested and "
                   "16256 written); free disk space, then run it again (dvc repro): the outputs already "
                   "there are kept"]
    # NumPy reserves space for an array of 16 MiB or more first, and says so in other words.
    err = stage_error(capsys, OSError("Not enough free space to write 20000000 bytes after offset 128"))
    assert len(err) == 1 and err[0].startswith("error: the disk is full or over quota") and "free disk space" in err[0]


def test_other_os_errors_keep_their_own_advice(capsys):
    assert stage_error(capsys, OSError("something else broke")) == [
        "error: something else broke; fix the cause, then run it again (dvc repro): the outputs "
        "already there are kept"]
    err = stage_error(capsys, PermissionError(13, "Permission denied", "models/best"))
    assert err[0].startswith("error: Permission denied (models/best); fix the permissions")


def test_a_real_short_write_from_numpy_is_named_a_full_disk(tmp_path):
    """A file-size limit stops NumPy's write short as a full disk would (no root needed): the
    stage says the disk is full, in one line, and leaves no output behind."""
    pytest.importorskip("resource")  # POSIX only
    script = textwrap.dedent(f"""
        import resource, signal
        import numpy as np
        from chargen.io import atomic_path, run_stage

        def main():
            with atomic_path({str(tmp_path / "train_ids.npy")!r}) as tmp:
                np.save(tmp, np.arange(130377, dtype=np.int32), allow_pickle=False)

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))
        run_stage(main)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env_with_venv(), timeout=60)
    err = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(err) == 1, res.stderr
    assert err[0].startswith("error: the disk is full or over quota (a write stopped short: 130377 requested and ")
    assert "free disk space, then run it again" in err[0]
    assert list(tmp_path.iterdir()) == []
