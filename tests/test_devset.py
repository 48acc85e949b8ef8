"""The realistic development set: real footage from installed packages, every confounder
planned, frame-exact truth beside whole-second labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from introdetect.devset.generate import generate, plan_dataset
from introdetect.labels import parse_time
from introdetect.params import SynthParams
from introdetect.refine import frame_changes

TINY = SynthParams(
    kind="realistic",
    seed=5,
    n_train_series=1,
    n_unseen_series=1,
    train_episodes_per_series=2,
    test_episodes_per_seen_series=1,
    episodes_per_unseen_series=1,
    no_intro_fraction=0.0,
    max_cold_open_s=30.0,
    tail_s=(5.0, 8.0),
    n_broken_labels=1,
)


def test_plans_hold_the_confounders_of_real_seasons():
    big = SynthParams(kind="realistic", seed=1, n_train_series=6, n_unseen_series=4)
    series, episodes = plan_dataset(big)
    kinds = {s.kind for e in episodes for s in e.shots}
    assert {"ident", "intro", "title", "credits", "content"} <= kinds
    assert any(s.text.startswith("Previously on") for e in episodes for s in e.shots)
    assert any(s.under_theme >= 0 for e in episodes for s in e.shots)  # theme runs on
    lengths = [sum(x.seconds for x in s.intro) for s in series]
    assert min(lengths) >= 1.0 and max(lengths) <= 10.0
    # the same series' intro varies a little between episodes (trims, number overlays)
    per_ep = {
        e.episode_id: round(sum(x.seconds for x in e.shots if x.kind == "intro"), 2)
        for e in episodes
    }
    assert len(set(per_ep.values())) > len(series)
    assert plan_dataset(big)[1][3] == episodes[3]  # deterministic


def test_one_rendered_episode_has_cuts_exactly_at_its_true_boundaries(tmp_path):
    from dataclasses import replace

    from introdetect.devset.render import render_episode

    series, episodes = plan_dataset(TINY)
    ep = next(e for e in episodes if any(s.kind == "intro" for s in e.shots))
    first = next(i for i, s in enumerate(ep.shots) if s.kind == "intro")
    shots = [replace(s, seconds=min(s.seconds, 2.0)) for s in ep.shots[max(0, first - 2) :]][:6]
    ep = replace(ep, shots=shots, width=160, height=90)
    truth = render_episode(ep, series[ep.series], tmp_path / "e.mp4")
    a, b = truth["intro"]
    fc = frame_changes(tmp_path / "e.mp4", 0.0, truth["duration_s"])
    for t in (a, b):
        if t <= 0 or t >= truth["duration_s"]:
            continue
        k = int(np.argmin(np.abs(fc.times - t)))
        assert abs(fc.times[k] - t) < 1e-3 and fc.change[k] > 3 * np.median(fc.change)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("dev")
    generate(TINY, out, workers=1)
    return out


@pytest.mark.slow
def test_truth_is_frame_exact_and_labels_are_whole_seconds(tiny):
    truth = json.loads((tiny / "truth.json").read_text())
    labels = json.loads((tiny / "train_labels.json").read_text())
    labels |= json.loads((tiny / "test_labels.json").read_text())
    assert len(truth["episodes"]) == 4 and set(labels) == set(truth["episodes"])
    broken = 0
    for eid, e in truth["episodes"].items():
        a, b = e["intro"]
        path = tiny / ("train/" + eid if e["split"] == "train" else "test") / f"{eid}.mp4"
        fc = frame_changes(path, max(0.0, a - 0.5), b + 0.5)
        for t in (a, b):  # a cut exactly at each true boundary
            k = int(np.argmin(np.abs(fc.times - t)))
            assert abs(fc.times[k] - t) < 1e-3 and fc.change[k] > 3 * np.median(fc.change)
        start, end = parse_time(labels[eid]["start"]), parse_time(labels[eid]["end"])
        assert start == int(start) and end == int(end)
        broken += end < start
        assert end < start or (abs(start - a) <= 1 and abs(end - b) <= 1)
    assert broken == 1  # one start minute mistyped, like the real files


def test_an_idents_jingle_sounds_alike_before_every_episode_and_unlike_another_studios():
    """Real idents have rich sound that an audio fingerprint matches from episode to
    episode; the set's jingle must too (a pure sine arpeggio never did), over each
    episode's own room tone, and another studio's jingle must not."""
    from introdetect.candidates import BER_MAX, _ber
    from introdetect.devset.sound import jingle
    from introdetect.features.audio import fingerprint

    sr = 16000

    def heard(studio: int, room: int) -> np.ndarray:
        pcm = jingle(studio, sr, 2.5)
        noise = np.random.default_rng(room).normal(0, 0.01, len(pcm)).astype(np.float32)
        return fingerprint(pcm + noise, sr)

    same = _ber(heard(0, 1), heard(0, 2))
    assert same.mean() < 0.15 and np.mean(same < BER_MAX) > 0.9
    for other in (1, 2):
        assert _ber(heard(0, 1), heard(other, 2)).mean() > 0.4


def test_dialogue_is_heard_as_speech_and_a_recap_replays_it_exactly():
    """Real dialogue is speech to a speech detector in most of its frames (the formant voice
    before it was heard in as few as 1 %); a recap copies a shot, so a shorter request of the
    same conversation is the start of the longer one, and the same in a new process."""
    from introdetect.devset.dialogue import _conversation, dialogue
    from introdetect.devset.sound import room, shot_sound
    from introdetect.speech import SPEECH_PROB, detector

    sr, vad = 16000, detector()
    for seed in (3, 5):  # the two seeds the formant voice said least audibly
        pcm = shot_sound("speech", seed, sr, 10.0, 0.0)
        assert len(pcm) == 10 * sr
        assert np.mean(vad.probs(pcm) >= SPEECH_PROB) > 0.6
        assert np.mean(vad.probs(room(seed, sr, 10.0)) >= SPEECH_PROB) < 0.1
    longer, shorter = dialogue(7, 44100, 9.0), dialogue(7, 44100, 3.3)
    assert len(shorter) == int(3.3 * 44100)
    assert np.array_equal(longer[: len(shorter)], shorter)
    said = _conversation(7, 12)
    for _ in range(3):  # fresh synthesiser processes, not the cache: the same samples
        assert np.array_equal(_conversation.__wrapped__(7, 12), said)
    assert not np.array_equal(dialogue(8, sr, 3.0), dialogue(7, sr, 3.0))


def test_the_stress_size_is_the_demo_with_fuller_seasons_and_more_intro_less_episodes(
    tmp_path,
):
    """``accuracy_bench.py --size stress``: the demo's synth params with four unseen series
    of four episodes, 30 % of episodes without an intro; nothing else differs."""
    import dataclasses

    from introdetect.accuracy import dataset_params

    demo = dataset_params(SynthParams(), "demo", 31, tmp_path)
    stress = dataset_params(SynthParams(), "stress", 31, tmp_path)
    want = {"n_unseen_series": 4, "episodes_per_unseen_series": 4, "no_intro_fraction": 0.3}
    assert dataclasses.replace(demo, **want) == stress
