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


def test_not_utf8_names_the_fix_or_takes_a_declared_encoding():
    latin = "caf\u00e9\r\n".encode("latin-1")
    with pytest.raises(ChargenError, match=r"not utf-8 .*offset 3.*prepare.encoding.*iconv"):
        decode(latin, "book.txt")
    assert decode(latin, "book.txt", "latin-1") == "caf\u00e9\n"
    assert decode("\ufeffcaf\u00e9".encode("utf-8"), "b", "UTF_8") == "caf\u00e9"  # BOM dropped


def test_own_text_sources():
    from chargen.corpus import fetch_text, safe_name, source_kind
    assert source_kind("https://example.com/a.txt") == "url" and source_kind("texts/a.md") == "path"
    with pytest.raises(ChargenError, match="only http"):
        source_kind("file:///etc/passwd")
    assert safe_name("../../etc/passwd") == "passwd" and safe_name("https://x.org/a b?.txt") == "a_b_.txt"
    assert safe_name("..") == "text"
    with pytest.raises(ChargenError, match="not found"):
        fetch_text("no/such/file.txt", {"max_bytes": 10})


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
