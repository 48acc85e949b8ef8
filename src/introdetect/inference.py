"""The one path from cached features to a trained model's answers.

:func:`predict_episodes` (a trained checkpoint) and
:func:`introdetect.modelfree.unsupervised_episodes` (the model-free season detector) turn
feature files into :class:`introdetect.decision.Detection` rows, which
:func:`introdetect.decision.write_detections` writes. The predict stage and
``introdetect detect`` both call these, with ``predict.*`` from params.yaml, so the same
model gives the same answers through either.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from introdetect.data import Episode, RawEpisode, load_raw, pad_sequences
from introdetect.decision import Detection, heard_despite_absence, season_decisions
from introdetect.inputs import InputSpec
from introdetect.labels import series_key
from introdetect.model import IntroDetector
from introdetect.params import PredictParams, RepetitionParams
from introdetect.postprocess import extract_best_interval, smooth_predictions
from introdetect.repetition import credits_of


@torch.no_grad()
def detect(
    model: IntroDetector,
    episodes: list[Episode],
    pp: PredictParams,
    batch_size: int = 4,
    no_intro: dict[str, np.ndarray] | None = None,
) -> list[Detection]:
    """Predict an interval (or None) for each episode; ``no_intro``: episode id -> boolean
    [T], steps where no answer may lie (their probability set to 0 after smoothing)."""
    no_intro = no_intro or {}
    model.eval()
    out: list[Detection] = []
    for i in range(0, len(episodes), batch_size):
        chunk = episodes[i : i + batch_size]
        x, lengths, _ = pad_sequences([torch.from_numpy(e.x) for e in chunk])
        res = model(x, lengths)
        step = torch.sigmoid(res["step_logit"]).numpy()
        presence = torch.sigmoid(res["presence_logit"]).numpy()
        reg = res["reg"].numpy()
        for j, e in enumerate(chunk):
            probs = step[j, : lengths[j]]
            out.append(
                _decide(e, probs, float(presence[j]), reg[j], pp, no_intro.get(e.episode_id))
            )
    return out


def _decide(
    e: Episode,
    step: np.ndarray,
    presence: float,
    reg: np.ndarray,
    pp: PredictParams,
    no_intro: np.ndarray | None = None,
) -> Detection:
    probs = smooth_predictions(step, e.fps, pp.smoothing, pp.smooth_s)
    if no_intro is not None and len(no_intro) == len(probs):
        probs = np.where(no_intro, 0.0, probs)
    dur = len(step) / e.fps
    if presence < pp.presence_threshold:
        return Detection(e.episode_id, None, presence, 0.0, "absent", probs, e.fps)
    best = extract_best_interval(probs, e.fps, pp.threshold, pp.min_len_s, pp.max_len_s)
    if best is not None:
        a, b, score = best
        source = "steps"
    else:  # the step curve found nothing long enough: fall back on the regression head,
        # but only where the step head sees some intro there too; a blind guess is not an
        # answer anyone can trust, so without that evidence the episode gets null.
        a, b = float(reg[0]) * dur, float(reg[1]) * dur
        ia, ib = int(a * e.fps), max(int(a * e.fps) + 1, int(b * e.fps))
        score = float(probs[ia:ib].mean()) if ib <= len(probs) and ia < ib else 0.0
        if not pp.min_len_s <= b - a <= pp.max_len_s or score < 0.5 * pp.threshold:
            return Detection(e.episode_id, None, presence, 0.0, "no_step_evidence", probs, e.fps)
        source = "regression"
    interval = (round(max(0.0, a), 2), round(min(dur, b), 2))
    return Detection(e.episode_id, interval, presence, presence * score, source, probs, e.fps)


def predict_episodes(
    model: IntroDetector,
    meta: dict[str, Any],
    episode_ids: list[str],
    feature_dir: str | Path,
    rep_dir: str | Path | None,
    pp: PredictParams,
    groups: dict[str, str] | None = None,
    videos: dict[str, Path] | None = None,
    rp: RepetitionParams | None = None,
) -> list[Detection]:
    """The model's answer for each of ``episode_ids`` (in that order) from the feature files
    in ``feature_dir`` (and repetition channels in ``rep_dir`` when the model uses them),
    made consistent within each season of ``groups`` and refined on ``videos``; episodes
    whose features are missing get a ``no_features`` detection.

    With ``rp`` and the repetition channels in ``rep_dir``, the model answers nowhere the
    model-free detector would not (:func:`introdetect.repetition.credits_of`: the end
    credits replaying the theme, the last fifth of an episode): the step head can fire on
    credits that sound like a known intro (development set: a seen series' episode without
    an intro, whose credits the model took for it in both generators' data, seed 4)."""
    items = [(eid, "", None, None) for eid in episode_ids]
    spec = InputSpec.from_meta(meta)
    if spec.repetition and rep_dir is None:
        raise ValueError("this model reads repetition channels: give rep_dir")
    raws, missing = load_raw(
        items, feature_dir, meta["provenance"], rep_dir if spec.repetition else None
    )
    episodes = [spec.episode(e) for e in raws]
    known = {e.episode_id: spec.known_sound(e) for e in raws}
    taught = {series_key(s) for s in spec.taught_series()}
    groups = groups or {}
    no_intro = _credits(raws, rep_dir, rp) if rep_dir is not None and rp else None
    dets = [
        dataclasses.replace(
            d,
            known=known[d.episode_id],
            known_series=bool(groups.get(d.episode_id))
            and series_key(groups[d.episode_id]) in taught,
        )
        for d in detect(model, episodes, pp, no_intro=no_intro)
    ]
    dets = season_decisions(heard_despite_absence(dets, pp), pp, groups, videos, pp.threshold)
    found = {d.episode_id: d for d in dets}
    return [found.get(eid) or Detection.missing(eid, missing[eid]) for eid in episode_ids]


def _credits(
    raws: list[RawEpisode], rep_dir: str | Path, rp: RepetitionParams
) -> dict[str, np.ndarray]:
    """Episode id -> the steps the model-free detector never answers in
    (:func:`introdetect.repetition.credits_of`), for the episodes with repetition channels
    (loaded with the features when the model reads them, else from ``rep_dir``) whose end
    is in the window."""
    out = {}
    for e in raws:
        path = Path(rep_dir) / f"{e.episode_id}.npy"
        rep = e.rep if e.rep is not None else (np.load(path) if path.exists() else None)
        mask = credits_of(rep, e.attrs, rp.min_share) if rep is not None else None
        if mask is not None:
            out[e.episode_id] = mask
    return out
