"""Episode discovery and the prepare index: which videos, which ids, which series, which labels.

Both layouts work: the original task's ``<dir>/<id>/<id>.mp4`` and flat ``<dir>/<id>.<ext>``
(found recursively; the id is the file stem). The index is one CSV per split with one row per
episode (video and/or label) and a JSON report that lists every label problem and every
video/label mismatch, so nothing broken is used silently.
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from introdetect.errors import IntrodetectError
from introdetect.fileio import write_csv, write_json
from introdetect.labels import (
    CleanLabel,
    LabelError,
    RawLabel,
    clean_label,
    load_label_file,
    normalize_series,
    series_from_name,
)
from introdetect.media import MediaError, probe
from introdetect.params import DataParams
from introdetect.scan import scan_paths

log = logging.getLogger(__name__)


class DatasetError(IntrodetectError):
    """The episode folders or label files cannot make a dataset."""


@dataclass
class IndexRow:
    """One episode in a split."""

    split: str
    episode_id: str
    path: str  # "" when the label has no video
    series: str
    name: str
    status: str  # label: ok | repaired | swapped | no_intro | dropped | unlabeled
    start_s: float | None
    end_s: float | None
    raw_start: str
    raw_end: str
    problem: str
    seen: bool  # test only: the series also occurs in train

    @property
    def has_video(self) -> bool:
        return bool(self.path)

    @property
    def labelled(self) -> bool:
        """Has a usable label (an interval or a sure 'no intro')."""
        return self.status in ("ok", "repaired", "swapped", "no_intro")


def find_videos(root: str | Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    """Map episode id -> video path under ``root`` (recursive, :mod:`introdetect.scan`
    rules). Duplicate ids are an error; other skipped files are logged."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: video folder not found")
    scan = scan_paths([root], extensions)
    dup = [s for s in scan.skipped if s.reason.startswith("duplicate episode id")]
    if dup:
        raise DatasetError(f"{dup[0].path}: {dup[0].reason}")
    scan.report()
    return dict(scan.videos)


def derive_series(eid: str, name: str, video: Path | None, root: Path, regex: str | None) -> str:
    """Series key: from the label name, else a ``data.series_regex`` on the id, else the folder."""
    if name:
        s = series_from_name(name)
        if s:
            return s
    if regex:
        m = re.search(regex, eid)
        if m:
            return normalize_series(m.groupdict().get("series") or m.group(m.lastindex or 0))
    if video is not None:
        parent = video.parent
        if parent.name == eid:  # original layout <dir>/<id>/<id>.mp4: folder says nothing
            parent = parent.parent
        if parent.resolve() != root.resolve():
            return normalize_series(parent.name)
    return normalize_series(eid)


def _header_duration(video: Path) -> float | None:
    """Container duration for a sanity check of labels (None when unknown or unreadable)."""
    try:
        return probe(video).duration_s
    except MediaError:
        return None  # featurize reports the file; the label is judged without a duration


def build_split(
    split: str, video_dir: str | Path, label_file: str | Path | None, dp: DataParams
) -> tuple[list[IndexRow], dict[str, Any]]:
    """Index one split: videos x labels, cleaned labels, series; plus its problem report."""
    root = Path(video_dir)
    videos = find_videos(root, dp.video_extensions)
    raws: dict[str, RawLabel] = {}
    problems: list[dict[str, str]] = []
    if label_file:
        rows, file_problems = load_label_file(label_file)
        problems += [{"episode_id": "", "problem": p} for p in file_problems]
        for r in rows:
            if r.episode_id in raws:
                problems.append({"episode_id": r.episode_id, "problem": "duplicate label row"})
            raws[r.episode_id] = r
    out: list[IndexRow] = []
    for eid in sorted(set(videos) | set(raws)):
        raw = raws.get(eid)
        video = videos.get(eid)
        name = raw.name if raw else ""
        if raw is None:
            cl = CleanLabel(eid, "dropped", problem="video without a label")
            status = "unlabeled"
        else:
            duration = _header_duration(video) if video is not None else None
            cl = clean_label(raw, dp.label_policy, dp.min_intro_s, dp.max_intro_s, duration)
            status = cl.status
        if video is None:
            problems.append({"episode_id": eid, "problem": f"label without a video in {root}"})
        if cl.problem and raw is not None:
            problems.append({"episode_id": eid, "problem": cl.problem, "status": cl.status})
        out.append(
            IndexRow(
                split=split,
                episode_id=eid,
                path=str(video) if video else "",
                series=derive_series(eid, name, video, root, dp.series_regex),
                name=name,
                status=status,
                start_s=cl.start_s,
                end_s=cl.end_s,
                raw_start="" if raw is None or raw.start is None else str(raw.start),
                raw_end="" if raw is None or raw.end is None else str(raw.end),
                problem=cl.problem,
                seen=False,
            )
        )
    if not videos:
        raise DatasetError(f"{root}: no video files ({', '.join(dp.video_extensions)})")
    report = {
        "videos": len(videos),
        "label_rows": len(raws),
        "status_counts": dict(Counter(r.status for r in out)),
        "n_videos_without_label": sum(e not in raws for e in videos),
        "n_labels_without_video": sum(e not in videos for e in raws),
        "videos_without_label": sorted(e for e in videos if e not in raws),
        "labels_without_video": sorted(e for e in raws if e not in videos),
        "problems": problems,
    }
    return out, report


def build_index(dp: DataParams) -> tuple[list[IndexRow], list[IndexRow], dict[str, Any]]:
    """Index train and test; mark test episodes of series seen in train."""
    try:
        train, rep_train = build_split("train", dp.train_dir, dp.train_labels, dp)
        test, rep_test = build_split("test", dp.test_dir, dp.test_labels, dp)
    except LabelError as e:
        raise DatasetError(str(e)) from e
    if not any(r.labelled and r.has_video for r in train):
        raise DatasetError(f"{dp.train_dir}: no episode has both a video and a usable label")
    train_series = {r.series for r in train if r.labelled}
    for r in test:
        r.seen = r.series in train_series
    report = {
        "policy": dp.label_policy,
        "train": rep_train,
        "test": rep_test,
        "test_seen_series": sorted({r.series for r in test if r.seen}),
        "test_unseen_series": sorted({r.series for r in test if not r.seen}),
    }
    return train, test, report


def write_index(rows: list[IndexRow], path: str | Path) -> None:
    """Write one split's index CSV."""
    write_csv(
        [{k: ("" if v is None else v) for k, v in asdict(r).items()} for r in rows],
        path,
        columns=[x.name for x in fields(IndexRow)],
        errors="surrogateescape",  # the path column names the file itself, byte for byte
    )


def read_index(path: str | Path) -> list[IndexRow]:
    """Read an index CSV written by :func:`write_index`."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: index not found (run the prepare stage first)")
    rows = []
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as f:
        for d in csv.DictReader(f):
            rows.append(
                IndexRow(
                    split=d["split"],
                    episode_id=d["episode_id"],
                    path=d["path"],
                    series=d["series"],
                    name=d["name"],
                    status=d["status"],
                    start_s=float(d["start_s"]) if d["start_s"] else None,
                    end_s=float(d["end_s"]) if d["end_s"] else None,
                    raw_start=d["raw_start"],
                    raw_end=d["raw_end"],
                    problem=d["problem"],
                    seen=d["seen"] == "True",
                )
            )
    return rows


def write_report(report: dict[str, Any], path: str | Path) -> None:
    """Write the prepare report JSON."""
    write_json(report, path)
