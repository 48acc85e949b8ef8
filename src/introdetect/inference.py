"""Run a trained checkpoint over feature sequences and turn its outputs into intervals.

Shared by the predict stage and ``introdetect detect`` so that evaluation and inference use
exactly the same post-processing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from introdetect.data import Episode, pad_sequences
from introdetect.model import IntroDetector
from introdetect.params import PredictParams
from introdetect.postprocess import extract_best_interval, smooth_predictions


@dataclass
class Detection:
    """One episode's answer and the evidence behind it."""

    episode_id: str
    interval: tuple[float, float] | None
    presence: float  # presence-head probability
    confidence: float  # presence x mean step probability inside the interval (0 when null)
    source: str  # "steps" | "regression" | "absent"
    probs: np.ndarray  # smoothed per-step intro probability [T]
    fps: float


@torch.no_grad()
def detect(
    model: IntroDetector, episodes: list[Episode], pp: PredictParams, batch_size: int = 4
) -> list[Detection]:
    """Predict an interval (or None) for each episode."""
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
            out.append(_decide(e, step[j, : lengths[j]], float(presence[j]), reg[j], pp))
    return out


def _decide(
    e: Episode, step: np.ndarray, presence: float, reg: np.ndarray, pp: PredictParams
) -> Detection:
    probs = smooth_predictions(step, e.fps, pp.smoothing, pp.smooth_s)
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


def detections_to_json(dets: list[Detection]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``{id: [start, end] | null}`` and the sidecar ``{id: {presence, confidence, source}}``."""
    preds = {d.episode_id: list(d.interval) if d.interval else None for d in dets}
    side = {
        d.episode_id: {
            "presence": round(d.presence, 4),
            "confidence": round(d.confidence, 4),
            "source": d.source,
        }
        for d in dets
    }
    return preds, side
