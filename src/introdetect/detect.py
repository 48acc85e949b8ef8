"""``introdetect detect``: a trained model (or the model-free repetition detector) on new
episodes, without DVC. Same feature store, same skip rule, same post-processing as the
pipeline; episodes in one folder are treated as one season for the repetition signal."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from introdetect.data import Episode, load_episodes
from introdetect.export import export_all
from introdetect.features.extract import featurize_many
from introdetect.features.visual import load_backbone
from introdetect.index import DatasetError, find_videos
from introdetect.inference import detect
from introdetect.params import DataParams, Params, load_params, params_from_dict
from introdetect.repetition import compute_repetition, unsupervised_answer, write_repetition
from introdetect.store import read_episode
from introdetect.training import load_checkpoint

log = logging.getLogger(__name__)


@dataclass
class DetectOptions:
    """What the user asked for."""

    paths: list[str]
    model: str | None = "models/best.pt"
    out: str = "detect_out"
    cache: str | None = None
    device: str = "auto"
    formats: tuple[str, ...] = ("json",)
    edl_action: str = "commbreak"
    unsupervised: bool = False
    report: bool = True
    labels: str | None = None


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


def run_detect(opts: DetectOptions) -> list[dict[str, Any]]:
    """Featurize, (repetition,) detect, export, report. Returns one result row per episode."""
    if opts.model:
        model, meta = load_checkpoint(opts.model)
        p = params_from_dict(meta["params"])
    elif opts.unsupervised:  # feature settings from ./params.yaml when there is one
        model, meta = None, {}
        p = load_params("params.yaml") if Path("params.yaml").exists() else Params()
    else:
        raise ValueError("detect: give --model, or --unsupervised to run without one")
    fp = dataclasses.replace(p.features, device=opts.device)
    videos = collect_videos(opts.paths, DataParams().video_extensions)
    out = Path(opts.out)
    cache = Path(opts.cache) if opts.cache else out / "features"
    backbone = load_backbone(fp.weights, fp.device, fp.precision)
    if meta and backbone.weights_id != meta["provenance"]["weights_id"]:
        raise RuntimeError(
            f"{opts.model}: trained on features of weights {meta['provenance']['weights_id']!r}"
            f" but features.weights={fp.weights!r} resolves to {backbone.weights_id!r} here"
        )
    summary = featurize_many(videos, cache, backbone, fp)
    ok = [(eid, v) for eid, v in videos if eid not in summary.failed]
    video_of = dict(ok)
    rep_dir = out / "repetition"
    need_rep = opts.unsupervised or bool(meta.get("repetition"))
    if need_rep:  # a season = the videos of one folder
        reps = compute_repetition(
            [(eid, str(v.parent), cache / f"{eid}.h5") for eid, v in ok], p.repetition
        )
        for eid, rep in reps.items():
            write_repetition(rep, rep_dir / f"{eid}.npy")
    labels = _read_labels(opts.labels, p.data) if opts.labels else {}
    rows: list[dict[str, Any]] = []
    views = []
    items = [(eid, "", None, None) for eid, _ in ok]
    if opts.unsupervised:
        episodes, _ = load_episodes(items, cache, use_mels=False)
        for e in episodes:
            rep = np.load(rep_dir / f"{e.episode_id}.npy")
            iv, share = unsupervised_answer(rep, e.fps, p.predict, p.repetition)
            rows.append(_row(e, video_of[e.episode_id], iv, share, share, "repetition"))
            views.append((e, rep[:, 3], iv, rows[-1]["confidence"]))
    else:
        episodes, _ = load_episodes(
            items,
            cache,
            meta["use_mels"],
            meta["provenance"],
            rep_dir if meta.get("repetition") else None,
        )
        for e, d in zip(episodes, detect(model, episodes, p.predict), strict=True):
            rows.append(
                _row(e, video_of[e.episode_id], d.interval, d.confidence, d.presence, d.source)
            )
            views.append((e, d.probs, d.interval, d.confidence))
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
    export_all(rows, out, opts.formats, opts.edl_action)
    if opts.report and views:
        from introdetect.report import EpisodeView, html_report

        html_report(
            [
                EpisodeView(
                    e.episode_id,
                    str(video_of[e.episode_id]),
                    e.fps,
                    np.asarray(probs),
                    _rms(cache, e.episode_id),
                    iv,
                    conf,
                    labels.get(e.episode_id),
                    p.predict.threshold if not opts.unsupervised else p.repetition.min_share,
                )
                for e, probs, iv, conf in views
            ],
            out,
            title=f"introdetect: {', '.join(opts.paths)}",
        )
    return rows


def _row(e: Episode, video: Path, iv, conf: float, presence: float, source: str) -> dict:
    return {
        "episode_id": e.episode_id,
        "video": str(video),
        "interval": iv,
        "confidence": round(float(conf), 4),
        "presence": round(float(presence), 4),
        "source": source,
        "duration_s": float(e.attrs.get("duration_s", 0.0)),
    }


def _rms(cache: Path, eid: str) -> np.ndarray:
    return read_episode(cache / f"{eid}.h5").audio[:, 0]


def _read_labels(path: str, dp: DataParams) -> dict[str, tuple[float, float]]:
    from introdetect.labels import clean_label, load_label_file

    rows, _ = load_label_file(path)
    out = {}
    for r in rows:
        c = clean_label(r, dp.label_policy, dp.min_intro_s, dp.max_intro_s)
        if c.start_s is not None:
            out[r.episode_id] = (c.start_s, c.end_s)
    return out
