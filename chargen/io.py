"""Small shared helpers: the user-error type, atomic writes, JSON, stage entry points."""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path


class ChargenError(Exception):
    """A user mistake (bad params, bad input). Printed as one line by `run_stage`."""


SOURCE_SCHEMES = ("http", "https")  # text sources: these URLs, or a local path (no scheme)


def scheme(source: str) -> str:
    """The URL scheme of a text source, lowercased; '' for a local path."""
    return source.split("://", 1)[0].lower() if "://" in source else ""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    Works for files and directories. A crash leaves the old output (or none), never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Temporaries of this output left by a killed run: one writer per output, so they are stale.
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if not target.exists():
            raise RuntimeError(f"nothing was written to {target}")
        if path.is_dir() and not path.is_symlink():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            target.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChargenError(f"{path} does not exist: run the stage that makes it (dvc repro)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChargenError(f"{path} is corrupt ({exc}): delete it and run dvc repro") from None


def project_root(cwd: Path | None = None) -> Path:
    """The user's project folder, also when DVC runs a stage in an experiment's temporary copy.

    Queued and `--temp` experiments run in `<project>/.dvc/tmp/exps/<tmp>/` (any depth below
    `exps`), a git checkout of the project; from there `..` is no longer the project's parent.
    """
    here = (cwd or Path.cwd()).resolve()
    for parent in here.parents:
        if parent.name == "exps" and parent.parent.name == "tmp" and parent.parent.parent.name == ".dvc":
            return parent.parent.parent.parent
    return here


def params_path(value: str, cwd: Path | None = None) -> Path:
    """A path from params.yaml as the user meant it, wherever DVC runs the stage.

    `~` is expanded. A relative path inside the project (texts/notes.md) is read in the folder
    the stage runs in: in an experiment's copy that is the experiment's own version of the file.
    A relative path that leaves the project (../shared/corpus) is taken from the user's project
    folder, so an experiment finds the same mirror or text as `dvc repro` does.
    """
    path = Path(os.path.expanduser(value))
    if path.is_absolute():
        return path
    here = (cwd or Path.cwd()).resolve()
    if (here / path).resolve().is_relative_to(here):
        return here / path
    return project_root(here) / path


# NumPy's messages for a binary write that stopped short (np.save of a large array): the C
# library's write error number is lost, so the OSError carries no errno, only these words.
SHORT_WRITE = re.compile(r"\d+ requested and \d+ written|Not enough free space to write")


def is_short_write(exc: OSError) -> bool:
    """A write that stopped short: on a regular file, a full disk or a quota."""
    return exc.errno is None and bool(SHORT_WRITE.search(str(exc)))


def os_error_advice(exc: OSError) -> tuple[str, str]:
    """(what went wrong, what to do) for an OSError, in a user's words."""
    if is_short_write(exc):
        return f"the disk is full or over quota (a write stopped short: {exc})", "free disk space"
    fix = {errno.ENOSPC: "free disk space", errno.EDQUOT: "free disk space",
           errno.EACCES: "fix the permissions", errno.EPERM: "fix the permissions",
           errno.EROFS: "make that folder writable"}.get(exc.errno, "fix the cause")
    return str(exc.strerror or exc), fix


def run_stage(main) -> None:
    """Run a stage's `main()`; turn a ChargenError, or an OSError such as a full disk, into one
    line on stderr and exit status 1 (outputs are written atomically, so the old ones remain)."""
    try:
        main()
    except ChargenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # a full disk, a read-only or unwritable folder, wherever it happens
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        problem, fix = os_error_advice(exc)
        print(f"error: {problem}{where}; {fix}, then run it again "
              f"(dvc repro): the outputs already there are kept", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
