"""Shared fixtures: tiny media made on the fly with PyAV, and a tiny params set."""

from __future__ import annotations

import logging
import os
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

os.environ.setdefault("DVCLIVE_TEST", "true")
os.environ.setdefault("INTRODETECT_OFFLINE", "1")
# exported ONNX graphs: one cache for this test session (and the CLIs it starts), not ~/.cache
os.environ.setdefault("INTRODETECT_CACHE", tempfile.mkdtemp(prefix="introdetect-test-cache-"))


@pytest.fixture(autouse=True)
def _fail_on_logged_errors(request, caplog):
    """A test that logged an ERROR fails, unless it is marked ``logs_errors`` (it makes bad
    input on purpose): an error nobody expected is a bug even when the test passes."""
    yield
    if request.node.get_closest_marker("logs_errors"):
        return
    errors = [
        r
        for when in ("setup", "call")
        for r in caplog.get_records(when)
        if r.levelno >= logging.ERROR
    ]
    if errors:
        pytest.fail(
            "unexpected ERROR log: " + " | ".join(r.getMessage() for r in errors), pytrace=False
        )


def make_clip(
    path: Path,
    seconds: float = 3.0,
    fps: Fraction | int = 25,
    size: tuple[int, int] = (64, 48),
    audio_rate: int | None = 16000,
    layout: str = "mono",
    tone_hz: float = 440.0,
    container: str | None = None,
    pix_fmt: str = "yuv420p",
    times: list[float] | None = None,
    start_s: float = 0.0,
    n_audio: int = 1,
    sar: Fraction | None = None,
    audio_start_s: float | None = None,
    x264_params: str = "slices=1",
) -> Path:
    """Write an H.264 (+ AAC) clip whose gray level encodes time: a frame at time t has
    value ``min(255, 10 * floor(t))`` so a decoder can check which second it came from.
    ``times`` gives explicit frame times (variable frame rate); ``start_s`` offsets every
    timestamp (a stream that does not start at 0), ``audio_start_s`` the audio's alone (a
    delayed track); audio is ``n_audio`` sine-tone streams."""
    rate = Fraction(fps)
    w, h = size
    frame_times = times if times is not None else [i / rate for i in range(int(seconds * rate))]
    tb = Fraction(1, 1000) if times is not None else 1 / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container) as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        vs.time_base = tb
        vs.codec_context.time_base = tb
        vs.options = {"preset": "ultrafast", "x264-params": x264_params}
        if sar is not None:
            vs.codec_context.sample_aspect_ratio = sar
        auds = [out.add_stream("aac", rate=audio_rate, layout=layout) for _ in range(n_audio)]
        if not audio_rate:
            auds = []
        for t in frame_times:
            img = np.full((h, w, 3), min(255, 10 * int(t)), np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = round((Fraction(t) + Fraction(start_s)) / tb)
            frame.time_base = tb
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        for k, aus in enumerate(auds):
            ch = aus.codec_context.channels
            total = int(seconds * audio_rate)
            a0 = int((start_s if audio_start_s is None else audio_start_s) * audio_rate)
            for a in range(0, total, 1024):
                tt = (np.arange(a, a + 1024) / audio_rate).astype(np.float32)
                data = np.repeat((0.3 * np.sin(2 * np.pi * tone_hz * (k + 1) * tt))[None], ch, 0)
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(data, np.float32), format="fltp", layout=layout
                )
                af.sample_rate = audio_rate
                af.pts = a + a0
                af.time_base = Fraction(1, audio_rate)
                for p in aus.encode(af):
                    out.mux(p)
            for p in aus.encode(None):
                out.mux(p)
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 3-second 64x48 25 fps clip with mono audio."""
    return make_clip(tmp_path / "clip.mp4")


TINY_PARAMS = {
    "synth": {
        "kind": "simple",
        "seed": 3,
        "out_dir": "data/demo",
        "n_train_series": 3,
        "n_unseen_series": 1,
        "train_episodes_per_series": 3,
        "test_episodes_per_seen_series": 1,
        "episodes_per_unseen_series": 2,
        "no_intro_fraction": 0.1,
        "max_cold_open_s": 25.0,
        "tail_s": [4.0, 6.0],
        "n_broken_labels": 2,
    },
    "features": {"weights": "random", "frame_size": 64, "window_s": 120.0, "batch_size": 32},
    "train": {"epochs": 3, "patience": 2},
    # detect treats a folder as a season while the pipeline groups by the index's series; the
    # demo's test folder mixes series, so the one-path test compares without season inputs
    "model": {"repetition": False},
    "predict": {"season_consistent": False},
}


def encode_h264(path: Path, images, options: dict | None = None, rate: int = 25) -> Path:
    """Encode RGB uint8 ``images`` (an iterable of [H, W, 3]) as H.264 at ``rate`` fps."""
    images = iter(images)
    first = next(images)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.height, vs.width = first.shape[:2]
        vs.pix_fmt = "yuv420p"
        vs.options = {"x264-params": "slices=1", **(options or {})}
        for i, img in enumerate([first, *images]):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, rate)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return path


def decode(path, fps=2.0, window=600.0, size=32, sr=16000, convert=None, **options):
    """Decode a whole test clip: ``(steps as [(step, frame)], stats)``; ``stats.audio`` holds
    the mono audio (None when the file has no audio stream)."""
    from introdetect.media import DecodeOptions, EpisodeDecoder

    chunks: list[np.ndarray] = []
    extra = {"convert": convert} if convert is not None else {}
    opts = DecodeOptions(fps, window, size, sr, **options)
    with EpisodeDecoder(path, opts, audio_sink=chunks.append, **extra) as dec:
        steps = list(dec.steps())
        has_audio = dec.audio is not None
    stats = dec.stats
    stats.audio = (
        (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)) if has_audio else None
    )
    return steps, stats
