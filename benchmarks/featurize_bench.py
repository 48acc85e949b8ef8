"""Featurize throughput against the pure-decode ceiling of the same file, in one run.

    uv run python benchmarks/featurize_bench.py            # 640x360, 1280x720, 1920x1080 clips
    uv run python benchmarks/featurize_bench.py --size 1920x1080 --threads 1 --skip-loop-filter true
    uv run python benchmarks/featurize_bench.py --input EP.mp4 --window 600
    uv run python benchmarks/featurize_bench.py --batch 16 --workers 8   # many episodes
    uv run python benchmarks/featurize_bench.py --also int8=false int8=true,frame_size=160

For every source size (generated clips, or ``--input``) and each device (the CPU always,
CUDA when present) it measures on the same file (a) pure decode of the analysis window with
PyAV (NVDEC on CUDA), (b) decode + step sampling + resize (introdetect.media), (c) the full
featurize (network, audio, HDF5 write) with default settings and with every frame decoded,
and prints markdown tables: wall s, CPU s, x realtime, ratio to pure decode, peak RSS (the
median of ``--repeat`` runs, 3 by default, the measures taking turns); the per-part
breakdown of (c) (decode and resize in the decode thread, audio in its own, network and
write in the main one); then a summary row per size, and one per size and ``--also``
variant (features settings changed from the defaults, e.g. ``int8=true,frame_size=160``).
On the first size it also compares network engines (fp32 and int8) and frame sizes (time,
ratio to pure decode, and how faithful the embedding is to eager torch at 224 px), and the
fast decode path against the straightforward one
(every frame decoded, fp32): time, sampling error and embedding difference; with
``--batch N`` the throughput of N episodes through ``featurize_many`` in episode-minutes per
wall second.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import resource
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from introdetect.features.audio import step_audio_features
from introdetect.features.extract import Timing, featurize_episode, featurize_many
from introdetect.features.frames import DeviceFrames
from introdetect.features.visual import Backbone, backbone_for, load_backbone
from introdetect.media import DecodeOptions, EpisodeDecoder, open_container
from introdetect.params import FeatureParams, load_params
from introdetect.store import read_episode


def make_clip(path: Path, seconds: float, w: int, h: int, fps: int = 25) -> Path:
    """Single-sliced H.264 with B-frames (like real files) + AAC, with moving content."""
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 255, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8)
    tex = np.repeat(np.repeat(tex, 8, 0), 8, 1)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "23", "x264-params": "slices=1:bframes=3"}
        aus = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(int(seconds * fps)):
            img = np.roll(tex, (i * 3, i * 5), (0, 1))[:h, :w]
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in vs.encode(f):
                out.mux(p)
            a0 = int(i * 48000 / fps)
            n = int((i + 1) * 48000 / fps) - a0
            t = (np.arange(a0, a0 + n) / 48000).astype(np.float32)
            data = np.repeat((0.2 * np.sin(2 * np.pi * 330 * t))[None], 2, 0)
            af = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(data), format="fltp", layout="stereo"
            )
            af.sample_rate, af.pts, af.time_base = 48000, a0, Fraction(1, 48000)
            for p in aus.encode(af):
                out.mux(p)
        for s in (vs, aus):
            for p in s.encode(None):
                out.mux(p)
    return path


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pure_decode(path: Path, window: float, cuda: bool) -> None:
    """Every video frame of the window through the decoder, nothing else (on CUDA the frames
    stay in GPU memory, as the featurizer keeps them)."""
    with open_container(path, "cuda" if cuda else None, hw_owned=cuda) as c:
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        for frame in c.decode(v):
            if frame.time is not None and frame.time >= window:
                break
    if cuda:
        torch.cuda.synchronize()


def sample_resize(path: Path, fp: FeatureParams, cuda: bool) -> None:
    """Decode + step sampling + resize, as featurize does it, without network or audio."""
    kw = {"convert": DeviceFrames(torch.device("cuda"))} if cuda else {}
    opts = DecodeOptions(
        fp.fps,
        fp.window_s,
        fp.frame_size,
        fp.audio_sr,
        skip_nonref=fp.skip_nonref,
        skip_loop_filter=fp.skip_loop_filter,
        hwaccel="cuda" if cuda else None,
    )
    with EpisodeDecoder(path, opts, **kw) as dec:
        for _ in dec.steps():
            pass


def _timed(fn: Callable[[], object]) -> tuple[float, float, float]:
    c0, t0 = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, _cpu() - c0, _rss_mib()


def _median_run(runs: list[tuple[float, float, float]]) -> int:
    """Index of the run with the median wall time."""
    order = sorted(range(len(runs)), key=lambda i: runs[i][0])
    return order[(len(order) - 1) // 2]


def device_tables(
    path: Path, fp: FeatureParams, backbone: Backbone, tmp: Path, repeat: int = 3
) -> tuple[float, float, float]:
    """Tables 1 and 2 for one device; returns (media s, pure decode s, featurize s). Each
    measure runs ``repeat`` times, the measures taking turns (a busy spell on a shared
    machine hits all of them); a row shows its median run, the breakdown the median
    featurize's."""
    cuda = backbone.device.type == "cuda"
    backbone.embed(np.zeros((4, fp.frame_size, fp.frame_size, 3), np.uint8))  # warm-up
    plain = dataclasses.replace(fp, skip_nonref=False, skip_loop_filter=False)
    timings: list[Timing] = []

    def featurize_defaults() -> None:
        timings.append(Timing())
        featurize_episode(path, "b", tmp / "b.h5", backbone, fp, timings[-1])

    measures: list[tuple[str, Callable[[], object]]] = [
        ("pure decode (every frame)", lambda: pure_decode(path, fp.window_s, cuda)),
        ("decode + sample + resize", lambda: sample_resize(path, fp, cuda)),
        ("full featurize (defaults)", featurize_defaults),
        (
            "full featurize, every frame decoded and deblocked",
            lambda: featurize_episode(path, "p", tmp / "p.h5", backbone, plain),
        ),
    ]
    runs: list[list[tuple[float, float, float]]] = [[] for _ in measures]
    for _ in range(max(1, repeat)):
        for i, (_, fn) in enumerate(measures):
            runs[i].append(_timed(fn))
    rows = [(name, r[_median_run(r)]) for (name, _), r in zip(measures, runs, strict=True)]
    timing = timings[_median_run(runs[2])]
    attrs = read_episode(tmp / "b.h5").attrs
    media_s = float(attrs["duration_s"])
    base = rows[0][1][0]
    print(
        f"\n### {backbone.device} (precision {backbone.precision}, network threads "
        f"{backbone.threads} in {backbone.lanes} lane(s), decoder {attrs['decoder']}, skip_nonref "
        f"{fp.skip_nonref}, skip_loop_filter {fp.skip_loop_filter}, frame_size "
        f"{fp.frame_size}): {media_s:.1f} s of video; median of {max(1, repeat)} runs\n"
    )
    print("| measure | wall s | CPU s | x realtime | / pure decode | peak RSS MiB (so far) |")
    print("|---|---|---|---|---|---|")
    for name, (wall, cpu, rss) in rows:
        print(
            f"| {name} | {wall:.2f} | {cpu:.2f} | {media_s / wall:.1f} | {wall / base:.2f} "
            f"| {rss:.0f} |"
        )
    t = timing
    print("\n| part of the full featurize | seconds | thread |")
    print("|---|---|---|")
    for name, sec, where in (
        ("decode (in the decoder)", t.decode, "decode"),
        ("sample + resize (+ rotation)", t.resize, "decode"),
        ("audio (decode, resample, RMS + mel)", t.audio, "audio"),
        ("network (ResNet18)", t.network, "main"),
        ("HDF5 write", t.write, "main"),
        ("network idle, waiting for frames", t.decode_wait, "main"),
        ("total wall", t.total, "-"),
    ):
        print(f"| {name} | {sec:.3f} | {where} |")
    return media_s, base, rows[2][1][0]


def _centred_cosine(x: np.ndarray, ref: np.ndarray) -> float:
    """Mean cosine after removing each set's mean embedding: how well ``x`` keeps the
    differences between frames that ``ref`` sees (a plain cosine is near 1 for any two
    embeddings of a random-init ResNet, whose outputs share one dominant direction)."""
    a, b = x - x.mean(0), ref - ref.mean(0)
    cos = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-9)
    return float(cos.mean())


def engine_table(path: Path, fp: FeatureParams, tmp: Path, sizes: list[int]) -> None:
    """Network engines and frame sizes on the same file: wall, ratio to pure decode, and the
    embedding against eager torch at 224 px (the reference features)."""
    t_dec = min(_timed(lambda: pure_decode(path, fp.window_s, False))[0] for _ in range(2))
    engines = [("torch", False), ("onnxruntime", False), ("onnxruntime", True)]
    variants = [("torch", False, 224)] + [
        (e, q, s) for s in sizes for e, q in engines if (e, q, s) != ("torch", False, 224)
    ]
    ref = None
    print(
        "\n| engine | frame px | wall s | / pure decode | network s | plain cosine to torch@224 "
        "| centred cosine to torch@224 | temporal self-similarity corr. |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for engine, int8, size in variants:
        f = dataclasses.replace(fp, frame_size=size, engine=engine, int8=int8)
        bb = backbone_for(f, "cpu")
        bb.embed(np.zeros((4, size, size, 3), np.uint8))
        timing = Timing()
        h5 = tmp / f"e-{engine}-{int8}-{size}.h5"
        wall = _timed(lambda: featurize_episode(path, "e", h5, bb, f, timing))[0]  # noqa: B023
        x = read_episode(h5).visual.astype(np.float32)
        if ref is None:
            ref = x
        cos = np.sum(x * ref, 1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(ref, axis=1))
        # what the evidence channels use: step-to-step similarity structure
        sa, sb = (np.corrcoef(m - m.mean(0)) for m in (x, ref))
        corr = float(np.corrcoef(sa.ravel(), sb.ravel())[0, 1])
        print(
            f"| {_engine(bb)} | {size} | {wall:.2f} | {wall / t_dec:.2f} "
            f"| {timing.network:.2f} "
            f"| {cos.mean():.5f} | {_centred_cosine(x, ref):.4f} | {corr:.4f} |"
        )


def fast_vs_plain(path: Path, fp: FeatureParams, tmp: Path) -> None:
    """Table 3: the default fast path against the straightforward one on the same episode
    (every frame decoded and deblocked, eager torch fp32)."""
    plain = dataclasses.replace(fp, skip_nonref=False, skip_loop_filter=False, engine="torch")
    variants = {
        "straightforward (every frame, deblocked, torch fp32)": (plain, "fp32"),
        "skip_loop_filter only": (dataclasses.replace(plain, skip_loop_filter=True), "fp32"),
        "skip_nonref only": (dataclasses.replace(plain, skip_nonref=True), "fp32"),
        "fast (defaults)": (fp, fp.precision),
    }
    out = {}
    for name, (f, precision) in variants.items():
        bb = load_backbone(f.weights, "cpu", precision, f.engine, f.int8)
        bb.embed(np.zeros((4, f.frame_size, f.frame_size, 3), np.uint8))
        h5 = tmp / f"v{len(out)}.h5"
        t0 = time.perf_counter()
        featurize_episode(path, "v", h5, bb, f)
        out[name] = (time.perf_counter() - t0, read_episode(h5), bb.precision)
    ref = next(iter(out.values()))[1].visual.astype(np.float32)
    print("\n| CPU path | precision | wall s | max sampling error s | max abs diff | min cosine |")
    print("|---|---|---|---|---|---|")
    for name, (wall, feats, precision) in out.items():
        x = feats.visual.astype(np.float32)
        cos = np.sum(x * ref, 1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(ref, axis=1) + 1e-9)
        print(
            f"| {name} | {precision} | {wall:.2f} | {feats.attrs['sample_err_max_s']:.3f} | "
            f"{np.abs(x - ref).max():.3f} | {cos.min():.4f} |"
        )


def batch_throughput(path: Path, fp: FeatureParams, backbone: Backbone, n: int, tmp: Path):
    """Table 4: ``n`` episodes (links to the same file) through featurize_many."""
    src = tmp / f"batch-{backbone.device.type}"
    src.mkdir()
    episodes = []
    for i in range(n):
        (src / f"ep{i}{path.suffix}").symlink_to(path.resolve())
        episodes.append((f"ep{i}", src / f"ep{i}{path.suffix}"))
    t0 = time.perf_counter()
    summary = featurize_many(episodes, src / "features", backbone, fp)
    wall = time.perf_counter() - t0
    minutes = (
        sum(
            float(read_episode(src / "features" / f"{e}.h5").attrs["duration_s"])
            for e in summary.done
        )
        / 60
    )
    print(
        f"\n| batch on {backbone.device} | episodes | workers | wall s | episode-min per wall s |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| featurize_many | {len(summary.done)}/{n} | {fp.workers} | {wall:.1f} "
        f"| {minutes / wall:.2f} |"
    )


def _bool(s: str) -> bool:
    return s.lower() in ("1", "true", "yes", "on")


def _variant(fp: FeatureParams, spec: str) -> FeatureParams:
    """``fp`` with the ``key=value[,key=value]`` changes of ``spec``."""
    changes = {}
    for item in spec.split(","):
        key, value = item.split("=", 1)
        kind = type(getattr(fp, key))
        if key == "int8":  # true | false | auto
            changes[key] = value if value == "auto" else _bool(value)
        else:
            changes[key] = _bool(value) if kind is bool else kind(value)
    return dataclasses.replace(fp, **changes)


def _engine(bb: Backbone) -> str:
    return f"{bb.engine} int8" if bb.int8 else bb.engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", help="an episode to measure (default: generate one)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the generated clip")
    ap.add_argument("--params", default="params.yaml", help="features defaults from here")
    ap.add_argument(
        "--size",
        nargs="+",
        default=["640x360", "1280x720", "1920x1080"],
        help="WxH of the generated clips (all measured in this run)",
    )
    ap.add_argument("--window", type=float, default=600.0, help="features.window_s")
    ap.add_argument("--frame-size", type=int, help="features.frame_size (default: params)")
    ap.add_argument("--engine", help="features.engine (default: params)")
    ap.add_argument(
        "--compare-sizes",
        type=int,
        nargs="*",
        default=[224, 160, 112],
        help="frame sizes for the engine table (none: skip it)",
    )
    ap.add_argument("--weights", default="random", help="features.weights")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    ap.add_argument(
        "--skip-nonref", type=_bool, help="features.skip_nonref (default: the params default)"
    )
    ap.add_argument("--skip-loop-filter", type=_bool, help="features.skip_loop_filter")
    ap.add_argument("--int8", type=_bool, help="features.int8")
    ap.add_argument(
        "--also",
        nargs="*",
        default=["int8=false", "int8=true,frame_size=160", "int8=true,frame_size=112"],
        help="features variants, each key=value[,key=value]: a summary row per size on the CPU",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each measure of the device tables and --also rows (median shown)",
    )
    ap.add_argument("--batch", type=int, default=0, help="episodes for the throughput table")
    ap.add_argument("--workers", type=int, default=1, help="features.workers for --batch")
    ap.add_argument("--gpu-batch-size", type=int, default=256, help="features.batch_size on CUDA")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp())
    fp = dataclasses.replace(
        load_params(args.params).features,
        window_s=args.window,
        weights=args.weights,
        device="cpu",
        workers=args.workers,
    )
    for key in ("skip_nonref", "skip_loop_filter", "frame_size", "engine", "int8"):
        if getattr(args, key) is not None:
            fp = dataclasses.replace(fp, **{key: getattr(args, key)})
    step_audio_features(np.zeros(16000, np.float32), fp.audio_sr, fp.fps, 2, fp.n_mels)  # JIT
    if args.input:
        inputs = [Path(args.input)]
    else:
        inputs = []
        for size in args.size:
            w, h = map(int, size.split("x"))
            t0 = time.perf_counter()
            inputs.append(make_clip(tmp / f"bench-{size}.mp4", args.seconds, w, h))
            print(
                f"generated {inputs[-1]} ({args.seconds:.0f} s) in {time.perf_counter() - t0:.0f} s"
            )
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    summary = []
    for path in inputs:
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            name = f"{v.width}x{v.height}"
            print(f"\n## input: {v.codec_context.name} {name} {v.average_rate} fps")
        for dev in devices:
            f = (
                fp
                if dev == "cpu"
                else dataclasses.replace(fp, device="cuda", batch_size=args.gpu_batch_size)
            )
            backbone = backbone_for(f)
            media_s, dec, feat = device_tables(path, f, backbone, tmp, args.repeat)
            summary.append((name, dev, _engine(backbone), f.frame_size, media_s, dec, feat))
            for also in args.also if dev == "cpu" else []:
                fa = _variant(f, also)
                bb = backbone_for(fa)
                bb.embed(np.zeros((4, fa.frame_size, fa.frame_size, 3), np.uint8))
                walls = sorted(
                    _timed(lambda: featurize_episode(path, "a", tmp / "a.h5", bb, fa))[0]  # noqa: B023
                    for _ in range(max(1, args.repeat))
                )
                wall = walls[(len(walls) - 1) // 2]
                summary.append((name, dev, _engine(bb), fa.frame_size, media_s, dec, wall))
            if args.batch:
                batch_throughput(path, f, backbone, args.batch, tmp)
    print("\n## summary: full featurize (defaults) against pure decode, same run\n")
    print(
        "| source | device | engine | frame px | pure decode x realtime | featurize x realtime "
        "| featurize / pure decode |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, dev, engine, size, media_s, dec, feat in summary:
        print(
            f"| {name} | {dev} | {engine} | {size} | {media_s / dec:.1f} | {media_s / feat:.1f} "
            f"| {feat / dec:.2f} |"
        )
    if args.compare_sizes:
        engine_table(inputs[0], fp, tmp, args.compare_sizes)
    fast_vs_plain(inputs[0], fp, tmp)


if __name__ == "__main__":
    main()
