"""Draw and encode one planned episode (H.264 + AAC mp4) and return its frame-exact truth.

Shot boundaries are rounded to frames of the episode's own rate, so the truth (intro start
and end) is exact to the frame; the audio of each shot covers exactly its frames."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from introdetect.devset import footage, sound
from introdetect.devset.plan import EpisodePlan, SeriesPlan, Shot
from introdetect.fileio import atomic_path


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def text_mask(shot: Shot, w: int, h: int) -> np.ndarray | None:
    """The shot's text as an alpha mask ``[H, w]`` (taller than the frame when it scrolls)."""
    if not shot.text:
        return None
    if shot.text_pos == "scroll":
        lines = shot.text.split("\n")
        size = max(9, h // 18)
        img = Image.new("L", (w, h + len(lines) * int(size * 1.6) + h), 0)
        draw = ImageDraw.Draw(img)
        for k, line in enumerate(lines):
            draw.text((w / 2, h + k * size * 1.6), line, fill=255, font=_font(size), anchor="mt")
        return np.asarray(img, np.float32) / 255.0
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    if shot.text_pos == "corner":
        draw.text((w * 0.95, h * 0.06), shot.text, fill=255, font=_font(h // 14), anchor="rt")
    elif shot.text_pos == "bottom":
        draw.text((w / 2, h * 0.9), shot.text, fill=255, font=_font(h // 13), anchor="ms")
    else:
        size = h // 6
        while size > 9 and draw.textlength(shot.text, font=_font(size)) > 0.9 * w:
            size -= 2
        draw.text(
            (w / 2, h / 2), shot.text, fill=255, font=_font(size), anchor="mm", stroke_width=1
        )
    return np.asarray(img, np.float32) / 255.0


class ShotPainter:
    """Frames of one shot at the episode's size: footage or photo, cropped along a pan from
    ``box0`` to ``box1``, flipped, graded, with its text on top. Pixel work stays in
    PIL's C code (resize with a crop box, a per-channel lookup table for the grade)."""

    def __init__(self, shot: Shot, w: int, h: int, n_frames: int, fps: float) -> None:
        self.shot, self.w, self.h, self.n, self.fps = shot, w, h, max(1, n_frames), fps
        self.mask = text_mask(shot, w, h)
        if shot.source.startswith("photo:"):
            self.stills = [footage.photos()[int(shot.source[6:])]]
        elif shot.source:
            self.stills = footage.clip(shot.source).frames
        else:
            self.stills = None
        g = shot.grade if len(shot.grade) == 6 else (1, 1, 1, 0, 0, 0)
        self.lut = [
            min(255, max(0, round(v * g[c] + g[c + 3] * 255))) for c in range(3) for v in range(256)
        ]

    def _picture(self, i: int) -> Image.Image:
        if self.stills is None:
            return Image.new("RGB", (self.w, self.h), (12, 12, 12))
        s = self.shot
        if len(self.stills) == 1:
            src = self.stills[0]
        else:
            k = int((s.src_start + i / self.fps * s.speed) * footage.RATE)
            src = self.stills[k % len(self.stills)]
        u = i / max(1, self.n - 1)
        x, y, bw, bh = (a + (b - a) * u for a, b in zip(s.box0, s.box1, strict=True))
        sh, sw = src.shape[:2]
        box = (x * sw, y * sh, max(x * sw + 2, (x + bw) * sw), max(y * sh + 2, (y + bh) * sh))
        img = Image.fromarray(src).resize((self.w, self.h), Image.BILINEAR, box=box)
        if s.flip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return img.point(self.lut)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` of the shot, uint8 ``[h, w, 3]``."""
        img = np.asarray(self._picture(i))
        if self.mask is None:
            return img
        if self.shot.text_pos == "scroll":
            top = int((self.mask.shape[0] - self.h) * i / max(1, self.n - 1))
            alpha = self.mask[top : top + self.h]
        else:
            alpha = self.mask * (min(1.0, i / (0.4 * self.fps)) if self.shot.text_fade else 1)
        out = img * (1 - alpha[..., None]) + 235.0 * alpha[..., None]
        return out.astype(np.uint8)


def frame_bounds(shots: list[Shot], rate: Fraction) -> list[int]:
    """Frame index where each shot starts, plus the total frame count."""
    edges = np.concatenate([[0.0], np.cumsum([s.seconds for s in shots])])
    return [int(round(e * rate)) for e in edges]


def episode_sound(
    shots: list[Shot], bounds: list[int], rate: Fraction, sr: int, series_seed: int
) -> np.ndarray:
    """The whole soundtrack, each shot's sound covering exactly its frames."""
    n_total = int(bounds[-1] / rate * sr)
    out = np.zeros(n_total, np.float32)
    for s, f0, f1 in zip(shots, bounds[:-1], bounds[1:], strict=True):
        a, b = int(f0 / rate * sr), min(n_total, int(f1 / rate * sr))
        sec = (b - a) / sr
        seed = series_seed if s.audio == "theme" else s.audio_seed
        piece = sound.shot_sound(s.audio, seed, sr, sec, s.audio_offset)[: b - a]
        if s.under_theme >= 0:
            piece = 0.5 * piece + 0.6 * sound.theme(series_seed, sr, sec, s.under_theme)[: b - a]
        out[a : a + piece.size] = piece * 10 ** (s.gain_db / 20)
    return out


def truth_of(shots: list[Shot], bounds: list[int], rate: Fraction) -> dict[str, Any]:
    """Frame-exact intro interval and the span of every shot kind."""
    spans = [
        (s.kind, float(bounds[k] / rate), float(bounds[k + 1] / rate)) for k, s in enumerate(shots)
    ]
    intro = [(a, b) for kind, a, b in spans if kind == "intro"]
    return {
        "intro": [intro[0][0], intro[-1][1]] if intro else None,
        "duration_s": float(bounds[-1] / rate),
        "spans": spans,
    }


def encode(
    path: Path,
    frames: Any,
    audio: np.ndarray,
    size: tuple[int, int],
    rate: Fraction,
    sr: int,
    channels: int,
) -> None:
    """Encode RGB ``frames`` (an iterable of uint8 ``[h, w, 3]``) and mono ``audio`` into an
    H.264 + AAC mp4 like real files (x264 veryfast: B-frames, deblocking), written
    atomically; audio is interleaved with the video as a muxer expects."""
    w, h = size
    layout = "mono" if channels == 1 else "stereo"
    spf = 1024  # AAC frame size
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "veryfast", "crf": "26", "x264-params": "slices=1:bframes=3"}
        aus = out.add_stream("aac", rate=sr, layout=layout)
        a_pos = 0
        last: tuple[np.ndarray | None, av.VideoFrame | None] = (None, None)
        for i, img in enumerate(frames):
            if img is not last[0]:  # a held picture is converted once
                last = (img, av.VideoFrame.from_ndarray(img, format="rgb24"))
            frame = last[1]
            frame.pts, frame.time_base = i, 1 / rate
            for packet in vs.encode(frame):
                out.mux(packet)
            while a_pos < min(len(audio), int((i / rate + Fraction(1, 2)) * sr)):
                chunk = audio[a_pos : a_pos + spf]
                chunk = np.pad(chunk, (0, spf - chunk.size))
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(np.repeat(chunk[None, :], channels, 0)),
                    format="fltp",
                    layout=layout,
                )
                af.sample_rate, af.pts, af.time_base = sr, a_pos, Fraction(1, sr)
                for packet in aus.encode(af):
                    out.mux(packet)
                a_pos += spf
        for stream in (vs, aus):
            for packet in stream.encode(None):
                out.mux(packet)


def render_episode(
    ep: EpisodePlan, s: SeriesPlan, path: Path, hold_after_s: float | None = None
) -> dict[str, Any]:
    """Draw, sound and encode ``ep`` to ``path``; returns its truth (see :func:`truth_of`).

    ``hold_after_s``: shots that start at or after it show their first picture throughout
    (a cut to a held picture every few seconds; sound unchanged) -- painting is the slow
    part of rendering (~1.5x realtime at 360p), so long benchmark episodes paint the part
    that matters (through the intro) in motion and hold the rest."""
    rate = Fraction(ep.fps_num, ep.fps_den)
    bounds = frame_bounds(ep.shots, rate)
    audio = episode_sound(ep.shots, bounds, rate, ep.audio_sr, s.seed)
    hold_from = None if hold_after_s is None else hold_after_s * rate

    def frames():
        for shot, f0, f1 in zip(ep.shots, bounds[:-1], bounds[1:], strict=True):
            painter = ShotPainter(shot, ep.width, ep.height, f1 - f0, float(rate))
            if hold_from is not None and f0 >= hold_from:
                held = painter.frame(0)
                for _ in range(f1 - f0):
                    yield held
                continue
            for i in range(f1 - f0):
                yield painter.frame(i)

    encode(path, frames(), audio, (ep.width, ep.height), rate, ep.audio_sr, ep.channels)
    return truth_of(ep.shots, bounds, rate)
