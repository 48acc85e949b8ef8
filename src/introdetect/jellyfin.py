"""Push detected intros to a Jellyfin server's Intro Skipper plugin, through its API.

Jellyfin reads intro segments only from plugins (and chapters only from the file), and the
plugin takes timestamps by Jellyfin item id: ``POST /Episode/{id}/Timestamps`` with
``{"Introduction": {"Start": s, "End": e}}`` (an administrator's token). Item ids are looked
up by file path with ``GET /Items?Recursive=true&IncludeItemTypes=Episode&Fields=Path``;
``--path-map LOCAL=SERVER`` rewrites path prefixes when the server sees the library under
another path, and a file name found once on the server matches too. The token comes from
the ``JELLYFIN_TOKEN`` environment variable, never from the command line. Without
``--apply`` nothing is sent but the lookups: a dry run that lists what would be pushed.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from introdetect.errors import IntrodetectError

log = logging.getLogger(__name__)

TOKEN_ENV = "JELLYFIN_TOKEN"
PAGE = 500


class JellyfinError(IntrodetectError):
    """The server cannot be reached, refuses the token, or answers something unexpected."""


class JellyfinClient:
    """The few Jellyfin API calls the push needs."""

    def __init__(self, server: str, token: str, timeout: float = 30.0) -> None:
        self.server, self.token, self.timeout = server.rstrip("/"), token, timeout

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.server}{path}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f'MediaBrowser Token="{self.token}"')
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            why = "token rejected" if e.code in (401, 403) else e.reason
            raise JellyfinError(f"{method} {url}: HTTP {e.code} ({why})") from e
        except (urllib.error.URLError, OSError) as e:
            raise JellyfinError(f"{method} {url}: cannot reach the server ({e})") from e
        return json.loads(raw) if raw else None

    def episode_paths(self) -> dict[str, str]:
        """``{server-side file path: item id}`` of every episode."""
        out: dict[str, str] = {}
        start = 0
        while True:
            query = urllib.parse.urlencode(
                {
                    "Recursive": "true",
                    "IncludeItemTypes": "Episode",
                    "Fields": "Path",
                    "StartIndex": start,
                    "Limit": PAGE,
                }
            )
            page = self._request("GET", f"/Items?{query}")
            if not isinstance(page, dict) or not isinstance(page.get("Items"), list):
                raise JellyfinError(f"{self.server}/Items: not a Jellyfin item list")
            out.update({it["Path"]: it["Id"] for it in page["Items"] if it.get("Path")})
            start += len(page["Items"])
            if not page["Items"] or start >= int(page.get("TotalRecordCount", start)):
                return out

    def set_intro(self, item_id: str, start: float, end: float) -> None:
        """Store one episode's intro in the Intro Skipper plugin."""
        body = {"Introduction": {"Start": round(start, 3), "End": round(end, 3)}}
        self._request("POST", f"/Episode/{urllib.parse.quote(item_id)}/Timestamps", body)


@dataclass(frozen=True)
class PushItem:
    """One episode of the results and where it goes on the server."""

    video: str
    interval: tuple[float, float] | None
    item_id: str | None
    why: str = ""  # why it is not pushed


def read_results(results_dir: Path) -> list[tuple[str, str, tuple[float, float] | None]]:
    """``(video, status, interval)`` rows of ``predictions.csv`` in a detect results
    folder."""
    path = results_dir / "predictions.csv"
    if not path.exists():
        raise JellyfinError(f"{path}: not found (run detect with --format csv, the default)")
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            iv = (float(r["start_s"]), float(r["end_s"])) if r.get("start_s") else None
            rows.append((r["video"], r["status"], iv))
    return rows


def map_path(video: str, path_map: list[tuple[str, str]]) -> str:
    """``video`` with the first matching ``LOCAL=SERVER`` prefix replaced."""
    for local, server in path_map:
        if video.startswith(local):
            return server + video[len(local) :]
    return video


def plan_push(
    results: list[tuple[str, str, tuple[float, float] | None]],
    server_paths: dict[str, str],
    path_map: list[tuple[str, str]],
) -> list[PushItem]:
    """Match every result to an item id (mapped path, else a file name found once)."""
    by_name: dict[str, list[str]] = {}
    for p, item in server_paths.items():
        by_name.setdefault(PurePosixPath(p).name, []).append(item)
    plan = []
    for video, status, iv in results:
        if iv is None:
            plan.append(PushItem(video, None, None, f"not pushed: {status}"))
            continue
        mapped = map_path(str(Path(video).absolute()), path_map)
        item = server_paths.get(mapped)
        if item is None:
            same_name = by_name.get(Path(video).name, [])
            item = same_name[0] if len(same_name) == 1 else None
        why = "" if item else f"not on the server (looked for {mapped}; see --path-map)"
        plan.append(PushItem(video, iv, item, why))
    return plan


def push(
    results_dir: Path,
    server: str,
    path_map: list[tuple[str, str]],
    apply: bool = False,
    token: str | None = None,
) -> list[PushItem]:
    """Look every episode up and (with ``apply``) push its intro. Returns the plan."""
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise JellyfinError(f"set {TOKEN_ENV} to an administrator's API key")
    client = JellyfinClient(server, token)
    plan = plan_push(read_results(results_dir), client.episode_paths(), path_map)
    for item in plan:
        if item.item_id and item.interval and apply:
            client.set_intro(item.item_id, *item.interval)
    return plan
