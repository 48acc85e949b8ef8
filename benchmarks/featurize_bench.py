"""Featurize throughput against the pure-decode ceiling of the same file, in one run.

    uv run python benchmarks/featurize_bench.py                  # generates a 720p clip
    uv run python benchmarks/featurize_bench.py --input EP.mp4 --window 600

Measures (a) pure decode of the analysis window with PyAV, (b) decode + step sampling +
resize (introdetect.media), (c) the full featurize (network, audio, HDF5 write) and prints a
markdown table: wall s, CPU s, x realtime, ratio to pure decode, and the peak RSS.
"""

from __future__ import annotations

import argparse
import logging
import resource
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from introdetect.features.audio import step_audio_features
from introdetect.features.extract import Timing, featurize_episode
from introdetect.features.visual import load_backbone
from introdetect.media import DecodeResult, stream_episode
from introdetect.params import FeatureParams


def make_clip(path: Path, seconds: float, w: int, h: int, fps: int = 25) -> Path:
    """Single-sliced H.264 (like real files) + AAC with moving content."""
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 255, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8)
    tex = np.repeat(np.repeat(tex, 8, 0), 8, 1)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        # B-frames and one slice per frame, like broadcast/web files
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


def pure_decode(path: Path, window: float) -> None:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        for frame in c.decode(v):
            if frame.time is not None and frame.time >= window:
                break


def sample_resize(path: Path, fp: FeatureParams) -> None:
    for _ in stream_episode(path, fp.fps, fp.window_s, fp.frame_size, fp.audio_sr, DecodeResult()):
        pass


def fast_vs_plain(path: Path, fp: FeatureParams, backbone, tmp: Path) -> None:
    """Same episode with and without skip_nonref: time, sampling error, embedding change."""
    import dataclasses

    from introdetect.store import read_episode

    out = {}
    for skip in (False, True):
        f = dataclasses.replace(fp, skip_nonref=skip)
        t0 = time.perf_counter()
        featurize_episode(path, "b", tmp / f"s{int(skip)}.h5", backbone, f, Timing())
        out[skip] = (time.perf_counter() - t0, read_episode(tmp / f"s{int(skip)}.h5"))
    a, b = out[False][1], out[True][1]
    diff = np.abs(a.visual.astype(np.float32) - b.visual.astype(np.float32))
    cos = np.sum(a.visual.astype(np.float32) * b.visual.astype(np.float32), 1) / (
        np.linalg.norm(a.visual.astype(np.float32), axis=1)
        * np.linalg.norm(b.visual.astype(np.float32), axis=1)
        + 1e-9
    )
    print("\n| path | wall s | max sampling error s | max abs embedding diff | min cosine |")
    print("|---|---|---|---|---|")
    print(
        f"| every frame decoded | {out[False][0]:.2f} | {a.attrs['sample_err_max_s']:.3f} | - | - |"
    )
    print(
        f"| skip_nonref | {out[True][0]:.2f} | {b.attrs['sample_err_max_s']:.3f} | "
        f"{diff.max():.3f} | {cos.min():.4f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", help="an episode to measure (default: generate one)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the generated clip")
    ap.add_argument("--size", default="1280x720", help="WxH of the generated clip")
    ap.add_argument("--window", type=float, default=600.0, help="features.window_s")
    ap.add_argument("--frame-size", type=int, default=224, help="features.frame_size")
    ap.add_argument("--weights", default="random", help="features.weights")
    ap.add_argument("--device", default="cpu", help="features.device")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp())
    if args.input:
        path = Path(args.input)
    else:
        w, h = map(int, args.size.split("x"))
        path = make_clip(tmp / "bench.mp4", args.seconds, w, h)
    fp = FeatureParams(
        window_s=args.window, frame_size=args.frame_size, weights=args.weights, device=args.device
    )
    backbone = load_backbone(fp.weights, fp.device, fp.precision)
    backbone.embed(np.zeros((4, fp.frame_size, fp.frame_size, 3), np.uint8))  # warm-up
    step_audio_features(np.zeros(16000, np.float32), fp.audio_sr, fp.fps, 2, fp.n_mels)  # JIT
    res = DecodeResult()
    timing = Timing()
    rows = []
    for name, fn in (
        ("pure decode (PyAV, all frames)", lambda: pure_decode(path, fp.window_s)),
        ("decode + sample + resize", lambda: sample_resize(path, fp)),
        (
            "full featurize",
            lambda: featurize_episode(path, "b", tmp / "b.h5", backbone, fp, timing),
        ),
    ):
        c0, t0 = _cpu(), time.perf_counter()
        fn()
        rows.append((name, time.perf_counter() - t0, _cpu() - c0))
    for _ in stream_episode(path, fp.fps, fp.window_s, 32, fp.audio_sr, res):
        pass
    media_s = res.duration_s
    base = rows[0][1]
    print(
        f"\nfile: {path} ({media_s:.1f} s analysed), frame_size {fp.frame_size}, "
        f"precision {backbone.precision}, device {backbone.device}, threads "
        f"{__import__('torch').get_num_threads()}\n"
    )
    print("| measure | wall s | CPU s | x realtime | / pure decode |")
    print("|---|---|---|---|---|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {media_s / wall:.1f} | {wall / base:.2f} |")
    t = timing
    print(
        f"\nfull featurize breakdown: waiting for decode {t.decode_wait:.2f} s, network "
        f"{t.network:.2f} s, audio {t.audio:.2f} s, write {t.write:.3f} s"
    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    fast_vs_plain(path, fp, backbone, tmp)


if __name__ == "__main__":
    main()
