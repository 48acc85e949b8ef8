"""Writing results: predictions JSON (+ presence sidecar) and small JSON/CSV helpers."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any


def write_json(obj: Any, path: str | Path) -> None:
    """Pretty JSON, written atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Rows of dicts to CSV (columns from the first row)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        if not rows:
            return
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
