"""Audio first: a season answered without decoding most of its pictures (model-free detect).

1. Every episode's audio alone is decoded (the video packets are demuxed past, never
   decoded) into the usual per-step audio features.
2. Episodes are grouped into series (names, else mutual audio repetition).
3. Per series, :func:`introdetect.candidates.audio_candidates` marks where the audio repeats
   in enough of the other episodes to be part of an answer (the theme; also credits,
   idents, recaps), widened by a margin.
4. Pictures are decoded only inside those ranges (a seek to the keyframe before each) and
   embedded by the frozen backbone; an episode whose audio repeats nowhere is decoded in
   full, and an episode alone in its series not at all (nothing to compare it with).
5. The feature files (``visual_ranges`` says which steps hold pictures) feed the same
   repetition channels, season decisions and boundary refinement as the full path.

With ``features.audio_only`` steps 3 and 4 are skipped: no picture is decoded (the answer
comes from where the sound repeats; the boundary refinement still decodes a few seconds
around each boundary), and no network runs (``weights_id`` ``none``).

The files go to their own folder (``<cache>/audio-first``, ``<cache>/audio-only``), never
where full features live, so a model never reads them.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from introdetect.candidates import Ranges, audio_candidates, coverage
from introdetect.errors import OutputError, describe_os_error
from introdetect.features.audio import audio_only_features, audio_pool
from introdetect.grouping import group_series
from introdetect.media import (
    CorruptPacketGuard,
    DecodeStats,
    MediaError,
    frame_to_rgb,
    open_container,
    pick_video_stream,
    playback_start,
    show_path,
)
from introdetect.params import Params, with_int8
from introdetect.repetition import SOUND_WEIGHT
from introdetect.store import (
    EMBED_DIM,
    EpisodeFeatures,
    feature_config,
    read_episode,
    source_fingerprint,
    write_episode,
)

if TYPE_CHECKING:  # torch: imported where pictures are embedded, not by the audio pass
    from introdetect.features.visual import Backbone

log = logging.getLogger(__name__)

SUBDIR = "audio-first"
SUBDIR_AUDIO_ONLY = "audio-only"
NO_NETWORK = "none"  # weights_id, precision and engine of files without pictures


def decode_ranges(
    path: str | Path, ranges: Ranges, fps: float, size: int, skip_nonref: bool = True
) -> dict[int, np.ndarray]:
    """``{step: RGB [size, size, 3]}`` for every step inside ``ranges``: the frame on screen
    at the step's centre (player timeline), reached by seeking to the keyframe before each
    range and decoding from there."""
    out: dict[int, np.ndarray] = {}
    with open_container(path) as c:
        v = pick_video_stream(c, Path(path))
        v.thread_type = "AUTO"
        if skip_nonref:
            v.codec_context.skip_frame = "NONREF"
        v0, tb = playback_start(c), v.time_base
        guard = CorruptPacketGuard(Path(path), 20, DecodeStats())
        for a, b in ranges:
            c.seek(max(0, int((a / fps + v0) / tb)), stream=v, backward=True)
            v.codec_context.flush_buffers()
            step, prev = a, None
            for packet in c.demux(v):
                for frame in guard.decode(packet):
                    if frame.pts is None:
                        continue
                    t = float(frame.pts * tb) - v0
                    while step < b and t > (step + 0.5) / fps:  # step's centre passed
                        out[step] = frame_to_rgb(prev or frame, size)
                        step += 1
                    prev = frame
                if step >= b:
                    break
            while step < b and prev is not None:  # the file ended inside the range
                out[step] = frame_to_rgb(prev, size)
                step += 1
    return out


def embed_ranges(
    frames: dict[int, np.ndarray], ranges: Ranges, n_steps: int, backbone: Backbone, p: Params
) -> tuple[np.ndarray, int]:
    """``([T, 512] float16, reused steps)``: embeddings of the decoded ``frames`` (from
    :func:`decode_ranges`) inside ``ranges``, zeros elsewhere."""
    from introdetect.features.extract import StaticReuse, embed_batch

    fp = p.features
    visual = np.zeros((n_steps, EMBED_DIM), np.float16)
    reuse = StaticReuse() if fp.reuse_static else None
    for a, b in ranges:
        steps = [s for s in range(a, min(b, n_steps)) if s in frames]
        last = None  # each range starts after a jump: nothing to reuse from before it
        if reuse is not None:
            reuse.ref = None
        for k in range(0, len(steps), fp.batch_size):
            chunk = steps[k : k + fp.batch_size]
            emb = embed_batch(np.stack([frames[s] for s in chunk]), backbone, reuse, last)
            visual[chunk] = emb
            last = emb[-1]
    return visual, (reuse.reused if reuse is not None else 0)


@dataclass
class AudioFirstResult:
    """What the audio-first pass did."""

    groups: dict[str, str] = field(default_factory=dict)
    failed: dict[str, dict[str, str]] = field(default_factory=dict)
    decoded_steps: int = 0  # steps whose pictures were decoded and embedded
    total_steps: int = 0
    full_decodes: list[str] = field(default_factory=list)  # the audio found nothing
    timing: dict[str, float] = field(default_factory=dict)
    prints: dict[str, np.ndarray] = field(default_factory=dict)  # audio fingerprints
    n_steps: dict[str, int] = field(default_factory=dict)  # steps of each episode's window


def _attrs(
    eid: str, video: Path, duration: float, has_audio: bool, backbone: Backbone | None, p: Params
) -> dict[str, Any]:
    stat = video.stat()
    # int8 as the network ran it; files with no pictures were made by no network
    fp = with_int8(p.features, backbone.int8) if backbone else replace(p.features, int8=False)
    return feature_config(fp, backbone.weights_id if backbone else NO_NETWORK) | {
        "episode_id": eid,
        "duration_s": duration,
        "has_audio": has_audio,
        "audio_note": "",
        "precision": backbone.precision if backbone else NO_NETWORK,
        "engine": backbone.engine if backbone else NO_NETWORK,
        "source_path": show_path(video),
        "source_size": int(stat.st_size),
        "source_mtime": float(stat.st_mtime),
        "source_fingerprint": source_fingerprint(video),
        "decoder": "cpu",
        "visual_ranges": "[]",
    }


def _write(path: Path, feats: EpisodeFeatures) -> None:
    """Write a feature file; a failure is the cache's (full disk, read-only), never the
    video's."""
    try:
        write_episode(path, feats)
    except OSError as e:
        raise OutputError(f"{path}: cannot write features ({describe_os_error(e)})") from e


def _write_audio(
    eid: str,
    video: Path,
    out_dir: Path,
    got: tuple[np.ndarray, float, np.ndarray],
    backbone: Backbone | None,
    p: Params,
) -> tuple[np.ndarray, int]:
    """The audio pass's result for one episode (:func:`audio_only_features`) into its file
    (pictures come later, where needed); returns its fingerprint and step count."""
    audio, duration, prints = got
    n = len(audio)
    attrs = _attrs(eid, video, duration, bool(np.any(audio[:, 0])), backbone, p)
    t = (np.arange(n) / p.features.fps).astype(np.float32)
    visual = np.zeros((n, EMBED_DIM), np.float16)
    _write(out_dir / f"{eid}.h5", EpisodeFeatures(visual, audio, t, attrs))
    return prints, n


def _audio_pass(
    videos: list[tuple[str, Path]],
    out_dir: Path,
    backbone: Backbone | None,
    p: Params,
    res: AudioFirstResult,
) -> list[tuple[str, Path]]:
    """Audio features of every episode into ``out_dir`` (pictures not decoded yet), one
    episode per core at a time (:func:`introdetect.features.audio.audio_pool`);
    fingerprints into ``res.prints``."""
    fp = p.features
    ok = []
    with audio_pool(len(videos)) as pool:
        futures = {
            pool.submit(audio_only_features, video, fp.audio_sr, fp.fps, fp.n_mels, fp.window_s): (
                eid,
                video,
            )
            for eid, video in videos
        }
        for fut in tqdm(as_completed(futures), total=len(futures), desc="audio", unit="ep"):
            eid, video = futures[fut]
            try:
                got = _write_audio(eid, video, out_dir, fut.result(), backbone, p)
                res.prints[eid], res.n_steps[eid] = got
                ok.append((eid, video))
            except (MediaError, OutputError) as e:
                res.failed[eid] = {"file": show_path(video), "error": str(e)}
            except OSError as e:
                res.failed[eid] = {"file": show_path(video), "error": describe_os_error(e)}
    order = {eid: i for i, (eid, _) in enumerate(videos)}
    return sorted(ok, key=lambda x: order[x[0]])


def _min_sound(p: Params) -> float:
    """The least share of episodes in which a step's sound repeats that can still make it
    part of a model-free answer: with the picture's share at most 1, the weighted share
    (:data:`introdetect.repetition.SOUND_WEIGHT`) reaches ``repetition.min_share`` only
    from here up, so pictures elsewhere cannot change the answer."""
    w = SOUND_WEIGHT
    return max(0.0, (p.repetition.min_share - (1 - w)) / w)


def _plan(ok: list[tuple[str, Path]], p: Params, res: AudioFirstResult) -> dict[str, Ranges]:
    """Candidate ranges per episode; the whole window where the audio found nothing."""
    by_group: dict[str, list[str]] = defaultdict(list)
    for eid, _ in ok:
        by_group[res.groups[eid]].append(eid)
    plan: dict[str, Ranges] = {}
    for members in by_group.values():
        if len(members) < 2:  # alone: answered "unknown" without pictures
            plan.update({eid: [] for eid in members})
            continue
        n_steps = {eid: res.n_steps[eid] for eid in members}
        prints = {eid: res.prints[eid] for eid in members}
        found = audio_candidates(prints, n_steps, p.features.fps, p.repetition, _min_sound(p))
        for eid, ranges in found.items():
            if not ranges:
                res.full_decodes.append(eid)
                ranges = [(0, n_steps[eid])]
            plan[eid] = ranges
    return plan


def audio_first_features(
    videos: list[tuple[str, Path]], cache: Path, backbone: Backbone | None, p: Params
) -> tuple[Path, AudioFirstResult]:
    """Write the audio-first feature files of ``videos`` under ``cache/audio-first`` (with
    ``backbone`` None: audio only, no pictures, under ``cache/audio-only``); returns that
    folder and what was done (groups, failures, how much was decoded)."""
    out_dir = cache / (SUBDIR if backbone is not None else SUBDIR_AUDIO_ONLY)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out_dir}: cannot create ({describe_os_error(e)})") from e
    res = AudioFirstResult()
    t0 = time.perf_counter()
    ok = _audio_pass(videos, out_dir, backbone, p, res)
    res.groups = group_series(ok, out_dir, p.repetition)
    if backbone is None:  # audio only: no pictures to plan or decode
        res.timing["audio"] = time.perf_counter() - t0
        res.total_steps = sum(res.n_steps.values())
        log.info("audio only: %d episodes in %.1f s, no pictures", len(ok), res.timing["audio"])
        return out_dir, res
    plan = _plan(ok, p, res)
    res.timing["audio"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    fp = p.features

    def decode(k: int) -> dict[int, np.ndarray]:
        eid, video = ok[k]
        return decode_ranges(video, plan.get(eid, []), fp.fps, fp.frame_size, fp.skip_nonref)

    # the next episode's pictures decode in a thread while this one's go through the network
    with ThreadPoolExecutor(max_workers=1) as ahead:
        upcoming = ahead.submit(decode, 0) if ok else None
        for k, (eid, video) in enumerate(tqdm(ok, desc="pictures", unit="ep")):
            current = upcoming
            upcoming = ahead.submit(decode, k + 1) if k + 1 < len(ok) else None
            f = read_episode(out_dir / f"{eid}.h5")
            ranges = plan.get(eid, [])
            res.total_steps += len(f.t)
            try:
                visual, reused = embed_ranges(current.result(), ranges, len(f.t), backbone, p)
            except MediaError as e:
                res.failed[eid] = {"file": show_path(video), "error": str(e)}
                continue
            res.decoded_steps += coverage(ranges)
            attrs: dict[str, Any] = dict(f.attrs)
            attrs["visual_ranges"] = json.dumps([[int(a), int(b)] for a, b in ranges])
            attrs["reused_steps"] = reused
            try:
                _write(out_dir / f"{eid}.h5", EpisodeFeatures(visual, f.audio, f.t, attrs))
            except OutputError as e:
                res.failed[eid] = {"file": show_path(video), "error": str(e)}
    res.timing["pictures"] = time.perf_counter() - t1
    log.info(
        "audio first: pictures decoded for %d of %d steps (%.0f %%); %d episodes decoded in "
        "full (their audio repeats nowhere); audio %.1f s, pictures %.1f s",
        res.decoded_steps,
        res.total_steps,
        100 * res.decoded_steps / max(1, res.total_steps),
        len(res.full_decodes),
        res.timing["audio"],
        res.timing["pictures"],
    )
    return out_dir, res
