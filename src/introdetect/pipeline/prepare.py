"""Stage 'prepare': find episodes, derive series, clean labels; write the index."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from introdetect.fileio import write_json
from introdetect.index import build_index, write_index
from introdetect.params import Params

log = logging.getLogger(__name__)


def run(p: Params, index_dir: Path) -> dict[str, Any]:
    """Write ``index_dir/{train,test}.csv`` and ``index_dir/label_report.json``."""
    train, test, report = build_index(p.data)
    write_index(train, index_dir / "train.csv")
    write_index(test, index_dir / "test.csv")
    write_json(report, index_dir / "label_report.json")
    for split in ("train", "test"):
        rep = report[split]
        log.info(
            "%s: %d videos, %d label rows, statuses %s, %d problems",
            split,
            rep["videos"],
            rep["label_rows"],
            rep["status_counts"],
            len(rep["problems"]),
        )
    return report
