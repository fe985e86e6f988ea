"""Turning a raw file into clean text: decoding (BOM, CRLF), the Gutenberg header and licence cut
off, Unicode NFC, optional lowercasing and typographic folding; whole or streamed in pieces."""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import Path

from chargen.io import ChargenError

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


def _not_encoded(where: str, encoding: str, bad: bytes, offset: str, detail: str = "") -> ChargenError:
    """`detail` replaces the bad byte and offset for codecs whose errors give none (punycode)."""
    return ChargenError(
        f"{where} is not {encoding} ({detail or f'bad byte {bad!r} at offset {offset}'}); set prepare.encoding "
        f"to the file's encoding (old Windows text files are usually cp1252) or convert it to UTF-8 "
        f"(iconv -f cp1252 -t utf-8)"
    )


def _unix_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode(data: bytes, where: str, encoding: str = "utf-8") -> str:
    """Bytes in `encoding` (UTF-8 by default, BOM allowed) to str, with CRLF and lone CR made LF."""
    try:
        text = data.decode(_codec(encoding))
    except UnicodeDecodeError as exc:
        raise _not_encoded(where, encoding, data[exc.start:exc.start + 1], str(exc.start)) from None
    except UnicodeError as exc:  # a text codec's own complaint, without a position
        raise _not_encoded(where, encoding, b"", "", str(exc.__cause__ or exc)) from None
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
            except UnicodeError as exc:
                raise _not_encoded(where, encoding, b"", "", str(exc)) from None
            offset += len(data)
            cut = len(text) if not data else text.rfind("\n") + 1
            if cut == 0 and len(text) > max(4 * chunk_bytes, 1 << 26):  # 64M chars, no line break: cut at a space
                cut = text.rfind(" ") + 1 or len(text) - 1
            piece, carry = text[:cut], text[cut:]
            if piece:
                yield normalise(_unix_newlines(piece), lowercase, fold)
            if not data:
                return


def squeeze_spaces(text: str, longest: int) -> str:
    """Runs of more than `longest` spaces or tabs cut to their first `longest` (0: unchanged).
    A padded table of contents otherwise teaches a model to emit hundreds of spaces in a row."""
    if not longest:
        return text
    return re.sub(f"[ \t]{{{longest + 1},}}", lambda m: m.group(0)[:longest], text)


def gutenberg_markers(data: bytes, where: str, encoding: str) -> tuple[int, int] | None:
    """(characters before the START marker's end, characters after the END marker) of a raw
    Gutenberg file that has both markers, else None."""
    text = decode(data, where, encoding)
    start = _START.search(text)
    end = _END.search(text, start.end()) if start else None
    return (start.end(), len(text) - end.start()) if end else None


C1_CONTROLS = {chr(c) for c in range(0x80, 0xA0)}
LATIN1_NAMES = {"latin-1", "latin1", "latin_1", "iso-8859-1", "iso8859-1", "iso8859_1", "l1"}


def check_controls(chars: set[str], where: str, encoding: str) -> str | None:
    """C1 control characters (U+0080 to U+009F) are next to never real text. A Windows-1252
    file read as latin-1 turns its curly quotes and dashes into them: that is refused, naming
    the right encoding. Elsewhere they are returned as a warning."""
    found = sorted(chars & C1_CONTROLS)
    if not found:
        return None
    shown = ", ".join(f"U+{ord(c):04X}" for c in found[:6])
    if encoding.lower().replace("_", "-") in LATIN1_NAMES:
        raise ChargenError(f"{where} read as {encoding} holds control characters {shown}, which cp1252 "
                           f"uses for curly quotes and dashes; set prepare.encoding: cp1252")
    return f"{where} holds C1 control characters ({shown}); check prepare.encoding"
