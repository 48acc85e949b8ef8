"""The Jellyfin push against a recorded request/response contract: a local HTTP server that
answers like Jellyfin (``GET /Items`` with paths, paged) and the Intro Skipper plugin
(``POST /Episode/{id}/Timestamps`` -> 204), and records what it was sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from introdetect.cli import main
from introdetect.fileio import write_csv

TOKEN = "0123abcd"
SERVER_ITEMS = [
    {"Id": "a1", "Name": "Pilot", "Path": "/media/tv/Show/Season 1/Show S01E01.mkv"},
    {"Id": "a2", "Name": "Two", "Path": "/media/tv/Show/Season 1/Show S01E02.mkv"},
    {"Id": "b9", "Name": "Other", "Path": "/elsewhere/unique-name.mp4"},
]


class _Jellyfin(BaseHTTPRequestHandler):
    calls: list[tuple[str, str, dict | None, str]] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, code: int, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f'MediaBrowser Token="{TOKEN}"'

    def do_GET(self) -> None:
        url = urlparse(self.path)
        self.calls.append(("GET", url.path, None, url.query))
        if not self._authorized():
            return self._reply(401)
        q = parse_qs(url.query)
        assert url.path == "/Items" and q["IncludeItemTypes"] == ["Episode"]
        assert q["Fields"] == ["Path"] and q["Recursive"] == ["true"]
        start, limit = int(q["StartIndex"][0]), int(q["Limit"][0])
        page = SERVER_ITEMS[start : start + min(limit, 2)]  # the server pages by 2
        self._reply(200, {"Items": page, "TotalRecordCount": len(SERVER_ITEMS)})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append(("POST", self.path, body, self.headers.get("Content-Type")))
        if not self._authorized():
            return self._reply(401)
        self._reply(204)


@pytest.fixture
def server():
    _Jellyfin.calls = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Jellyfin)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _results(tmp_path: Path) -> Path:
    lib = tmp_path / "lib" / "Show" / "Season 1"
    rows = [
        (lib / "Show S01E01.mkv", "ok", 12.5, 42.0),
        (lib / "Show S01E02.mkv", "no_intro", "", ""),
        (tmp_path / "x" / "unique-name.mp4", "ok", 3.0, 9.25),
        (lib / "Show S01E03.mkv", "ok", 1.0, 2.0),  # not on the server
    ]
    out = tmp_path / "results"
    write_csv(
        [
            {"episode_id": v.stem, "video": str(v), "status": st, "start_s": a, "end_s": b}
            for v, st, a, b in rows
        ],
        out / "predictions.csv",
    )
    return out


def _push(tmp_path, server, *extra):
    args = ["jellyfin-push", str(_results(tmp_path)), "--server", server]
    return main(args + ["--path-map", f"{tmp_path / 'lib'}=/media/tv", *extra])


def test_dry_run_looks_up_and_sends_nothing(tmp_path, server, monkeypatch, capsys):
    monkeypatch.setenv("JELLYFIN_TOKEN", TOKEN)
    assert _push(tmp_path, server) == 1  # one episode is not on the server
    assert [c[0] for c in _Jellyfin.calls] == ["GET", "GET"]  # two pages, no POST
    out = capsys.readouterr().out
    assert "would push 12.50-42.00 s -> item a1" in out
    assert "would push 3.00-9.25 s -> item b9" in out  # matched by its unique file name
    assert "Show S01E03.mkv: not on the server" in out and "dry run" in out


def test_apply_posts_the_plugin_body(tmp_path, server, monkeypatch):
    monkeypatch.setenv("JELLYFIN_TOKEN", TOKEN)
    _push(tmp_path, server, "--apply")
    posts = [c for c in _Jellyfin.calls if c[0] == "POST"]
    assert posts == [
        (
            "POST",
            "/Episode/a1/Timestamps",
            {"Introduction": {"Start": 12.5, "End": 42.0}},
            "application/json",
        ),
        (
            "POST",
            "/Episode/b9/Timestamps",
            {"Introduction": {"Start": 3.0, "End": 9.25}},
            "application/json",
        ),
    ]


@pytest.mark.logs_errors
def test_no_token_or_a_wrong_one_is_one_line(tmp_path, server, monkeypatch, capsys):
    monkeypatch.delenv("JELLYFIN_TOKEN", raising=False)
    assert _push(tmp_path, server) == 2
    assert "set JELLYFIN_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("JELLYFIN_TOKEN", "wrong")
    assert _push(tmp_path, server) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "HTTP 401 (token rejected)" in err[0]
