"""The speech cue: silero-vad hears the development set's voices and not its music, reads
an episode's audio from the video file, and breaks ties between runs shared about as
widely in the model-free detector's choice."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import introdetect.speech as speech
from introdetect.devset.sound import shot_sound
from introdetect.media import decode_audio, decode_audio_span
from introdetect.modelfree import _prefer_quiet
from introdetect.params import PredictParams, RepetitionParams
from introdetect.postprocess import Prefer, extract_best_interval
from introdetect.repetition import unsupervised_answer
from introdetect.speech import (
    QUIET_SHARE,
    SPOKEN_SHARE,
    EpisodeSpeech,
    SpeechUnavailable,
    detector,
    model_path,
)

SR = 16000
VOICE_SEED = 7  # a conversation of the development set (all are heard as speech)
ATTRS = {"fps": 2.0, "window_s": 600.0}  # the feature-file attributes the speech cue reads


def _sound(kind: str, seconds: float) -> np.ndarray:
    return shot_sound(kind, VOICE_SEED, SR, seconds, 3.0).astype(np.float32)


def _write(
    path: Path, audio: np.ndarray | None, seconds: float, rate: int = SR, start_s: float = 0.0
) -> Path:
    """A 64x48 H.264 clip of ``seconds`` with ``audio`` (mono float32 at ``rate``) as AAC,
    every timestamp ``start_s`` late (a stream that does not start at 0)."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.time_base = vs.codec_context.time_base = Fraction(1, 10)
        aus = out.add_stream("aac", rate=rate, layout="mono") if audio is not None else None
        for i in range(int(seconds * 10)):
            img = np.full((48, 64, 3), (i * 7) % 255, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i + round(start_s * 10), Fraction(1, 10)
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        if aus is not None:
            for a in range(0, audio.size - 1024, 1024):
                af = av.AudioFrame.from_ndarray(
                    audio[None, a : a + 1024], format="fltp", layout="mono"
                )
                af.sample_rate, af.time_base = rate, Fraction(1, rate)
                af.pts = a + round(start_s * rate)
                for p in aus.encode(af):
                    out.mux(p)
            for p in aus.encode(None):
                out.mux(p)
    return path


def test_the_model_ships_in_the_wheel():
    assert model_path().is_file()


def test_voices_are_speech_and_music_is_not():
    speech = detector().probs(_sound("speech", 8.0))
    assert speech.shape == (8 * SR // 512,)
    assert np.mean(speech >= 0.5) >= 0.5
    for kind in ("theme", "music", "realmusic", "room"):
        assert np.mean(detector().probs(_sound(kind, 8.0)) >= 0.5) < QUIET_SHARE, kind


def test_episode_speech_reads_the_video_and_says_where(tmp_path):
    parts = [
        _sound(k, s) for k, s in (("room", 5.0), ("speech", 8.0), ("music", 5.0), ("theme", 4.0))
    ]
    ep = EpisodeSpeech(_write(tmp_path / "ep.mp4", np.concatenate(parts), 22.0), window_s=600.0)
    assert ep.share(0.0, 5.0) < 0.1
    assert ep.share(5.0, 13.0) >= SPOKEN_SHARE and ep.share(5.5, 12.5) >= SPOKEN_SHARE
    assert ep.share(13.0, 18.0) < QUIET_SHARE and ep.share(18.0, 22.0) < QUIET_SHARE
    # the dialogue goes where a quiet run is as widely shared; nothing goes otherwise
    assert ep.quiet_of([(5.0, 13.0), (13.0, 18.0), (18.0, 22.0)]) == [False, True, True]
    assert ep.quiet_of([(5.0, 13.0), (5.5, 12.5)]) == [True, True]
    silent = EpisodeSpeech(_write(tmp_path / "silent.mp4", None, 3.0), window_s=600.0)
    assert (
        silent.share(0.0, 3.0) is None and silent.quiet_of([(0.0, 3.0), (1.0, 2.0)]) == [True] * 2
    )
    missing = EpisodeSpeech(tmp_path / "gone.mp4", window_s=600.0)
    assert missing.share(0.0, 3.0) is None  # a warning, not an error: judged without the cue


def test_without_the_model_an_episode_is_judged_without_the_cue(tmp_path, monkeypatch, caplog):
    def gone() -> Path:
        raise SpeechUnavailable("silero-vad is not installed")

    monkeypatch.setattr(speech, "model_path", gone)
    detector.cache_clear()
    try:
        ep = EpisodeSpeech(_write(tmp_path / "ep.mp4", _sound("speech", 8.0), 8.0), 600.0)
        assert ep.share(0.0, 8.0) is None and ep.quiet_of([(0.0, 4.0), (4.0, 8.0)]) == [True] * 2
    finally:
        detector.cache_clear()
    assert "silero-vad is not installed" in caplog.text


@pytest.mark.parametrize(
    ("name", "rate", "late"),
    [("ep.mp4", SR, 0.0), ("ep.mkv", 48000, 0.0), ("ep.ts", 44100, 1.4), ("ep.mp4", 22050, 2.0)],
)
@pytest.mark.parametrize("start", [0.0, 3.2, 11.0])
def test_a_span_decoded_after_a_seek_is_the_same_audio(tmp_path, name, rate, late, start):
    """What the season's other readers see at ``start`` (the player's timeline: a file whose
    timestamps start late starts at 0), whatever the container and the audio's rate."""
    sound = [shot_sound(k, VOICE_SEED, rate, s, 3.0) for k, s in (("speech", 8.0), ("theme", 6.0))]
    video = _write(tmp_path / name, np.concatenate(sound).astype(np.float32), 14.0, rate, late)
    whole: list[np.ndarray] = []
    decode_audio(video, SR, 600.0, whole.append)
    ref, a = np.concatenate([np.zeros(400, np.float32), *whole]), int(start * SR) + 400
    span = decode_audio_span(video, SR, start, start + 2.0)
    assert abs(span.size - 2 * SR) <= 1024
    n = span.size - 800
    corr = {
        lag: np.corrcoef(span[:n], ref[a + lag : a + lag + n])[0, 1] for lag in range(-400, 401)
    }
    lag = max(corr, key=corr.get)
    assert corr[lag] > 0.95 and abs(lag) <= 16  # within a millisecond (Matroska's precision)
    assert decode_audio_span(video, SR, 20.0, 22.0).size == 0  # past the end


def test_a_spoken_run_loses_only_a_tie():
    fps = 2.0
    probs = np.zeros(60)
    probs[4:10] = 0.9  # 3 s
    probs[20:34] = 0.9  # 7 s: the longer, so the answer without the cue
    probs[44:48] = 0.6  # shared less widely: never in the tie
    level = probs.copy()
    asked: list[list[tuple[int, int]]] = []

    def keeps(*kept):
        def keep(spans):
            asked.append(spans)
            return [span in kept for span in spans]

        return Prefer(keep)

    def best(prefer):
        return extract_best_interval(probs, fps, 0.5, 1.0, 30.0, 0.05, level, prefer)[:2]

    assert best(None) == (10.0, 17.0)
    assert best(keeps((4, 10))) == (2.0, 5.0)  # the longer run is dialogue: the quiet one
    assert asked[-1] == [(4, 10), (20, 34)]  # only the tied runs are asked about
    assert best(keeps()) == (10.0, 17.0)  # none kept: as without the cue
    assert best(keeps((4, 10), (20, 34))) == (10.0, 17.0)
    probs[4:10] = 1.0  # no longer tied: the widest wins whatever is said
    level = probs.copy()
    asked.clear()
    assert best(keeps((20, 34))) == (2.0, 5.0) and not asked


def test_with_dialogue_yields_a_dialogue_run_gives_way_to_a_quiet_one_shared_less_widely():
    fps = 2.0
    probs = np.zeros(60)
    probs[4:10] = 0.6  # 3 s, shared less widely
    probs[20:34] = 0.9  # 7 s, the most widely shared
    probs[44:48] = 0.7  # 2 s, shared less widely than it, more than the first
    asked = []

    def choice(dialogue, quiet):
        def instead(best, others):
            asked.append((best, others))
            if best not in dialogue:
                return None
            return next((k for k, span in enumerate(others) if span in quiet), None)

        return Prefer(lambda spans: [True] * len(spans), instead)

    def best(prefer):
        return extract_best_interval(probs, fps, 0.5, 1.0, 30.0, 0.05, probs, prefer)[:2]

    assert best(choice({(20, 34)}, {(4, 10), (44, 48)})) == (22.0, 24.0)  # the wider first
    assert asked[-1] == ((20, 34), [(44, 48), (4, 10)])
    assert best(choice({(20, 34)}, {(4, 10)})) == (2.0, 5.0)
    assert best(choice({(20, 34)}, set())) == (10.0, 17.0)  # none quiet: as without it
    assert best(choice(set(), {(4, 10)})) == (10.0, 17.0)  # the best is no dialogue


@pytest.mark.parametrize("speech_first", [True, False])
def test_the_model_free_answer_is_the_quiet_run_of_two_shared_as_widely(tmp_path, speech_first):
    """Two runs shared by the same share of other episodes, 8 s of dialogue and 4 s of
    theme: the detector takes the longer run, unless it hears that the longer is speech."""
    speech, theme = _sound("speech", 8.0), _sound("theme", 4.0)
    gap = _sound("room", 4.0)
    parts = [gap, speech, gap, theme, gap] if speech_first else [gap, theme, gap, speech, gap]
    video = _write(tmp_path / "ep.mp4", np.concatenate(parts), 28.0)
    fps = 2.0
    rep = np.zeros((56, 6), np.float32)
    spans = [(8, 24), (32, 40)] if speech_first else [(8, 16), (24, 40)]
    for a, b in spans:
        rep[a:b, 3] = 1.0
    pp, rp = PredictParams(), RepetitionParams()
    plain = unsupervised_answer(rep, fps, pp, rp)[0]
    heard = unsupervised_answer(
        rep,
        fps,
        pp,
        rp,
        prefer=_prefer_quiet("ep", EpisodeSpeech(video, 600.0), {"fps": fps, "window_s": 600.0}),
    )[0]
    theme_at = (16.0, 20.0) if speech_first else (4.0, 8.0)
    speech_at = (4.0, 12.0) if speech_first else (12.0, 20.0)
    assert plain == pytest.approx(speech_at, abs=0.6)
    assert heard == pytest.approx(theme_at, abs=0.6)


@pytest.mark.parametrize("dialogue_yields", [True, False])
def test_a_scene_every_recap_replays_gives_way_to_a_quiet_intro_only_when_asked(
    tmp_path, dialogue_yields
):
    """8 s of dialogue shared by every other episode (a scene the recaps replay), a 4 s
    theme shared by half of them: the scene is the more widely shared; with
    ``predict.dialogue_yields`` the quiet theme is taken, not otherwise."""
    speech, theme, gap = _sound("speech", 8.0), _sound("theme", 4.0), _sound("room", 4.0)
    video = _write(tmp_path / "ep.mp4", np.concatenate([gap, speech, gap, theme, gap]), 28.0)
    fps, rep = 2.0, np.zeros((56, 6), np.float32)
    rep[8:24, 3], rep[32:40, 3] = 1.0, 0.5
    pp, rp = PredictParams(), RepetitionParams()
    prefer = _prefer_quiet(
        "ep", EpisodeSpeech(video, 600.0), {"fps": fps, "window_s": 600.0}, dialogue_yields
    )
    got = unsupervised_answer(rep, fps, pp, rp, prefer=prefer)[0]
    assert got == pytest.approx((16.0, 20.0) if dialogue_yields else (4.0, 12.0), abs=0.6)


@pytest.mark.parametrize("dialogue_yields", [True, False])
def test_a_short_intro_shared_by_exactly_half_takes_the_place_of_dialogue(
    tmp_path, dialogue_yields
):
    """A season of three where one episode has no intro: the other two share it with
    exactly half of the others (share 0.5, ``repetition.min_share``), and a 3 s run at 0.5
    smoothed is under the threshold -- no found run. A recapped scene of dialogue shared by
    every other episode is the best run; with ``predict.dialogue_yields`` the quiet theme,
    a weak run, takes its place."""
    speech, theme, gap = _sound("speech", 8.0), _sound("theme", 3.0), _sound("room", 4.0)
    video = _write(tmp_path / "ep.mp4", np.concatenate([gap, speech, gap, theme, gap]), 27.0)
    fps, rep = 2.0, np.zeros((54, 6), np.float32)
    rep[8:24, 3], rep[32:38, 3] = 1.0, 0.5
    pp, rp = PredictParams(), RepetitionParams()
    assert rp.min_share == 0.5
    prefer = _prefer_quiet(
        "ep", EpisodeSpeech(video, 600.0), {"fps": fps, "window_s": 600.0}, dialogue_yields
    )
    got = unsupervised_answer(rep, fps, pp, rp, prefer=prefer)[0]
    assert got == pytest.approx((16.0, 19.0) if dialogue_yields else (4.0, 12.0), abs=0.6)
    rep[8:24, 3] = 0.0  # no dialogue to replace: a weak run is never an answer on its own
    assert unsupervised_answer(rep, fps, pp, rp, prefer=prefer)[0] is None
