"""Sound for the development set: themes, jingles, dialogue (a speech synthesiser:
:mod:`introdetect.devset.dialogue`), music cues, real music from the footage, room tone.
Every generator is deterministic from its seed, so a shot copied into a recap sounds the
same, and ``offset`` lets a theme start mid-way."""

from __future__ import annotations

import numpy as np

from introdetect.devset import footage
from introdetect.devset.dialogue import dialogue


def theme(seed: int, sr: int, seconds: float, offset: float = 0.0) -> np.ndarray:
    """A series theme from ``offset`` s on: a looping melody over kick and hi-hat."""
    rng = np.random.default_rng(seed)
    bpm = rng.uniform(90, 150)
    beat = 60.0 / bpm
    base = 220.0 * 2 ** (rng.integers(-5, 6) / 12)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    melody = base * 2 ** (scale[rng.integers(0, 8, 16)] / 12)
    harm = rng.uniform(0.1, 0.6, 4)
    hat_level = rng.uniform(0.03, 0.1)
    t = offset + np.arange(int(seconds * sr)) / sr
    idx = (t // beat).astype(np.int64)
    in_beat = t - idx * beat
    f = melody[idx % len(melody)]
    env = np.exp(-3.0 * in_beat / beat)
    tone = sum(a * np.sin(2 * np.pi * f * (k + 1) * t) for k, a in enumerate([1.0, *harm]))
    kick = np.sin(2 * np.pi * 55 * in_beat * (1 + 2 * np.exp(-30 * in_beat)))
    kick *= np.exp(-12 * in_beat)
    hat = np.random.default_rng(seed + 1).standard_normal(t.size)
    hat *= np.exp(-60 * ((t + beat / 2) % beat))
    return (0.14 * tone * env + 0.45 * kick + hat_level * hat).astype(np.float32)


def jingle(seed: int, sr: int, seconds: float) -> np.ndarray:
    """A studio ident's jingle: an arpeggio rising and falling over the whole ident, each
    note with the partials of a struck string or bell (upper ones dying first). Real idents
    have rich, moving sound; the pure sine arpeggio this set used before session 15 left
    most fingerprint bands to the room tone, so its sound never matched across episodes
    and the ident rules were exercised through the pictures alone."""
    rng = np.random.default_rng(seed + 500)
    t = np.arange(int(seconds * sr)) / sr
    base = 330 * 2 ** (rng.integers(-4, 4) / 12)
    out = np.zeros_like(t)
    steps = (0, 4, 7, 12, 16, 12, 7, 4)
    for k in range(int(seconds / 0.18) + 1):
        t0 = 0.18 * k
        on = t >= t0
        f = base * 2 ** (steps[k % len(steps)] / 12)
        for h in range(1, 7):
            if h * f >= sr / 2:
                break
            decay = 3.0 * (1 + 0.5 * (h - 1))
            out[on] += np.sin(2 * np.pi * h * f * (t[on] - t0)) * np.exp(-decay * (t[on] - t0)) / h
    return (0.12 * out).astype(np.float32)


def voice(rng: np.random.Generator, sr: int, t: np.ndarray) -> np.ndarray:
    """A speech-like voice over times ``t``: harmonics of a wandering f0 shaped by two
    formants, in syllables and pauses (the toy demo's ``synth``; the development set's
    dialogue is :func:`introdetect.devset.dialogue.dialogue`, which a speech detector hears
    as speech)."""
    f0 = rng.uniform(95, 230) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    ph = 2 * np.pi * np.cumsum(f0) / sr
    formants = rng.uniform([300, 900], [800, 2200])
    out = np.zeros_like(t)
    for k in range(1, 13):
        fk = k * f0.mean()
        gain = sum(np.exp(-(((fk - fm) / 250.0) ** 2)) for fm in formants) + 0.05
        out += gain * np.sin(k * ph)
    syl = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5.5) * t), 0, None) ** 1.5
    pauses = (np.sin(2 * np.pi * 0.35 * t + rng.uniform(0, 6)) > -0.6).astype(float)
    return 0.08 * out * syl * pauses


def music_cue(seed: int, sr: int, seconds: float) -> np.ndarray:
    """Music that is not a theme: slow swelling chords, no drums."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    root = 110 * 2 ** (rng.integers(0, 12) / 12)
    chord = sum(np.sin(2 * np.pi * root * r * t) for r in (1, 1.26, 1.5, 2))
    return (0.1 * chord * (0.6 + 0.4 * np.sin(2 * np.pi * 0.3 * t))).astype(np.float32)


def real_music(sr: int, seconds: float, offset: float) -> np.ndarray:
    """The footage's own soundtrack (a pop song) from ``offset`` s, at ``sr``."""
    src = footage.clip("musicvideo").audio
    n_src = int(seconds * footage.AUDIO_SR)
    a = int(offset * footage.AUDIO_SR) % max(1, len(src) - n_src)
    piece = src[a : a + n_src]
    n = int(seconds * sr)
    return 0.5 * np.interp(np.linspace(0, len(piece) - 1, n), np.arange(len(piece)), piece).astype(
        np.float32
    )


def room(seed: int, sr: int, seconds: float) -> np.ndarray:
    """Room tone: quiet noise."""
    return (0.01 * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(
        np.float32
    )


def shot_sound(kind: str, seed: int, sr: int, seconds: float, offset: float) -> np.ndarray:
    """The sound of one shot (``Shot.audio``), exactly ``int(seconds * sr)`` samples."""
    if kind == "theme":
        return theme(seed, sr, seconds, offset)
    if kind == "jingle":
        return jingle(seed, sr, seconds)
    if kind == "speech":
        return dialogue(seed, sr, seconds) + room(seed + 1, sr, seconds)
    if kind == "music":
        return music_cue(seed, sr, seconds) + room(seed + 1, sr, seconds)
    if kind == "realmusic":
        return real_music(sr, seconds, offset)
    if kind == "silence":
        return np.zeros(int(seconds * sr), np.float32)
    return room(seed, sr, seconds)
