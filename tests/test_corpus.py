import pytest

from chargen.corpus import check_payload, clean, decode, normalise, strip_gutenberg
from chargen.io import ChargenError
from conftest import gutenberg


def test_strips_new_and_old_markers():
    for style in ("new", "old"):
        text = gutenberg("Alice was here.\n", style=style)
        assert strip_gutenberg(text, "x") == "Alice was here.\n"


def test_missing_or_truncated_markers_are_clear_errors():
    with pytest.raises(ChargenError, match="no '\\*\\*\\* START OF.*strip_gutenberg: false"):
        strip_gutenberg("just a text\n", "book.txt")
    truncated = gutenberg("body\n").split("*** END")[0]
    with pytest.raises(ChargenError, match="no '\\*\\*\\* END OF"):
        strip_gutenberg(truncated, "book.txt")


def test_bom_crlf_lowercase_and_folding():
    raw = gutenberg("\u201cOff with her head!\u201d \u2014 the Queen\u2019s order\u2026\r\n").encode("utf-8")
    raw = raw.replace(b"\n", b"\r\n")
    out = clean(raw, "x", strip=True, lowercase=True, fold=True)
    assert out == "\"off with her head!\" -- the queen's order...\n"
    assert "\r" not in out and "\ufeff" not in out
    kept = clean(raw, "x", strip=True, lowercase=False, fold=False)
    assert "\u201cOff" in kept


def test_whole_file_when_not_stripping():
    raw = "\ufeffMy own notes\r\nline two\r\n".encode("utf-8")
    assert clean(raw, "x", strip=False, lowercase=False, fold=False) == "My own notes\nline two\n"


def test_not_utf8_names_the_fix():
    with pytest.raises(ChargenError, match="not UTF-8.*iconv"):
        decode("caf\u00e9".encode("latin-1"), "book.txt")


def test_payload_checks():
    with pytest.raises(ChargenError, match="empty"):
        check_payload(b"", "u", 100)
    with pytest.raises(ChargenError, match="over download.max_bytes"):
        check_payload(b"x" * 101, "u", 100)
    with pytest.raises(ChargenError, match="HTML page"):
        check_payload(b"<!DOCTYPE html><html><body>Not found</body></html>", "u", 1000)
    check_payload(b"plain text", "u", 1000)


def test_normalise_is_nfc():
    assert normalise("e\u0301", False, False) == "\u00e9"
