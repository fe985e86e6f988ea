"""The download path against a real HTTP server on 127.0.0.1 (no internet needed)."""

import hashlib
import http.server
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from chargen.download import fetch_book
from chargen.io import ChargenError


class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}
    hits: list = []

    def do_GET(self):
        self.hits.append(self.path)
        status, body = self.routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        if not self.path.startswith("/nolength/"):  # else the body ends when the connection closes
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path.startswith("/slow/"):  # a byte every 0.3 s: each read is quick, the whole is not
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(0.3)
            return
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    Handler.routes, Handler.hits = {}, []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv, Handler
    srv.shutdown()
    srv.server_close()


BOOK = "\ufeff*** START OF THE PROJECT GUTENBERG EBOOK X ***\nhello\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n".encode()


def cfg(srv, tmp_path, **kw):
    c = {
        "url": f"http://127.0.0.1:{srv.server_address[1]}/files/{{id}}.txt",
        "mirror": "", "sha256": "", "cache_dir": str(tmp_path / "cache"),
        "timeout": 5, "retries": 1, "max_bytes": 10_000,
    }
    c.update(kw)
    return c


def test_downloads_and_caches(server, tmp_path):
    srv, h = server
    h.routes["/files/11.txt"] = (200, BOOK)
    data, origin = fetch_book(11, cfg(srv, tmp_path))
    assert data == BOOK and origin.startswith("http://127.0.0.1")
    assert (tmp_path / "cache" / "pg11.txt").read_bytes() == BOOK
    h.routes.clear()  # the second fetch must come from the cache, not the server
    data2, origin2 = fetch_book(11, cfg(srv, tmp_path))
    assert data2 == BOOK and origin2.endswith("pg11.txt") and len(h.hits) == 1


def test_404_fails_at_once_with_a_clear_message(server, tmp_path):
    srv, h = server
    with pytest.raises(ChargenError, match=r"could not download .*HTTP 404.*book id"):
        fetch_book(99, cfg(srv, tmp_path, retries=3))
    assert len(h.hits) == 1  # a 404 is not retried
    assert not (tmp_path / "cache" / "pg99.txt").exists()


def test_5xx_is_retried_then_fails(server, tmp_path):
    srv, h = server
    h.routes["/files/11.txt"] = (503, b"busy")
    with pytest.raises(ChargenError, match="HTTP 503"):
        fetch_book(11, cfg(srv, tmp_path, retries=1))
    assert len(h.hits) == 2


def test_html_error_page_with_status_200_is_rejected(server, tmp_path):
    srv, h = server
    h.routes["/files/11.txt"] = (200, b"<!DOCTYPE html><html><body>Error</body></html>")
    with pytest.raises(ChargenError, match="HTML page"):
        fetch_book(11, cfg(srv, tmp_path))
    assert not (tmp_path / "cache" / "pg11.txt").exists()


def test_checksum_mismatch_is_refused_and_not_cached(server, tmp_path):
    srv, h = server
    h.routes["/files/11.txt"] = (200, BOOK)
    with pytest.raises(ChargenError, match="sha256 .* not the pinned") as err:
        fetch_book(11, cfg(srv, tmp_path, sha256="0" * 64))
    assert f"has sha256 {hashlib.sha256(BOOK).hexdigest()}, not the pinned {'0' * 64}" in str(err.value)  # all 64
    assert not (tmp_path / "cache" / "pg11.txt").exists()
    good = hashlib.sha256(BOOK).hexdigest()
    assert fetch_book(11, cfg(srv, tmp_path, sha256={11: good}))[0] == BOOK


def test_size_cap(server, tmp_path):
    """Over download.max_bytes: the size the server announced, or "more than" the cap when it
    announced none (the bytes read before stopping are not the file's size)."""
    srv, h = server
    h.routes["/files/11.txt"] = (200, b"x" * 20_000)
    with pytest.raises(ChargenError, match=r"11.txt is 20,000 bytes, over download.max_bytes = 10,000: raise"):
        fetch_book(11, cfg(srv, tmp_path))
    h.routes["/nolength/11.txt"] = (200, b"x" * 170_596)
    url = f"http://127.0.0.1:{srv.server_address[1]}/nolength/{{id}}.txt"
    with pytest.raises(ChargenError, match=r"11.txt is more than 10,000 bytes, over download.max_bytes = 10,000"):
        fetch_book(11, cfg(srv, tmp_path, url=url))


def test_a_mirror_that_is_not_a_folder_is_said_once(server, tmp_path, capsys):
    srv, h = server
    h.routes["/files/11.txt"] = h.routes["/files/12.txt"] = (200, BOOK)
    c = cfg(srv, tmp_path, mirror=str(tmp_path / "shraed"))  # a typo
    assert fetch_book(11, c)[0] == BOOK and fetch_book(12, c)[0] == BOOK
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"note: download.mirror '{tmp_path / 'shraed'}'"), err
    assert "is not a folder; reading the cache or the network instead" in err[0]


def test_mirror_needs_no_network(tmp_path):
    m = tmp_path / "mirror"
    m.mkdir()
    (m / "pg11.txt").write_bytes(BOOK)
    c = {"url": "http://127.0.0.1:9/{id}", "mirror": str(m), "sha256": "", "cache_dir": "",
         "timeout": 1, "retries": 0, "max_bytes": 10_000}
    data, origin = fetch_book(11, c)
    assert data == BOOK and Path(origin) == (m / "pg11.txt").resolve()
    # Not in the mirror, and the network is unreachable: a clear error naming the fix.
    with pytest.raises(ChargenError, match="could not download.*download.mirror"):
        fetch_book(12, c)


def test_a_trickling_server_cannot_outlast_the_timeout(server, tmp_path):
    """download.timeout bounds a whole attempt, not each read: 100 bytes at one per 0.3 s would
    take 30 s; with timeout 1 and no retry the attempt gives up after about 1 s."""
    srv, h = server
    h.routes["/slow/11.txt"] = (200, b"x" * 100)
    url = f"http://127.0.0.1:{srv.server_address[1]}/slow/{{id}}.txt"
    t0 = time.monotonic()
    with pytest.raises(ChargenError, match=r"took longer than download.timeout = 1 s.*after 1 try"):
        fetch_book(11, cfg(srv, tmp_path, url=url, timeout=1, retries=0))
    assert time.monotonic() - t0 < 3


@pytest.fixture
def trickler():
    """trickler(payload) -> the port of a 127.0.0.1 server that sends `payload` one byte per
    0.2 s to its first connection; stopped when the test ends."""
    stop, listeners = threading.Event(), []

    def start(payload: bytes) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def trickle():
            conn, _ = listener.accept()
            with conn:
                for byte in payload:
                    if stop.is_set():
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        return
                    time.sleep(0.2)

        threading.Thread(target=trickle, daemon=True).start()
        return listener.getsockname()[1]

    yield start
    stop.set()
    for listener in listeners:
        listener.close()


def assert_cut_at_timeout(url: str, within: float) -> None:
    """Fetching from `url` with download.timeout 2 s and no retry fails with the timeout
    message, and in less than `within` seconds."""
    c = {"url": url, "mirror": "", "sha256": "", "cache_dir": "", "timeout": 2, "retries": 0, "max_bytes": 10_000}
    t0 = time.monotonic()
    with pytest.raises(ChargenError, match=r"took longer than download.timeout = 2 s \(after 1 try\)"):
        fetch_book(11, c)
    assert time.monotonic() - t0 < within


def test_a_server_trickling_its_status_line_and_headers_cannot_outlast_the_timeout(trickler):
    """The deadline also holds while the response head arrives, before any body: a server
    sending `HTTP/1.1 200 OK` and a long header at one byte per 0.2 s (30 s in all) is cut
    after download.timeout."""
    port = trickler(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 150)
    assert_cut_at_timeout(f"http://127.0.0.1:{port}/{{id}}.txt", within=4)


def test_a_slow_connect_then_a_trickled_tls_handshake_cannot_outlast_the_timeout(monkeypatch, trickler):
    """https: the TLS handshake runs inside connecting, before the watchdog guards the socket.
    After a connect that took 1.5 s (a slow network), a server trickling its handshake (a TLS
    record header that promises 16 KiB, then a byte per 0.2 s) is still cut at download.timeout,
    not a whole timeout after the connect."""
    port = trickler(b"\x16\x03\x03\x40\x00" + b"\x02" * 100)
    connect = socket.create_connection

    def slow_connect(*args, **kwargs):
        time.sleep(1.5)
        return connect(*args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", slow_connect)
    assert_cut_at_timeout(f"https://127.0.0.1:{port}/{{id}}.txt", within=3)


def test_a_proxy_trickling_its_tunnel_reply_cannot_outlast_the_timeout(monkeypatch, trickler):
    """Behind an https proxy (https_proxy), the proxy's reply to CONNECT is read while
    connecting, before the TLS handshake: a proxy trickling it is cut at download.timeout too."""
    port = trickler(b"HTTP/1.1 200 Connection established\r\nX-Padding: " + b"x" * 150)
    for name in ("no_proxy", "NO_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")
    assert_cut_at_timeout("https://books.example/{id}.txt", within=3)


def test_an_html_page_in_the_mirror_names_the_file_to_replace(tmp_path):
    m = tmp_path / "mirror"
    m.mkdir()
    (m / "pg5.txt").write_bytes(b"<!DOCTYPE html><html><body>Saved from a browser</body></html>")
    c = {"url": "http://127.0.0.1:9/{id}", "mirror": str(m), "sha256": "", "cache_dir": "",
         "timeout": 1, "retries": 0, "max_bytes": 10_000}
    with pytest.raises(ChargenError) as err:
        fetch_book(5, c)
    assert str(err.value) == (f"{m / 'pg5.txt'} is an HTML page, not a plain-text book: replace it with the "
                              f"plain-text book (pg5.txt from Project Gutenberg) or delete it")


def test_relative_params_paths_mean_the_same_folder_in_an_experiment_copy(tmp_path):
    from chargen.io import params_path, project_root

    proj = tmp_path / "proj"
    copy = proj / ".dvc/tmp/exps/standalone/tmp1a2b"  # where DVC runs queued and --temp experiments
    copy.mkdir(parents=True)
    root = proj.resolve()
    assert project_root(copy) == root and project_root(proj) == root
    # Outside the project: the user's folder beside the project, from the copy as from the project.
    assert params_path("../shared/corpus", copy) == root / "../shared/corpus"
    assert params_path("../shared/corpus", proj) == root / "../shared/corpus"
    # Inside the project: the experiment's own version of the file.
    assert params_path("texts/notes.md", copy) == copy.resolve() / "texts/notes.md"
    assert params_path("~/books", copy) == Path.home() / "books"
    assert params_path(str(tmp_path / "abs"), copy) == tmp_path / "abs"


def stage_outputs(proj: Path, folders) -> dict:
    """{relative path: md5} of every file under the given folders of a project."""
    return {str(f.relative_to(proj)): hashlib.md5(f.read_bytes()).hexdigest()
            for folder in folders for f in sorted((proj / folder).rglob("*")) if f.is_file()}


def test_download_and_prepare_outputs_hold_no_machine_paths(server, tmp_path, monkeypatch):
    """The same book read from mirrors in different places (relative as committed, absolute), a
    download cache or the network gives the same data/raw and prepare outputs, byte for byte, so
    dvc.lock does not change on another machine; where each file was read from is in metrics/run/."""
    import yaml
    from conftest import MIRROR, gutenberg, make_text, tiny_params
    from stages import download, prepare

    book = gutenberg(make_text(3000, 1)).encode()
    srv, handler = server
    handler.routes["/files/11.txt"] = (200, book)
    url = f"http://127.0.0.1:{srv.server_address[1]}/files/{{id}}.txt"  # the same in every project
    note = "An extra text of the user's own, inside the project.\n" * 20

    def project(base: Path, **download_params) -> Path:
        proj = base / "proj"
        (proj / "texts").mkdir(parents=True)
        (proj / "texts/notes.txt").write_text(note, encoding="utf-8")
        p = tiny_params()
        p["download"].update(url=url, extra_texts=["texts/notes.txt"], **download_params)
        (proj / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        return proj

    def mirror_at(folder: Path) -> Path:
        folder.mkdir(parents=True)
        (folder / "pg11.txt").write_bytes(book)
        return folder

    mirror_at(tmp_path / "a" / MIRROR)
    runs = {
        "relative mirror": project(tmp_path / "a"),  # ../shared/corpus, as committed
        "absolute mirror": project(tmp_path / "b/deeper",
                                   mirror=str(mirror_at(tmp_path / "elsewhere/books").resolve())),
        "download cache": project(tmp_path / "c", mirror="",
                                  cache_dir=str(mirror_at(tmp_path / "cache").resolve())),
        "network": project(tmp_path / "d", mirror=""),
    }
    outputs = {}
    for name, proj in runs.items():
        monkeypatch.chdir(proj)
        download.main()
        prepare.main()
        outputs[name] = stage_outputs(proj, ["data/raw", "data/prepared", "metrics"])
        where = json.loads((proj / "metrics/run/download.json").read_text())["books"]
        assert [r["file"] for r in where] == ["pg11.txt", "extra_notes.txt"]
        for r in where[1:]:  # provenance is kept, outside the outputs DVC hashes
            assert Path(r["origin"]).read_bytes() == (proj / "data/raw" / r["file"]).read_bytes()
        if name == "network":
            assert where[0]["origin"] == url.format(id=11)
        else:
            assert Path(where[0]["origin"]).read_bytes() == book
        for path in outputs[name]:
            if not path.startswith("metrics/run/"):
                assert str(tmp_path) not in (proj / path).read_bytes().decode("utf-8", "replace"), path
    hashed = {name: {k: v for k, v in files.items() if not k.startswith("metrics/run/")}
              for name, files in outputs.items()}
    assert "data/raw/source.json" in hashed["relative mirror"] and "metrics/prepare.json" in hashed["relative mirror"]
    assert hashed["absolute mirror"] == hashed["relative mirror"]
    assert hashed["download cache"] == hashed["relative mirror"]
    assert hashed["network"] == hashed["relative mirror"] and handler.hits == ["/files/11.txt"]
