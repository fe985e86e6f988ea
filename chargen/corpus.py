"""Getting a book (mirror, cache or HTTP) and turning a Gutenberg file into clean text."""

from __future__ import annotations

import codecs
import hashlib
import re
import time
import unicodedata
import urllib.error
import urllib.request
from pathlib import Path

from chargen.io import ChargenError, params_path, write_bytes
from chargen.params import SOURCE_SCHEMES, scheme

USER_AGENT = "chargen/0.1 (character-level text generation pipeline; python-urllib)"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pinned_sha(pin, book: int) -> str:
    """The sha256 pinned for `book`: one string for the target book, or a map {ebook: sha}."""
    if isinstance(pin, dict):
        return pin.get(book, "").lower()
    return pin.lower()


def check_payload(data: bytes, where: str, max_bytes: int) -> None:
    """Reject what is plainly not a plain-text book: empty, too big, an HTML page."""
    if not data:
        raise ChargenError(f"{where} is empty: check the book id or the source")
    if len(data) > max_bytes:
        raise ChargenError(
            f"{where} is {len(data):,} bytes, over download.max_bytes = {max_bytes:,}: raise the cap if you trust it"
        )
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in head[:512]:
        raise ChargenError(f"{where} is an HTML page, not a plain-text book: check download.url and the book id")


def http_get(url: str, timeout: float, retries: int, max_bytes: int) -> bytes:
    """GET a URL with a timeout and retries (server errors and network faults only)."""
    if url.split("://")[0] not in ("http", "https"):
        raise ChargenError(f"download.url {url!r} is not http(s): only http and https are fetched")
    last = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(2 ** (attempt - 1), 10))
        try:
            req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                data = resp.read(max_bytes + 1)
            return data
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} {exc.reason}"
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
    raise ChargenError(
        f"could not download {url}: {last} (after {attempt + 1} tries); check the book id and network, "
        f"or set download.mirror to a folder holding the file"
    )


def fetch_book(book: int, cfg: dict) -> tuple[bytes, str]:
    """Return (bytes, where they came from) for a Gutenberg ebook: mirror, then cache, then HTTP.

    Every source is checked against the sha256 pin when there is one; the cache is only
    written after a successful, verified download.
    """
    pin = pinned_sha(cfg["sha256"], book)
    name = f"pg{book}.txt"

    def verified(data: bytes, where: str) -> bytes:
        check_payload(data, where, cfg["max_bytes"])
        got = sha256(data)
        if pin and got != pin:
            raise ChargenError(
                f"{where} has sha256 {got[:16]}..., not the pinned {pin[:16]}...: the file changed or is "
                f"corrupt; fix download.sha256 or the source"
            )
        return data

    if cfg["mirror"]:
        path = params_path(cfg["mirror"]) / name
        if path.is_file():
            return verified(path.read_bytes(), str(path)), str(path.resolve())

    cache = params_path(cfg["cache_dir"]) / name if cfg["cache_dir"] else None
    if cache is not None and cache.is_file():
        data = cache.read_bytes()
        if not pin or sha256(data) == pin:
            return verified(data, str(cache)), str(cache)

    url = cfg["url"].replace("{id}", str(book))
    data = verified(http_get(url, cfg["timeout"], cfg["retries"], cfg["max_bytes"]), url)
    if cache is not None:
        try:
            write_bytes(cache, data)
        except OSError:
            pass  # a cache we cannot write is not worth failing the download for
    return data, url


def source_kind(source: str) -> str:
    """'url' for http(s), 'path' for a local file; anything else (ftp:, file:, s3:) is refused."""
    kind = scheme(source)
    if kind in SOURCE_SCHEMES:
        return "url"
    if kind:
        raise ChargenError(f"text source {source!r} uses {kind}://; only http(s) URLs and local paths "
                           f"are accepted")
    return "path"


def fetch_text(source: str, cfg: dict, dest: Path) -> tuple[str, int, str]:
    """Copy a text file of your own (a local path or an http(s) URL) to `dest`.

    Returns (sha256, bytes, where from). Local files are copied as they are, in chunks (a corpus
    larger than memory is fine; an HTML file of your own is allowed); a URL must not answer
    with an HTML page, as an error page would otherwise become training text.
    """
    if source_kind(source) == "url":
        data = http_get(source, cfg["timeout"], cfg["retries"], cfg["max_bytes"])
        check_payload(data, source, cfg["max_bytes"])
        dest.write_bytes(data)
        return sha256(data), len(data), source
    path = params_path(source)
    if not path.is_file():
        raise ChargenError(f"text file {source} not found: check download.text / download.extra_texts "
                           f"(paths are relative to the project folder)")
    size = path.stat().st_size
    if not size:
        raise ChargenError(f"{source} is empty: point download.text at a file with text in it")
    if size > cfg["max_bytes"]:
        raise ChargenError(f"{source} is {size:,} bytes, over download.max_bytes = "
                           f"{cfg['max_bytes']:,}: raise the cap")
    h = hashlib.sha256()
    with open(path, "rb") as src, open(dest, "wb") as out:
        for chunk in iter(lambda: src.read(1 << 22), b""):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest(), size, str(path.resolve())


def safe_name(source: str) -> str:
    """A file name for data/raw/ from a path or URL: its last part, letters, digits, . - _ only."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", source.rstrip("/").rsplit("/", 1)[-1]).lstrip(".")
    return (stem or "text")[:80]


# --- turning a file into text -------------------------------------------------------------

_START = re.compile(r"^\*{3} ?START OF (?:THE|THIS) PROJECT GUTENBERG EBOOK[^\n]*$", re.I | re.M)
_END = re.compile(r"^\*{3} ?END OF (?:THE|THIS) PROJECT GUTENBERG EBOOK[^\n]*$", re.I | re.M)

_FOLD = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "--", "\u2015": "--", "\u2010": "-", "\u2011": "-", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ", "\u00ad": "",
})


def _codec(encoding: str) -> str:
    """UTF-8 files may start with a BOM: read them as utf-8-sig."""
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def _not_encoded(where: str, encoding: str, bad: bytes, offset: str) -> ChargenError:
    return ChargenError(
        f"{where} is not {encoding} (bad byte {bad!r} at offset {offset}); set prepare.encoding to the "
        f"file's encoding (e.g. latin-1, cp1252) or convert it to UTF-8 (iconv -f latin1 -t utf-8)"
    )


def _unix_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode(data: bytes, where: str, encoding: str = "utf-8") -> str:
    """Bytes in `encoding` (UTF-8 by default, BOM allowed) to str, with CRLF and lone CR made LF."""
    try:
        text = data.decode(_codec(encoding))
    except UnicodeDecodeError as exc:
        raise _not_encoded(where, encoding, data[exc.start:exc.start + 1], str(exc.start)) from None
    return _unix_newlines(text)


def strip_gutenberg(text: str, where: str) -> str:
    """The book between the Project Gutenberg START and END markers."""
    start = _START.search(text)
    if not start:
        raise ChargenError(
            f"{where} has no '*** START OF THE PROJECT GUTENBERG EBOOK' marker; "
            f"set prepare.strip_gutenberg: false to use the whole file"
        )
    end = _END.search(text, start.end())
    if not end:
        raise ChargenError(
            f"{where} has a START marker but no '*** END OF THE PROJECT GUTENBERG EBOOK' marker "
            f"(truncated file?); download it again or set prepare.strip_gutenberg: false"
        )
    return text[start.end():end.start()].strip("\n") + "\n"


def normalise(text: str, lowercase: bool, fold: bool) -> str:
    if not text.isascii():  # ASCII text is already NFC and has nothing to fold
        text = unicodedata.normalize("NFC", text)
        if fold:
            text = text.translate(_FOLD)
    if lowercase:
        text = text.lower()
    return text


def clean(data: bytes, where: str, *, strip: bool, lowercase: bool, fold: bool,
          encoding: str = "utf-8") -> str:
    text = decode(data, where, encoding)
    if strip:
        text = strip_gutenberg(text, where)
    return normalise(text, lowercase, fold)


CHUNK_BYTES = 4 << 20


def iter_clean(path, where: str, *, strip: bool, lowercase: bool, fold: bool, encoding: str = "utf-8",
               chunk_bytes: int = CHUNK_BYTES):
    """The cleaned text of a file as a sequence of pieces, equal when joined to `clean` of the file.

    Files to strip of Gutenberg boilerplate are read whole (the markers bound the book; such files
    are capped by download.max_bytes). Other files are streamed `chunk_bytes` at a time, so a text
    larger than memory can be prepared: each piece ends at a line break, where decoding, CRLF,
    NFC and lowercasing cannot depend on what follows.
    """
    if strip:
        yield clean(Path(path).read_bytes(), where, strip=True, lowercase=lowercase, fold=fold, encoding=encoding)
        return
    decoder = codecs.getincrementaldecoder(_codec(encoding))("strict")
    carry, offset = "", 0
    with open(path, "rb") as fh:
        while True:
            data = fh.read(chunk_bytes)
            try:
                text = carry + decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:  # the decoder may hold a few bytes of the last chunk
                raise _not_encoded(where, encoding, exc.object[exc.start:exc.start + 1],
                                   f"about {offset + exc.start}") from None
            offset += len(data)
            cut = len(text) if not data else text.rfind("\n") + 1
            if cut == 0 and len(text) > max(4 * chunk_bytes, 1 << 26):  # 64M chars, no line break: cut at a space
                cut = text.rfind(" ") + 1 or len(text) - 1
            piece, carry = text[:cut], text[cut:]
            if piece:
                yield normalise(_unix_newlines(piece), lowercase, fold)
            if not data:
                return
