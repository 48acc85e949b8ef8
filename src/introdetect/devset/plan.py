"""Every random decision of a development season, made up front (cheap, deterministic).

A series has a look (colour grade), an intro (1-4 shots of reserved footage or photos with
the series name on the last one, 1-10 s, and a theme), maybe a studio ident shared with
other series, an episode-title card, a recurring establishing shot and end credits that
replay the theme. An episode is a list of :class:`Shot` s: ident, "previously on" recap
(shots copied from earlier episodes), cold open, intro (varied a little: episode number,
grade, loudness, a trimmed second), title card, content, credits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from introdetect.devset.footage import PHOTOS

# footage split so that intros and content never share pictures (within the musicvideo,
# seconds 0-40 are for intros and idents, the rest for content)
INTRO_RANGE = (0.0, 40.0)
CONTENT_RANGE = (40.0, 211.0)
N_RESERVED_PHOTOS = 10  # photos 0..9: intros, idents, establishing shots; the rest: content
FOOTAGE_SECONDS = {"musicvideo": 212.0, "bunny": 5.2, "bikes": 10.0, "carphone": 4.7}
WORDS = (  # noqa: SIM905
    "harbor night signal copper valley orchard lantern meridian kestrel paper moon "
    "iron garden salt glass office north velvet static hollow creek orbit river "
    "storm winter echo mirror shadow silver summer crown falcon ember "
).split()


@dataclass(frozen=True)
class Shot:
    """One shot of an episode; ``kind`` is content | intro | ident | title | credits."""

    kind: str
    seconds: float
    source: str  # a footage clip name, "photo:<i>", or "" (black)
    src_start: float = 0.0  # seconds into the source clip
    speed: float = 1.0
    box0: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # crop x, y, w, h (0..1)
    box1: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # ... at the shot's end
    flip: bool = False
    grade: tuple[float, ...] = (1.0, 1.0, 1.0, 0.0, 0.0, 0.0)  # per-channel gain, offset
    text: str = ""
    text_pos: str = ""  # center | bottom | corner | scroll
    text_fade: bool = False
    audio: str = "room"  # speech | music | realmusic | theme | jingle | room | silence
    audio_seed: int = 0
    audio_offset: float = 0.0  # seconds into the theme / real music
    gain_db: float = 0.0
    under_theme: float = -1.0  # >= 0: the theme (from this offset) runs on under the shot


@dataclass
class SeriesPlan:
    """What makes a series recognisable."""

    index: int
    name: str
    seed: int
    look: tuple[float, ...]
    intro: list[Shot]
    studio: int | None  # studio ident shared by several series, or None
    title_card: bool
    credits: bool
    number_overlay: bool  # the intro shows the episode number in a corner
    establishing: Shot
    name_style: int
    # the series' own footage ("its sets and cast"): (source, first s, last s) ranges that
    # its content and its intro montage are cut from
    pool: list[tuple[str, float, float]] = field(default_factory=list)


@dataclass
class EpisodePlan:
    """One episode: its shots and how it is encoded."""

    episode_id: str
    series: int
    season: int
    number: int
    split: str
    shots: list[Shot] = field(default_factory=list)
    width: int = 480
    height: int = 270
    fps_num: int = 25
    fps_den: int = 1
    audio_sr: int = 44100
    channels: int = 2


def _look(rng: np.random.Generator) -> tuple[float, ...]:
    gain = rng.uniform(0.75, 1.15, 3)
    return (*gain, *rng.uniform(-0.06, 0.06, 3))


def _jitter(look: tuple[float, ...], rng: np.random.Generator, amount: float) -> tuple[float, ...]:
    g = np.asarray(look[:3]) * rng.uniform(1 - amount, 1 + amount, 3)
    return (*g, *(np.asarray(look[3:]) + rng.uniform(-amount / 2, amount / 2, 3)))


def _box(rng: np.random.Generator, zoom: tuple[float, float]) -> tuple[float, float, float, float]:
    s = 1.0 / rng.uniform(*zoom)
    return (float(rng.uniform(0, 1 - s)), float(rng.uniform(0, 1 - s)), s, s)


def _footage_shot(
    rng: np.random.Generator, kind: str, seconds: float, source: str, lo: float, hi: float, look
) -> Shot:
    speed = float(rng.uniform(0.8, 1.2))
    span = max(0.0, hi - lo - seconds * speed)
    return Shot(
        kind,
        seconds,
        source,
        src_start=float(lo + rng.uniform(0, span)),
        speed=speed,
        box0=_box(rng, (1.0, 1.4)),
        box1=_box(rng, (1.0, 1.4)),
        flip=bool(rng.random() < 0.5),
        grade=_jitter(look, rng, 0.08),
    )


def _photo_shot(rng: np.random.Generator, kind: str, seconds: float, photo: int, look) -> Shot:
    return Shot(
        kind,
        seconds,
        f"photo:{photo}",
        box0=_box(rng, (1.1, 1.8)),
        box1=_box(rng, (1.1, 1.8)),
        flip=bool(rng.random() < 0.3),
        grade=_jitter(look, rng, 0.05),
    )


def intro_length(rng: np.random.Generator) -> float:
    """1-10 s, most 3-8 s."""
    return float(np.clip(rng.lognormal(math.log(5.0), 0.45), 1.0, 10.0))


def _pool_shot(rng: np.random.Generator, kind: str, sec: float, pool, look) -> Shot:
    source, lo, hi = pool[int(rng.integers(len(pool)))]
    if source.startswith("photo:"):
        return _photo_shot(rng, kind, sec, int(source[6:]), look)
    return _footage_shot(rng, kind, sec, source, lo, hi, look)


def series_pool(rng: np.random.Generator) -> list[tuple[str, float, float]]:
    """Three 8-s windows of the content footage and two content photos."""
    pool = []
    for _ in range(3):
        a = float(rng.uniform(CONTENT_RANGE[0], CONTENT_RANGE[1] - 8))
        pool.append(("musicvideo", a, a + 8.0))
    for k in rng.choice(np.arange(N_RESERVED_PHOTOS, len(PHOTOS)), 2, replace=False):
        pool.append((f"photo:{int(k)}", 0.0, 0.0))
    return pool


def plan_intro(
    rng: np.random.Generator, name: str, look, length: float, pool: list | None = None
) -> list[Shot]:
    """1-4 shots, the series name over the last one: a montage of the series' own footage
    (``pool``, which its episodes show too) or of footage only the intro uses."""
    n = 1 if length < 2.5 else int(rng.integers(1, min(4, int(length / 1.2)) + 1))
    cuts = np.sort(rng.uniform(0, length, n - 1))
    lens = np.diff(np.concatenate([[0.0], cuts, [length]]))
    shots = []
    for sec in lens:
        pick = rng.random()
        if pool and rng.random() < 0.5:
            shot = _pool_shot(rng, "intro", sec, pool, look)
        elif pick < 0.45:
            shot = _footage_shot(rng, "intro", sec, "musicvideo", *INTRO_RANGE, look)
        elif pick < 0.7:
            src = ("bunny", "carphone")[int(rng.integers(2))]
            shot = _footage_shot(rng, "intro", sec, src, 0.0, FOOTAGE_SECONDS[src], look)
        else:
            shot = _photo_shot(rng, "intro", sec, int(rng.integers(N_RESERVED_PHOTOS)), look)
        shots.append(replace(shot, grade=look, audio="theme"))
    last = shots[-1]
    shots[-1] = replace(last, text=name.upper(), text_pos="center", text_fade=True)
    offsets = np.concatenate([[0.0], np.cumsum(lens)[:-1]])
    return [replace(s, audio_offset=float(o)) for s, o in zip(shots, offsets, strict=True)]


def plan_series(rng: np.random.Generator, index: int, name: str) -> SeriesPlan:
    """One series: look, intro, ident, title card, credits, establishing shot."""
    seed = int(rng.integers(1 << 30))
    srng = np.random.default_rng(seed)
    look = _look(srng)
    pool = series_pool(srng)
    intro = plan_intro(srng, name, look, intro_length(srng), pool)
    establishing = _photo_shot(srng, "content", float(srng.uniform(2, 4)), 0, look)
    establishing = replace(
        establishing, source=f"photo:{int(srng.integers(N_RESERVED_PHOTOS))}", audio="room"
    )
    return SeriesPlan(
        index=index,
        name=name,
        seed=seed,
        look=look,
        intro=intro,
        studio=int(srng.integers(3)) if srng.random() < 0.5 else None,
        title_card=bool(srng.random() < 0.5),
        credits=bool(srng.random() < 0.7),
        number_overlay=bool(srng.random() < 0.5),
        establishing=establishing,
        name_style=index % 3,
        pool=pool,
    )


def ident_shot(studio: int) -> Shot:
    """A studio's ident: the same 2-3 s before every episode of its series."""
    rng = np.random.default_rng(1000 + studio)
    neutral = (1.0, 1.0, 1.0, 0.0, 0.0, 0.0)
    shot = _photo_shot(rng, "ident", float(rng.uniform(2, 3)), (18, 1, 8)[studio], neutral)
    return replace(
        shot,
        grade=(1.0, 1.0, 1.0, 0.0, 0.0, 0.0),
        text=("NORTHLIGHT", "BLUE HOUSE", "TANGRAM")[studio],
        text_pos="center",
        audio="jingle",
        audio_seed=studio,
    )


def content_shot(rng: np.random.Generator, look, pool: list | None = None) -> Shot:
    """A shot of episode content with its own sound (speech, music, real music, room):
    mostly the series' own footage, framed anew each time."""
    sec = float(rng.uniform(2, 7))
    pick = rng.random()
    if pool and rng.random() < 0.65:
        shot = _pool_shot(rng, "content", sec, pool, look)
    elif pick < 0.6:
        shot = _footage_shot(rng, "content", sec, "musicvideo", *CONTENT_RANGE, look)
    elif pick < 0.9:
        photo = int(rng.integers(N_RESERVED_PHOTOS, len(PHOTOS)))
        shot = _photo_shot(rng, "content", sec, photo, look)
    else:
        shot = _footage_shot(rng, "content", sec, "bikes", 0.0, 10.0, look)
    audio = str(rng.choice(["speech", "realmusic", "music", "room"], p=[0.55, 0.2, 0.1, 0.15]))
    text = ""
    if rng.random() < 0.15:
        text = " ".join(rng.choice(WORDS, int(rng.integers(2, 5)))).capitalize()
    return replace(
        shot,
        audio=audio,
        audio_seed=int(rng.integers(1 << 30)),
        audio_offset=float(rng.uniform(0, 200)),
        text=text,
        text_pos="bottom" if text else "",
    )


def _content(rng: np.random.Generator, s: SeriesPlan, seconds: float) -> list[Shot]:
    """Content shots filling ``seconds``, with the series' establishing shot now and then."""
    shots: list[Shot] = []
    total = 0.0
    while total < seconds:
        if rng.random() < 0.06:  # same picture each time, never the same sound
            shot = replace(s.establishing, audio_seed=int(rng.integers(1 << 30)))
        else:
            shot = content_shot(rng, s.look, s.pool)
        shots.append(shot)
        total += shot.seconds
    return shots


def _varied_intro(rng: np.random.Generator, s: SeriesPlan, number: int) -> list[Shot]:
    """This episode's copy of the intro: grade and loudness a little off, the episode number
    in a corner where the series does that, sometimes a trimmed first or last second."""
    grade = _jitter(s.look, rng, 0.04)
    gain = float(rng.uniform(-3, 3))
    shots = [replace(x, grade=grade, gain_db=gain) for x in s.intro]
    if s.number_overlay:
        shots = [
            replace(x, text=x.text or f"E{number:02d}", text_pos=x.text_pos or "corner")
            for x in shots
        ]
    total = sum(x.seconds for x in shots)
    if total >= 3 and rng.random() < 0.3:  # a trimmed first or last second
        cut = float(rng.uniform(0.4, 1.0))
        if rng.random() < 0.5 and shots[0].seconds > cut + 0.3:
            first = shots[0]
            shots[0] = replace(
                first,
                seconds=first.seconds - cut,
                src_start=first.src_start + cut * first.speed,
                audio_offset=first.audio_offset + cut,
            )
        elif shots[-1].seconds > cut + 0.3:
            shots[-1] = replace(shots[-1], seconds=shots[-1].seconds - cut)
    return shots


def _title_card(rng: np.random.Generator, s: SeriesPlan, number: int) -> Shot:
    title = " ".join(rng.choice(WORDS, int(rng.integers(1, 4)))).title()
    return Shot(
        "title",
        float(rng.uniform(2, 3)),
        "",
        text=f"Episode {number}: {title}",
        text_pos="center",
        audio="room",
        audio_seed=int(rng.integers(1 << 30)),
    )


def _credits(rng: np.random.Generator, s: SeriesPlan) -> Shot:
    names = [" ".join(rng.choice(WORDS, 2)).title() for _ in range(40)]
    return Shot(
        "credits",
        float(rng.uniform(15, 35)),
        "",
        text="\n".join(names),
        text_pos="scroll",
        audio="theme",
        audio_offset=0.0,
    )


RESOLUTIONS = [(320, 180), (384, 216), (426, 240), (480, 270), (640, 360), (360, 270)]
FRAME_RATES = [(24, 1), (25, 1), (30000, 1001), (30, 1)]
AUDIO_RATES = [32000, 44100, 48000]


def _cold_open_seconds(rng: np.random.Generator, max_s: float) -> float:
    """None, short or long, like the real labels (41 % of intros start after a minute)."""
    pick = rng.random()
    if pick < 0.3:
        return 0.0
    if pick < 0.6:
        return float(rng.uniform(5, 60))
    return float(rng.uniform(60, max(61.0, max_s)))


def plan_episode(
    rng: np.random.Generator,
    s: SeriesPlan,
    number: int,
    pool: list[Shot],
    has_intro: bool,
    max_cold_open_s: float,
    tail_s: tuple[float, float],
) -> list[Shot]:
    """The shots of one episode; its content shots are added to ``pool`` (for recaps)."""
    shots: list[Shot] = []
    if s.studio is not None:
        shots.append(ident_shot(s.studio))
    if pool and rng.random() < 0.4:  # "previously on": shots of earlier episodes
        picks = [
            pool[int(i)]
            for i in rng.choice(len(pool), min(len(pool), int(rng.integers(3, 7))), replace=False)
        ]
        picks[0] = replace(picks[0], text=f"Previously on {s.name}", text_pos="bottom")
        shots += picks
    cold = _content(rng, s, _cold_open_seconds(rng, max_cold_open_s))
    if cold and rng.random() < 0.4:  # other music just before the intro
        cold[-1] = replace(cold[-1], audio=str(rng.choice(["music", "realmusic"])))
    shots += cold
    tail = _content(rng, s, float(rng.uniform(*tail_s)))
    if has_intro:
        intro = _varied_intro(rng, s, number)
        shots += intro
        if s.title_card:
            shots.append(_title_card(rng, s, number))
        if rng.random() < 0.3:  # the theme runs on under the first shot after the intro
            tail[0] = replace(tail[0], under_theme=sum(x.seconds for x in intro))
    shots += tail
    pool += [x for x in cold + tail if x.kind == "content"]
    if s.credits:
        shots.append(_credits(rng, s))
    return shots


def episode_encoding(rng: np.random.Generator) -> dict[str, int]:
    """Resolution, frame rate, audio rate and channels of one file."""
    w, h = RESOLUTIONS[int(rng.integers(len(RESOLUTIONS)))]
    num, den = FRAME_RATES[int(rng.integers(len(FRAME_RATES)))]
    return {
        "width": w,
        "height": h,
        "fps_num": num,
        "fps_den": den,
        "audio_sr": AUDIO_RATES[int(rng.integers(len(AUDIO_RATES)))],
        "channels": int(rng.choice([1, 2])),
    }
