"""The model-free season detector: the intro is the stretch that repeats, in picture and in
sound, across the episodes of a series (no labels, no model).

:func:`unsupervised_episodes` reads each episode's repetition channels
(:mod:`introdetect.repetition`: the share of other episodes in which each step's picture
repeats and, with ``predict.model_free_audio``, the share in which its sound repeats),
picks one interval per episode and hands the answers to the same season decisions as the
model's (:func:`introdetect.decision.season_decisions`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from introdetect.decision import ALONE, NO_AUDIO, Detection, season_decisions
from introdetect.params import PredictParams, RepetitionParams
from introdetect.repetition import AUDIO_SHARE, late_steps, unsupervised_answer
from introdetect.store import read_attrs

# A step's share: this much of the share of episodes where its sound repeats (a sample-exact
# repeat of the audio, :mod:`introdetect.candidates`), the rest from its picture's (a looser
# test: recurring establishing shots and similar scenes pass it too). On the development
# set (seeds 1 + 2) 2/3 scored 0.95 / 0.64 mean IoU (seen / unseen), the plain mean 0.78 / 0.65.
SOUND_WEIGHT = 2 / 3


def unsupervised_episodes(
    episode_ids: list[str],
    rep_dir: str | Path,
    feature_dir: str | Path,
    pp: PredictParams,
    rp: RepetitionParams,
    groups: dict[str, str] | None = None,
    videos: dict[str, Path] | None = None,
    sound_only: bool = False,
) -> list[Detection]:
    """The model-free answer for each episode from its repetition channels in ``rep_dir``
    (and its feature file's timing), with the same season decisions as the model's.

    With ``predict.model_free_audio`` a step's share weighs the share of other episodes
    in which its sound repeats (channel 4 of the repetition channels) by
    :data:`SOUND_WEIGHT` and the share in which its picture repeats by the rest: an intro
    repeats in picture and sound (up to 1), an establishing shot only in picture (at most
    1/3), end credits or a theme running on under the next shot only in sound (at most
    2/3; the credits are excluded by their place). Not the minimum of the two: the
    minimum broke an intro with patchy fingerprint matches into pieces. Where that
    finds nothing (a theme whose sound differs between episodes, or no audio) the pictures
    alone answer. ``sound_only`` (``features.audio_only``: no pictures decoded): the
    sound's share alone. ``videos``: for the boundary refinement of the season decisions."""
    groups = groups or {}
    sizes = Counter(groups.values())
    found: dict[str, Detection] = {}
    for eid in episode_ids:
        path, feats = Path(rep_dir) / f"{eid}.npy", Path(feature_dir) / f"{eid}.h5"
        if groups and sizes[groups[eid]] == 1:  # repetition needs another episode
            why = f"{ALONE} {groups[eid]!r}: no other episode to compare with"
            found[eid] = Detection(eid, None, None, 0.0, why, np.zeros(0), 0.0)
        elif not path.exists() or not feats.exists():
            found[eid] = Detection.missing(eid, f"{path}: no repetition features")
        else:
            found[eid] = _answer(eid, np.load(path), read_attrs(feats), pp, rp, sound_only)
    out = [found[eid] for eid in episode_ids]
    return season_decisions(out, pp, groups, videos, rp.min_share)


def _answer(
    eid: str,
    rep: np.ndarray,
    attrs: dict,
    pp: PredictParams,
    rp: RepetitionParams,
    sound_only: bool = False,
) -> Detection:
    """One episode's model-free answer from its repetition channels ``rep``."""
    fps, end = float(attrs["fps"]), float(attrs["duration_s"])
    ended = end < float(attrs["window_s"]) - 1.0  # the episode's end is in the window
    end_s = end if ended else None
    sound = rep[:, AUDIO_SHARE] if rep.shape[1] > AUDIO_SHARE else None
    heard = sound is not None and not np.isnan(sound).any()  # NaN: no audio
    if sound_only:
        if not heard:
            return Detection(eid, None, None, 0.0, NO_AUDIO, np.zeros(0), 0.0)
        curve = rep.copy()
        curve[:, 3] = sound
        iv, share = unsupervised_answer(curve, fps, pp, rp, end_s)
        return _detection(eid, iv, share, "audio", curve[:, 3], fps, end_s)
    curve, source = rep[:, 3], "repetition"
    if pp.model_free_audio and heard:
        both = rep.copy()  # without audio it is judged on its pictures alone
        both[:, 3] = (1 - SOUND_WEIGHT) * curve + SOUND_WEIGHT * sound
        iv, share = unsupervised_answer(both, fps, pp, rp, end_s)
        if iv is not None:
            curve, source = both[:, 3], "repetition+audio"
    if source == "repetition":  # the sound confirms nothing: the pictures answer
        iv, share = unsupervised_answer(rep, fps, pp, rp, end_s)
    return _detection(eid, iv, share, source, curve, fps, end_s)


def _detection(
    eid: str,
    iv: tuple[float, float] | None,
    share: float,
    source: str,
    curve: np.ndarray,
    fps: float,
    end_s: float | None,
) -> Detection:
    late = late_steps(len(curve), fps, end_s)
    judged = curve if late is None else np.where(late, 0.0, curve)
    return Detection(eid, iv, share, share, source, judged, fps)
