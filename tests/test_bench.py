"""The bench pipeline (bench/dvc.yaml) and the docs' tables rendered from its results files."""

import ast
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

sys.path.insert(0, str(ROOT))
from bench import quality, render  # noqa: E402
from bench.run_stages import apply  # noqa: E402
from chargen import params  # noqa: E402

BENCH = yaml.safe_load((ROOT / "bench/dvc.yaml").read_text())["stages"]
OWN = ("chargen", "bench", "stages")


def imported_modules(path):
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OWN:
            if node.module in OWN:
                found.update(f"{node.module}.{a.name}" for a in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] in OWN)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # code run in a subprocess: `python -m stages.x`, or a `-c` snippet importing chargen
            for word in node.value.replace(",", " ").split():
                if word.startswith(("stages.", "chargen.")) and word.replace(".", "").replace("_", "").isalnum():
                    found.add(word)
    return found


def closure(script):
    seen, todo = {script}, [ROOT / script]
    while todo:
        for mod in imported_modules(todo.pop()):
            rel = mod.replace(".", "/") + ".py"
            if rel not in seen and (ROOT / rel).is_file():
                seen.add(rel)
                todo.append(ROOT / rel)
    if any(s.startswith("chargen/") for s in seen):
        seen.add("chargen/__init__.py")
    if any(s.startswith("stages/") for s in seen):
        seen.add("stages/__init__.py")
    return seen


@pytest.mark.parametrize("stage", sorted(BENCH))
def test_bench_stage_deps_are_its_code(stage):
    """A benchmark re-runs when (and only when) code it runs changes."""
    spec = BENCH[stage]
    script = spec["cmd"].split()[1]
    listed = {d for d in spec["deps"] if d.endswith(".py")}
    assert listed | {"stages/__init__.py"} >= closure(script) - {"stages/__init__.py"}, "a module it imports is missing"
    assert listed <= closure(script) | {"stages/__init__.py"}, "a listed module is not imported"
    outs = [next(iter(o)) for o in spec["outs"]]
    assert outs == [f"bench/results/{stage}.json"] and f"--out {outs[0]}" in spec["cmd"]
    assert all(next(iter(o.values()))["cache"] is False for o in spec["outs"])


def test_results_files_name_their_machine():
    for stage in BENCH:
        rec = json.loads((ROOT / f"bench/results/{stage}.json").read_text())
        m = rec["machine"]
        assert m["cpu"] and m["cores"] >= 1 and m["blas"] and m["device"] and m["versions"]["numpy"]
        assert rec["commit"] and rec["figures"] and "params" in rec


def test_a_benchmark_writes_its_results_file(tmp_path):
    """What a stage runs, run for real (few repetitions): the file holds the machine and figures."""
    out = tmp_path / "blas.json"
    subprocess.run([sys.executable, "bench/blas_warmup.py", "--reps", "5", "--out", str(out)], cwd=ROOT,
                   check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    rec = json.loads(out.read_text())
    assert rec["machine"]["cores"] == os.cpu_count()
    assert rec["params"]["train.units"] == yaml.safe_load((ROOT / "params.yaml").read_text())["train"]["units"]
    assert [p["rows"] for p in rec["figures"]["products"]] == [16, 32, 64]
    assert not list(tmp_path.glob(".*.tmp"))


def test_committed_bench_results_are_up_to_date():
    """`dvc status bench/dvc.yaml` is clean: the committed figures come from the code and params
    committed beside them (after a change, `make bench`, then commit bench/results and bench/dvc.lock)."""
    res = subprocess.run([sys.executable, "-m", "dvc", "status", "bench/dvc.yaml"], cwd=ROOT, capture_output=True,
                         text=True)
    assert res.returncode == 0 and "changed" not in res.stdout, res.stdout


def test_committed_doc_tables_equal_their_files():
    renderers = render.renderers()
    for rel in render.DOCS:
        text = (ROOT / rel).read_text()
        new, unknown = render.render(text, renderers)
        assert not unknown, f"{rel}: tables without a renderer: {unknown}"
        assert new == text, f"{rel}: a table differs from its results files; run python bench/render.py"


def test_every_docs_table_is_rendered():
    """A table of figures outside the markers would be typed by hand: every Markdown table in
    the docs with a number in it sits between `<!-- table: ... -->` markers, except the
    parameter and stage reference tables (defaults and names, not measurements)."""
    reference = ("| stage |", "| key |", "| path        | param ")  # stages, params, a params diff
    for rel in render.DOCS:
        outside = render.MARKER.sub("", (ROOT / rel).read_text())
        for block in outside.split("\n\n"):
            lines = [ln for ln in block.splitlines() if ln.startswith("|")]
            if len(lines) > 2 and not lines[0].lower().startswith(reference):
                body = "\n".join(lines[2:])
                assert not any(ch.isdigit() for ch in body.replace("`", "")), f"{rel}: a hand-typed table: {lines[0]}"


def test_render_follows_the_files(tmp_path, monkeypatch):
    """Changing a results file changes the rendered doc, and --check then fails until rendered."""
    for rel in ("bench/results/quality", "metrics", "bench/results/h100-jax"):
        shutil.copytree(ROOT / rel, tmp_path / rel)
    for rel in ["params.yaml", "dvc.yaml", "bench/results/levers.json", *render.DOCS] + [
            f"bench/results/{s}.json" for s in BENCH]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    monkeypatch.setattr(render, "ROOT", tmp_path)
    assert render.main(["--check"]) == 0
    moby = tmp_path / "bench/results/quality/moby-dick.json"
    rec = json.loads(moby.read_text())
    rec["figures"]["moby-dick"]["eval"]["lstm"] = 1.2345
    moby.write_text(json.dumps(rec))
    assert render.main(["--check"]) == 1
    assert render.main([]) == 0
    assert "| 1.234 |" in (tmp_path / "docs/results.md").read_text() or "| 1.235 |" in (tmp_path / "docs/results.md").read_text()
    assert render.main(["--check"]) == 0


@pytest.mark.parametrize("name", sorted(quality.CONFIGS))
def test_every_quality_configuration_is_valid_params(tmp_path, name):
    """bench/quality.py's configurations (the hour recipe among them, whose command the docs
    render) are params chargen accepts: a misspelt key would otherwise surface an hour in."""
    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    apply(quality.CONFIGS[name], path)
    params.load(path)
