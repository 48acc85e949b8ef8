"""The season agrees on its intro: an episode's model-free answer should be where the other
episodes' answers repeat in it.

The repetition share says how many other episodes repeat a step, not *what* they repeat
it as. A scene of this episode that the next two episodes replay in their "previously on"
recaps is repeated by every other episode, just like the intro -- but its copies there
are their recaps, not their answers; the intro's copies are the other episodes' intros.
(What agreement cannot fix: in a season of three where one episode has no intro, a
recapped shot is shared as widely as the intro, and the two pairs agree just as well;
:mod:`introdetect.pairs` tells them apart by their speech.)

:func:`agree` checks every answer against the others with the copies the sound matching
found (:func:`introdetect.candidates.copy_runs`: for each run of steps, every place where
its sound repeats in each other episode compared). An answer is *supported* by another
episode when the other's answer and this one are copies of each other. Where the answers of
at least :data:`MIN_VOTES` other episodes, and more than support the answer where it is,
repeat at one other place of the episode, the episode answers there instead (the best
repeated run within that place). ``null`` stays ``null`` (what repeats was not enough for an
answer), and a season of two cannot outvote anything. One pass, from the answers as they
were: no episode's change feeds another's.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np

from introdetect.decision import Detection
from introdetect.repetition import Copies

log = logging.getLogger(__name__)

Steps = tuple[int, int]  # [first step, last step + 1)
# an answer moves only where at least this many other episodes' answers repeat: one other
# episode's answer can be wrong itself (an ident, a recap), and with it the place it points to
MIN_VOTES = 2


def projections(runs: np.ndarray, span: Steps, gap: int = 2) -> list[Steps]:
    """Every place where the steps ``span`` of one episode repeat in another (``runs``: that
    pair's :func:`introdetect.candidates.copy_runs`), copies ``gap`` steps apart or closer
    merged, each covering at least half of ``span`` (a theme repeats at the other's intro
    and again under its end credits: two places)."""
    pieces = []
    for a, b, t in runs:
        lo, hi = max(int(a), span[0]), min(int(b), span[1])
        if hi > lo:
            pieces.append((int(t) + lo - int(a), int(t) + hi - int(a), hi - lo))
    merged: list[list[int]] = []
    for lo, hi, w in sorted(pieces):
        if merged and lo <= merged[-1][1] + gap:
            merged[-1][1] = max(merged[-1][1], hi)
            merged[-1][2] += w
        else:
            merged.append([lo, hi, w])
    return [(lo, hi) for lo, hi, w in merged if w * 2 >= span[1] - span[0]]


def overlaps(p: Steps, q: Steps | None) -> bool:
    """Whether two step spans share at least half of the shorter one."""
    if q is None:
        return False
    inter = min(p[1], q[1]) - max(p[0], q[0])
    return inter > 0 and inter * 2 >= min(p[1] - p[0], q[1] - q[0])


def _steps(d: Detection) -> Steps | None:
    if d.interval is None or d.fps <= 0:
        return None
    a, b = int(round(d.interval[0] * d.fps)), int(round(d.interval[1] * d.fps))
    return (a, max(b, a + 1))


def agree(
    dets: list[Detection],
    copies: dict[str, Copies],
    answer_within: Callable[[Detection, Steps], Detection | None],
) -> list[Detection]:
    """``dets`` (model-free answers) with each answer moved to where the most other
    episodes' answers repeat in it, when more do there than support the answer where it
    is (module docstring). ``copies``: each episode's copies (``{}``: not compared, left
    as it is). ``answer_within(det, span)``: the episode's answer looked for only within
    the steps ``span`` (None: nothing there)."""
    spans = {d.episode_id: _steps(d) for d in dets}
    out = []
    for d in dets:
        eid, own = d.episode_id, spans[d.episode_id]
        if own is None:  # "no intro" stands: the sound that repeats was not enough
            out.append(d)
            continue
        support, _, places = _support(eid, own, spans, copies)
        moved = _move(d, places, max(MIN_VOTES, support + 1), answer_within)
        if moved is None:
            out.append(d)
            continue
        log.info(
            "%s: %s -> %s, where the answers of other episodes repeat (%d supported it)",
            eid,
            d.interval,
            moved.interval,
            support,
        )
        out.append(dataclasses.replace(moved, source=moved.source + "+agreed"))
    final = {d.episode_id: _steps(d) for d in out}
    return [
        d
        if final[d.episode_id] is None or not copies.get(d.episode_id)
        else dataclasses.replace(
            d, agreed=_support(d.episode_id, final[d.episode_id], final, copies)[:2]
        )
        for d in out
    ]


def _support(
    eid: str, own: Steps, spans: dict[str, Steps | None], copies: dict[str, Copies]
) -> tuple[int, int, list[tuple[str, Steps]]]:
    """How many other episodes compared with ``eid`` answer a copy of its answer ``own``
    (their answers: ``spans``), how many were compared, and where the others' answers repeat
    in ``eid`` when they do not agree: ``(episode, place)``."""
    support, compared, places = 0, 0, []
    for y in (y for y in copies.get(eid, {}) if y in spans):
        compared += 1
        theirs, back = spans[y], copies.get(y, {}).get(eid)
        if theirs is None or back is None:
            continue
        here = projections(back, theirs)
        there = projections(copies[eid][y], own)
        if any(overlaps(h, own) for h in here) or any(overlaps(t, theirs) for t in there):
            support += 1
        else:
            places += [(y, h) for h in here]
    return support, compared, places


def _move(
    d: Detection,
    places: list[tuple[str, Steps]],
    need: int,
    answer_within: Callable[[Detection, Steps], Detection | None],
) -> Detection | None:
    """The answer within the place most other episodes' answers point to, of those
    pointed to by at least ``need`` episodes and holding an answer; None when none does."""
    for place, votes in _ranked(places):
        if votes < need:
            return None
        moved = answer_within(d, place)
        if moved is not None and moved.interval is not None:
            return moved
    return None


def _ranked(places: list[tuple[str, Steps]]) -> list[tuple[Steps, int]]:
    """The places other episodes' ``(episode, place)`` point to, each the union of those
    overlapping one of them, with in how many episodes' places: most first."""
    out = []
    for _, p in places:
        group = [(y, q) for y, q in places if overlaps(p, q)]
        union = (min(q[0] for _, q in group), max(q[1] for _, q in group))
        out.append((union, len({y for y, _ in group})))
    return sorted(set(out), key=lambda x: (-x[1], x[0]))
