"""Season-level decisions on top of the per-episode answers: one length for a season's
intro, and boundaries snapped to the frame.

* :func:`season_consistent` -- where a season has three or more answers, an answer whose
  length is far from the season's median is re-decided as the best window of the median
  length on the episode's own curve (when that window is convincing), so a trimmed curve or
  a theme running on does not give one episode a different intro.
* :func:`refine_all` -- each boundary snapped to the nearest clear cut or fade
  (:mod:`introdetect.refine`), so answers are sharper than the whole-second labels.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from introdetect.media import MediaError
from introdetect.refine import refine_interval

if TYPE_CHECKING:  # inference imports this module
    from introdetect.inference import Detection

log = logging.getLogger(__name__)


def best_window(curve: np.ndarray, fps: float, length_s: float) -> tuple[float, float, float]:
    """The window of ``length_s`` with the highest mean of ``curve``: (start, end, mean)."""
    n = max(1, min(len(curve), int(round(length_s * fps))))
    c = np.concatenate([[0.0], np.cumsum(curve)])
    means = (c[n:] - c[:-n]) / n
    a = int(np.argmax(means))
    return a / fps, (a + n) / fps, float(means[a])


def season_consistent(
    dets: list[Detection], groups: dict[str, str], min_mean: float, tolerance: float = 0.25
) -> list[Detection]:
    """Answers of each season (``groups``: episode id -> season) brought to one length."""
    by_group: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(dets):
        by_group[groups.get(d.episode_id, "")].append(i)
    out = list(dets)
    for members in by_group.values():
        lengths = [dets[i].interval[1] - dets[i].interval[0] for i in members if dets[i].interval]
        if len(lengths) < 3:
            continue
        median = statistics.median(lengths)
        for i in members:
            d = dets[i]
            if d.interval is None or abs(d.interval[1] - d.interval[0] - median) <= max(
                1.0, tolerance * median
            ):
                continue
            a, b, mean = best_window(d.probs, d.fps, median)
            if mean >= min_mean:
                iv = (round(a, 2), round(min(b, len(d.probs) / d.fps), 2))
                out[i] = dataclasses.replace(d, interval=iv, source=d.source + "+season")
    return out


def refine_all(dets: list[Detection], videos: dict[str, Path], search_s: float) -> list[Detection]:
    """Every answer's boundaries snapped to cuts/fades in its video (unchanged where the
    video cannot be read around them)."""
    out = []
    for d in dets:
        video = videos.get(d.episode_id)
        if d.interval is None or video is None:
            out.append(d)
            continue
        try:
            iv, moved = refine_interval(video, d.interval, search_s)
        except MediaError as e:
            log.warning("refine: %s", e)
            iv, moved = d.interval, 0
        out.append(
            dataclasses.replace(d, interval=iv, source=d.source + ("+refined" if moved else ""))
        )
    return out
