"""CI as users get it: the GitHub workflow lints, runs the same script and test command as a
local CI run, and its report script works on a real (tiny) pipeline run."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT, dvc, env_with_venv, git

WORKFLOW = ROOT / ".github/workflows/ci.yml"


def actionlint() -> Path:
    """The actionlint binary that `make setup` installs beside this Python (requirements-dev.txt)."""
    path = Path(sys.executable).parent / "actionlint"
    assert path.is_file(), f"{path} is missing: run `make setup` (it installs requirements-dev.txt)"
    return path


def commands(script: str) -> list[list[str]]:
    """The words of each command line of a shell script, comments and blank lines left out."""
    lines = [line.split(" #")[0].strip() for line in script.splitlines()]
    return [shlex.split(line) for line in lines if line and not line.startswith("#")]


def steps() -> list[dict]:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]["ci"]["steps"]


def readme_test_command() -> list[str]:
    """The README's test command: the Quick start line that runs the whole test suite."""
    quick_start = (ROOT / "README.md").read_text().split("## Quick start")[1].split("\n## ")[0]
    line = next(line for line in quick_start.splitlines() if "the whole test suite" in line)
    return shlex.split(line.split("#")[0])


def test_actionlint_accepts_the_workflow(tmp_path):
    res = subprocess.run([actionlint(), WORKFLOW], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    # ... and it does lint: an input that the action does not have is refused.
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("fetch-depth: 0", "fetch-deep: 0"))
    res = subprocess.run([actionlint(), broken], capture_output=True, text=True)
    assert res.returncode != 0 and "fetch-deep" in res.stdout


def test_workflow_runs_the_ci_script_then_the_report():
    on = yaml.safe_load(WORKFLOW.read_text())[True]  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request"} <= set(on)
    runs = [commands(s["run"]) for s in steps() if "run" in s]
    ci = [i for i, block in enumerate(runs) if ["bash", ".ci/run"] in block]
    report = [i for i, block in enumerate(runs) if any(cmd[0] == ".ci/report" for cmd in block)]
    assert ci and report, "the workflow must run `bash .ci/run`, then `.ci/report`"
    ci, report = ci[0], report[0]
    assert ci < report
    assert (ROOT / ".ci/run").stat().st_mode & 0o111 and (ROOT / ".ci/report").stat().st_mode & 0o111
    # The report is what the pull-request comment posts, with the workflow's own token.
    comment = next(s for s in steps() if "cml comment create" in s.get("run", ""))
    assert commands(comment["run"]) == [["cml", "comment", "create", "report.md"]]
    assert "pull_request" in comment["if"] and "secrets.GITHUB_TOKEN" in comment["env"]["REPO_TOKEN"]
    report_cmd = next(cmd for cmd in runs[report] if cmd[0] == ".ci/report")
    assert report_cmd[report_cmd.index("--output") + 1] == "report.md"
    assert yaml.safe_load(WORKFLOW.read_text())["permissions"]["pull-requests"] == "write"


def test_ci_script_runs_the_readme_test_command_then_the_reduced_pipeline():
    test_command = readme_test_command()
    assert test_command == ["make", "test"]  # the Makefile target the README documents
    assert re.search(r"^test:", (ROOT / "Makefile").read_text(), re.M)
    script = commands((ROOT / ".ci/run").read_text())
    assert test_command in script
    exp_run = next(i for i, cmd in enumerate(script) if cmd[:3] == ["dvc", "exp", "run"])
    assert script.index(test_command) < exp_run
    assert ".ci/reduced-params.txt" in (ROOT / ".ci/run").read_text()


def test_report_help_and_refusals(tmp_path):
    res = subprocess.run([sys.executable, ROOT / ".ci/report", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "--base" in res.stdout and "--output" in res.stdout
    res = subprocess.run([sys.executable, ROOT / ".ci/report", "--output", tmp_path / "no/such/report.md"],
                         capture_output=True, text=True, env=env_with_venv())
    assert res.returncode == 1 and res.stderr.startswith("error: the folder of --output")
    assert len(res.stderr.strip().splitlines()) == 1


def report(project: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, project / ".ci/report", *args], cwd=project, capture_output=True,
                          text=True, env=env_with_venv(), timeout=300)


def section(text: str, title: str) -> str:
    return text.split(f"## {title}")[1].split("\n## ")[0]


def test_report_of_an_experiment_against_the_committed_run(project, tmp_path):
    out = tmp_path / "out" / "report.md"
    out.parent.mkdir()
    # Where no pipeline has run: one line, and no report.
    res = report(project, "--output", out)
    assert res.returncode == 1 and not out.exists()
    assert res.stderr.strip().splitlines() == [res.stderr.strip()] and "no finished pipeline run" in res.stderr

    dvc(project, "repro")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "baseline run")
    res = report(project, "--base", "no-such-branch", "--output", out)
    assert res.returncode == 1 and "--base no-such-branch is not a commit" in res.stderr and not out.exists()

    dvc(project, "exp", "run", "-S", "train.units=24")
    res = report(project, "--output", out)
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    params = section(text, "Params diff")
    assert re.search(r"\|\s*train\.units\s*\|\s*16\s*\|\s*24\s*\|", params)
    metrics = section(text, "Metrics diff")
    assert "metrics/eval.json" in metrics and "lstm" in metrics and "val_bpc" in metrics
    assert "metrics/generate.json" in section(text, "Sample quality diff")
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert len(images) == 2
    for name in images:
        assert (out.parent / name).read_bytes().startswith(b"<?xml")  # the figures stage's SVGs
    samples = section(text, "Generated text")
    assert samples.count("```text") == 3  # the first sample of each of the three temperatures
