"""The README's commands, run as a new user runs them: a `git clone`, an empty HOME with no git
identity, no virtualenv active, and a `python` first on PATH that is not the project's (a shim
that fails), so nothing the test process set up for itself can stand in for what a user lacks.

Only the params are tiny (a user tunes params.yaml too), and the mirror is the `mirror` fixture
at the committed relative place, ../shared/corpus.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import AUTHOR, ROOT, clone_project, git, tiny_params

pytestmark = pytest.mark.slow


def readme_blocks(section: str) -> list[list[str]]:
    """The command lines of each fenced code block under a README `## section` heading, with
    trailing `# comments` removed."""
    text = (ROOT / "README.md").read_text()
    body = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## )", text, re.S | re.M).group(1)
    blocks = []
    for lang, code in re.findall(r"^```(\w*)\n(.*?)^```", body, re.S | re.M):
        if lang == "python":
            blocks.append([code])
        else:
            lines = [re.sub(r"\s+#\s.*$", "", line).strip() for line in code.splitlines()]
            blocks.append([line for line in lines if line and not line.startswith("$")])
    return blocks


def user_env(tmp_path: Path) -> dict:
    """What a user's shell has: an empty HOME, PATH without any virtualenv and with a broken
    `python` and `python3` first, no VIRTUAL_ENV, PYTHONPATH or TF_CPP_MIN_LOG_LEVEL."""
    home, shims = tmp_path / "home", tmp_path / "shims"
    home.mkdir()
    shims.mkdir()
    for name in ("python", "python3"):
        shim = shims / name
        shim.write_text("#!/bin/sh\necho \"$0: this python is not the project's\" >&2\nexit 3\n")
        shim.chmod(0o755)
    system = [d for d in ("/usr/local/bin", "/usr/bin", "/bin") if Path(d).is_dir()]
    return {"HOME": str(home), "PATH": os.pathsep.join([str(shims), *system]), "LANG": "C.UTF-8"}


def sh(cmd: str, cwd: Path, env: dict, stdin: str = "", timeout: int = 900):
    res = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, input=stdin, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd!r} exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture
def user_clone(tmp_path, mirror):
    """A clone with tiny params and no git identity; its .venv is the test run's own
    environment (a link), so `make` checks it against requirements.txt without downloading."""
    if sys.prefix == sys.base_prefix:
        pytest.fail("run the tests from the project's virtualenv (make test), which this test reuses")
    dest = clone_project(tmp_path / "proj", identity=False)
    params = tiny_params()
    params["download"]["cache_dir"] = "~/.cache/chargen"  # as committed: the user's (empty) HOME
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(dest, *AUTHOR, "commit", "-qam", "tiny params")
    (dest / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    # The linked environment is installed and current: make must not reinstall from the clone,
    # which would point the test run's own editable chargen at this temporary folder.
    (dest / ".venv/.installed").touch()
    return dest


def test_readme_commands_work_for_a_new_user(user_clone, tmp_path):
    env = user_env(tmp_path)
    first = readme_blocks("Quick start")[0]
    assert first[0] == "make repro", first

    # The shim really is first on PATH: a stage started with it fails.
    assert subprocess.run(["bash", "-c", "python -c 1"], env=env, capture_output=True).returncode == 3
    assert subprocess.run(["git", "config", "user.email"], cwd=user_clone, env=env).returncode != 0

    out = sh(first[0], user_clone, env).stdout
    assert "git has no identity here" in out
    for path in ("models/best/model.keras", "samples/samples.txt", "metrics/eval.json",
                 "metrics/generate.json", "docs/img/loss.svg", "docs/img/quality.svg"):
        assert (user_clone / path).is_file(), path
    lstm = json.loads((user_clone / "metrics/eval.json").read_text())["lstm"]
    assert 0 < lstm < 8
    status = sh(". .venv/bin/activate && dvc status dvc.yaml", user_clone, env).stdout
    assert "Data and pipelines are up to date" in status

    # Then, as the README says: activate, and the tuning workflow as written (placeholders aside).
    tuning = [c for c in readme_blocks("Tuning workflow")[0] if "<" not in c]
    assert tuning[0].startswith("dvc exp run -S ")
    out = sh(" && ".join([". .venv/bin/activate", *tuning]), user_clone, env).stdout
    key = tuning[0].split("-S ", 1)[1].split("=")[0]
    assert key in out  # exp show --only-changed lists the param that the experiment changed

    # The model's command line and Python API, as written.
    use = readme_blocks("Use the model")
    generate, interactive = use[0]
    out = sh(f". .venv/bin/activate && {generate}", user_clone, env).stdout
    assert out.startswith("alice was") and len(out) > 100
    out = sh(f". .venv/bin/activate && {interactive}", user_clone, env, stdin="the queen\n").stdout
    assert "the queen" in out
    out = sh(". .venv/bin/activate && python -", user_clone, env, stdin=use[1][0]).stdout  # as typed into python
    assert float(out.strip().splitlines()[-1]) > 0
    # chargen is an installed package: the snippet saved as a script in another folder runs too.
    script = tmp_path / "elsewhere" / "use_chargen.py"
    script.parent.mkdir()
    script.write_text(use[1][0].replace('"models/best"', repr(str(user_clone / "models/best"))))
    out = sh(f". {user_clone}/.venv/bin/activate && python {script}", script.parent, env).stdout
    assert float(out.strip().splitlines()[-1]) > 0
