"""Featurize episodes: one decode pass each -> ResNet18 + audio features -> HDF5 store.

Decoding runs in a background thread (PyAV releases the GIL) and hands batches of sampled
frames to the network in the calling thread, so decode and inference overlap. Frames are
streamed: memory holds one batch, not the episode. A failing episode is recorded in
``errors.json`` and the others go on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from introdetect.features.audio import StepAudio
from introdetect.features.frames import DeviceFrames
from introdetect.features.visual import BACKBONE, EMBED_DIM, Backbone, load_backbone
from introdetect.media import DecodeResult, MediaError, frame_to_rgb, stream_episode
from introdetect.params import FeatureParams
from introdetect.store import SCHEMA_VERSION, EpisodeFeatures, is_current, source_fingerprint
from introdetect.store import write_episode as store_write

log = logging.getLogger(__name__)

_DONE = object()


def feature_config(fp: FeatureParams, backbone: Backbone) -> dict[str, Any]:
    """The provenance attributes that define a feature configuration."""
    return {
        "schema_version": SCHEMA_VERSION,
        "fps": float(fp.fps),
        "window_s": float(fp.window_s),
        "backbone": BACKBONE,
        "weights_id": backbone.weights_id,
        "frame_size": int(fp.frame_size),
        "audio_sr": int(fp.audio_sr),
        "n_mels": int(fp.n_mels),
        "skip_nonref": bool(fp.skip_nonref),
        "skip_loop_filter": bool(fp.skip_loop_filter),
    }


@dataclass
class Timing:
    """Seconds spent per part. Decode, resize and audio run in the decode thread, network
    and write in the calling one; ``decode_wait`` is how long the network sat idle."""

    decode: float = 0.0
    resize: float = 0.0
    audio: float = 0.0
    network: float = 0.0
    write: float = 0.0
    decode_wait: float = 0.0
    total: float = 0.0

    def add_decode(self, result: DecodeResult) -> None:
        self.decode += result.decode_s
        self.resize += result.convert_s
        self.audio += result.audio_s


def _stack(frames: list[Any]) -> Any:
    return torch.stack(frames) if isinstance(frames[0], torch.Tensor) else np.stack(frames)


def _producer(gen: Iterable, batch: int, q: queue.Queue) -> None:
    frames: list[Any] = []
    try:
        for _, rgb in gen:
            frames.append(rgb)
            if len(frames) == batch:
                q.put(_stack(frames))
                frames = []
        if frames:
            q.put(_stack(frames))
        q.put(_DONE)
    except BaseException as e:  # handed to the consumer, which re-raises it
        q.put(e)


def featurize_episode(
    video: str | Path,
    episode_id: str,
    out_path: str | Path,
    backbone: Backbone,
    fp: FeatureParams,
    timing: Timing | None = None,
    skip: bool | None = None,
    fingerprint: str | None = None,
    decode_threads: int = 0,
) -> EpisodeFeatures:
    """Decode ``video`` once and write its feature file to ``out_path``.

    With ``features.skip_nonref`` the decoder drops non-reference frames; when that moves a
    sample more than a quarter step (sparse reference frames), the episode is decoded again
    with every frame, so the sampling error stays below a quarter step either way.
    ``decode_threads`` caps the decoder's threads (0: FFmpeg's choice, one per core)."""
    skip = fp.skip_nonref if skip is None else skip
    timing = timing or Timing()
    t0 = time.perf_counter()
    video = Path(video)
    result = DecodeResult()
    audio_acc = StepAudio(fp.audio_sr, fp.fps, fp.n_mels)  # fed while decoding
    on_gpu = backbone.device.type == "cuda"
    convert = DeviceFrames(backbone.device) if on_gpu else None
    gen = stream_episode(
        video,
        fp.fps,
        fp.window_s,
        fp.frame_size,
        fp.audio_sr,
        result,
        skip_nonref=skip,
        skip_loop_filter=fp.skip_loop_filter,
        audio_sink=audio_acc.push,
        # with the GPU: NVDEC into device memory, sampled frames resized there
        hwaccel="cuda" if on_gpu else None,
        convert=convert or frame_to_rgb,
        hw_device=backbone.device.index or 0,
        decode_threads=decode_threads,
    )
    q: queue.Queue = queue.Queue(maxsize=4)
    th = threading.Thread(target=_producer, args=(gen, fp.batch_size, q), daemon=True)
    th.start()
    chunks: list[np.ndarray] = []
    while True:
        tw = time.perf_counter()
        item = q.get()
        timing.decode_wait += time.perf_counter() - tw
        if item is _DONE:
            break
        if isinstance(item, BaseException):
            th.join()
            raise item
        tn = time.perf_counter()
        chunks.append(backbone.embed(item).astype(np.float16))
        timing.network += time.perf_counter() - tn
    th.join()
    timing.add_decode(result)
    if skip and result.sample_err_max_s > 0.25 / fp.fps:
        # The stream's reference frames are too sparse for this step grid: decode it all.
        log.info(
            "%s: skipping non-reference frames put samples %.3f s off (> a quarter "
            "step); decoding every frame instead",
            video,
            result.sample_err_max_s,
        )
        return featurize_episode(
            video,
            episode_id,
            out_path,
            backbone,
            fp,
            timing,
            skip=False,
            fingerprint=fingerprint,
            decode_threads=decode_threads,
        )
    visual = np.concatenate(chunks) if chunks else np.zeros((0, EMBED_DIM), np.float16)
    n = result.n_steps
    if visual.shape[0] != n:  # cannot happen unless the sampler is broken
        raise MediaError(f"{video}: sampled {visual.shape[0]} frames for {n} steps")
    ta = time.perf_counter()
    audio = audio_acc.finish(n)
    timing.audio += time.perf_counter() - ta
    stat = video.stat()
    attrs = feature_config(fp, backbone) | {
        "episode_id": episode_id,
        "duration_s": float(result.duration_s),
        "has_audio": result.audio_samples > 0,
        "audio_note": result.audio_note,
        "precision": backbone.precision,
        "source_path": str(video),
        "source_size": int(stat.st_size),
        "source_mtime": float(stat.st_mtime),
        "source_fingerprint": fingerprint or source_fingerprint(video),
        "corrupt_packets": int(result.corrupt_packets),
        "sample_err_max_s": float(result.sample_err_max_s),
        "skip_nonref_used": bool(skip),
        "decoder": "nvdec" if convert is not None and convert.on_device else "cpu",
    }
    feats = EpisodeFeatures(visual, audio, (np.arange(n) / fp.fps).astype(np.float32), attrs)
    tw = time.perf_counter()
    store_write(out_path, feats)
    timing.write += time.perf_counter() - tw
    timing.total += time.perf_counter() - t0
    return feats


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


def _one(
    job: Job, backbone: Backbone, fp: FeatureParams, timing: Timing, decode_threads: int = 0
) -> tuple[str, str | None]:
    """Featurize one episode; (episode_id, the one-line error or None on success)."""
    eid, video, out, fingerprint = job
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
        return eid, None
    except (MediaError, OSError) as e:
        return eid, str(e) if str(video) in str(e) else f"{video}: {e}"


def cpu_cores() -> int:
    """Cores this process may run on (CPU affinity / cpuset aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def torch_threads(workers: int) -> int:
    """Torch threads per featurizing process: its share of the cores. Measured on 2 cores
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
    _WORKER["backbone"] = load_backbone(fp.weights, fp.device, fp.precision)
    _WORKER["threads"] = threads  # the decoder gets the same share of the cores


def _worker_job(args: tuple[Job, FeatureParams]) -> tuple[str, str | None]:
    job, fp = args
    return _one(job, _WORKER["backbone"], fp, Timing(), _WORKER["threads"])


def _run_parallel(jobs: list[Job], fp: FeatureParams):
    """One process per worker, each with its own backbone and cores // workers threads:
    on many-core hosts several episodes in parallel beat threads inside one."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    threads = torch_threads(fp.workers)
    ctx = mp.get_context("spawn")  # no fork after torch/PyAV threads started
    with ProcessPoolExecutor(
        fp.workers, mp_context=ctx, initializer=_worker_init, initargs=(fp, threads)
    ) as pool:
        yield from pool.map(_worker_job, [(job, fp) for job in jobs])


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
        raise RuntimeError("features.executor=ray needs Ray: uv sync --extra ray") from e
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
            self.backbone = load_backbone(fp.weights, "cuda" if use_gpu else "cpu", fp.precision)

        def run(self, job: Job) -> tuple[str, str | None]:
            # CPU actors decode on their one core; GPU actors decode on NVDEC
            return _one(job, self.backbone, self.fp, Timing(), 0 if use_gpu else 1)

    pool = ActorPool([Featurizer.remote(fp) for _ in range(max(1, n_actors))])
    yield from pool.map_unordered(lambda actor, job: actor.run.remote(job), jobs)


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
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.h5.*.tmp"):  # left by a killed run; never a real result
        stale.unlink(missing_ok=True)
    fp = dataclasses.replace(fp, workers=resolve_workers(fp, backbone.device))
    config = feature_config(fp, backbone)
    summary = FeaturizeSummary()
    timing = Timing()
    jobs: list[Job] = []
    for eid, video in episodes:
        out = out_dir / f"{eid}.h5"
        try:
            fingerprint = source_fingerprint(video)  # read once: skip check and provenance
        except OSError as e:
            summary.failed[eid] = {"file": str(video), "error": f"{video}: {e}"}
            continue
        if is_current(out, config, fingerprint):
            summary.skipped.append(eid)
        else:
            jobs.append((eid, video, out, fingerprint))
    if fp.executor == "ray" and jobs:
        results = _run_ray(jobs, fp)
    elif fp.workers > 1 and len(jobs) > 1:
        results = _run_parallel(jobs, fp)
    else:
        torch.set_num_threads(torch_threads(1))
        results = (_one(job, backbone, fp, timing) for job in jobs)
    videos = {eid: video for eid, video, _, _ in jobs}
    for eid, err in tqdm(results, total=len(jobs), desc=f"featurize {out_dir.name}", unit="ep"):
        if err is None:
            summary.done.append(eid)
        else:
            log.error("featurize failed: %s", err)
            summary.failed[eid] = {"file": str(videos[eid]), "error": err}
    (out_dir / "errors.json").write_text(
        json.dumps(summary.failed, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    log.info(
        "featurize %s: %d done, %d reused, %d failed; decode %.1fs resize %.1fs audio %.1fs "
        "(decode thread), network %.1fs write %.1fs, network idle %.1fs",
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
