"""``introdetect detect``: a trained model (or, without one, the model-free season detector)
on new episodes, without DVC.

The same path as the pipeline: the feature identity (fps, window, frame size, weights,
audio) comes from the checkpoint and is checked against the cache; how to run (device,
workers, executor, batch size) and ``predict.*`` come from the caller's params.yaml (with
command-line overrides); answers come from :func:`introdetect.inference.predict_episodes`
and are written by :func:`introdetect.decision.write_detections`. Episodes are grouped
into series (:mod:`introdetect.grouping`: file names, then mutual repetition) for the
repetition channels and the season-consistent decision.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from introdetect.candidates import add_audio_share
from introdetect.decision import Detection, combine, write_detections
from introdetect.errors import IntrodetectError, OutputError, describe_os_error
from introdetect.export import export_all
from introdetect.fastpath import audio_first_features
from introdetect.features.audio import season_prints
from introdetect.fileio import write_text
from introdetect.grouping import describe_groups, group_series, name_series
from introdetect.media import MediaError, probe, show_path
from introdetect.modelfree import unsupervised_episodes
from introdetect.params import DataParams, Params, load_params, params_from_dict, with_identity
from introdetect.repetition import (
    Copies,
    compute_repetition,
    empty_channels,
    write_copies,
    write_repetition,
)
from introdetect.scan import Skipped, scan_paths
from introdetect.store import read_attrs, read_episode

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
    edl_target: str = "kodi"
    dry_run: bool = False  # list what would be written (features are still cached)
    unsupervised: bool = False
    audio_only: bool = False  # features.audio_only from the command line
    report: bool = True
    labels: str | None = None
    predict: dict[str, Any] = field(default_factory=dict)  # predict.* overrides


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
    if opts.audio_only:
        if opts.model and not opts.unsupervised:
            raise UsageError("--audio-only answers without a model: drop --model")
        raw["features"]["audio_only"] = True
    return params_from_dict(raw)


@dataclass
class _Run:
    """What one detect run works with, checked before the long work starts."""

    p: Params
    out: Path
    cache: Path
    model: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, tuple[float, float]] = field(default_factory=dict)
    prints: dict[str, Any] | None = None  # audio fingerprints (the audio-first path has them)
    n_steps: dict[str, int] = field(default_factory=dict)  # steps per episode (audio first)
    sound_only: bool = False  # features.audio_only: no pictures were decoded


@dataclass
class DetectResult:
    """One row per episode (``status``: ok | no_intro | unknown: ... | failed: <cause>),
    every file that was skipped and why, the series groups, and the folder the results
    are in."""

    rows: list[dict[str, Any]]
    skipped: list[Skipped]
    out: Path
    groups: list[str] = field(default_factory=list)  # one line per series found
    notes: list[str] = field(default_factory=list)  # what was written (would be) or refused

    @property
    def n_failed(self) -> int:
        return sum(r["status"].startswith("failed") for r in self.rows)


def check_writable_folder(path: Path, what: str) -> None:
    """Create ``path`` if needed and prove a file can be written in it; else a one-line
    :class:`UsageError` naming ``what`` (e.g. ``--out``)."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{what} {path}: exists and is not a folder")
    marker = path / f".write-test-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        write_text(marker, "")  # the same writer the results go through
        marker.unlink()
    except OSError as e:
        raise UsageError(f"{what} {path}: not writable ({describe_os_error(e)})") from e


def _prepare(opts: DetectOptions) -> _Run:
    """Params, model, labels and the output folder, all checked before any featurizing."""
    p = load_run_params(opts)
    out = Path(opts.out)
    cache = Path(opts.cache) if opts.cache else out / "features"
    labels = _read_labels(opts.labels, p.data) if opts.labels else {}
    check_writable_folder(out, "--out")
    if opts.unsupervised or not opts.model:
        log.info(
            "%s: the model-free season detector answers (the stretch that repeats across "
            "the episodes of each series)",
            "--unsupervised" if opts.model else "no --model",
        )
        return _Run(p, out, cache, labels=labels)
    from introdetect.training import load_checkpoint  # torch: only with a model

    model, meta = load_checkpoint(opts.model)
    features = with_identity(p.features, meta["feature_identity"])
    repetition = dataclasses.replace(p.repetition, **meta["repetition_params"])
    p = dataclasses.replace(p, features=features, repetition=repetition)
    return _Run(p, out, cache, model, meta, labels)


def _check_cache(run: _Run, videos: list[tuple[str, Path]], backbone: Any) -> None:
    """A cache that cannot be written is fine when it already holds every episode;
    otherwise say so now, not after the featurizing."""
    from introdetect.features.extract import FeaturizeSummary, plan_jobs

    try:
        check_writable_folder(run.cache, "--cache")
    except UsageError as e:
        pending = plan_jobs(videos, run.cache, backbone, run.p.features, FeaturizeSummary())
        if pending:
            raise UsageError(f"{e}; {len(pending)} episodes need featurizing") from e
        log.warning("%s; every episode is cached, reading only", e)


def run_detect(opts: DetectOptions) -> DetectResult:
    """Featurize, (repetition,) detect, export, report. Every episode gets a result row;
    one bad file never stops the others."""
    run = _prepare(opts)
    p = run.p
    scan = scan_paths(opts.paths, p.data.video_extensions, exclude=(run.out, run.cache))
    scan.report()
    scan.require_videos(opts.paths)
    fast = run.model is None and (p.features.audio_first or p.features.audio_only)
    fast = fast and _all_named(scan.videos)
    audio_only = fast and p.features.audio_only
    backbone = None
    if not audio_only:  # pictures: the network (torch is imported only on this path)
        from introdetect.features.visual import backbone_for

        backbone = backbone_for(p.features)
    if run.meta and backbone.weights_id != run.meta["provenance"]["weights_id"]:
        raise UsageError(
            f"{opts.model}: trained on features of weights "
            f"{run.meta['provenance']['weights_id']!r} but weights "
            f"{p.features.weights!r} resolve to {backbone.weights_id!r} here"
        )
    if fast:
        feature_dir, af = audio_first_features(scan.videos, run.cache, backbone, p)
        # the rest reads these files
        run = dataclasses.replace(
            run, cache=feature_dir, prints=af.prints, n_steps=af.n_steps, sound_only=audio_only
        )
        failed, groups = af.failed, af.groups
    else:
        from introdetect.features.extract import featurize_many

        _check_cache(run, scan.videos, backbone)
        failed = featurize_many(scan.videos, run.cache, backbone, p.features).failed
        groups = group_series(
            [(e, v) for e, v in scan.videos if e not in failed], run.cache, p.repetition
        )
    ok = [(e, v) for e, v in scan.videos if e not in failed]
    for line in describe_groups(groups):
        log.info("%s", line)
    dets = _detect(run, ok, {e: groups[e] for e, _ in ok})
    dets += [Detection.missing(eid, info["error"]) for eid, info in failed.items()]
    video_of = dict(scan.videos)
    rows = _rows(dets, video_of, run.cache)
    written_to, notes = _write_outputs(run, dets, rows, opts)
    if opts.report and any(d.fps for d in dets) and opts.dry_run:
        notes.append(f"would write {written_to / 'report.html'}")
    elif opts.report and any(d.fps for d in dets):
        threshold = p.predict.threshold if run.model is not None else p.repetition.min_share
        try:
            _report(dets, video_of, run.cache, run.labels, threshold, written_to, opts.paths)
        except OSError as e:
            log.warning("report not written: %s", describe_os_error(e))
    return DetectResult(rows, scan.skipped, written_to, describe_groups(groups), notes)


def _all_named(videos: list[tuple[str, Path]]) -> bool:
    """Whether every episode's series comes from its file name: the audio-first path needs
    the series before it decodes pictures, and grouping unnamed files by their step-level
    audio lumped different series together on the development set (shared idents, music)."""
    unnamed = [show_path(v) for _, v in videos if not name_series(v)]
    if unnamed:
        log.info(
            "features.audio_first / audio_only: %d file(s) without a series in their name "
            "(e.g. %s): decoding every episode in full instead",
            len(unnamed),
            unnamed[0],
        )
    return not unnamed


def _detect(run: _Run, ok: list[tuple[str, Path]], seasons: dict[str, str]) -> list[Detection]:
    """The answers for the featurized episodes; ``seasons``: episode id -> series group."""
    p, cache = run.p, run.cache
    if not ok:
        return []
    rep_dir = run.out / "repetition"
    ids = [eid for eid, _ in ok]
    videos = dict(ok)
    # the model's answers are combined with the model-free ones (decision.combine)
    combined = run.model is not None and (p.predict.repeat_bounds or p.predict.repetition_first)
    if run.model is None or run.meta.get("repetition") or combined:
        if run.sound_only:  # no pictures to compare: the sound's share alone is filled in
            reps = {eid: empty_channels(run.n_steps[eid]) for eid in ids}
        else:
            reps = compute_repetition(
                [(eid, seasons[eid], cache / f"{eid}.h5") for eid, _ in ok], p.repetition
            )
        free = (run.model is None or combined) and (p.predict.model_free_audio or run.sound_only)
        copies: dict[str, Copies] = {}
        if free or run.meta.get("audio_share"):
            prints = run.prints or season_prints(
                videos, {eid: cache / f"{eid}.h5" for eid in ids}, p.features.window_s
            )
            copies = add_audio_share(reps, seasons, prints, p.features.fps, p.repetition)
        for eid, rep in reps.items():
            write_repetition(rep, rep_dir / f"{eid}.npy")
            write_copies(copies.get(eid, {}), rep_dir / f"{eid}.npy")
    if run.model is not None:
        from introdetect.inference import predict_episodes

        dets = predict_episodes(
            run.model, run.meta, ids, cache, rep_dir, p.predict, seasons, videos, p.repetition
        )
        if not combined:
            return dets
        free = unsupervised_episodes(
            ids, rep_dir, cache, p.predict, p.repetition, seasons, videos, run.sound_only
        )
        return combine(dets, free, p.predict)
    return unsupervised_episodes(
        ids, rep_dir, cache, p.predict, p.repetition, seasons, videos, run.sound_only
    )


def _write_outputs(
    run: _Run, dets: list[Detection], rows: list[dict[str, Any]], opts: DetectOptions
) -> tuple[Path, list[str]]:
    """Write every requested output to ``run.out``; when that fails (full disk, the folder
    removed or made read-only meanwhile), write them to a fresh temp folder instead and
    say where, so nothing computed is lost. Returns the folder used and what was done."""
    for attempt, out in enumerate((run.out, None)):
        if out is None:
            out = Path(tempfile.mkdtemp(prefix="introdetect-results-"))
        try:
            notes = []
            if "json" in opts.formats:
                pred, side = out / "predictions.json", out / "presence.json"
                if not opts.dry_run:
                    write_detections(dets, pred, side)
                verb = "would write" if opts.dry_run else "wrote"
                notes += [f"{verb} {pred}", f"{verb} {side}"]
            notes += export_all(rows, out, opts.formats, opts.edl_target, opts.dry_run)
            for note in notes:
                done = note.startswith(("wrote", "would", "removed"))
                log.log(logging.DEBUG if done else logging.WARNING, "%s", note)
            if attempt:
                log.warning("results written to %s instead", out)
            return out, notes
        except OSError as e:
            log.error("%s: cannot write results (%s)", out, describe_os_error(e))
    raise OutputError("results could not be written anywhere")  # pragma: no cover


def _rows(dets: list[Detection], video_of: dict[str, Path], cache: Path) -> list[dict[str, Any]]:
    """One result row per episode (failed ones included) for the exports and the table."""
    rows = []
    for d in sorted(dets, key=lambda d: d.episode_id):
        attrs = read_attrs(cache / f"{d.episode_id}.h5") if d.fps else {}
        duration = _file_duration(video_of[d.episode_id]) or attrs.get("duration_s")
        rows.append(
            {
                "episode_id": d.episode_id,
                "video": show_path(video_of[d.episode_id].absolute()),  # printable
                "path": video_of[d.episode_id],  # the file itself (EDL beside it)
                "status": d.status,
                "interval": d.interval,
                "confidence": round(d.confidence, 4),
                "presence": None if d.presence is None else round(d.presence, 4),
                "source": d.source,
                "duration_s": float(duration) if duration else None,  # the whole file
            }
        )
    return rows


def _file_duration(video: Path) -> float | None:
    """The container's duration (chapters run to the end of the file, not of the
    analysis window); None when unknown."""
    try:
        return probe(video).file_duration_s
    except MediaError:
        return None


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
    html_report(views, out, title=f"introdetect: {', '.join(map(show_path, paths))}")


def _read_labels(path: str, dp: DataParams) -> dict[str, tuple[float, float]]:
    from introdetect.labels import clean_label, load_label_file

    rows, problems = load_label_file(path)
    for problem in problems:
        log.warning("%s", problem)
    out = {}
    for r in rows:
        c = clean_label(r, dp.label_policy, dp.min_intro_s, dp.max_intro_s)
        if c.start_s is not None:
            out[r.episode_id] = (c.start_s, c.end_s)
    return out
