"""Getting the raw texts: a Gutenberg ebook from a mirror folder, the download cache or HTTP, and
texts of your own from a path or an http(s) URL, byte for byte."""

from __future__ import annotations

import hashlib
import http.client
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from chargen.io import SOURCE_SCHEMES, ChargenError, params_path, scheme, write_bytes

USER_AGENT = "chargen/0.1 (character-level text generation pipeline; python-urllib)"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pinned_sha(pin, book: int) -> str:
    """The sha256 pinned for `book`: one string for the target book, or a map {ebook: sha}."""
    if isinstance(pin, dict):
        return pin.get(book, "").lower()
    return pin.lower()


def check_payload(data: bytes, where: str, max_bytes: int,
                  fix: str = "check download.url and the book id") -> None:
    """Reject what is plainly not a plain-text book: empty, too big, an HTML page. `fix` says
    what to do about the source it came from."""
    if not data:
        raise ChargenError(f"{where} is empty: {fix}")
    if len(data) > max_bytes:
        raise ChargenError(
            f"{where} is {len(data):,} bytes, over download.max_bytes = {max_bytes:,}: raise the cap if you trust it"
        )
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in head[:512]:
        raise ChargenError(f"{where} is an HTML page, not a plain-text book: {fix}")


READ_CHUNK = 1 << 16


def read_within(resp, deadline: float, max_bytes: int, timeout: float) -> bytes:
    """The response body, read as it arrives, abandoned once `deadline` (time.monotonic) has
    passed: a server that trickles bytes cannot hold an attempt open for longer than its timeout
    (plus at most one read, itself bounded by the socket timeout). Reading stops as soon as the
    body is known to be over `max_bytes` (announced, or read so far)."""
    announced = resp.headers.get("Content-Length", "")
    size_text = f"{int(announced):,} bytes" if announced.isdigit() else f"more than {max_bytes:,} bytes"
    too_big = ChargenError(f"{resp.url} is {size_text}, over download.max_bytes = {max_bytes:,}: raise the "
                           f"cap if you trust it")
    if announced.isdigit() and int(announced) > max_bytes:
        raise too_big
    parts, size = [], 0
    while True:
        if size > max_bytes:
            raise too_big
        if time.monotonic() > deadline:
            raise TimeoutError(f"the attempt took longer than download.timeout = {timeout:g} s")
        chunk = resp.read1(READ_CHUNK)
        if not chunk:
            if time.monotonic() > deadline:  # the Watchdog cut the connection: the body is partial
                raise TimeoutError(f"the attempt took longer than download.timeout = {timeout:g} s")
            if getattr(resp, "length", None):  # fewer bytes than the Content-Length promised
                raise ConnectionError(f"the server closed the connection {resp.length:,} bytes short of "
                                      f"the length it announced")
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


class Watchdog:
    """Shuts down every socket an attempt opens once the attempt's deadline has passed, so that
    no read can outlast it: not the body (read_within checks between reads), and not the status
    line and headers either, which http.client reads line by line before any code of ours runs
    (a server trickling them one byte at a time would otherwise hold the attempt open forever)."""

    def __init__(self, deadline: float):
        self.deadline, self.timers = deadline, []

    def guard(self, sock) -> None:
        timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), _shut, (sock,))
        timer.daemon = True
        timer.start()
        self.timers.append(timer)

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def connect(self, address, timeout=None, source_address=None):
        """socket.create_connection within the time left, guarded at once: a proxy's reply to
        CONNECT is read before http.client hands the socket back. The time left also bounds the
        TLS handshake, which wraps (and so unguards) this socket before it is guarded again
        (else a slow connect and then a trickled handshake could take a whole timeout more)."""
        sock = socket.create_connection(address, max(0.01, self.deadline - time.monotonic()), source_address)
        sock.settimeout(max(0.01, self.deadline - time.monotonic()))
        self.guard(sock)
        return sock

    def cancel(self) -> None:
        for timer in self.timers:
            timer.cancel()

    def opener(self) -> urllib.request.OpenerDirector:
        """urllib with connections whose sockets this watchdog guards (redirects included)."""
        guard, connect = self.guard, self.connect

        class Guarded(http.client.HTTPConnection):
            def connect(self):
                self._create_connection = connect
                super().connect()
                guard(self.sock)

        class GuardedTLS(http.client.HTTPSConnection):
            def connect(self):
                self._create_connection = connect
                super().connect()
                guard(self.sock)

        class Plain(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(Guarded, req)

        class TLS(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(GuardedTLS, req, context=self._context)

        return urllib.request.build_opener(Plain, TLS)


def _shut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: the attempt ended in time


def http_get(url: str, timeout: float, retries: int, max_bytes: int) -> bytes:
    """GET a URL with retries (server errors and network faults only); each attempt, connecting,
    the response's head and its whole body, must finish within `timeout` seconds."""
    if url.split("://")[0] not in ("http", "https"):
        raise ChargenError(f"download.url {url!r} is not http(s): only http and https are fetched")
    last = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(2 ** (attempt - 1), 10))
        watchdog = Watchdog(time.monotonic() + timeout)
        try:
            req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with watchdog.opener().open(req, timeout=timeout) as resp:
                return read_within(resp, watchdog.deadline, max_bytes, timeout)
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} {exc.reason}"
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, http.client.HTTPException) as exc:
            last = str(getattr(exc, "reason", exc))
            if watchdog.expired() or isinstance(getattr(exc, "reason", exc), TimeoutError):
                # the watchdog cut the connection, or a socket ran out of the time left: say why
                last = f"the attempt took longer than download.timeout = {timeout:g} s"
        finally:
            watchdog.cancel()
    raise ChargenError(
        f"could not download {url}: {last} (after {attempt + 1} {'try' if attempt == 0 else 'tries'}); check the book id and network, "
        f"or set download.mirror to a folder holding the file"
    )


_noted = set()  # mirror folders already said to be missing in this run


def note_missing_mirror(value: str, folder: Path) -> None:
    """Say once per run that download.mirror names no folder: a typo there would otherwise send
    the download to the network without a word."""
    if folder not in _noted:
        _noted.add(folder)
        print(f"note: download.mirror {value!r} ({folder}) is not a folder; reading the cache or the "
              f"network instead", file=sys.stderr)


def fetch_book(book: int, cfg: dict) -> tuple[bytes, str]:
    """Return (bytes, where they came from) for a Gutenberg ebook: mirror, then cache, then HTTP.

    Every source is checked against the sha256 pin when there is one; the cache is only
    written after a successful, verified download.
    """
    pin = pinned_sha(cfg["sha256"], book)
    name = f"pg{book}.txt"

    def verified(data: bytes, where: str, fix: str = "check download.url and the book id") -> bytes:
        check_payload(data, where, cfg["max_bytes"], fix)
        got = sha256(data)
        if pin and got != pin:
            raise ChargenError(
                f"{where} has sha256 {got}, not the pinned {pin}: the file changed or is corrupt; "
                f"fix download.sha256 or the source"
            )
        return data

    if cfg["mirror"]:
        folder = params_path(cfg["mirror"])
        path = folder / name
        if not folder.is_dir():
            note_missing_mirror(cfg["mirror"], folder)
        elif path.is_file():
            fix = f"replace it with the plain-text book ({name} from Project Gutenberg) or delete it"
            return verified(path.read_bytes(), str(path), fix), str(path.resolve())

    cache = params_path(cfg["cache_dir"]) / name if cfg["cache_dir"] else None
    if cache is not None and cache.is_file():
        data = cache.read_bytes()
        if not pin or sha256(data) == pin:
            return verified(data, str(cache), "delete it and run again to download the book anew"), str(cache)

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
        check_payload(data, source, cfg["max_bytes"], "check the URL in download.text or download.extra_texts")
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
