"""Intro labels: time strings <-> seconds, loading label files, series names, cleaning policy.

The original task's label files are JSON keyed by episode id::

    {"-220020068_456255414": {"name": "Баскетс. 4 сезон, 7 серия",
                              "start": "0:01:42", "end": "0:01:47"}}

Times may be ``H:MM:SS``, ``H:MM:SS.mmm``, ``MM:SS`` or plain seconds (number or string).
``start``/``end`` both null (or missing) means "this episode has no intro".

About one real row in five has ``end < start``. Most of those are a mistyped start minute
(``0:03:08`` for ``0:02:08``); :func:`clean_label` applies an explicit policy to each broken
row and says what it did, so no broken row is ever used silently.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from introdetect.errors import IntrodetectError

log = logging.getLogger(__name__)

Policy = Literal["repair", "swap", "drop"]


class LabelError(IntrodetectError):
    """A label file or a time string cannot be read."""


_TIME_RE = re.compile(r"^\s*(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*$")


def parse_time(value: str | float | int) -> float:
    """Parse ``H:MM:SS[.mmm]``, ``MM:SS`` or plain seconds into seconds (float).

    Raises :class:`LabelError` for malformed or negative times.
    """
    if isinstance(value, bool):
        raise LabelError(f"time {value!r} is not a time")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        s = value.strip()
        m = _TIME_RE.match(s)
        if m:
            h, mnt, sec = m.groups()
            if int(mnt) >= 60 and h is not None or float(sec) >= 60:
                raise LabelError(f"time {value!r} has minutes or seconds >= 60")
            seconds = int(h or 0) * 3600 + int(mnt) * 60 + float(sec)
        else:
            try:
                seconds = float(s)
            except ValueError:
                raise LabelError(f"time {value!r} is not H:MM:SS, MM:SS or seconds") from None
    else:
        raise LabelError(f"time {value!r} is not a string or a number")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise LabelError(f"time {value!r} is not finite")
    if seconds < 0:
        raise LabelError(f"time {value!r} is negative")
    return seconds


def format_time(seconds: float) -> str:
    """Seconds -> ``H:MM:SS`` (whole seconds, rounded), the original task's format."""
    total = int(round(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


# Latin letters that look like Cyrillic ones; real names mix them ("Бывaeт и xyжe").
_LATIN_TO_CYRILLIC = str.maketrans("aceopxyABCEHKMOPTX", "асеорхуАВСЕНКМОРТХ")
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_SERIES_SPLIT = re.compile(
    r"""[\s.,:;-]*(?:
        \d+\s*(?:сезон|season|серия|эпизод|episode|series|ep\.?)\b
      | (?:сезон|season|серия|эпизод|episode)\s*\d+
      | s\d{1,2}\s*e\d{1,3}\b
      | \d{1,2}x\d{1,3}\b
    ).*$""",
    re.IGNORECASE | re.VERBOSE,
)


def normalize_series(name: str) -> str:
    """Canonical series key: homoglyphs folded to Cyrillic in Cyrillic words, spaces squeezed."""
    words = []
    for w in name.split():
        words.append(w.translate(_LATIN_TO_CYRILLIC) if _CYRILLIC.search(w) else w)
    return " ".join(words).strip(" .,-").casefold()


def series_key(group: str) -> str:
    """The series of a season group, comparable with the series of labelled episodes: the
    name without a trailing season (``introdetect detect`` names file-name groups
    ``show s01``), normalised (:func:`normalize_series`).

    >>> series_key("the office s02") == series_key("The Office")
    True
    """
    return normalize_series(re.sub(r"\s+s\d{1,2}$", "", group.strip()))


def series_from_name(name: str) -> str | None:
    """The series part of an episode name: the text before the season/episode words.

    >>> series_from_name("Баскетс. 4 сезон, 7 серия")
    'баскетс'
    """
    head = _SERIES_SPLIT.sub("", name).strip(" .,-")
    if not head:
        return None
    return normalize_series(head)


@dataclass
class RawLabel:
    """One row of a label file, as written."""

    episode_id: str
    name: str = ""
    start: Any = None
    end: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CleanLabel:
    """The outcome of cleaning one row."""

    episode_id: str
    status: Literal["ok", "no_intro", "repaired", "swapped", "dropped"]
    start_s: float | None = None
    end_s: float | None = None
    problem: str = ""

    @property
    def usable(self) -> bool:
        """True when the row gives a trustworthy answer (an interval or a sure 'no intro')."""
        return self.status != "dropped"

    @property
    def has_intro(self) -> bool:
        return self.start_s is not None


def load_label_file(path: str | Path) -> tuple[list[RawLabel], list[str]]:
    """Read a label JSON file. Returns the rows and a list of row-level problems.

    A row that is not a mapping is reported, not fatal; an unreadable file raises.
    """
    path = Path(path)
    duplicates: list[str] = []

    def keep_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for k, v in pairs:
            if k in seen and isinstance(v, dict):  # a label row given twice
                duplicates.append(k)
            seen[k] = v
        return seen

    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"), object_pairs_hook=keep_pairs)
    except FileNotFoundError:
        raise LabelError(f"{path}: label file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LabelError(f"{path}: not valid JSON ({e})") from None
    if isinstance(data, list):  # [{"id": ..., "start": ..., "end": ...}, ...]
        items = []
        for i, row in enumerate(data):
            key = row.get("id") if isinstance(row, dict) else None
            items.append((str(key) if key is not None else f"<row {i}>", row))
    elif isinstance(data, dict):
        items = list(data.items())
    else:
        raise LabelError(f"{path}: expected a JSON object keyed by episode id")
    rows: list[RawLabel] = []
    problems = [
        f"{path}: {key}: key given more than once; the last row is used" for key in duplicates
    ]
    for key, row in items:
        if not isinstance(row, dict):
            problems.append(f"{path}: {key}: row is {type(row).__name__}, not an object")
            continue
        extra = {k: v for k, v in row.items() if k not in ("name", "start", "end", "id")}
        rows.append(
            RawLabel(str(key), str(row.get("name") or ""), row.get("start"), row.get("end"), extra)
        )
    return rows, problems


END_SLACK_S = 0.5  # container durations and whole-second labels differ by this much


def clean_label(
    row: RawLabel,
    policy: Policy = "repair",
    min_len_s: float = 1.0,
    max_len_s: float = 40.0,
    duration_s: float | None = None,
) -> CleanLabel:
    """Validate one row and apply the cleaning ``policy`` to broken ones.

    * ``repair``: ``end < start`` is taken as a mistyped start minute when ``start - 60``
      gives a plausible intro (``min_len_s..max_len_s``); otherwise the row is dropped.
    * ``swap``: ``end < start`` rows are swapped when the swapped length is plausible.
    * ``drop``: every broken row is dropped.

    Rows with malformed times, zero length, an implausible length or a start beyond the
    episode's ``duration_s`` are dropped under every policy; an end past the duration is
    clipped to it (status ``repaired``, with a note).
    """
    eid = row.episode_id
    if row.start in (None, "") and row.end in (None, ""):
        return CleanLabel(eid, "no_intro")
    try:
        start = parse_time(row.start)
        end = parse_time(row.end)
    except LabelError as e:
        return CleanLabel(eid, "dropped", problem=f"bad time: {e}")
    status: Literal["ok", "repaired", "swapped"] = "ok"
    problem = ""
    if end < start:
        problem = f"end {format_time(end)} < start {format_time(start)}"
        fixed = None
        if policy == "repair" and min_len_s <= end - (start - 60) <= max_len_s:
            fixed, status = (start - 60, end), "repaired"
            problem += "; start minute taken as mistyped (start - 60 s)"
        elif policy == "swap" and min_len_s <= start - end <= max_len_s:
            fixed, status = (end, start), "swapped"
            problem += "; start and end swapped"
        if fixed is None:
            return CleanLabel(eid, "dropped", problem=problem + f"; policy '{policy}' drops it")
        start, end = fixed
    length = end - start
    if length < min_len_s or length > max_len_s:
        why = f"intro length {length:.1f} s outside [{min_len_s:g}, {max_len_s:g}]"
        return CleanLabel(eid, "dropped", problem=(problem + "; " if problem else "") + why)
    if duration_s is not None and start >= duration_s:
        return CleanLabel(
            eid,
            "dropped",
            problem=f"start {start:.1f} s beyond episode duration {duration_s:.1f} s",
        )
    if duration_s is not None and end > duration_s + END_SLACK_S:
        note = f"end {end:.1f} s beyond episode duration {duration_s:.1f} s"
        if duration_s - start < min_len_s:
            return CleanLabel(eid, "dropped", problem=note)
        problem = (problem + "; " if problem else "") + note + "; end clipped to the duration"
        return CleanLabel(eid, "repaired", start, duration_s, problem)
    return CleanLabel(eid, status, start, end, problem)
