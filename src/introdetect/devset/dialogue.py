"""Dialogue for the development set: sentences said by a speech synthesiser.

Real dialogue is what a speech detector hears in most of its frames (Silero VAD: ~0.85 of
the 32 ms frames of a synthesised English sentence over room tone); the formant voice the
development set spoke with before (:func:`introdetect.devset.sound.voice`, harmonics in
syllables) was heard in 0.01-0.72 of them depending on the speaker, so a recap of a dialogue
scene could pass for music. Here espeak-ng (:mod:`introdetect.devset.espeak`) says random
sentences from a word list in one of several languages, two speakers of the series' language
taking turns with pauses between sentences. Everything is deterministic from the seed, and
a shorter request is the start of a longer one, so a shot copied into a recap sounds the same.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from functools import lru_cache

import numpy as np
from scipy.signal import resample_poly

from introdetect.devset.espeak import RATE

# languages and voice variants of espeak-ng's data (each language's own pronunciation of
# the words: series from several countries)
LANGUAGES = ("en", "en-us", "en-gb-scotland", "de", "fr", "es", "it", "nl")
VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "f5")
_VOCABULARY = (
    "I you we they he she it the a this that there here what where why when how who "
    "never always maybe now then later tonight yesterday tomorrow again still just only "
    "told said asked knew thought saw found lost took left came went looked called "
    "should could would will must can need want have know think tell see come go "
    "back home car money station house door night morning phone letter doctor captain "
    "brother sister mother father friend people everyone nobody something nothing "
    "happened gone wrong right true sure afraid ready sorry listen wait look stop "
    "about with without before after because if but and or not"
)
WORDS = tuple(_VOCABULARY.split())
GAIN = 0.5  # full-scale int16 speech to the level of the development set's other sounds


def _plan(seed: int, sentences: int) -> list[list]:
    """The first ``sentences`` sentences of the conversation of ``seed``: ``[voice, rate,
    pitch, text, pause_samples]`` each (the plan of fewer is the start of the plan of more)."""
    rng = np.random.default_rng(seed)
    language = str(rng.choice(LANGUAGES))
    speakers = [
        (
            f"{language}+{rng.choice(VARIANTS)}",
            int(rng.integers(130, 185)),
            int(rng.integers(25, 75)),
        )
        for _ in range(2)
    ]
    plan, turn = [], 0
    for _ in range(sentences):
        words = rng.choice(WORDS, int(rng.integers(3, 10)))
        text = " ".join(words).capitalize() + str(rng.choice([".", ".", "?", "!"]))
        pause = int(rng.uniform(0.1, 0.7) * RATE)
        plan.append([*speakers[turn % 2], text, pause])
        turn += int(rng.random() < 0.6)  # the other speaker answers, or the same goes on
    return plan


@lru_cache(maxsize=64)
def _conversation(seed: int, sentences: int) -> np.ndarray:
    """The first ``sentences`` sentences said (float32 at :data:`RATE`), by a fresh
    synthesiser process (:mod:`introdetect.devset.espeak`)."""
    cmd = [sys.executable, "-m", "introdetect.devset.espeak"]
    plan = json.dumps(_plan(seed, sentences)).encode()
    run = subprocess.run(cmd, input=plan, capture_output=True, check=False)
    if run.returncode != 0:
        why = run.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise RuntimeError(f"devset dialogue: the speech synthesiser failed ({why[0]})")
    return np.frombuffer(run.stdout, np.int16).astype(np.float32) * (GAIN / 32768.0)


def dialogue(seed: int, sr: int, seconds: float) -> np.ndarray:
    """``seconds`` of conversation at ``sr`` (deterministic from ``seed``; a shorter one is
    the start of a longer one)."""
    n = int(seconds * sr)
    # a sentence and its pause last at least ~1 s; ask for more until there is enough (and a
    # second beyond it, so the end of the resampling filter falls outside what is kept)
    sentences = max(2, math.ceil(seconds) + 2)
    src = _conversation(seed, sentences)
    while src.size < (seconds + 1) * RATE:
        sentences *= 2
        src = _conversation(seed, sentences)
    g = math.gcd(sr, RATE)
    out = resample_poly(src[: int((seconds + 1) * RATE)], sr // g, RATE // g).astype(np.float32)
    return out[:n] if out.size >= n else np.pad(out, (0, n - out.size))
