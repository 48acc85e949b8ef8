"""Shared fixtures: tiny media made on the fly with PyAV, and a tiny params set."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

os.environ.setdefault("DVCLIVE_TEST", "true")
os.environ.setdefault("INTRODETECT_OFFLINE", "1")


def make_clip(
    path: Path,
    seconds: float = 3.0,
    fps: Fraction | int = 25,
    size: tuple[int, int] = (64, 48),
    audio_rate: int | None = 16000,
    layout: str = "mono",
    tone_hz: float = 440.0,
    container: str | None = None,
) -> Path:
    """Write an H.264 (+ AAC) clip whose gray level encodes time: frame i has value
    ``min(255, 10 * floor(t))`` so a decoder can check which second a frame came from.
    Audio is a sine tone."""
    rate = Fraction(fps)
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container) as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "ultrafast", "x264-params": "slices=1"}
        aus = out.add_stream("aac", rate=audio_rate, layout=layout) if audio_rate else None
        n = int(seconds * rate)
        for i in range(n):
            t = i / float(rate)
            img = np.full((h, w, 3), min(255, 10 * int(t)), np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        if aus is not None:
            ch = 1 if layout == "mono" else 2
            total = int(seconds * audio_rate)
            for a in range(0, total, 1024):
                tt = (np.arange(a, a + 1024) / audio_rate).astype(np.float32)
                data = np.repeat((0.3 * np.sin(2 * np.pi * tone_hz * tt))[None], ch, 0)
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(data, np.float32), format="fltp", layout=layout
                )
                af.sample_rate = audio_rate
                af.pts = a
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
}
