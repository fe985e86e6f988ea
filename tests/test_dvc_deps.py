"""dvc.yaml lists, for each stage, every chargen module its script can import (lazy imports
included), so editing a module re-runs exactly the stages that use it."""

import ast

import pytest
import yaml

from conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def chargen_imports(path):
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chargen"):
            if node.module == "chargen":
                found.update(f"chargen.{a.name}" for a in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("chargen"))
    return found


def module_closure(script):
    seen, todo = {"chargen/__init__.py"}, [ROOT / script]
    while todo:
        for mod in chargen_imports(todo.pop()):
            rel = mod.replace(".", "/") + ".py"
            if rel not in seen:
                seen.add(rel)
                todo.append(ROOT / rel)
    return seen


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_are_exact(stage):
    spec = STAGES[stage]
    script = f"stages/{stage}.py"
    assert spec["cmd"] == f"python -m stages.{stage}" and script in spec["deps"]
    listed = {d for d in spec["deps"] if d.startswith("chargen/")}
    assert listed == module_closure(script)
