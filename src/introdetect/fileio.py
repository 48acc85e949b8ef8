"""Atomic file writes: every output is written to a temp file beside it and renamed into
place, so a killed run leaves either the old file or the new one, never a torn one."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"


def temp_name(path: Path) -> Path:
    """The temp file for ``path``: hidden, per process, same folder (so the rename is
    atomic), ending in ``.tmp`` so no glob for real outputs (``*.h5``) matches it."""
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def is_temp(path: Path) -> bool:
    """True for a file :func:`atomic_path` left behind (a killed run)."""
    return path.name.startswith(".") and path.name.endswith(TMP_SUFFIX)


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
    rows: list[dict[str, Any]], path: str | Path, columns: list[str] | None = None
) -> None:
    """Rows of dicts to CSV, atomically; columns from ``columns`` or the first row."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        cols = columns or (list(rows[0]) if rows else [])
        if not cols:
            return
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
