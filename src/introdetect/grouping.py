"""Which episodes form one series (a season): the unit the repetition signal and the
season-consistent decision work on, for ``introdetect detect`` without labels.

1. The file name, where it says: ``Show.S01E02``, ``Show 1x02``, ``Show - 02`` -> the show
   and season (``show s01``; a name without a show takes its folder's name).
2. The rest, per folder, by mutual repetition: two episodes belong together when they
   share a long enough stretch of aligned repeated content (an intro), judged against
   what each shares with its best match, so a studio ident shared by two series is not
   enough on its own. Connected episodes form one group.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from introdetect.params import RepetitionParams
from introdetect.repetition import diagonal_runs, series_descriptors
from introdetect.store import read_episode

log = logging.getLogger(__name__)

_PATTERNS = (
    re.compile(r"^(?P<show>.*?)[\s._\-\[\(]*[Ss](?P<season>\d{1,2})[\s._\-]*[Ee](?P<ep>\d{1,4})"),
    re.compile(r"^(?P<show>.*?)[\s._\-\[\(]*(?P<season>\d{1,2})x(?P<ep>\d{2,4})\b"),
    re.compile(r"^(?P<show>.+?)\s+-\s+(?P<ep>\d{1,4})(?:\D|$)"),
)
LINK_RATIO = 0.7  # a pair shares at least this share of what each shares with its best match
MAX_STEPS = 1200  # compare at most the first 10 minutes (2 steps/s)


def _clean(show: str) -> str:
    show = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", show)  # [release group], (year)
    return re.sub(r"\s+", " ", re.sub(r"[._\-]+", " ", show)).strip().lower()


def name_series(path: Path) -> str | None:
    """``show sNN`` (or ``show``) from a file name that follows a common episode pattern;
    None when the name says nothing."""
    for pattern in _PATTERNS:
        m = pattern.search(path.stem)
        if m:
            show = _clean(m.group("show")) or _clean(path.parent.name) or "series"
            season = m.groupdict().get("season")
            return f"{show} s{int(season):02d}" if season else show
    return None


def shared_seconds(
    a: tuple[np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray],
    fps: float,
    cfg: RepetitionParams,
) -> float:
    """Seconds of ``a`` that repeat in ``b`` as aligned runs of at least ``min_run_s``."""
    (va, ma), (vb, mb) = a, b
    va, ma, vb, mb = va[:MAX_STEPS], ma[:MAX_STEPS], vb[:MAX_STEPS], mb[:MAX_STEPS]
    # a channel missing on either side (no audio; pictures not decoded yet) does not count
    sims = [x @ y.T for x, y in ((va, vb), (ma, mb)) if np.any(x) and np.any(y)]
    if not sims:
        return 0.0
    sim = sum(sims) / len(sims)
    runs = diagonal_runs(sim >= cfg.sim_threshold).max(1)
    return float((runs >= max(1, round(cfg.min_run_s * fps))).sum() / fps)


def link_groups(scores: np.ndarray, min_shared_s: float) -> list[list[int]]:
    """Connected components of the pairs that share at least ``min_shared_s`` and at least
    ``LINK_RATIO`` of what each of the two shares with its own best match."""
    n = len(scores)
    best = scores.max(1) if n > 1 else np.zeros(n)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            s = scores[i, j]
            if s >= min_shared_s and s >= LINK_RATIO * best[i] and s >= LINK_RATIO * best[j]:
                parent[root(i)] = root(j)
    comps: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        comps[root(i)].append(i)
    return sorted(comps.values())


def _by_repetition(
    members: list[tuple[str, Path]], feature_dir: Path, cfg: RepetitionParams
) -> list[list[str]]:
    feats, fps = {}, 2.0
    for eid, _ in members:
        f = read_episode(feature_dir / f"{eid}.h5")
        feats[eid] = (f.visual, f.audio[:, 1:])
        fps = float(f.attrs["fps"])
    desc = series_descriptors(feats)
    ids = list(feats)
    scores = np.zeros((len(ids), len(ids)))
    for i, a in enumerate(ids):
        for j in range(i + 1, len(ids)):
            s = 0.5 * (
                shared_seconds(desc[a], desc[ids[j]], fps, cfg)
                + shared_seconds(desc[ids[j]], desc[a], fps, cfg)
            )
            scores[i, j] = scores[j, i] = s
    return [[ids[k] for k in comp] for comp in link_groups(scores, cfg.min_run_s)]


def group_series(
    videos: list[tuple[str, Path]], feature_dir: Path, cfg: RepetitionParams
) -> dict[str, str]:
    """``{episode_id: group name}`` for featurized ``videos`` (names first, then mutual
    repetition within each folder)."""
    groups: dict[str, str] = {}
    unnamed: dict[Path, list[tuple[str, Path]]] = defaultdict(list)
    for eid, path in videos:
        named = name_series(path)
        if named:
            groups[eid] = named
        else:
            unnamed[path.parent].append((eid, path))
    for folder, members in sorted(unnamed.items()):
        label = _clean(folder.name) or "."
        if len(members) < 3:  # too few to split: one group
            groups.update({eid: label for eid, _ in members})
            continue
        comps = _by_repetition(members, feature_dir, cfg)
        for k, comp in enumerate(comps):
            name = label if len(comps) == 1 else f"{label} #{k + 1}"
            groups.update({eid: name for eid in comp})
    return groups


def describe_groups(groups: dict[str, str]) -> list[str]:
    """One line per group: its name, size and episodes."""
    by: dict[str, list[str]] = defaultdict(list)
    for eid, g in groups.items():
        by[g].append(eid)
    return [
        f"series {g!r}: {len(ids)} episode{'s' if len(ids) != 1 else ''} ({', '.join(sorted(ids))})"
        for g, ids in sorted(by.items())
    ]
