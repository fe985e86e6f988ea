"""The Python API (chargen.api), the generate CLI built on it and the scoring command, on tiny
random models saved as model folders."""

import json
import subprocess
import sys

import numpy as np
import pytest

from chargen import api, bundle, evaluate, ngram, sampling
from chargen.io import ChargenError
from conftest import ROOT, env_with_venv
from test_sampling import random_model

VOCAB = sorted("\n abcdehilnorst.")  # 16 characters, ASCII


TRAIN_TEXT = "the hare sat on the cob. linda said no to the hare.\n" * 20


def random_bundle(folder, seed=0, train_text=TRAIN_TEXT, **cfg):
    """A model folder like models/best holding a random model over VOCAB (and, unless
    train_text is None, the training text the n-gram model counts)."""
    import test_sampling

    old, test_sampling.V = test_sampling.V, len(VOCAB)
    try:
        m = random_model(seed, **cfg)
    finally:
        test_sampling.V = old
    ids = None if train_text is None else np.array([VOCAB.index(c) for c in train_text], np.uint8)
    bundle.save_bundle(folder, m, VOCAB, {"seq_length": 20, "lowercase": True, "fold_typography": True},
                       train_ids=ids)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return random_bundle(tmp_path_factory.mktemp("api") / "best", layers=2, units=16)


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env_with_venv(), **kw)


@pytest.mark.parametrize("method", ["stateful", "window"])
def test_stream_is_generate_one_character_at_a_time(model_dir, method):
    m = api.load(model_dir)
    kw = dict(length=30, temperature=0.9, top_k=5, top_p=0.95, seed=4, method=method)
    batch = m.generate("The hare said", samples=3, **kw)
    # Sample i of a batch is the stream seeded seed + i; prompts are lowercased like the training text.
    for i, text in enumerate(batch):
        chunks = list(m.stream("the hare said", **dict(kw, seed=4 + i)))
        assert all(len(c) == 1 for c in chunks) and "".join(chunks) == text
    # The batch path is the sampler the stage always used: by default the LSTM mixed with the n-gram.
    mixed = ngram.MixedStep(m.step, ngram.TrainCounts(m.train_ids, 6, len(VOCAB)), 0.25)
    ids = sampling.sample_stateful(mixed, np.tile(m.encode("the hare said"), (3, 1)), 30, temperature=0.9,
                                   top_k=5, top_p=0.95, seed=4)
    assert batch == [m.decode(r) for r in ids] or method == "window"


def test_ngram_weight_zero_is_the_lstm_alone_and_the_mixture_differs(model_dir):
    m = api.load(model_dir)
    prompts = np.tile(m.encode("the hare said"), (4, 1))
    alone = sampling.sample_stateful(m.step, prompts, 200, temperature=1.0, seed=1)
    assert m.generate("the hare said", samples=4, length=200, temperature=1.0, seed=1, ngram_weight=0) == \
        [m.decode(r) for r in alone]
    mixed = m.generate("the hare said", samples=4, length=200, temperature=1.0, seed=1)
    assert mixed != [m.decode(r) for r in alone]
    assert mixed == m.generate("the hare said", samples=4, length=200, temperature=1.0, seed=1)
    # The n-gram pulls the random network towards the training text's words.
    words = set(TRAIN_TEXT.split())
    share = [np.mean([w in words for w in " ".join(texts).split()]) for texts in (mixed, [m.decode(r) for r in alone])]
    assert share[0] > share[1], share


def test_a_folder_without_training_text_samples_from_the_lstm_alone_only(tmp_path):
    m = api.load(random_bundle(tmp_path / "old", train_text=None))
    with pytest.raises(ChargenError, match="holds no training text.*dvc repro -f select"):
        m.generate("the")
    assert len(m.generate("the", ngram_weight=0, length=10)[0]) == 10
    assert len(m.generate("the", method="window", length=10)[0]) == 10


def test_controls_and_prompts_are_checked(model_dir):
    m = api.load(model_dir)
    with pytest.raises(ChargenError, match="outside the model's vocabulary: '€'"):
        m.generate("the €")
    with pytest.raises(ChargenError, match=r"^temperature must be a number >= 0 \(0 = greedy\), got -1$"):
        m.generate("the", temperature=-1)
    for bad in (float("nan"), float("inf")):  # nan printed only newlines, inf uniform noise
        with pytest.raises(ChargenError, match=f"temperature must be a number >= 0 .*got {bad}"):
            m.generate("the", temperature=bad)
    with pytest.raises(ChargenError, match="seed must be at least 0, got -1"):
        list(m.stream("the", seed=-1))
    with pytest.raises(ChargenError, match="method must be one of"):
        list(m.stream("the", method="beam"))


def test_score_is_the_evaluate_stage_figure(model_dir):
    m = api.load(model_dir)
    text = "the hare sat on the cob. linda said no.\n" * 3
    s = m.score(text.upper())  # scored as the model reads it: lowercased
    assert s.text == text and len(s.surprisal) == len(text) and np.isnan(s.surprisal[0])
    ids = m.encode(text)
    bpc, n = evaluate.model_bpc(m.step, ids)
    assert n == len(text) - 1 and abs(s.bpc - bpc) < 1e-9 and (s.surprisal[1:] > 0).all()
    probs = evaluate.model_probs(m.step, ids)
    np.testing.assert_allclose(s.surprisal[1:], -np.log2(probs[np.arange(n), ids[1:]]), rtol=1e-9)


def test_score_cli_writes_the_html_view(model_dir, tmp_path):
    (tmp_path / "t.txt").write_text("the hare & the <tortoise> said no.\n" * 50)
    out = tmp_path / "view.html"
    res = run("chargen.score", "--model", str(model_dir), "--text", str(tmp_path / "t.txt"), "--html", str(out),
              "--limit", "100")
    assert res.returncode == 0 and json.loads(res.stdout)["chars_skipped"] == 3 * 50  # & < > are not in VOCAB
    (tmp_path / "t.txt").write_text("the hare said no.\n" * 50)
    res = run("chargen.score", "--model", str(model_dir), "--text", str(tmp_path / "t.txt"), "--html", str(out),
              "--limit", "100")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["chars_scored"] == 18 * 50 - 1
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "bits</span>" in page and "the first 100 of 900" in page
    assert page.count('<span class="b') == 99 + 7 and page.count('<span class="na">') == 2  # 7 legend bins


@pytest.mark.parametrize("flag,value,message", [
    ("--length", "0", "--length must be at least 1, got 0"),
    ("--length", "-5", "--length must be at least 1, got -5"),
    ("--temperature", "-1", "--temperature must be a number >= 0 (0 = greedy), got -1.0"),
    ("--temperature", "nan", "--temperature must be a number >= 0 (0 = greedy), got nan"),
    ("--temperature", "inf", "--temperature must be a number >= 0 (0 = greedy), got inf"),
    ("--top-p", "0", "--top-p must be above 0 and at most 1 (1 = off), got 0.0"),
    ("--seed", "-1", "--seed must be at least 0, got -1"),
    ("--ngram-weight", "1", "--ngram-weight must be at least 0 and below 1 (0 = the LSTM alone), got 1.0"),
])
def test_generate_cli_names_the_flag_and_value_at_fault_before_printing_anything(model_dir, flag, value, message):
    res = run("chargen.generate", "--model", str(model_dir), "--prompt", "the hare", flag, value)
    assert res.returncode == 1 and res.stdout == "" and res.stderr == f"error: {message}\n"


def test_generate_cli_streams_shows_prompt_and_help(model_dir):
    cli = ["chargen.generate", "--model", str(model_dir), "--length", "40"]
    help_text = run("chargen.generate", "--help").stdout
    for opt in ("--temperature", "--top-k", "--top-p", "--length", "--samples", "--seed", "--method",
                "--show-prompt", "--interactive", "--ngram-weight", "--ngram-order"):
        assert opt in help_text
    assert help_text.count("(default:") >= 10
    res = run(*cli, "--prompt", "The Hare", "--seed", "3")
    expect = api.load(model_dir).generate("the hare", length=40, seed=3)[0]
    assert res.returncode == 0 and res.stdout == "the hare" + expect + "\n"
    res = run(*cli, "--prompt", "the hare", "--seed", "3", "--no-show-prompt", "--samples", "2")
    assert res.stdout.splitlines()[:2] == ["--- sample 1 (seed 3)", expect.split("\n")[0]]
    res = run(*cli, "--interactive", input="alice\nthe queen\n")
    assert res.returncode == 0 and "=== answer 1 to prompt 'alice'" in res.stdout
    assert "=== answer 2 to prompt 'the queen'" in res.stdout and "alice" in res.stdout.split("=== answer 2")[0]
