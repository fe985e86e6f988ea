"""Scoring any text: characters outside the model's vocabulary are skipped (not scored, the model
reads the text without them), and only a text with nothing to score is refused."""

import json
import subprocess
import sys

import numpy as np
import pytest

from chargen import api
from chargen.io import ChargenError
from conftest import ROOT, env_with_venv
from test_api import random_bundle

TEXT = "The hare & the <tortoise> said: no.\n" * 3  # & < > : are outside the model's vocabulary


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return random_bundle(tmp_path_factory.mktemp("score") / "best", units=16)


def test_characters_outside_the_vocabulary_are_skipped_as_if_the_text_had_none(model_dir):
    m = api.load(model_dir)
    s = m.score(TEXT)
    assert s.text == TEXT.lower()  # normalised as the training text was, nothing dropped
    outside = np.array([c not in m.vocab for c in s.text])
    assert s.skipped == outside.sum() == 4 * 3 and np.isnan(s.surprisal[outside]).all()
    # The state goes from the character before a skipped one to the one after: every read
    # character scores exactly as in the text with the skipped ones removed.
    without = m.score("".join(c for c in s.text if c in m.vocab))
    assert without.skipped == 0
    np.testing.assert_array_equal(s.surprisal[~outside], without.surprisal)
    assert s.bpc == without.bpc and np.isfinite(s.bpc)
    assert np.isnan(s.surprisal[0]) and np.isfinite(s.surprisal[~outside][1:]).all()


def test_only_a_text_with_nothing_to_score_is_refused(model_dir):
    m = api.load(model_dir)
    for text in ("", "€", "&<>", "€a&"):  # the first character read is not scored: it needs two
        with pytest.raises(ChargenError, match="^text has nothing to score: "):
            m.score(text)
    s = m.score("€a&b")
    assert s.skipped == 2 and np.isnan(s.surprisal[:3]).all() and s.bpc == s.surprisal[3]


def score_cli(*args):
    return subprocess.run([sys.executable, "-m", "chargen.score", *args], cwd=ROOT, capture_output=True,
                          text=True, env=env_with_venv(), timeout=300)


def test_score_cli_says_what_it_skipped_and_greys_it(model_dir, tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    out = tmp_path / "view.html"
    res = score_cli("--model", str(model_dir), "--text", str(tmp_path / "t.txt"), "--html", str(out))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"bpc": round(api.load(model_dir).score(TEXT).bpc, 4),
                                      "chars_scored": len(TEXT) - 12 - 1, "chars_skipped": 12}
    assert res.stderr.splitlines() == [f"note: 12 of the {len(TEXT)} characters are outside the model's "
                                       "vocabulary ('&', ':', '<', '>') and not scored: the model reads the "
                                       "text without them"]
    page = out.read_text()
    assert "12 characters outside the model's vocabulary are not scored (grey)" in page
    assert page.count('<span class="na">') == 12 + 1 + 1  # skipped, the first character, the legend
    # Nothing to score: one line, and no page.
    (tmp_path / "none.txt").write_text("<&>\n")
    res = score_cli("--model", str(model_dir), "--text", str(tmp_path / "none.txt"), "--html", str(tmp_path / "n.html"))
    assert res.returncode == 1 and res.stdout == "" and not (tmp_path / "n.html").exists()
    assert res.stderr.startswith("error: text has nothing to score: 1 of its 4 characters") and \
        len(res.stderr.splitlines()) == 1
