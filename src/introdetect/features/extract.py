"""Featurize episodes: one decode pass each -> ResNet18 + audio features -> HDF5 store.

Decoding runs in a background thread (PyAV releases the GIL) and hands batches of sampled
frames to the network in the calling thread, so decode and inference overlap; the audio is
decoded in a third thread (:class:`AudioThread`), and the int8 network embeds two batches
at once when the decoder is ahead (:func:`embed_steps`). Frames are streamed: memory holds
a few batches, not the episode. A failing episode is recorded in
``errors.json`` and the others go on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from introdetect.errors import IntrodetectError, OutputError, describe_os_error
from introdetect.features.audio import FP_SR, StepAudio, prints_of
from introdetect.features.frames import DeviceFrames
from introdetect.features.visual import Backbone, backbone_for
from introdetect.fileio import clean_stale_temps, write_json
from introdetect.media import (
    AudioPass,
    DecodeOptions,
    DecodeStats,
    EpisodeDecoder,
    MediaError,
    cpu_cores,
    decode_audio,
    frame_to_rgb,
    show_path,
)
from introdetect.params import FeatureParams, with_int8
from introdetect.store import (
    EMBED_DIM,
    EpisodeFeatures,
    feature_config,
    is_current,
    source_fingerprint,
)
from introdetect.store import write_episode as store_write

log = logging.getLogger(__name__)

_DONE = object()


@dataclass
class Timing:
    """Seconds spent per part. Decode and resize run in the decode thread, audio in its own
    (:class:`AudioThread`), network and write in the calling one; ``decode_wait`` is how
    long the network sat idle."""

    decode: float = 0.0
    resize: float = 0.0
    audio: float = 0.0
    network: float = 0.0
    write: float = 0.0
    decode_wait: float = 0.0
    total: float = 0.0

    def add_decode(self, stats: DecodeStats) -> None:
        """The decode thread's parts (the featurize's decoder carries no audio: the audio
        thread's time is added by :func:`featurize_episode`)."""
        self.decode += stats.decode_s
        self.resize += stats.convert_s

    def add(self, other: Timing) -> None:
        """Add another worker's timing to this one."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _stack(frames: list[Any]) -> Any:
    return torch.stack(frames) if isinstance(frames[0], torch.Tensor) else np.stack(frames)


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    """``q.put`` that gives up once the consumer has stopped listening."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _producer(
    steps: Iterator,
    batch: int,
    q: queue.Queue,
    stop: threading.Event,
    reuse: StaticReuse | None,
) -> None:
    """Decode thread: ``(index, frames, fresh)`` batches of sampled frames into ``q`` (with
    ``reuse``, ``fresh`` holds the indices of the frames that need the network, else None),
    then ``_DONE`` (or the error)."""
    frames: list[Any] = []
    k = 0

    def hand_over() -> None:
        nonlocal k, frames
        stacked = _stack(frames)
        _put(q, (k, stacked, reuse.fresh(stacked) if reuse is not None else None), stop)
        k, frames = k + 1, []

    try:
        for _, img in steps:
            if stop.is_set():
                return
            frames.append(img)
            if len(frames) == batch:
                hand_over()
        if frames:
            hand_over()
        _put(q, _DONE, stop)
    except BaseException as e:  # handed to the consumer, which re-raises it
        _put(q, e, stop)
    finally:
        steps.close()  # the generator runs (and ends) in this thread


# A sampled frame whose mean absolute difference from the last embedded one is below this
# many grey levels (of 255) is "unchanged": a still shot, a black or title card held on
# screen. Compression noise on a still shot stays under it; the slightest camera move does not.
STATIC_MAD = 1.0


class StaticReuse:
    """Decides, batch by batch, which sampled frames need the network: a frame that did not
    change since the last frame that went through the network reuses that embedding
    (``reused`` counts them). Comparing with that frame, not with the previous step, keeps
    a slow fade from drifting away from the embedding it reuses. Works on host arrays and
    on device tensors alike."""

    def __init__(self) -> None:
        self.ref: torch.Tensor | None = None  # the last frame embedded (int16)
        self.reused = 0

    def fresh(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """Indices into ``frames`` (uint8 [N, H, W, 3]) whose embedding must be computed;
        every other frame repeats the embedding of the frame before it."""
        x = (torch.from_numpy(frames) if isinstance(frames, np.ndarray) else frames).short()
        keep = []
        for i in range(x.shape[0]):
            ref = self.ref
            if ref is None or (x[i] - ref.to(x.device)).abs().float().mean() >= STATIC_MAD:
                keep.append(i)
                self.ref = x[i]
        self.reused += x.shape[0] - len(keep)
        return np.asarray(keep, np.int64)


def _fill(emb: np.ndarray | None, fresh: np.ndarray, n: int, last: np.ndarray | None) -> np.ndarray:
    """A batch's ``n`` embeddings from those of its ``fresh`` frames: every other frame
    repeats the embedding before it (``last``: the previous batch's last one)."""
    out = np.empty((n, EMBED_DIM), np.float16)
    k, cur = -1, last
    for i in range(n):
        if k + 1 < fresh.size and fresh[k + 1] == i:
            k += 1
            cur = emb[k]
        out[i] = cur
    return out


def _network(backbone: Backbone, frames: Any, fresh: np.ndarray | None) -> Any:
    """One batch through the network: its embeddings, or with ``fresh`` (the frames that
    need the network) ``(their embeddings, fresh, batch size)`` for :func:`_assemble`."""
    if fresh is None:
        return backbone.embed(frames).astype(np.float16)
    emb = backbone.embed(frames[fresh]).astype(np.float16) if fresh.size else None
    return emb, fresh, len(frames)


def _assemble(item: Any, last: np.ndarray | None) -> np.ndarray:
    """A batch's embeddings from what :func:`_network` returned (``last``: the previous
    batch's last embedding, repeated by a leading frame that reused it)."""
    return _fill(*item, last) if isinstance(item, tuple) else item


def embed_batch(
    batch: Any, backbone: Backbone, reuse: StaticReuse | None, last: np.ndarray | None
) -> np.ndarray:
    """Embeddings of one batch, the network run only on frames that changed; ``last`` is
    the previous batch's last embedding."""
    fresh = reuse.fresh(batch) if reuse is not None else None
    return _assemble(_network(backbone, batch, fresh), last)


def _lane(
    q: queue.Queue, backbone: Backbone, done: dict[int, Any], timing: Timing, stop: threading.Event
) -> None:
    """One network lane: batches from ``q`` through the network into ``done`` (by index)
    until ``_DONE``; an error (the decoder's, handed over in ``q``, or the network's) goes to
    ``done[-1]`` and sets ``stop`` for the decode thread and the other lanes."""
    perf = time.perf_counter
    while not stop.is_set():
        tw = perf()
        try:
            item = q.get(timeout=0.1)
        except queue.Empty:
            continue
        finally:
            timing.decode_wait += perf() - tw
        if item is _DONE:
            q.put_nowait(_DONE)  # for the next lane (room: _DONE was the last item)
            return
        if isinstance(item, BaseException):
            done.setdefault(-1, item)
            stop.set()
            return
        k, frames, fresh = item
        tn = perf()
        try:
            done[k] = _network(backbone, frames, fresh)
        except BaseException as e:
            done.setdefault(-1, e)
            stop.set()
            return
        finally:
            timing.network += perf() - tn


def embed_steps(
    decoder: EpisodeDecoder,
    backbone: Backbone,
    batch: int,
    timing: Timing,
    reuse: StaticReuse | None = None,
) -> np.ndarray:
    """Decode in a background thread (PyAV releases the GIL) while the network embeds the
    batches already decoded: ``[T, 512] float16``. The network runs in this thread and, for
    a network of several lanes (OpenVINO: two), in as many more: one batch at a time while
    the decoder is the slower side, two at once when the network is. With ``reuse``,
    frames that did not change since the last embedded one skip the network (the decode
    thread decides). Whatever goes wrong on any side, the threads are stopped and joined
    before this returns or raises; ``timing``'s network and wait add up over the lanes."""
    q: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    th = threading.Thread(
        target=_producer, args=(decoder.steps(), batch, q, stop, reuse), daemon=True
    )
    done: dict[int, Any] = {}
    lanes = [Timing() for _ in range(max(1, backbone.lanes))]
    extra = [
        threading.Thread(target=_lane, args=(q, backbone, done, t, stop), daemon=True)
        for t in lanes[1:]
    ]
    th.start()
    try:
        for lane in extra:
            lane.start()
        _lane(q, backbone, done, lanes[0], stop)
        for lane in extra:
            lane.join()
    finally:
        stop.set()
        for lane in extra:
            if lane.is_alive():
                lane.join()
        while not q.empty():  # unblock a producer waiting to put
            q.get_nowait()
        th.join()
        for t in lanes:
            timing.network += t.network
            timing.decode_wait += t.decode_wait
    if -1 in done:
        raise done[-1]
    chunks: list[np.ndarray] = []
    for k in range(len(done)):
        chunks.append(_assemble(done[k], chunks[-1][-1] if chunks else None))
    return np.concatenate(chunks) if chunks else np.zeros((0, EMBED_DIM), np.float16)


# Frames per network call on the CPU: the network gains nothing from bigger batches there
# (OpenVINO int8 ~3.5 ms a 224 px frame at 16 and at 64), and the last batch runs after the
# decoder has finished, so a big one is a serial tail (64 frames: ~0.4 s a 60 s clip).
CPU_BATCH = 16


def network_batch(fp: FeatureParams, on_gpu: bool) -> int:
    """Frames per network call: ``features.batch_size`` on a GPU, at most
    :data:`CPU_BATCH` on the CPU."""
    return fp.batch_size if on_gpu else min(fp.batch_size, CPU_BATCH)


class AudioThread:
    """An episode's audio decoded (:func:`decode_audio`: its own demuxer, no video decoded)
    into a :class:`StepAudio` in a thread of its own, beside the video's decode thread and
    the network: on a small machine the decode thread is the critical path, and the audio
    (a fifth of its work at 360p) runs on the core the network leaves idle. The samples are
    those the one-pass decoder handed over (same stream, timeline and resampler).

    At the fingerprint's rate (``features.audio_sr`` = :data:`FP_SR`, the default) it also
    makes the window's audio fingerprint, ``prints``: the samples are those
    :func:`introdetect.features.audio.file_fingerprint` decodes, so the repetition channels
    read it from the feature file instead of decoding the audio again. None at another
    rate, without audio, or when the audio track broke off."""

    def __init__(self, video: Path, fp: FeatureParams) -> None:
        self.video, self.fp = video, fp
        self.acc = StepAudio(fp.audio_sr, fp.fps, fp.n_mels)
        self.stop = threading.Event()
        self.seconds = 0.0
        self.prints: np.ndarray | None = None
        self._pcm: list[np.ndarray] | None = [] if fp.audio_sr == FP_SR else None
        self._result: AudioPass | BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sink(self, pcm: np.ndarray) -> None:
        self.acc.push(pcm)
        if self._pcm is not None:
            self._pcm.append(pcm)

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            got = decode_audio(
                self.video, self.fp.audio_sr, self.fp.window_s, self._sink, self.stop
            )
            if self._pcm is not None and not self.stop.is_set():
                self.prints = prints_of(self._pcm, got.note)
            self._result = got
        except BaseException as e:  # re-raised by join()
            self._result = e
        self._pcm = None
        self.seconds = time.perf_counter() - t0

    def join(self) -> AudioPass:
        """Wait for the audio. A damaged audio track (:class:`MediaError`: too many corrupt
        packets in a row) keeps what decoded before it, says so in the note and never
        fails the episode; any other error is raised."""
        self._thread.join()
        if isinstance(self._result, MediaError):
            log.warning("%s; the audio after it is silence", self._result)
            got = self.acc.samples / self.fp.audio_sr
            return AudioPass(self.acc.samples, 0.0, f"audio stopped at {got:.1f} s")
        if isinstance(self._result, BaseException):
            raise self._result
        assert self._result is not None
        return self._result

    def abort(self) -> None:
        """Stop early and wait (the video failed: its error is the one to report)."""
        self.stop.set()
        self._thread.join()


@dataclass
class VideoPass:
    """What :func:`_embed_video` made and saw."""

    visual: np.ndarray  # float16 [T, 512]
    stats: DecodeStats
    skip_nonref_used: bool
    reused: int  # steps that reused the previous embedding (``reuse_static``)
    decoder: str  # "nvdec" (frames stayed on the GPU) or "cpu"


def _embed_video(
    video: Path,
    backbone: Backbone,
    fp: FeatureParams,
    timing: Timing,
    decode_threads: int,
) -> VideoPass:
    """The video's embeddings, in one decode pass (two when skipping non-reference frames
    put samples more than a quarter step off)."""
    on_gpu = backbone.device.type == "cuda"
    for skip in dict.fromkeys((fp.skip_nonref, False)):  # at most two passes
        convert = DeviceFrames(backbone.device) if on_gpu else frame_to_rgb
        opts = DecodeOptions(
            fp.fps,
            fp.window_s,
            fp.frame_size,
            fp.audio_sr,
            skip_nonref=skip,
            skip_loop_filter=fp.skip_loop_filter,
            # with the GPU: NVDEC into device memory, sampled frames resized there
            hwaccel="cuda" if on_gpu else None,
            hw_device=backbone.device.index or 0,
            decode_threads=decode_threads,
        )
        reuse = StaticReuse() if fp.reuse_static else None
        with EpisodeDecoder(video, opts, convert=convert) as dec:
            visual = embed_steps(dec, backbone, network_batch(fp, on_gpu), timing, reuse)
        stats = dec.stats
        timing.add_decode(stats)
        if not (skip and stats.sample_err_max_s > 0.25 / fp.fps):
            break
        # the stream's reference frames are too sparse for this step grid: decode it all
        log.info(
            "%s: skipping non-reference frames put samples %.3f s off (> a quarter step); "
            "decoding every frame instead",
            show_path(video),
            stats.sample_err_max_s,
        )
    n = stats.n_steps
    if visual.shape[0] != n:  # cannot happen unless the sampler is broken
        raise MediaError(f"{show_path(video)}: sampled {visual.shape[0]} frames for {n} steps")
    decoder = "nvdec" if on_gpu and convert.on_device else "cpu"
    return VideoPass(visual, stats, skip, reuse.reused if reuse is not None else 0, decoder)


def featurize_episode(
    video: str | Path,
    episode_id: str,
    out_path: str | Path,
    backbone: Backbone,
    fp: FeatureParams,
    timing: Timing | None = None,
    fingerprint: str | None = None,
    decode_threads: int = 0,
) -> EpisodeFeatures:
    """Decode ``video`` once and write its feature file to ``out_path``: the pictures in
    one thread (:func:`_embed_video`, the network in this one), the audio in another
    (:class:`AudioThread`).

    With ``features.skip_nonref`` the decoder drops non-reference frames; when that moves a
    sample more than a quarter step (sparse reference frames), the episode is decoded again
    with every frame, so the sampling error stays below a quarter step either way.
    ``decode_threads`` caps the decoder's threads (0: FFmpeg's choice, one per core)."""
    fp = with_int8(fp, backbone.int8)  # what the file records
    timing = timing if timing is not None else Timing()
    t0 = time.perf_counter()
    video = Path(video)
    sound = AudioThread(video, fp)
    try:
        seen = _embed_video(video, backbone, fp, timing, decode_threads)
    except BaseException:
        sound.abort()
        raise
    heard = sound.join()
    timing.audio += sound.seconds
    stats, n = seen.stats, seen.stats.n_steps
    ta = time.perf_counter()
    audio = sound.acc.finish(n)
    timing.audio += time.perf_counter() - ta
    stat = video.stat()
    attrs = feature_config(fp, backbone.weights_id) | {
        "episode_id": episode_id,
        "duration_s": float(stats.duration_s),
        "has_audio": heard.samples > 0,
        "audio_note": heard.note,
        "precision": backbone.precision,
        "engine": backbone.engine,
        "reused_steps": seen.reused,
        "source_path": show_path(video),
        "source_size": int(stat.st_size),
        "source_mtime": float(stat.st_mtime),
        "source_fingerprint": fingerprint or source_fingerprint(video),
        "corrupt_packets": int(stats.corrupt_packets + heard.corrupt_packets),
        "sample_err_max_s": float(stats.sample_err_max_s),
        "skip_nonref_used": seen.skip_nonref_used,
        "decoder": seen.decoder,
    }
    t = (np.arange(n) / fp.fps).astype(np.float32)
    feats = EpisodeFeatures(seen.visual, audio, t, attrs, sound.prints)
    _write(out_path, feats, timing)
    timing.total += time.perf_counter() - t0
    return feats


def _write(out_path: str | Path, feats: EpisodeFeatures, timing: Timing) -> None:
    """Write the feature file; a failure is the cache's (full disk, read-only), never the
    video's."""
    tw = time.perf_counter()
    try:
        store_write(out_path, feats)
    except OSError as e:
        raise OutputError(f"{out_path}: cannot write features ({describe_os_error(e)})") from e
    timing.write += time.perf_counter() - tw


@dataclass
class FeaturizeSummary:
    """What a featurize run did."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def ok_fraction(self) -> float:
        n = len(self.done) + len(self.skipped) + len(self.failed)
        return 1.0 if n == 0 else (len(self.done) + len(self.skipped)) / n


# One episode to featurize: (episode_id, video, output file, source fingerprint).
Job = tuple[str, Path, Path, str]


# What a worker hands back: (episode_id, the one-line error or None, its timing).
Outcome = tuple[str, str | None, Timing]


def _one(job: Job, backbone: Backbone, fp: FeatureParams, decode_threads: int = 0) -> Outcome:
    """Featurize one episode; never raises for bad media or a failed write."""
    eid, video, out, fingerprint = job
    timing = Timing()
    try:
        featurize_episode(
            video,
            eid,
            out,
            backbone,
            fp,
            timing,
            fingerprint=fingerprint,
            decode_threads=decode_threads,
        )
        return eid, None, timing
    except (MediaError, OutputError) as e:
        return eid, str(e), timing
    except OSError as e:  # reading the video
        return eid, f"{show_path(video)}: {describe_os_error(e)}", timing


def torch_threads(workers: int) -> int:
    """Torch threads per featurizing process: its share of the cores (the CPU network's
    threads; the int8 one splits them between its two lanes). Measured on 2 cores
    (benchmarks/featurize_bench.py --threads): 2 threads beat 1 by ~20 % even though
    the decoder's threads share those cores, as decode waits are short and overlap."""
    return max(1, cpu_cores() // max(1, workers))


def resolve_workers(fp: FeatureParams, device: torch.device) -> int:
    """``features.workers``, with 0 (auto) resolved: on a GPU, 8 episodes in flight so the
    NVDEC engines (7 on an H100; one per decode session) stay busy; on the CPU one process,
    whose decoder and network threads already share all cores (2 workers measured no
    faster on 2 cores: benchmarks/featurize_bench.py --batch)."""
    if fp.workers:
        return fp.workers
    return max(1, min(8, cpu_cores())) if device.type == "cuda" else 1


_WORKER: dict[str, Any] = {}


def _worker_init(fp: FeatureParams, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _WORKER["backbone"] = backbone_for(fp)
    _WORKER["threads"] = threads  # the decoder gets the same share of the cores


def _worker_job(args: tuple[Job, FeatureParams]) -> Outcome:
    job, fp = args
    return _one(job, _WORKER["backbone"], fp, _WORKER["threads"])


def _run_parallel(jobs: list[Job], fp: FeatureParams):
    """One process per worker, each with its own backbone and cores // workers threads:
    on many-core hosts several episodes in parallel beat threads inside one."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    threads = torch_threads(fp.workers)
    ctx = mp.get_context("spawn")  # no fork after torch/PyAV threads started
    pool = ProcessPoolExecutor(
        fp.workers, mp_context=ctx, initializer=_worker_init, initargs=(fp, threads)
    )
    try:
        yield from pool.map(_worker_job, [(job, fp) for job in jobs])
    except BaseException:  # Ctrl-C or an error in the caller: stop now, not after every job
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:  # a worker's half-written temp file is a dead owner's
            proc.terminate()
        raise
    pool.shutdown()


def _run_ray(jobs: list[Job], fp: FeatureParams):
    """Scale-out on Ray: one task per episode, run by actors that each hold a backbone (on a
    GPU when the cluster has them). Workers write the same per-episode HDF5 files with the
    same code, so ``out_dir`` must be on storage every node sees. ``features.ray_address``
    (or RAY_ADDRESS) points at an existing cluster; otherwise a local Ray is started."""
    # Ray would start workers through `uv run`, which re-syncs an environment without the
    # "ray" extra; workers use the driver's interpreter and packages instead.
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        import ray
        from ray.util import ActorPool
    except ImportError as e:
        raise IntrodetectError("features.executor=ray needs Ray: uv sync --extra ray") from e
    if not ray.is_initialized():
        ray.init(address=fp.ray_address, include_dashboard=False, logging_level="WARNING")
    resources = ray.cluster_resources()
    use_gpu = fp.device != "cpu" and resources.get("GPU", 0) >= 1
    n_actors = min(len(jobs), fp.workers if fp.workers > 1 else int(resources.get("CPU", 1)))
    if use_gpu:
        n_actors = min(n_actors, int(resources["GPU"]))

    @ray.remote(num_gpus=1 if use_gpu else 0, num_cpus=1)
    class Featurizer:
        def __init__(self, fp: FeatureParams) -> None:
            import torch

            torch.set_num_threads(1)  # an actor holds one CPU (num_cpus=1)
            self.fp = fp
            self.backbone = backbone_for(fp, "cuda" if use_gpu else "cpu")

        def run(self, job: Job) -> Outcome:
            # CPU actors decode on their one core; GPU actors decode on NVDEC
            return _one(job, self.backbone, self.fp, 0 if use_gpu else 1)

    pool = ActorPool([Featurizer.remote(fp) for _ in range(max(1, n_actors))])
    yield from pool.map_unordered(lambda actor, job: actor.run.remote(job), jobs)


def plan_jobs(
    episodes: list[tuple[str, Path]],
    out_dir: Path,
    backbone: Backbone,
    fp: FeatureParams,
    summary: FeaturizeSummary,
) -> list[Job]:
    """The episodes whose feature file is missing or stale (another source file, size,
    modification time or feature config); current ones go to ``summary.skipped``,
    unreadable sources to ``summary.failed``."""
    config = feature_config(with_int8(fp, backbone.int8), backbone.weights_id)
    jobs: list[Job] = []
    for eid, video in episodes:
        out = out_dir / f"{eid}.h5"
        try:
            fingerprint = source_fingerprint(video)  # read once: skip check and provenance
            mtime = Path(video).stat().st_mtime
        except OSError as e:
            summary.failed[eid] = {
                "file": show_path(video),
                "error": f"{show_path(video)}: {describe_os_error(e)}",
            }
            continue
        if is_current(out, config, fingerprint, mtime):
            summary.skipped.append(eid)
        else:
            jobs.append((eid, video, out, fingerprint))
    return jobs


def featurize_many(
    episodes: list[tuple[str, Path]],
    out_dir: str | Path,
    backbone: Backbone,
    fp: FeatureParams,
) -> FeaturizeSummary:
    """Featurize ``(episode_id, video_path)`` pairs into ``out_dir``; write ``errors.json``.

    Episodes whose file is current (same source fingerprint and feature config) are skipped,
    so a rerun after an interruption only does what is left.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out_dir}: cannot create the feature cache ({e.strerror})") from e
    clean_stale_temps(out_dir)  # temp files of killed runs; a live run's are kept
    # int8 resolved once, so every worker's network and every file agree with the plan
    fp = dataclasses.replace(
        with_int8(fp, backbone.int8), workers=resolve_workers(fp, backbone.device)
    )
    summary = FeaturizeSummary()
    timing = Timing()
    jobs = plan_jobs(episodes, out_dir, backbone, fp, summary)
    if fp.executor == "ray" and jobs:
        results = _run_ray(jobs, fp)
    elif fp.workers > 1 and len(jobs) > 1:
        results = _run_parallel(jobs, fp)
    else:
        torch.set_num_threads(torch_threads(1))
        results = (_one(job, backbone, fp) for job in jobs)
    videos = {eid: video for eid, video, _, _ in jobs}
    try:
        for eid, err, worker_timing in tqdm(
            results, total=len(jobs), desc=f"featurize {out_dir.name}", unit="ep"
        ):
            timing.add(worker_timing)
            if err is None:
                summary.done.append(eid)
            else:
                log.error("featurize failed: %s", err)
                summary.failed[eid] = {"file": show_path(videos[eid]), "error": err}
    finally:  # interrupted: stop the workers now (finished episodes are on disk)
        close = getattr(results, "close", None)
        if close is not None:
            close()
    try:
        write_json(summary.failed, out_dir / "errors.json")
    except OSError as e:  # a read-only cache still serves what it holds
        log.warning("%s: cannot write errors.json (%s)", out_dir, describe_os_error(e))
    log.info(
        "featurize %s: %d done, %d reused, %d failed; decode %.1fs resize %.1fs (decode "
        "thread), audio %.1fs (its own), network %.1fs write %.1fs, network idle %.1fs",
        out_dir,
        len(summary.done),
        len(summary.skipped),
        len(summary.failed),
        timing.decode,
        timing.resize,
        timing.audio,
        timing.network,
        timing.write,
        timing.decode_wait,
    )
    return summary
