import logging

import numpy as np
import pytest

from introdetect.params import PredictParams, RepetitionParams
from introdetect.repetition import (
    LEVEL_TOLERANCE,
    N_CHANNELS,
    diagonal_runs,
    episode_repetition,
    fill_dropouts,
    late_steps,
    pick_others,
    series_descriptors,
    unsupervised_answer,
    unsupervised_detect,
)
from introdetect.store import EpisodeFeatures, write_episode


def test_diagonal_runs_by_hand():
    hit = np.zeros((6, 6), bool)
    hit[1, 2] = hit[2, 3] = hit[3, 4] = True  # a run of 3 on one diagonal
    hit[5, 0] = True  # an isolated hit
    runs = diagonal_runs(hit)
    assert runs[1, 2] == runs[2, 3] == runs[3, 4] == 3
    assert runs[5, 0] == 1 and runs.sum() == 10


def _season(rng, n_eps=4, intro_len=16, dim=64):
    """Episodes of random content with the same 'intro' block at different offsets."""
    intro_v = rng.standard_normal((intro_len, dim))
    intro_m = rng.standard_normal((intro_len, 8))
    eps, starts = {}, []
    for k in range(n_eps):
        t = int(rng.integers(60, 120))
        s = int(rng.integers(0, t - intro_len))
        v, m = rng.standard_normal((t, dim)), rng.standard_normal((t, 8))
        v[s : s + intro_len] = intro_v + 0.1 * rng.standard_normal((intro_len, dim))
        m[s : s + intro_len] = intro_m + 0.1 * rng.standard_normal((intro_len, 8))
        eps[f"e{k}"] = (v.astype(np.float32), m.astype(np.float32))
        starts.append(s)
    return eps, starts


def test_repeated_block_found_at_any_offset():
    rng = np.random.default_rng(0)
    eps, starts = _season(rng)
    desc = series_descriptors(eps)
    cfg = RepetitionParams()
    for k, eid in enumerate(eps):
        others = [desc[o] for o in eps if o != eid]
        rep = episode_repetition(desc[eid], others, 2.0, cfg)
        s = starts[k]
        assert rep.shape == (len(eps[eid][0]), N_CHANNELS)
        assert np.isnan(rep[:, 4]).all()  # the sound's share comes from the fingerprints
        assert rep[s + 2 : s + 14, 3].min() == 1.0  # every other episode shares it
        assert rep[s + 8, 2] >= 7.5  # an aligned run of ~8 s
        assert rep[s + 8, 0] > 0.8 and rep[:, 3].sum() < 20  # little else counts
        a, b, _ = unsupervised_detect(rep, 2.0, 1.5, 30.0)
        assert abs(a - s / 2) <= 1.0 and abs(b - (s + 16) / 2) <= 1.0


def test_single_episode_and_no_audio():
    rng = np.random.default_rng(1)
    eps, _ = _season(rng, n_eps=2)
    desc = series_descriptors(eps)
    own = desc["e0"]
    alone = episode_repetition(own, [], 2.0, RepetitionParams())
    assert not alone[:, :4].any() and np.isnan(alone[:, 4]).all()
    silent = (own[0], np.zeros_like(own[1]))
    rep = episode_repetition(silent, [desc["e1"]], 2.0, RepetitionParams())
    assert rep[:, 1].max() == 0 and rep[:, 3].max() == 1.0  # visual alone still finds it


def test_recap_shared_with_one_episode_is_not_the_intro():
    """A 'previously on' block repeats content of only one other episode: share stays low."""
    rng = np.random.default_rng(2)
    eps, starts = _season(rng, n_eps=5)
    v0, m0 = eps["e0"]
    v1, m1 = eps["e1"]
    v1[0:20], m1[0:20] = v0[-20:], m0[-20:]  # e1 opens with a recap of e0's ending
    desc = series_descriptors(eps)
    others = [desc[o] for o in eps if o != "e1"]
    rep = episode_repetition(desc["e1"], others, 2.0, RepetitionParams())
    assert rep[2:18, 3].max() <= 0.25
    a, b, _ = unsupervised_detect(rep, 2.0, 1.5, 30.0)
    assert abs(a - starts[1] / 2) <= 1.0


def test_pick_others_nearest_first():
    ids = [f"e{i}" for i in range(10)]
    assert pick_others(ids, "e5", 3) == ["e4", "e6", "e3"]
    assert len(pick_others(ids, "e0", 20)) == 9


def test_compute_repetition_from_store(tmp_path, caplog):
    from introdetect.repetition import compute_repetition

    rng = np.random.default_rng(3)
    eps, _ = _season(rng, n_eps=3, dim=512)
    items = []
    v0, m0 = eps["e0"]
    for eid, (v, m) in list(eps.items()) + [("solo", (v0[:30], m0[:30]))]:
        audio = np.concatenate([np.ones((len(v), 1)), m], 1)
        write_episode(
            tmp_path / f"{eid}.h5",
            EpisodeFeatures(
                v.astype(np.float16),
                audio.astype(np.float32),
                np.arange(len(v)) / 2.0,
                {"fps": 2.0},
            ),
        )
        items.append((eid, "solo" if eid == "solo" else "show", tmp_path / f"{eid}.h5"))
    with caplog.at_level(logging.WARNING):
        reps = compute_repetition(items, RepetitionParams())
    assert set(reps) == {"e0", "e1", "e2", "solo"} and not reps["solo"][:, :4].any()
    assert "one episode" in caplog.text
    assert reps["e0"][:, 3].max() == pytest.approx(1.0)


def _plant(rng, t, block_v, block_m, at):
    v, m = rng.standard_normal((t, block_v.shape[1])), rng.standard_normal((t, 8))
    v[at : at + len(block_v)] = block_v + 0.1 * rng.standard_normal(block_v.shape)
    m[at : at + len(block_m)] = block_m + 0.1 * rng.standard_normal(block_m.shape)
    return v.astype(np.float32), m.astype(np.float32)


def test_two_intros_in_one_season_and_an_intro_at_zero():
    rng = np.random.default_rng(4)
    intros = [(rng.standard_normal((14, 64)), rng.standard_normal((14, 8))) for _ in range(2)]
    starts = [0, 30, 55, 10, 0, 70]  # episodes 0-2 use intro A, 3-5 intro B; two start at 0 s
    eps = {f"e{k}": _plant(rng, 120, *intros[k // 3], starts[k]) for k in range(6)}
    desc = series_descriptors(eps)
    for k, eid in enumerate(eps):
        rep = episode_repetition(
            desc[eid], [desc[o] for o in eps if o != eid], 2.0, RepetitionParams()
        )
        a, b, _ = unsupervised_detect(rep, 2.0, 1.5, 30.0)  # 2 of 5 others share it
        assert abs(a - starts[k] / 2) <= 1.0 and abs(b - (starts[k] + 14) / 2) <= 1.0


def test_theme_music_over_the_first_scene_does_not_stretch_the_intro():
    rng = np.random.default_rng(5)
    iv, im = rng.standard_normal((14, 64)), rng.standard_normal((24, 8))  # music runs 5 s on
    eps = {}
    for k, s in enumerate([10, 40, 25, 60]):
        v, m = _plant(rng, 120, iv, im, s)  # pictures repeat for 7 s, the theme for 12 s
        eps[f"e{k}"] = (v, m)
    desc = series_descriptors(eps)
    rep = episode_repetition(
        desc["e0"], [desc[o] for o in eps if o != "e0"], 2.0, RepetitionParams()
    )
    a, b, _ = unsupervised_detect(rep, 2.0, 1.5, 30.0)
    assert abs(a - 5.0) <= 1.0 and abs(b - 12.0) <= 1.0


def test_credits_that_start_before_the_last_fifth_are_not_the_intro():
    """A 100 s episode whose end credits (66 s to the end, the theme replayed: shared by
    most episodes) start before the excluded last fifth: their early part is a longer
    repeated run than the 3 s intro, but it runs on into the last fifth, so it is credits."""
    fps, n = 2.0, 200
    rep = np.zeros((n, 5), np.float32)
    rep[20:26, 3] = 1.0  # the intro, 10-13 s
    rep[132:, 3] = 0.8  # the credits, 66 s to the end
    late = late_steps(n, fps, 100.0)
    a, b, _ = unsupervised_detect(rep, fps, 1.0, 30.0, 0.5, late=late)
    assert abs(a - 10.0) <= 0.5 and abs(b - 13.0) <= 0.5
    rep[140:160, 3] = 0.0  # a gap: the run before it no longer reaches the last fifth
    a, b, _ = unsupervised_detect(rep, fps, 1.0, 30.0, 0.5, late=late)
    # the cut-off credits (0.8) are shared less widely than the intro (1.0): still the intro
    assert abs(a - 10.0) <= 0.5 and abs(b - 13.0) <= 0.5


def test_the_most_widely_shared_run_wins_over_a_longer_one_fewer_episodes_share():
    """A 3 s intro every other episode repeats against a 6 s recap only half of them
    repeat: the intro, though the recap has more share mass; among runs shared about as
    widely (within LEVEL_TOLERANCE), the longer one."""
    fps, n = 2.0, 200
    rep = np.zeros((n, 5), np.float32)
    rep[20:32, 3] = 0.5  # the recap, 10-16 s
    rep[80:86, 3] = 1.0  # the intro, 40-43 s
    a, b, _ = unsupervised_detect(rep, fps, 1.0, 30.0, 0.5)
    assert abs(a - 40.0) <= 0.5 and abs(b - 43.0) <= 0.5
    rep[20:32, 3] = 1.0 - LEVEL_TOLERANCE / 2  # shared about as widely: the longer run
    a, b, _ = unsupervised_detect(rep, fps, 1.0, 30.0, 0.5)
    assert abs(a - 10.0) <= 0.5 and abs(b - 16.0) <= 0.5


def test_a_shared_run_extends_over_a_dip_just_under_the_threshold():
    """An intro one of two others repeats (share 0.5) whose share dips to 0.47 where a
    picture fails to match: one run, not its longest piece at 0.5 (hysteresis). A run that
    only ever reaches 0.47 is no run; a dip to 0.4 still splits."""
    fps, n = 2.0, 200
    rep = np.zeros((n, 4), np.float32)
    rep[40:56, 3] = 0.5  # 20-28 s
    rep[44:46, 3] = 0.47
    a, b, _ = unsupervised_detect(rep, fps, 1.0, 30.0, 0.5, smooth_s=0.0)
    assert (a, b) == (20.0, 28.0)
    rep[40:56, 3] = 0.47
    assert unsupervised_detect(rep, fps, 1.0, 30.0, 0.5, smooth_s=0.0) is None
    rep[40:56, 3] = 0.5
    rep[44:46, 3] = 0.4
    a, b, _ = unsupervised_detect(rep, fps, 1.0, 30.0, 0.5, smooth_s=0.0)
    assert (a, b) == (23.0, 28.0)


def test_the_opening_run_is_passed_over_when_short_and_something_else_repeats():
    """An ident opening the episode, shared by every other episode (1.0), before an intro
    half of them share (0.5): the intro. Alone, the opening run is the answer; a 6 s opening
    run (an intro that opens the episode, or an ident glued to it) stays the answer; and
    with ``skip_opening=True`` (the season's ident) a lone opening run is no answer."""
    fps = 2.0
    pp, rp = PredictParams(min_len_s=1.0), RepetitionParams(min_share=0.5)
    rep = np.zeros((200, 4), np.float32)
    rep[0:5, 3] = 1.0  # the ident, 0-2.5 s
    rep[60:72, 3] = 0.5  # the intro, 30-36 s
    iv, _, passed = unsupervised_answer(rep, fps, pp, rp)
    assert passed and abs(iv[0] - 30.0) <= 0.5 and abs(iv[1] - 36.0) <= 0.5
    assert unsupervised_answer(rep, fps, pp, rp, skip_opening=False)[0][0] == 0.0
    only = rep.copy()
    only[60:72, 3] = 0.0
    iv, _, passed = unsupervised_answer(only, fps, pp, rp)
    assert not passed and iv[0] == 0.0
    assert unsupervised_answer(only, fps, pp, rp, skip_opening=True)[:2] == (None, 0.0)
    long = rep.copy()
    long[0:12, 3] = 1.0  # 6 s
    iv, _, passed = unsupervised_answer(long, fps, pp, rp)
    assert not passed and iv[0] == 0.0


def test_a_short_intro_shared_more_widely_wins_though_smoothing_lowers_it_more():
    """A 2 s intro every other episode repeats (1.0) and a 4 s scene nine in ten of them
    repeat (0.9): the intro. Smoothed, the short run's mean drops below the longer one's
    tolerance band; how widely a run is shared is judged before smoothing."""
    fps = 2.0
    rep = np.zeros((200, 4), np.float32)
    rep[40:44, 3] = 1.0  # the intro, 20-22 s
    rep[100:108, 3] = 0.9  # the scene, 50-54 s
    a, b, _ = unsupervised_detect(rep, fps, 1.0, 30.0, 0.5)
    assert abs(a - 20.0) <= 0.5 and abs(b - 22.0) <= 0.5


def test_a_step_whose_sound_failed_to_match_does_not_make_the_intro_less_widely_shared():
    """A season of two: every step's share is 0 or 1. A 4 s intro whose sound failed to
    match for one step (a re-encoded half second) against a 2.5 s recapped scene matched
    throughout: both are shared by the other episode, so the longer one, the intro. With
    the dropout counted the intro's mean (0.875) fell out of the scene's tolerance band
    (seed 2's library season Show1, ``introdetect detect --audio-only``). Two steps missing
    in a row are a real gap: the run is then less widely shared."""
    fps = 2.0
    rep = np.zeros((200, 4), np.float32)
    rep[134:142, 3] = 1.0  # the intro, 67-71 s
    rep[139, 3] = 0.0  # one step's sound did not match
    rep[150:155, 3] = 1.0  # the scene, 75-77.5 s
    a, b, _ = unsupervised_detect(rep, fps, 1.0, 30.0, 0.5)
    assert abs(a - 67.0) <= 0.5 and abs(b - 71.0) <= 0.5
    assert fill_dropouts(np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])).tolist() == [
        1.0,
        1.0,
        1.0,
        0.0,
        0.0,
        1.0,
    ]
