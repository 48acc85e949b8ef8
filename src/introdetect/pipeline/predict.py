"""Stage 'predict': the trained model (and the model-free detector, for comparison) on
the test episodes, through the same path as ``introdetect detect``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from introdetect.decision import combine, write_detections
from introdetect.index import read_index
from introdetect.inference import predict_episodes
from introdetect.modelfree import unsupervised_episodes
from introdetect.params import Params
from introdetect.training import load_checkpoint

log = logging.getLogger(__name__)


def run(
    p: Params,
    index: Path,
    features: Path,
    repetition: Path,
    model: Path,
    out: Path,
    presence: Path,
    unsupervised: Path,
) -> dict[str, Any]:
    """Write ``out`` (``{id: [start, end] | null}``), its ``presence`` sidecar and the
    model-free answers ``unsupervised``."""
    net, meta = load_checkpoint(model)
    rows = [r for r in read_index(index) if r.has_video]
    ids = [r.episode_id for r in rows]
    seasons = {r.episode_id: r.series for r in rows}  # a season = a series' test episodes
    videos = {r.episode_id: Path(r.path) for r in rows}
    dets = predict_episodes(
        net, meta, ids, features, repetition, p.predict, seasons, videos, p.repetition
    )
    for d in dets:
        if d.source.startswith("no_features"):
            log.warning("predict: %s", d.source)
    free = unsupervised_episodes(
        ids, repetition, features, p.predict, p.repetition, seasons, videos
    )
    dets = combine(dets, free, p.predict)
    write_detections(dets, out, presence)
    write_detections(free, unsupervised)
    return {"episodes": len(dets), "with_intro": sum(d.interval is not None for d in dets)}
