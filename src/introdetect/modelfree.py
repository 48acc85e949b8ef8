"""The model-free season detector: the intro is the stretch that repeats, in picture and in
sound, across the episodes of a series (no labels, no model).

:func:`unsupervised_episodes` reads each episode's repetition channels
(:mod:`introdetect.repetition`) and, with ``predict.model_free_audio``, the share of other
episodes in which each step's sound repeats (:func:`introdetect.candidates.step_share` on
audio fingerprints), picks one interval per episode and hands the answers to the same
season decisions as the model's (:func:`introdetect.inference.season_decisions`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from introdetect.candidates import step_share
from introdetect.features.audio import fingerprints
from introdetect.inference import ALONE, Detection, season_decisions
from introdetect.params import PredictParams, RepetitionParams
from introdetect.repetition import late_steps, unsupervised_answer
from introdetect.store import read_attrs

Loaded = dict[str, dict[str, tuple[np.ndarray, dict[str, Any]]]]  # series -> id -> (rep, attrs)


def unsupervised_episodes(
    episode_ids: list[str],
    rep_dir: str | Path,
    feature_dir: str | Path,
    pp: PredictParams,
    rp: RepetitionParams,
    groups: dict[str, str] | None = None,
    videos: dict[str, Path] | None = None,
    prints: dict[str, np.ndarray | None] | None = None,
) -> list[Detection]:
    """The model-free answer for each episode from its repetition channels in ``rep_dir``
    (and its feature file's timing), with the same season decisions as the model's.

    With ``predict.model_free_audio`` a step's share is the mean of the share of other
    episodes in which its picture repeats and the share in which its sound repeats
    (:func:`introdetect.candidates.step_share`): an intro repeats in picture and sound (up
    to 1), an establishing shot only in picture and end credits or a theme running on
    under the next shot only in sound (at most 0.5). The mean, not the minimum: fingerprint
    matches along a varied theme are patchy (every other second on a 10-episode season),
    and the minimum then broke the intro into pieces a studio ident outweighed. Where that
    finds nothing (a theme whose sound differs between episodes, or no audio) the pictures
    alone answer. ``prints``: the episodes' audio fingerprints when the caller has them
    (the audio-first path); otherwise they are computed from ``videos``."""
    groups = groups or {}
    sizes = Counter(groups.values())
    found: dict[str, Detection] = {}
    todo: Loaded = defaultdict(dict)
    for eid in episode_ids:
        path, feats = Path(rep_dir) / f"{eid}.npy", Path(feature_dir) / f"{eid}.h5"
        if groups and sizes[groups[eid]] == 1:  # repetition needs another episode
            why = f"{ALONE} {groups[eid]!r}: no other episode to compare with"
            found[eid] = Detection(eid, None, None, 0.0, why, np.zeros(0), 0.0)
        elif not path.exists() or not feats.exists():
            found[eid] = Detection.missing(eid, f"{path}: no repetition features")
        else:
            todo[groups.get(eid, "")][eid] = (np.load(path), read_attrs(feats))
    audio = _audio_shares(todo, rp, videos, prints) if pp.model_free_audio and todo else {}
    for members in todo.values():
        for eid, (rep, attrs) in members.items():
            fps, end = float(attrs["fps"]), float(attrs["duration_s"])
            ended = end < float(attrs["window_s"]) - 1.0  # the episode's end is in the window
            curve, source = rep[:, 3], "repetition"
            if audio.get(eid) is not None:  # no audio: judged on its pictures alone
                both = rep.copy()
                both[:, 3] = 0.5 * (curve + audio[eid])
                iv, share = unsupervised_answer(both, fps, pp, rp, end if ended else None)
                if iv is not None:
                    curve, source = both[:, 3], "repetition+audio"
            if source == "repetition":  # the sound confirms nothing: the pictures answer
                iv, share = unsupervised_answer(rep, fps, pp, rp, end if ended else None)
            late = late_steps(len(curve), fps, end if ended else None)
            judged = curve if late is None else np.where(late, 0.0, curve)
            found[eid] = Detection(eid, iv, share, share, source, judged, fps)
    out = [found[eid] for eid in episode_ids]
    return season_decisions(out, pp, groups, videos, rp.min_share)


def _audio_shares(
    todo: Loaded,
    rp: RepetitionParams,
    videos: dict[str, Path] | None,
    prints: dict[str, np.ndarray | None] | None,
) -> dict[str, np.ndarray | None]:
    """Per episode, the share of its series' other episodes in which each step's sound
    repeats (None: no audio); fingerprints computed from ``videos`` unless given."""
    if prints is None:
        wanted = {e: videos[e] for members in todo.values() for e in members if e in (videos or {})}
        window = max(float(a["window_s"]) for g in todo.values() for _, a in g.values())
        prints = fingerprints(wanted, window) if wanted else {}
    out: dict[str, np.ndarray | None] = {}
    for members in todo.values():
        n_steps = {eid: len(rep) for eid, (rep, _) in members.items()}
        fps = float(next(iter(members.values()))[1]["fps"])
        out.update(step_share({e: prints.get(e) for e in members}, n_steps, fps, rp))
    return out
