"""Demo dataset generator: synthetic TV "series" with real H.264 + AAC episodes.

Each series has its own intro: a title card with the series name over series-specific
moving imagery, with its own theme music (melody + drums), 2-15 s long (skewed to 4-10 s,
fixed per series +-1 s). The intro is rendered from the series seed alone, so it repeats
across episodes the way real title sequences do. Episodes: about half start the intro in
the first 10 s, the rest after a cold open of 20 s up to ``max_cold_open_s``; a few have no
intro. Content is moving imagery with speech-like audio and some non-theme music. Each
episode gets its own resolution, frame rate and audio rate/layout.

Splits: ``train/<id>/<id>.mp4`` (the original task's nested layout), ``test/<id>.mp4``
(flat) holding held-out episodes of the train series and episodes of unseen series. Labels
are written in the original task's format (whole seconds, ``H:MM:SS``) with a few
deliberately broken rows like the real files. Everything is deterministic from the seed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from introdetect.devset.sound import voice
from introdetect.labels import format_time
from introdetect.params import Params, SynthParams

log = logging.getLogger(__name__)

SERIES_NAMES = [
    "Night Harbor",
    "Copper Valley",
    "The Lanternist",
    "Blue Meridian",
    "Orchard Lane",
    "Signal Fires",
    "Kestrel Point",
    "Paper Moons",
    "Iron Garden",
    "Saltwater Kings",
    "The Glass Office",
    "Northbound",
    "Velvet Static",
    "Hollow Creek",
    "Last Orbit",
]
RESOLUTIONS = [(320, 180), (384, 216), (426, 240), (480, 270), (320, 240), (360, 270)]
FRAME_RATES = [
    Fraction(24),
    Fraction(25),
    Fraction(30),
    Fraction(24000, 1001),
    Fraction(30000, 1001),
]
AUDIO_RATES = [22050, 32000, 44100, 48000]


@dataclass
class SeriesSpec:
    """Everything that makes a series recognisable."""

    index: int
    name: str
    seed: int
    intro_len: int
    name_style: int  # how episode names are written in the labels


@dataclass
class EpisodeSpec:
    """One episode to render."""

    episode_id: str
    series: int
    season: int
    number: int
    split: str  # train | test
    seed: int
    intro_start: int | None
    intro_len: int | None
    duration: float
    width: int
    height: int
    fps_num: int
    fps_den: int
    audio_sr: int
    channels: int


def _intro_length(rng: np.random.Generator) -> int:
    """2-15 s, skewed to 4-10 s like real title sequences."""
    return int(np.clip(round(rng.lognormal(math.log(7.0), 0.35)), 2, 15))


def plan_dataset(p: SynthParams) -> tuple[list[SeriesSpec], list[EpisodeSpec]]:
    """Decide every series and episode (cheap, deterministic)."""
    rng = np.random.default_rng(p.seed)
    n_series = p.n_train_series + p.n_unseen_series
    names = [
        SERIES_NAMES[i % len(SERIES_NAMES)] + ("" if i < len(SERIES_NAMES) else f" {i}")
        for i in rng.permutation(max(n_series, len(SERIES_NAMES)))[:n_series]
    ]
    series = [
        SeriesSpec(i, names[i], int(rng.integers(1 << 30)), _intro_length(rng), i % 3)
        for i in range(n_series)
    ]
    episodes: list[EpisodeSpec] = []
    used_ids: set[str] = set()
    for s in series:
        seen = s.index < p.n_train_series
        if seen:
            splits = ["train"] * p.train_episodes_per_series + [
                "test"
            ] * p.test_episodes_per_seen_series
        else:
            splits = ["test"] * p.episodes_per_unseen_series
        season = int(rng.integers(1, 4))
        for k, split in enumerate(splits):
            while True:
                eid = (
                    f"-2200{int(rng.integers(10000, 99999))}_4562{int(rng.integers(10000, 99999))}"
                )
                if eid not in used_ids:
                    used_ids.add(eid)
                    break
            has_intro = rng.random() >= p.no_intro_fraction
            if rng.random() < 0.5:
                start = int(rng.integers(0, 11))
            else:  # cold open: 20 s .. max, skewed short
                start = int(min(p.max_cold_open_s, 20 + rng.exponential(40)))
            length = int(np.clip(s.intro_len + rng.integers(-1, 2), 2, 15))
            tail = float(rng.uniform(*p.tail_s))
            w, h = RESOLUTIONS[int(rng.integers(len(RESOLUTIONS)))]
            fr = FRAME_RATES[int(rng.integers(len(FRAME_RATES)))]
            episodes.append(
                EpisodeSpec(
                    episode_id=eid,
                    series=s.index,
                    season=season,
                    number=k + 1,
                    split=split,
                    seed=int(rng.integers(1 << 30)),
                    intro_start=start if has_intro else None,
                    intro_len=length if has_intro else None,
                    duration=round(start + (length if has_intro else 0) + tail, 2),
                    width=w,
                    height=h,
                    fps_num=fr.numerator,
                    fps_den=fr.denominator,
                    audio_sr=AUDIO_RATES[int(rng.integers(len(AUDIO_RATES)))],
                    channels=int(rng.choice([1, 2])),
                )
            )
    return series, episodes


# ---------------------------------------------------------------- pictures


def _texture(rng: np.random.Generator, h: int, w: int, smooth: int) -> np.ndarray:
    """Smooth random colour field [h, w, 3] float32 in 0..1 (blocky noise, upsampled)."""
    small = rng.random((max(2, h // smooth), max(2, w // smooth), 3)).astype(np.float32)
    img = Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    return np.asarray(img, np.float32) / 255.0


def _title_mask(text: str, w: int, h: int) -> np.ndarray:
    """Big centred title text as a [h, w] float mask."""
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    size = max(10, int(h * 0.16))
    font = ImageFont.load_default(size=size)
    while size > 10 and draw.textlength(text, font=font) > 0.9 * w:
        size -= 2
        font = ImageFont.load_default(size=size)
    draw.text((w / 2, h / 2), text, fill=255, font=font, anchor="mm", stroke_width=1)
    return np.asarray(img, np.float32) / 255.0


class _Scene:
    """A content shot: a panning texture with a few moving blocks."""

    def __init__(self, rng: np.random.Generator, w: int, h: int) -> None:
        self.tex = _texture(rng, int(h * 1.5), int(w * 1.5), int(rng.integers(6, 40)))
        self.tex *= rng.uniform(0.4, 1.0, 3).astype(np.float32)
        self.vel = rng.uniform(-12, 12, 2)
        self.blocks = [
            (
                rng.uniform(0, w),
                rng.uniform(0, h),
                rng.uniform(-40, 40),
                rng.uniform(-30, 30),
                int(rng.integers(8, w // 4)),
                int(rng.integers(8, h // 3)),
                rng.random(3).astype(np.float32),
            )
            for _ in range(int(rng.integers(1, 4)))
        ]

    def render(self, t: float, w: int, h: int) -> np.ndarray:
        th, tw = self.tex.shape[:2]
        ox = int(abs(self.vel[0] * t)) % (tw - w)
        oy = int(abs(self.vel[1] * t)) % (th - h)
        img = self.tex[oy : oy + h, ox : ox + w].copy()
        for x, y, vx, vy, bw, bh, col in self.blocks:
            cx = int(x + vx * t) % w
            cy = int(y + vy * t) % h
            img[cy : cy + bh, cx : cx + bw] = col
        return img


class _Intro:
    """The series' title sequence: its own imagery, colours and title card.

    Rendered from the series seed at one canonical size and resized to the episode's, so the
    same intro repeats across episodes of any resolution, as real title sequences do."""

    CANON = (480, 270)

    def __init__(self, s: SeriesSpec, w: int, h: int) -> None:
        rng = np.random.default_rng(s.seed)
        cw, ch = self.CANON
        tex = _texture(rng, int(ch * 1.6), int(cw * 1.6), int(rng.integers(4, 16)))
        img = Image.fromarray((tex * 255).astype(np.uint8))
        self.tex = (
            np.asarray(img.resize((int(w * 1.6), int(h * 1.6)), Image.BILINEAR), np.float32) / 255.0
        )
        self.tint = rng.uniform(0.3, 1.0, 3).astype(np.float32)
        self.text_col = rng.uniform(0.7, 1.0, 3).astype(np.float32)
        self.speed = rng.uniform(15, 40) * w / cw  # canonical pixels per second, rescaled
        mask = Image.fromarray((_title_mask(s.name.upper(), cw, ch) * 255).astype(np.uint8))
        self.mask = (np.asarray(mask.resize((w, h), Image.BILINEAR), np.float32) / 255.0)[..., None]

    def render(self, t: float, w: int, h: int) -> np.ndarray:
        th, tw = self.tex.shape[:2]
        ox = int(self.speed * t) % (tw - w)
        oy = int(0.5 * self.speed * t) % (th - h)
        pulse = 0.75 + 0.25 * math.sin(2 * math.pi * 0.5 * t)
        img = self.tex[oy : oy + h, ox : ox + w] * self.tint * pulse
        alpha = self.mask * min(1.0, t / 0.5)  # title fades in over half a second
        return img * (1 - alpha) + self.text_col * alpha


# ---------------------------------------------------------------- sound


def _theme(s: SeriesSpec, sr: int, seconds: float) -> np.ndarray:
    """The series' theme: a looping melody over kick + hi-hat, same for every episode."""
    rng = np.random.default_rng(s.seed + 1)
    bpm = rng.uniform(90, 150)
    beat = 60.0 / bpm
    base = 220.0 * 2 ** (rng.integers(-5, 6) / 12)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    melody = base * 2 ** (scale[rng.integers(0, 8, 8)] / 12)
    harm = rng.uniform(0.1, 0.6, 4)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    idx = (t // beat).astype(np.int64)
    phase_in_beat = t - idx * beat
    f = melody[idx % len(melody)]
    env = np.exp(-3.0 * phase_in_beat / beat)
    tone = sum(a * np.sin(2 * np.pi * f * (k + 1) * t) for k, a in enumerate([1.0, *harm]))
    kick = np.sin(2 * np.pi * 55 * phase_in_beat * (1 + 2 * np.exp(-30 * phase_in_beat)))
    kick *= np.exp(-12 * phase_in_beat)
    hat = rng.standard_normal(n) * np.exp(-60 * ((t + beat / 2) % beat))
    out = 0.35 * tone * env / 2.5 + 0.5 * kick + 0.08 * hat
    fade = np.clip(np.minimum(t, seconds - t) / 0.15, 0, 1)
    return (out * fade).astype(np.float32)


def _content_audio(rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    """Speech-like voiced syllables and pauses, some stretches of non-theme music, room noise."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    out = 0.01 * rng.standard_normal(n)
    pos = 0.0
    while pos < seconds:
        seg = float(rng.uniform(3, 9))
        a, b = int(pos * sr), min(n, int((pos + seg) * sr))
        tt = t[a:b] - pos
        if rng.random() < 0.2:  # a music cue that is not the theme: slow chords, no drums
            root = 110 * 2 ** (rng.integers(0, 12) / 12)
            chord = sum(np.sin(2 * np.pi * root * r * tt) for r in (1, 1.26, 1.5, 2))
            out[a:b] += 0.12 * chord * (0.6 + 0.4 * np.sin(2 * np.pi * 0.3 * tt))
        else:  # a speaker: harmonics of a wandering f0 shaped by formants, syllable envelope
            out[a:b] += voice(rng, sr, tt)
        pos += seg
    return out.astype(np.float32)


# ---------------------------------------------------------------- rendering


def render_episode(ep: EpisodeSpec, series: SeriesSpec, path: Path) -> None:
    """Encode one episode to ``path`` (H.264 + AAC mp4)."""
    rng = np.random.default_rng(ep.seed)
    w, h = ep.width, ep.height
    rate = Fraction(ep.fps_num, ep.fps_den)
    n_frames = int(ep.duration * rate)
    i0 = ep.intro_start if ep.intro_start is not None else -1.0
    i1 = i0 + ep.intro_len if ep.intro_len is not None else -1.0

    audio = _content_audio(rng, ep.audio_sr, ep.duration)
    if ep.intro_start is not None:
        a, b = int(i0 * ep.audio_sr), int(i1 * ep.audio_sr)
        audio[a:b] = 0.15 * audio[a:b] + _theme(series, ep.audio_sr, i1 - i0)[: b - a]
    intro = _Intro(series, w, h) if ep.intro_start is not None else None

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.mp4")
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=rate)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        # like real files: B-frames and the deblocking filter (ultrafast has neither, which
        # would leave skip_nonref and skip_loop_filter nothing to skip)
        vs.options = {"preset": "veryfast", "crf": "26", "x264-params": "slices=1:bframes=3"}
        layout = "mono" if ep.channels == 1 else "stereo"
        aus = out.add_stream("aac", rate=ep.audio_sr, layout=layout)
        samples_per_frame = 1024
        a_pos = 0
        scene, scene_end, in_intro = None, -1.0, False
        for i in range(n_frames):
            t = i / float(rate)
            if intro is not None and i0 <= t < i1:
                img, in_intro = intro.render(t - i0, w, h), True
            else:
                if t >= scene_end or in_intro:  # a cut after each shot and after the intro
                    scene, scene_end = _Scene(rng, w, h), t + float(rng.uniform(2.5, 8))
                img, in_intro = scene.render(t, w, h), False
            frame = av.VideoFrame.from_ndarray(
                np.clip(img * 255, 0, 255).astype(np.uint8), format="rgb24"
            )
            frame.pts = i
            frame.time_base = 1 / rate
            for packet in vs.encode(frame):
                out.mux(packet)
            # keep audio roughly interleaved with video
            while a_pos < min(len(audio), int((t + 0.5) * ep.audio_sr)):
                chunk = audio[a_pos : a_pos + samples_per_frame]
                if chunk.size < samples_per_frame:
                    chunk = np.pad(chunk, (0, samples_per_frame - chunk.size))
                data = np.repeat(chunk[None, :], ep.channels, axis=0)
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(data), format="fltp", layout=layout
                )
                af.sample_rate = ep.audio_sr
                af.pts = a_pos
                af.time_base = Fraction(1, ep.audio_sr)
                for packet in aus.encode(af):
                    out.mux(packet)
                a_pos += samples_per_frame
        for packet in vs.encode(None):
            out.mux(packet)
        for packet in aus.encode(None):
            out.mux(packet)
    tmp.replace(path)


def episode_name(ep: EpisodeSpec, s: SeriesSpec) -> str:
    if s.name_style == 0:
        return f"{s.name}. {ep.season} сезон, {ep.number} серия"
    if s.name_style == 1:
        return f"{s.name}. Season {ep.season}, Episode {ep.number}"
    return f"{s.name} S{ep.season:02d}E{ep.number:02d}"


def _label_rows(
    eps: list[EpisodeSpec], series: list[SeriesSpec], rng: np.random.Generator, n_broken: int
) -> dict[str, dict]:
    """Labels in the original format, with ``n_broken`` rows broken like the real files."""
    rows = {}
    for ep in eps:
        s = series[ep.series]
        row = {"url": f"https://example.invalid/video{ep.episode_id}", "name": episode_name(ep, s)}
        if ep.intro_start is None:
            row |= {"start": None, "end": None}
        else:
            row |= {
                "start": format_time(ep.intro_start),
                "end": format_time(ep.intro_start + ep.intro_len),
            }
        rows[ep.episode_id] = row
    with_intro = [e for e in eps if e.intro_start is not None]
    picks = rng.permutation(len(with_intro))[:n_broken]
    for k, j in enumerate(picks):
        ep = with_intro[j]
        row = rows[ep.episode_id]
        if k % 3 in (0, 1):  # the common real fault: start minute typed one too high
            row["start"] = format_time(ep.intro_start + 60)
        else:  # start and end swapped (a swapped length is implausible under 'repair')
            row["start"], row["end"] = row["end"], row["start"]
    return rows


def _render_job(args: tuple[dict, dict, str]) -> str:
    ep, s, path = args
    render_episode(EpisodeSpec(**ep), SeriesSpec(**s), Path(path))
    return ep["episode_id"]


def generate_dataset(p: SynthParams, out_dir: str | Path | None = None, workers: int = 2) -> Path:
    """Render the whole demo dataset under ``out_dir`` (default ``p.out_dir``)."""
    out = Path(out_dir or p.out_dir)
    if out.exists():
        shutil.rmtree(out)
    series, episodes = plan_dataset(p)
    jobs = []
    for ep in episodes:
        if ep.split == "train":
            path = out / "train" / ep.episode_id / f"{ep.episode_id}.mp4"
        else:
            path = out / "test" / f"{ep.episode_id}.mp4"
        jobs.append((asdict(ep), asdict(series[ep.series]), str(path)))
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for _ in tqdm(pool.map(_render_job, jobs), total=len(jobs), desc="synth", unit="ep"):
            pass
    rng = np.random.default_rng(p.seed + 7)
    train = [e for e in episodes if e.split == "train"]
    test = [e for e in episodes if e.split == "test"]
    for name, eps, nb in (
        ("train", train, p.n_broken_labels),
        ("test", test, min(1, p.n_broken_labels)),
    ):
        rows = _label_rows(eps, series, rng, nb)
        (out / f"{name}_labels.json").write_text(
            json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    truth = {
        "series": [asdict(s) for s in series],
        "episodes": [asdict(e) for e in episodes],
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n")
    log.info(
        "demo dataset: %d series, %d train + %d test episodes in %s",
        len(series),
        len(train),
        len(test),
        out,
    )
    return out


def run_demo_data(p: Params) -> None:
    """Generate the demo dataset when ``data.source: demo`` (else leave a marker)."""
    out = Path(p.synth.out_dir)
    if p.data.source != "demo":
        out.mkdir(parents=True, exist_ok=True)
        (out / "SKIPPED").write_text("data.source is not 'demo'; no demo data generated\n")
        return
    workers = os.cpu_count() or 1
    if p.synth.kind == "realistic":
        from introdetect.devset.generate import generate

        generate(p.synth, out, workers=workers)
    else:
        generate_dataset(p.synth, out, workers=workers)
