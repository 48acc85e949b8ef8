"""``introdetect detect``: a trained model (or the model-free repetition detector) on new
episodes, without DVC.

The same path as the pipeline: the feature identity (fps, window, frame size, weights,
audio) comes from the checkpoint and is checked against the cache; how to run (device,
workers, executor, batch size) and ``predict.*`` come from the caller's params.yaml (with
command-line overrides); answers come from :func:`introdetect.inference.predict_episodes`
and are written by :func:`introdetect.inference.write_detections`. The videos of one
folder are treated as one season for the repetition channels.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from introdetect.errors import IntrodetectError
from introdetect.export import export_all
from introdetect.features.extract import FeaturizeSummary, featurize_many
from introdetect.features.visual import load_backbone
from introdetect.index import DatasetError, find_videos
from introdetect.inference import (
    Detection,
    predict_episodes,
    unsupervised_episodes,
    write_detections,
)
from introdetect.params import DataParams, Params, load_params, params_from_dict, with_identity
from introdetect.repetition import compute_repetition, write_repetition
from introdetect.store import read_attrs, read_episode
from introdetect.training import load_checkpoint

log = logging.getLogger(__name__)


class UsageError(IntrodetectError):
    """The command line asks for something that cannot be done."""


@dataclass
class DetectOptions:
    """What the user asked for."""

    paths: list[str]
    model: str | None = None
    params: str = "params.yaml"
    out: str = "detect_out"
    cache: str | None = None
    device: str | None = None
    formats: tuple[str, ...] = ("json",)
    edl_action: str = "commbreak"
    unsupervised: bool = False
    report: bool = True
    labels: str | None = None
    predict: dict[str, Any] = field(default_factory=dict)  # predict.* overrides


def collect_videos(paths: list[str], extensions: tuple[str, ...]) -> list[tuple[str, Path]]:
    """Files and folders (recursive) -> sorted ``(episode_id, path)``; ids must be unique."""
    found: dict[str, Path] = {}
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise FileNotFoundError(f"{p}: file not found")
        items = find_videos(p, extensions).items() if p.is_dir() else [(p.stem, p)]
        for eid, path in items:
            if eid in found and found[eid] != path:
                raise DatasetError(f"duplicate episode id {eid!r}: {found[eid]} and {path}")
            found[eid] = path
    if not found:
        raise DatasetError(f"no video files in {', '.join(paths)}")
    return sorted(found.items())


def load_run_params(opts: DetectOptions) -> Params:
    """The caller's params (``opts.params`` when it exists, else the defaults) with the
    command-line overrides applied and validated like params.yaml."""
    path = Path(opts.params)
    p = load_params(path) if path.exists() else Params()
    if not path.exists() and opts.params != "params.yaml":
        raise FileNotFoundError(f"{path}: params file not found")
    raw = dataclasses.asdict(p)
    raw["predict"].update(opts.predict)
    if opts.device:
        raw["features"]["device"] = opts.device
    return params_from_dict(raw)


@dataclass
class _Run:
    """What one detect run works with."""

    p: Params
    model: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


def _prepare(opts: DetectOptions) -> _Run:
    """Params, model and the feature settings to featurize with."""
    p = load_run_params(opts)
    if not opts.model:
        if not opts.unsupervised:
            raise UsageError("detect: give --model, or --unsupervised to run without one")
        return _Run(p)
    model, meta = load_checkpoint(opts.model)
    features = with_identity(p.features, meta["feature_identity"])
    repetition = dataclasses.replace(p.repetition, **meta["repetition_params"])
    return _Run(dataclasses.replace(p, features=features, repetition=repetition), model, meta)


def run_detect(opts: DetectOptions) -> list[dict[str, Any]]:
    """Featurize, (repetition,) detect, export, report. Returns one result row per episode."""
    run = _prepare(opts)
    p = run.p
    videos = collect_videos(opts.paths, p.data.video_extensions)
    labels = _read_labels(opts.labels, p.data) if opts.labels else {}
    out = Path(opts.out)
    cache = Path(opts.cache) if opts.cache else out / "features"
    backbone = load_backbone(p.features.weights, p.features.device, p.features.precision)
    if run.meta and backbone.weights_id != run.meta["provenance"]["weights_id"]:
        raise UsageError(
            f"{opts.model}: trained on features of weights "
            f"{run.meta['provenance']['weights_id']!r} but weights "
            f"{p.features.weights!r} resolve to {backbone.weights_id!r} here"
        )
    summary = featurize_many(videos, cache, backbone, p.features)
    ok = [(eid, v) for eid, v in videos if eid not in summary.failed]
    rep_dir = out / "repetition"
    if opts.unsupervised or run.meta.get("repetition"):  # a season = the videos of one folder
        reps = compute_repetition(
            [(eid, str(v.parent), cache / f"{eid}.h5") for eid, v in ok], p.repetition
        )
        for eid, rep in reps.items():
            write_repetition(rep, rep_dir / f"{eid}.npy")
    ids = [eid for eid, _ in ok]
    videos = dict(ok)
    seasons = {eid: str(v.parent) for eid, v in ok}
    if run.model is not None:
        dets = predict_episodes(
            run.model, run.meta, ids, cache, rep_dir, p.predict, seasons, videos
        )
    else:
        dets = unsupervised_episodes(ids, rep_dir, cache, p.predict, p.repetition, seasons, videos)
    if "json" in opts.formats:
        write_detections(dets, out / "predictions.json", out / "presence.json")
    rows = _rows(dets, dict(ok), cache, summary)
    export_all(rows, out, opts.formats, opts.edl_action)
    if opts.report and dets:
        threshold = p.predict.threshold if run.model is not None else p.repetition.min_share
        _report(dets, dict(ok), cache, labels, threshold, out, opts.paths)
    return rows


def _rows(
    dets: list[Detection], video_of: dict[str, Path], cache: Path, summary: FeaturizeSummary
) -> list[dict[str, Any]]:
    """One result row per episode (failed ones included) for the exports and the table."""
    rows = []
    for d in dets:
        attrs = read_attrs(cache / f"{d.episode_id}.h5") if d.fps else {}
        rows.append(
            {
                "episode_id": d.episode_id,
                "video": str(video_of[d.episode_id]),
                "interval": d.interval,
                "confidence": round(d.confidence, 4),
                "presence": None if d.presence is None else round(d.presence, 4),
                "source": d.source,
                "duration_s": float(attrs.get("duration_s", 0.0)) or None,
            }
        )
    for eid, info in summary.failed.items():
        rows.append(
            {
                "episode_id": eid,
                "video": info["file"],
                "interval": None,
                "confidence": 0.0,
                "presence": None,
                "source": "failed: " + info["error"],
                "duration_s": None,
            }
        )
    return rows


def _report(
    dets: list[Detection],
    video_of: dict[str, Path],
    cache: Path,
    labels: dict[str, tuple[float, float]],
    threshold: float,
    out: Path,
    paths: list[str],
) -> None:
    from introdetect.report import EpisodeView, html_report

    views = [
        EpisodeView(
            d.episode_id,
            str(video_of[d.episode_id]),
            d.fps,
            np.asarray(d.probs),
            read_episode(cache / f"{d.episode_id}.h5").audio[:, 0],
            d.interval,
            d.confidence,
            labels.get(d.episode_id),
            threshold,
        )
        for d in dets
        if d.fps  # an episode whose features could not be read has nothing to draw
    ]
    html_report(views, out, title=f"introdetect: {', '.join(paths)}")


def _read_labels(path: str, dp: DataParams) -> dict[str, tuple[float, float]]:
    from introdetect.labels import clean_label, load_label_file

    rows, _ = load_label_file(path)
    out = {}
    for r in rows:
        c = clean_label(r, dp.label_policy, dp.min_intro_s, dp.max_intro_s)
        if c.start_s is not None:
            out[r.episode_id] = (c.start_s, c.end_s)
    return out
