"""params.yaml is written in the style DVC writes it back, so `dvc exp run -S key=value`
changes exactly the line of that key (and a commit of the experiment carries no noise)."""

import difflib
import shutil

import pytest
import yaml

from conftest import ROOT


def overridden(tmp_path, *overrides: str) -> tuple[str, str]:
    """(params.yaml as committed, as `dvc exp run -S` leaves it): DVC's own function for -S,
    which rewrites the file through ruamel.yaml's round trip, on a copy."""
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    apply_overrides(path, list(overrides))
    return (ROOT / "params.yaml").read_text(), path.read_text()


def test_an_override_of_the_same_value_leaves_the_file_byte_for_byte(tmp_path):
    top_k = yaml.safe_load((ROOT / "params.yaml").read_text())["generate"]["top_k"]
    before, after = overridden(tmp_path, f"generate.top_k={top_k}")
    assert after == before


@pytest.mark.parametrize("override,line", [
    ("generate.top_k=10", "  top_k: 10 "),
    ("train.epochs=30", "  epochs: 30 "),
    ("prepare.stride=1", "  stride: 1 "),
    ("download.book=2701", "  book: 2701 "),
])
def test_an_override_changes_exactly_its_line(tmp_path, override, line):
    before, after = overridden(tmp_path, override)
    changed = [d for d in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
               if d[:1] in "+-" and d[:3] not in ("+++", "---")]
    assert len(changed) == 2 and changed[0].startswith("-") and changed[1].startswith("+" + line), changed
