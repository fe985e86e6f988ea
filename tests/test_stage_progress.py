"""Select and evaluate say up front what they will do, then where they are, as train does."""

import re
import shutil

import yaml

from chargen import train
from conftest import tiny_params


def test_select_and_evaluate_say_what_they_do_and_where_they_are(tmp_path, dataset, monkeypatch, capsys):
    from stages import evaluate as evaluate_stage
    from stages import select as select_stage

    p = tiny_params()
    p["train"].update(epochs=3)
    p["evaluate"].update(dynamic_segment=32)
    (tmp_path / "proj" / "data" / "prepared").mkdir(parents=True)
    shutil.copy(dataset, tmp_path / "proj" / "data" / "prepared" / "dataset.npz")
    (tmp_path / "proj" / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    monkeypatch.chdir(tmp_path / "proj")
    train.train(p["train"], p["seed"], select_stage.DATASET, select_stage.CKPT, log=lambda *_: None)
    capsys.readouterr()

    select_stage.main()
    lines = capsys.readouterr().out.splitlines()
    held_out = len(__import__("numpy").load(dataset)["val_ids"])
    assert lines[0] == f"re-scoring 3 checkpoints on {held_out:,} held-out chars (16 streams, the state carried)"
    assert [re.sub(r":.*", "", line) for line in lines[1:4]] == [
        "  checkpoint 1/3 (epoch 1)", "  checkpoint 2/3 (epoch 2)", "  checkpoint 3/3 (epoch 3)"]
    assert lines[-1].startswith("selected epoch ")

    evaluate_stage.main()
    lines = capsys.readouterr().out.splitlines()
    chars = held_out - 1
    assert lines[0] == f"scoring models/best on {chars:,} held-out chars, read as one stream (the state carried)"
    said = lines.index(f"dynamic evaluation: {-(-chars // 32)} segments of 32 chars, the model taking an SGD step "
                       f"(evaluate.dynamic_lr {p['evaluate']['dynamic_lr']}) after scoring each")
    where = [line for line in lines[said + 1:] if line.startswith("  segment ")]
    assert 5 <= len(where) <= 11 and where[-1].startswith(f"  segment {-(-chars // 32)}/{-(-chars // 32)}, ")
    assert any(line.startswith("  char ") for line in lines[1:said])  # the static pass says where it is too
