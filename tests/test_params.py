import copy

import pytest
import yaml

from chargen import params
from chargen.io import ChargenError
from conftest import ROOT

DEFAULT = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_change(section, key, value):
    p = copy.deepcopy(DEFAULT)
    if section is None:
        p[key] = value
    else:
        p[section][key] = value
    return p


def test_committed_params_are_valid():
    assert params.load(ROOT / "params.yaml") == DEFAULT


@pytest.mark.parametrize("section,key,value,expect", [
    ("train", "epochs", -1, "train.epochs = -1"),
    ("train", "epochs", "ten", "train.epochs = 'ten'"),
    ("train", "dropout", 1.5, "train.dropout = 1.5"),
    ("prepare", "seq_length", 0, "prepare.seq_length = 0"),
    ("prepare", "val_fraction", 1, "prepare.val_fraction = 1"),
    ("prepare", "lowercase", "yes", "true or false"),
    ("train", "objective", "all", "'sequence' or 'last'"),
    ("download", "url", "ftp://x/{id}", "http(s) URL"),
    ("download", "sha256", "abc", "sha256"),
    ("generate", "temperature", -0.5, "generate.temperature"),
    ("generate", "temperature", [], "generate.temperature"),
    (None, "seed", 1.5, "seed = 1.5"),
    ("download", "text", "file:///etc/passwd", "download.text = 'file:///etc/passwd'"),
    ("download", "extra_texts", ["s3://bucket/a.txt"], "paths or http(s) URLs"),
    ("prepare", "encoding", "klingon-8", "a text encoding"),
    ("prepare", "encoding", "undefined", "prepare.encoding = 'undefined' is not allowed; use a text encoding"),
    ("evaluate", "dynamic_lr", -0.1, "evaluate.dynamic_lr = -0.1"),
    ("evaluate", "dynamic_segment", 0, "evaluate.dynamic_segment = 0"),
    ("evaluate", "ngram_order", -1, "evaluate.ngram_order = -1"),
    ("evaluate", "mix_lr", "fast", "evaluate.mix_lr = 'fast'"),
])
def test_bad_values_name_key_value_and_what_is_allowed(section, key, value, expect):
    with pytest.raises(ChargenError) as e:
        params.validate(with_change(section, key, value))
    assert expect in str(e.value)
    assert "\n" not in str(e.value)


def test_typo_in_section_suggests_the_right_one():
    p = copy.deepcopy(DEFAULT)
    p["trian"] = p.pop("train")
    with pytest.raises(ChargenError, match="unknown key 'trian'; did you mean 'train'"):
        params.validate(p)


def test_typo_in_key_suggests_the_right_one():
    p = with_change("train", "epoch", 3)
    with pytest.raises(ChargenError, match=r"unknown key 'train.epoch'; did you mean 'epochs'"):
        params.validate(p)


def test_missing_key():
    p = copy.deepcopy(DEFAULT)
    del p["train"]["units"]
    with pytest.raises(ChargenError, match="lacks units"):
        params.validate(p)


def with_changes(**dotted) -> dict:
    """The committed params with {"section__key": value} changes."""
    p = copy.deepcopy(DEFAULT)
    for name, value in dotted.items():
        section, key = name.split("__")
        p[section][key] = value
    return p


@pytest.mark.parametrize("changes, message", [
    (dict(prepare__stride=500), "stride = 500 is larger than prepare.seq_length"),
    (dict(generate__prompt="alice", generate__prompt_file="texts/prompt.txt"),
     "prompt and generate.prompt_file are both set"),
    (dict(train__objective="last", train__batches="streams"),
     "streams needs train.objective: sequence; set train.batches: windows"),
    (dict(train__strategy="mirrored", train__batches="streams"),
     "streams runs on one device only; set train.batches: windows"),
    (dict(train__weight_drop=0.3, prepare__seq_length=100),
     "weight_drop needs prepare.seq_length <= 64 \\(got 100\\); lower seq_length or set train.weight_drop: 0"),
])
def test_conflicting_settings_name_the_fix(changes, message):
    with pytest.raises(ChargenError, match=message):
        params.validate(with_changes(**changes))


def test_numbers_and_lists_accepted():
    params.validate(with_change("generate", "temperature", [0, 0.5, 1]))
    params.validate(with_change("train", "learning_rate", 1))  # an int where a float is expected
    params.validate(with_change("download", "sha256", {11: "a" * 64}))
    params.validate(with_changes(train__strategy="mirrored", train__batches="windows"))


def test_bad_yaml_is_one_line(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("train:\n  epochs: [1,\n")
    with pytest.raises(ChargenError, match="not valid YAML at line"):
        params.load(f)
    with pytest.raises(ChargenError, match="not found"):
        params.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize("stage,change", [
    ("train", ("train", "epochs", -1)),
    ("generate", ("generate", "top_p", 0)),
    ("prepare", ("prepare", "encoding", "hex")),
])
def test_a_stage_run_alone_refuses_bad_params_in_one_line(tmp_path, stage, change):
    """`dvc repro -s train` runs no check_params: the stage itself refuses, before any work."""
    import subprocess
    import sys

    from conftest import env_with_venv

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_change(*change)))
    env = dict(env_with_venv(), PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-m", f"stages.{stage}"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert lines[0].startswith(f"error: params.yaml: {change[0]}.{change[1]} = "), lines[0]
    assert list(tmp_path.iterdir()) == [tmp_path / "params.yaml"]  # nothing written


def test_hex_is_a_codec_but_not_a_text_encoding():
    with pytest.raises(ChargenError, match="prepare.encoding = 'rot13' is not allowed; use a text encoding"):
        params.validate(with_change("prepare", "encoding", "rot13"))
    params.validate(with_change("prepare", "encoding", "cp1252"))


def test_an_unquoted_sha256_pin_is_said_to_need_quotes(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("sha256: ''", "sha256: " + "0" * 64, 1)
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ChargenError) as e:
        params.load(tmp_path / "params.yaml")
    assert "download.sha256 = 0 is a number" in str(e.value) and "in quotes" in str(e.value)
