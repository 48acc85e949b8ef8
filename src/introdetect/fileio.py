"""Atomic file writes: every output is written to a temp file beside it and renamed into
place, so a killed run leaves either the old file or the new one, never a torn one."""

from __future__ import annotations

import csv
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"
_HOST = socket.gethostname().replace(".", "-") or "host"
STALE_FOREIGN_S = 24 * 3600  # another machine's temp file is stale after a day


def temp_name(path: Path) -> Path:
    """The temp file for ``path``: hidden, same folder (so the rename is atomic), owned
    (host and pid in the name, so a cleaner can tell a live writer's file from a dead
    one's), ending in ``.tmp`` so no glob for real outputs (``*.h5``) matches it."""
    return path.with_name(f".{path.name}.{_HOST}.{os.getpid()}{TMP_SUFFIX}")


def is_temp(path: Path) -> bool:
    """True for a file :func:`atomic_path` writes (or a killed run left behind)."""
    return path.name.startswith(".") and path.name.endswith(TMP_SUFFIX)


def _owner(path: Path) -> tuple[str | None, int | None]:
    """(host, pid) from a temp file's name; None where the name does not say."""
    parts = path.name[: -len(TMP_SUFFIX)].rsplit(".", 2)
    pid = int(parts[-1]) if parts[-1].isdigit() else None
    host = parts[-2] if len(parts) == 3 and pid is not None else None
    return host, pid


def owner_alive(path: Path) -> bool:
    """Whether the process that writes temp file ``path`` may still be running: a pid on
    this host is asked; another host's file counts as live until it is a day old."""
    host, pid = _owner(path)
    if pid is None:
        return False
    if host is not None and host != _HOST:
        try:
            return time.time() - path.stat().st_mtime < STALE_FOREIGN_S
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temps(folder: Path) -> int:
    """Remove the temp files of dead writers in ``folder`` (never a live run's); returns
    how many. A folder that cannot be listed or written is left as it is."""
    removed = 0
    try:
        entries = list(folder.iterdir())
    except OSError:
        return 0
    for p in entries:
        if is_temp(p) and not owner_alive(p):
            try:
                p.unlink()
                removed += 1
            except OSError:
                pass
    return removed


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces ``path``, on failure it is
    removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """UTF-8 text, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(obj: Any, path: str | Path) -> None:
    """Pretty JSON (non-ASCII kept), atomically."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_csv(
    rows: list[dict[str, Any]],
    path: str | Path,
    columns: list[str] | None = None,
    errors: str = "strict",
) -> None:
    """Rows of dicts to CSV, atomically; columns from ``columns`` or the first row.
    ``errors="surrogateescape"`` writes file names that are not UTF-8 byte for byte (read
    them back the same way)."""
    with (
        atomic_path(path) as tmp,
        tmp.open("w", newline="", encoding="utf-8", errors=errors) as f,
    ):
        cols = columns or (list(rows[0]) if rows else [])
        if not cols:
            return
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)


def user_cache_dir(kind: str) -> Path:
    """Where ``kind`` (``onnx``, ``mel``) is kept between runs: ``$INTRODETECT_CACHE/kind``,
    else ``$XDG_CACHE_HOME/introdetect/kind``, else ``~/.cache/introdetect/kind``."""
    root = os.environ.get("INTRODETECT_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        root = os.path.join(xdg, "introdetect")
    return Path(root) / kind
