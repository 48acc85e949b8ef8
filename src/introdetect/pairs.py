"""The intro of a small season that one episode lacks: two episodes that share it, and
nothing else as quiet.

In a season of three where one episode has no intro, the other two share their intro with
exactly half of the others, the bare threshold of ``repetition.min_share`` (in a season of
four where two have none, with a third: under it). The model-free detector's curve is
smoothed before that threshold, which takes such a run under it, and the runs shared as
narrowly are as often a recapped scene (dialogue) as the intro; a music cue replayed under
other pictures in every episode (sound only) is shared more widely still. So such
episodes answer ``null``, the recapped scene or the cue.

:func:`quiet_pairs` looks for the intro as a *pair*: a run of one episode and a run of
another that are copies of each other (the sound matching's copies, both ways), each
repeating in sound in at least :data:`PAIR_SHARE` of its episode's others and in picture too
somewhere along it, neither in the credits nor opening the episode (the ident), and both
without speech (:mod:`introdetect.speech`). A run glued to the ident before it (the sound
repeats from the episode's start on, at one place in the other episodes before a moment and
at another after it) is cut there first (:func:`~introdetect.repetition.realignment_cuts`).
The episodes *open* to a new answer take part with their runs: those with none, one that
repeats in sound alone, or one with speech; the others (a *settled* answer) take part
through their answer alone, which stays as it is: an episode whose intro the season left
unanswered (glued to its ident) pairs with another's answer. Of several pairs the longer
goes first, and an episode answers one run (it pairs again only through that run), so the
third episode -- whose recapped scenes pair only with runs the other two did not answer --
keeps its ``null``. Without the speech cue nothing is paired: a recap's scene pairs as well
as an intro.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from introdetect.agreement import Steps, overlaps, projections
from introdetect.postprocess import true_runs
from introdetect.repetition import (
    AUDIO_SHARE,
    AUDIO_SPLIT,
    OPENING_S,
    Copies,
    credit_steps,
    fill_dropouts,
    realignment_cuts,
    weighed_share,
)

log = logging.getLogger(__name__)

# ``quiet(episode, (start_s, end_s))``: whether that span of the episode is without speech
Quiet = Callable[[str, tuple[float, float]], bool]
# A pair's runs repeat in this share of the other episodes or more (``repetition.min_share``
# where that is lower): in a season of three where one episode lacks the intro the other
# two share it with half of the others, in a season of four where two lack it with a third.
PAIR_SHARE = 1 / 3


def pair_runs(
    rep: np.ndarray,
    fps: float,
    end_s: float | None,
    min_share: float,
    min_len_s: float,
    max_len_s: float,
    sound_only: bool = False,
) -> list[Steps]:
    """An episode's candidate runs for a pair (module docstring): steps whose sound repeats
    in :data:`PAIR_SHARE` of the other episodes or more (``min_share`` where lower; one-step
    dropouts filled), from ``min_len_s`` to ``max_len_s`` long, whose picture repeats as
    widely somewhere along them (not with ``sound_only``: no pictures compared), not
    starting within :data:`~introdetect.repetition.OPENING_S` of the episode's start and
    touching none of its credit steps (``min_share``: as the model-free answer's). None (an
    empty list) without the sound's channel or audio."""
    if rep.shape[1] <= AUDIO_SHARE or np.isnan(rep[:, AUDIO_SHARE]).any():
        return []
    level = fill_dropouts(rep[:, AUDIO_SHARE])
    credits = credit_steps(weighed_share(rep), fps, min_share, end_s)
    need = min(min_share, PAIR_SHARE) - 1e-6
    out = []
    for a, b in _pieces(true_runs(level >= need), rep):
        if not min_len_s * fps - 1e-9 <= b - a <= max_len_s * fps + 1e-9:
            continue
        if a < OPENING_S * fps or (credits is not None and credits[a:b].any()):
            continue
        if not sound_only and np.nan_to_num(rep[a:b, 3]).max() < need:
            continue
        out.append((int(a), int(b)))
    return out


def _pieces(runs: list[Steps], rep: np.ndarray) -> list[Steps]:
    """``runs`` cut where the sound's alignment changes (the ident glued to the intro that
    follows it: :func:`~introdetect.repetition.realignment_cuts`)."""
    if rep.shape[1] <= AUDIO_SPLIT:
        return runs
    out = []
    for a, b in runs:
        edges = [a, *realignment_cuts(rep[:, AUDIO_SPLIT], a, b), b]
        out += [(int(x), int(y)) for x, y in zip(edges[:-1], edges[1:], strict=True)]
    return out


def quiet_pairs(
    runs: dict[str, list[Steps]],
    copies: dict[str, Copies],
    groups: dict[str, str],
    fps: dict[str, float],
    quiet: Quiet,
) -> dict[str, Steps]:
    """The run each paired episode answers (module docstring): ``runs``, each open
    episode's :func:`pair_runs`; ``copies``, the sound matching's copies; ``quiet``, the
    speech cue. Pairs are taken longest first (the shorter run of the two); an episode
    answers one run, and pairs again only through it (a season of four whose intro a third
    episode shares too)."""
    seasons: dict[str, list[str]] = defaultdict(list)
    for eid in runs:
        seasons[groups.get(eid, "")].append(eid)
    out: dict[str, Steps] = {}
    for ids in seasons.values():
        pairs = []
        for x, y in itertools.combinations(sorted(ids), 2):
            there, back = copies.get(x, {}).get(y), copies.get(y, {}).get(x)
            if there is None or back is None:
                continue
            for p in runs[x]:
                places = projections(there, p)
                for q in runs[y]:
                    if any(overlaps(h, q) for h in places) and any(
                        overlaps(h, p) for h in projections(back, q)
                    ):
                        pairs.append((min(p[1] - p[0], q[1] - q[0]), x, p, y, q))
        for _, x, p, y, q in sorted(pairs, key=lambda t: -t[0]):
            if out.get(x, p) != p or out.get(y, q) != q or (x in out and y in out):
                continue
            if quiet(x, _seconds(p, fps[x])) and quiet(y, _seconds(q, fps[y])):
                out[x], out[y] = p, q
                log.info(
                    "%s %.1f-%.1f s and %s %.1f-%.1f s: a quiet pair, copies of each other",
                    x,
                    p[0] / fps[x],
                    p[1] / fps[x],
                    y,
                    q[0] / fps[y],
                    q[1] / fps[y],
                )
    return out


def _seconds(span: Steps, fps: float) -> tuple[float, float]:
    return span[0] / fps, span[1] / fps
