import hashlib
import random

import pytest

from chargen.cleaning import clean, decode, iter_clean, normalise, strip_gutenberg
from chargen.download import check_payload
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


def test_a_text_encoding_that_fails_without_a_position_is_one_line(tmp_path):
    """Some text encodings (punycode) raise a bare UnicodeError, not a UnicodeDecodeError with
    an offset: still the one-line "not <encoding>" error, read whole or streamed."""
    ascii_text = b"Alice was beginning to get very tired of sitting by her sister\n"
    with pytest.raises(ChargenError, match=r"^book.txt is not punycode \(.*code point.*\); set prepare.encoding"):
        decode(ascii_text, "book.txt", "punycode")
    path = tmp_path / "book.txt"
    path.write_bytes(ascii_text)
    with pytest.raises(ChargenError, match=r"^book.txt is not punycode \(.*code point.*\); set prepare.encoding"):
        list(iter_clean(path, "book.txt", strip=False, lowercase=True, fold=True, encoding="punycode"))


def test_own_text_sources(tmp_path):
    from chargen.download import fetch_text, safe_name, source_kind
    assert source_kind("https://example.com/a.txt") == "url" and source_kind("texts/a.md") == "path"
    with pytest.raises(ChargenError, match="only http"):
        source_kind("file:///etc/passwd")
    assert safe_name("../../etc/passwd") == "passwd" and safe_name("https://x.org/a b?.txt") == "a_b_.txt"
    assert safe_name("..") == "text"
    with pytest.raises(ChargenError, match="not found"):
        fetch_text("no/such/file.txt", {"max_bytes": 10}, tmp_path / "out")
    src = tmp_path / "mine.txt"
    src.write_bytes(b"x" * 5_000_000)  # copied in chunks, byte for byte, with its sha256
    digest, size, origin = fetch_text(str(src), {"max_bytes": 10_000_000}, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == src.read_bytes() and size == 5_000_000
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest() and origin == str(src.resolve())
    with pytest.raises(ChargenError, match="over download.max_bytes"):
        fetch_text(str(src), {"max_bytes": 4_999_999}, tmp_path / "copy2")


def test_streamed_cleaning_equals_whole_file(tmp_path):
    """Pieces read a few bytes at a time join to exactly the whole-file cleaning: multi-byte
    characters, CRLF, a BOM, combining accents and the final-sigma rule across every boundary."""
    rng = random.Random(0)
    alphabet = list("abcΣσς \r\n") + ["\u2019", "e\u0301", "\u2014", "é", "\ufeff"]
    for trial in range(200):
        text = ("\ufeff" if trial % 3 == 0 else "") + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        encoding = "utf-16" if trial % 4 == 1 else "utf-8"
        path = tmp_path / f"t{trial}.txt"
        path.write_bytes(text.encode(encoding))
        for lower in (True, False):
            whole = clean(path.read_bytes(), "t", strip=False, lowercase=lower, fold=True, encoding=encoding)
            pieces = list(iter_clean(path, "t", strip=False, lowercase=lower, fold=True, encoding=encoding,
                                     chunk_bytes=rng.randint(1, 40)))
            assert "".join(pieces) == whole
            assert all(p.endswith("\n") for p in pieces[:-1])  # cut only after line breaks
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"line one\n" * 100 + b"caf\xe9\n")
    with pytest.raises(ChargenError, match="prepare.encoding"):
        list(iter_clean(bad, "bad.txt", strip=False, lowercase=True, fold=True, chunk_bytes=64))


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
