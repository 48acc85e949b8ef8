"""The model-free detector weighs the sound with the picture: an intro repeats in picture
and sound, an establishing shot only in picture, a theme replayed under other pictures only
in sound."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np

from introdetect.candidates import NO_MATCH, add_audio_share, realignments, step_share
from introdetect.features.audio import (
    FP_HOP,
    FP_SR,
    file_fingerprint,
    fingerprints,
    season_prints,
)
from introdetect.modelfree import unsupervised_episodes
from introdetect.params import PredictParams, RepetitionParams
from introdetect.repetition import AUDIO_SHARE, AUDIO_SPLIT, N_CHANNELS, write_copies

FPS = 2.0
FRAMES_PER_S = FP_SR / FP_HOP  # fingerprint frames per second


def _prints(rng: np.random.Generator, seconds: float, shared: np.ndarray, at_s: float):
    """A random fingerprint of ``seconds`` with ``shared`` pasted in at ``at_s``."""
    fp = rng.integers(1, 1 << 16, int(seconds * FRAMES_PER_S), dtype=np.uint16)
    a = int(at_s * FRAMES_PER_S)
    fp[a : a + len(shared)] = shared
    return fp


def test_step_share_marks_where_the_sound_repeats_and_never_silence() -> None:
    rng = np.random.default_rng(0)
    theme = rng.integers(1, 1 << 16, int(6 * FRAMES_PER_S), dtype=np.uint16)
    prints = {
        "e1": _prints(rng, 60, theme, 10.0),
        "e2": _prints(rng, 60, theme, 30.0),
        "e3": _prints(rng, 60, theme, 0.0),
    }
    silence = np.zeros(int(8 * FRAMES_PER_S), np.uint16)  # the same quiet stretch in two
    prints["e1"][int(40 * FRAMES_PER_S) : int(48 * FRAMES_PER_S)] = silence
    prints["e2"][int(5 * FRAMES_PER_S) : int(13 * FRAMES_PER_S)] = silence
    prints["mute"] = None  # no audio stream
    n = {eid: 120 for eid in prints}
    share = step_share(prints, n, FPS, RepetitionParams())
    assert share["mute"] is None
    s1 = share["e1"]
    inside = s1[int(11 * FPS) : int(15 * FPS)]
    assert np.all(inside == 1.0)  # in both other episodes
    assert s1[: int(9 * FPS)].max() == 0.0 and s1[int(17 * FPS) :].max() == 0.0  # silence too
    assert share["e3"][int(1 * FPS) : int(5 * FPS)].min() == 1.0


def _store(tmp: Path, eid: str, rep: np.ndarray, duration: float) -> None:
    (tmp / "rep").mkdir(exist_ok=True)
    (tmp / "feat").mkdir(exist_ok=True)
    np.save(tmp / "rep" / f"{eid}.npy", rep)
    with h5py.File(tmp / "feat" / f"{eid}.h5", "w") as f:
        f.attrs.update({"fps": FPS, "duration_s": duration, "window_s": 600.0})


def _pictures(n_steps: int, spans: list[tuple[float, float]]) -> np.ndarray:
    """Repetition channels [n_steps, N_CHANNELS] whose picture share is 1 in each
    ``(start_s, length_s)`` span."""
    rep = np.zeros((n_steps, N_CHANNELS), np.float32)
    for start, length in spans:
        rep[int(start * FPS) : int((start + length) * FPS), 3] = 1.0
    return rep


def _season(tmp: Path, reps: dict, prints: dict, duration: float):
    """One series of ``reps`` with the sound's channels from ``prints``, stored under
    ``tmp``: ``(groups, repetition params, predict params without refinement)``."""
    groups = {eid: "show" for eid in reps}
    rp = RepetitionParams()
    copies = add_audio_share(reps, groups, prints, FPS, rp)
    for eid in reps:
        _store(tmp, eid, reps[eid], duration)
        write_copies(copies[eid], tmp / "rep" / f"{eid}.npy")  # as the repetition stage does
    return groups, rp, dataclasses.replace(PredictParams(), refine=False)


def test_a_shot_that_repeats_only_in_picture_is_not_the_intro(tmp_path: Path) -> None:
    """Each episode: an establishing shot (picture repeats in every episode, 6 s) and the
    intro (picture and sound repeat, 4 s). Pictures alone pick the longer shot; with the
    sound the intro is found."""
    rng = np.random.default_rng(1)
    theme = rng.integers(1, 1 << 16, int(4 * FRAMES_PER_S), dtype=np.uint16)
    ids, prints, reps = ["s01e01", "s01e02", "s01e03"], {}, {}
    intro_at = {"s01e01": 20.0, "s01e02": 50.0, "s01e03": 5.0}
    shot_at = {"s01e01": 70.0, "s01e02": 10.0, "s01e03": 60.0}
    for eid in ids:
        reps[eid] = _pictures(240, [(intro_at[eid], 4.0), (shot_at[eid], 6.0)])
        prints[eid] = _prints(rng, 120, theme, intro_at[eid])
    groups, rp, pp = _season(tmp_path, reps, prints, 120.0)
    both = unsupervised_episodes(ids, tmp_path / "rep", tmp_path / "feat", pp, rp, groups)
    for d in both:
        assert abs(d.interval[0] - intro_at[d.episode_id]) <= 0.5, d
        assert abs(d.interval[1] - intro_at[d.episode_id] - 4) <= 0.5, d
    pictures = dataclasses.replace(pp, model_free_audio=False)
    alone = unsupervised_episodes(ids, tmp_path / "rep", tmp_path / "feat", pictures, rp, groups)
    assert all(abs(d.interval[0] - shot_at[d.episode_id]) <= 0.5 for d in alone)


def test_where_the_sound_repeats_only_in_the_credits_there_is_no_intro(tmp_path: Path) -> None:
    """Episodes without an intro: a recurring scene repeats in picture, the credits' theme
    in sound (late, excluded). The sound works for this series, so the pictures alone do
    not answer: null. Where the sound repeats nowhere (a theme whose sound differs between
    episodes), the pictures answer."""
    rng = np.random.default_rng(2)
    theme = rng.integers(1, 1 << 16, int(10 * FRAMES_PER_S), dtype=np.uint16)
    ids, prints, reps = ["s01e01", "s01e02", "s01e03"], {}, {}
    shot_at = {"s01e01": 30.0, "s01e02": 10.0, "s01e03": 50.0}
    for eid in ids:
        reps[eid] = _pictures(200, [(shot_at[eid], 6.0)])
        prints[eid] = _prints(rng, 100, theme, 88.0)  # the credits, 88-98 s of 100
    groups, rp, pp = _season(tmp_path, reps, prints, 100.0)
    dets = unsupervised_episodes(ids, tmp_path / "rep", tmp_path / "feat", pp, rp, groups)
    assert [d.interval for d in dets] == [None] * 3
    for eid in ids:  # the sound repeats nowhere: the recurring scene is all there is
        reps[eid][:, AUDIO_SHARE] = 0.0
        _store(tmp_path, eid, reps[eid], 100.0)
    dets = unsupervised_episodes(ids, tmp_path / "rep", tmp_path / "feat", pp, rp, groups)
    assert all(abs(d.interval[0] - shot_at[d.episode_id]) <= 0.5 for d in dets)


def test_audio_share_channel_is_nan_without_a_fingerprint() -> None:
    """An episode without audio keeps NaN in the audio-share channel (the model reads 0
    there, the model-free detector judges it on its pictures alone)."""
    rng = np.random.default_rng(2)
    theme = rng.integers(1, 1 << 16, int(4 * FRAMES_PER_S), dtype=np.uint16)
    reps = {e: np.full((120, N_CHANNELS), np.nan, np.float32) for e in ("a", "b", "mute")}
    prints = {"a": _prints(rng, 60, theme, 10.0), "b": _prints(rng, 60, theme, 30.0)}
    add_audio_share(reps, dict.fromkeys(reps, "show"), prints, FPS, RepetitionParams())
    assert np.isnan(reps["mute"][:, AUDIO_SHARE]).all()
    a = reps["a"][:, AUDIO_SHARE]
    assert not np.isnan(a).any()
    assert a[int(11 * FPS) : int(13 * FPS)].min() == 1.0 and a[: int(9 * FPS)].max() == 0.0


def test_fingerprints_of_files_with_and_without_audio(tmp_path: Path) -> None:
    from conftest import make_clip

    with_audio = make_clip(tmp_path / "a.mp4", seconds=3.0)
    mute = make_clip(tmp_path / "m.mp4", seconds=3.0, audio_rate=None)
    prints = fingerprints({"a": with_audio, "m": mute}, 600.0)
    assert prints["m"] is None
    assert prints["a"].dtype == np.uint16 and len(prints["a"]) > 60
    assert np.array_equal(prints["a"], file_fingerprint(with_audio, 600.0))


def test_season_prints_read_the_feature_files_and_decode_the_rest(tmp_path: Path) -> None:
    """A feature file that holds the window's fingerprint is read, not the video (here the
    video is gone); one holding none, or made for another window, means a decode."""
    from conftest import make_clip

    from introdetect.store import EpisodeFeatures, write_episode

    a = make_clip(tmp_path / "a.mp4", seconds=3.0)
    b = make_clip(tmp_path / "b.mp4", seconds=3.0, tone_hz=660.0)
    c = make_clip(tmp_path / "c.mp4", seconds=3.0, tone_hz=880.0)
    held = np.arange(50, dtype=np.uint16)
    empty = (np.zeros((6, 512), np.float16), np.zeros((6, 33), np.float32), np.zeros(6))
    write_episode(tmp_path / "a.h5", EpisodeFeatures(*empty, {"window_s": 600.0}, held))
    write_episode(tmp_path / "b.h5", EpisodeFeatures(*empty, {"window_s": 600.0}))
    write_episode(tmp_path / "c.h5", EpisodeFeatures(*empty, {"window_s": 300.0}, held))
    a.unlink()
    stores = {e: tmp_path / f"{e}.h5" for e in "abc"}
    prints = season_prints({"a": a, "b": b, "c": c}, stores, 600.0)
    assert np.array_equal(prints["a"], held)
    assert np.array_equal(prints["b"], file_fingerprint(b, 600.0))
    assert np.array_equal(prints["c"], file_fingerprint(c, 600.0))


def test_mel_filters_are_librosas_kept_on_disk(tmp_path: Path, monkeypatch) -> None:
    """The filter bank is librosa's, computed once and then read from the cache (a broken
    cache file is computed again)."""
    import librosa

    from introdetect.features.audio import mel_filters

    monkeypatch.setenv("INTRODETECT_CACHE", str(tmp_path))
    ref = librosa.filters.mel(sr=16000, n_fft=2048, n_mels=17, fmin=300, fmax=2000)
    first = mel_filters(16000, 2048, 17, fmin=300, fmax=2000)
    assert first.dtype == ref.dtype and np.array_equal(first, ref)
    (cached,) = (tmp_path / "mel").glob("mel-16000-2048-17-*.npy")
    np.save(cached, 2 * ref)  # what the cache holds is what is used
    assert np.array_equal(mel_filters(16000, 2048, 17, fmin=300, fmax=2000), 2 * ref)
    cached.write_bytes(b"not an array")
    assert np.array_equal(mel_filters(16000, 2048, 17, fmin=300, fmax=2000), ref)


def test_offset_votes_count_every_pair_of_equal_fingerprints() -> None:
    """The vectorised vote gives what counting every pair of equal frames gives (silence
    and very frequent fingerprints left out), most votes first."""
    from collections import Counter

    from introdetect.candidates import MAX_REPEATS, offset_votes

    rng = np.random.default_rng(3)
    a = rng.integers(0, 64, 400).astype(np.uint16)  # small alphabet: many chance matches
    b = rng.integers(0, 64, 300).astype(np.uint16)
    b[100:160] = a[30:90]  # a shared stretch at offset +70
    b[200 : 200 + MAX_REPEATS + 1] = 7  # a stationary sound: too frequent to vote
    often = Counter(b.tolist())
    brute = Counter(
        j - i
        for i, x in enumerate(a.tolist())
        for j, y in enumerate(b.tolist())
        if x == y and x != 0 and often[x] <= MAX_REPEATS
    )
    got = offset_votes(a, b)
    assert got[0] == (70, brute[70]) and brute[70] == max(brute.values())
    assert all(brute[off] == n for off, n in got)
    assert [n for _, n in got] == sorted((n for _, n in got), reverse=True)


def test_a_short_intro_is_found_beside_credits_whose_theme_loops() -> None:
    """Both episodes' end credits loop a short bar of the theme: every multiple of the
    bar is an offset with more votes than the 40-frame intro the two share (111 of them,
    all above :data:`TOP_OFFSETS`). Those offsets are echoes of the credits' alignment,
    found first, and are not checked again: the intro's offset is, and it repeats."""
    from introdetect.candidates import TOP_OFFSETS, offset_matches, offset_votes, repeated_frames

    rng = np.random.default_rng(5)
    a = rng.integers(1, 1 << 16, 3000).astype(np.uint16)
    b = rng.integers(1, 1 << 16, 3000).astype(np.uint16)
    bar = rng.integers(1, 1 << 16, 10).astype(np.uint16)
    a[2000:2600] = np.tile(bar, 60)  # the credits, in both episodes
    b[1500:2100] = np.tile(bar, 60)
    a[503:543] = b[200:240]  # the intro (offset -303: no multiple of the bar)
    ranked = [off for off, _ in offset_votes(a, b, None)]
    assert ranked.index(-303) > TOP_OFFSETS  # by votes alone, never checked
    offs, masks = offset_matches(a, b)
    assert offs[0] == -500 and -303 in offs.tolist()
    assert repeated_frames(a, b)[508:538].all()
    assert not repeated_frames(a, b)[:480].any()


def test_echoes_are_other_places_of_an_accepted_alignment_not_its_neighbours() -> None:
    """A vote is an echo when the alignment accepted before matched both its frame and the
    frame it maps onto the vote's place; an offset a frame off is the same alignment
    (``NEAR``), which can match where the accepted one stops, so its votes all count."""
    from introdetect.candidates import NEAR, _Echoes

    i = np.arange(100, 140, dtype=np.int64)
    votes_i = np.concatenate([i, i, i])  # frames 100-139 vote for offsets 510, 501 and 300
    votes_j = np.concatenate([i + 510, i + 501, i + 300])
    echoes = _Echoes(votes_i, votes_j, 1000)
    assert [echoes.fresh(o) for o in (510, 501, 300)] == [40, 40, 40]
    mask = np.zeros(1000, bool)
    mask[100:140] = True  # offset 500 matched frames 100-139
    echoes.accept(500, mask)
    assert echoes.fresh(510) == 10  # 100-129 map onto 110-139, matched: echoes; 130-139 not
    assert NEAR >= 1 and echoes.fresh(501) == 40
    assert echoes.fresh(300) == 40  # a place the accepted alignment does not reach


def test_an_intro_whose_few_identical_frames_split_between_neighbouring_offsets() -> None:
    """The other episode's copy of a short intro lies a fraction of a hop off: every frame
    differs in a bit or two (bit error rate 0.125, well under ``BER_MAX``), and the few
    identical fingerprints vote for offsets 199, 200 and 201 (1, 2 and 2 votes, each under
    ``MIN_VOTES``). Counted together (``SPREAD``) they make the offset a candidate."""
    from introdetect.candidates import MIN_VOTES, offset_votes, repeated_frames

    rng = np.random.default_rng(8)
    a = rng.integers(1, 1 << 16, 2000).astype(np.uint16)
    b = rng.integers(1, 1 << 16, 2000).astype(np.uint16)
    bits = np.array([rng.choice(16, 2, replace=False) for _ in range(68)])
    flips = ((1 << bits[:, 0]) | (1 << bits[:, 1])).astype(np.uint16)
    b[300:368] = a[100:168] ^ flips  # two bits off in every frame
    for t in (5, 45):
        b[300 + t] = a[100 + t]  # offset 200
    for t in (20, 60):
        b[301 + t] = a[100 + t]  # offset 201
    b[299 + 33] = a[100 + 33]  # offset 199
    votes = dict(offset_votes(a, b, None))
    assert [votes.get(o, 0) for o in (199, 200, 201)] == [1, 2, 2]
    assert max(votes.get(o, 0) for o in (199, 200, 201)) < MIN_VOTES
    assert repeated_frames(a, b)[110:158].all()
    assert not repeated_frames(a, b)[:90].any()


def test_realignments_are_where_the_repeat_changes_place() -> None:
    off = np.full(400, NO_MATCH, np.int64)
    off[0:100] = 0  # an ident, at the same place in the other episode
    off[106:300] = 1700  # then the intro, which the other plays after a cold open
    off[320:330] = 5  # a stray match, too short to count
    assert realignments(off) == [102]  # the middle of the gap: (99 + 106) // 2
    off[106:300] = 1  # the same place (within two frames): one run, not two
    assert realignments(off) == []
    off[106:300] = NO_MATCH
    off[200:300] = 1700  # three seconds of nothing between: not one run split in two
    assert realignments(off) == []


def test_a_theme_heard_twice_in_the_other_episode_is_no_realignment() -> None:
    """The intro's theme repeats at the other episode's intro (offset 900) and, from its
    second half on, again under its end credits (offset 5000, preferred there): the
    preferred copy changes at frame 150 but the intro still matches on, so no split; an
    ident whose match ends where the intro's begins still splits."""
    offs = np.array([5000, 900, 0], np.int64)
    masks = np.zeros((3, 400), bool)
    masks[0, 150:300] = True  # the credits replay the theme's second half
    masks[1, 100:300] = True  # the other episode's intro, all of it
    off = np.full(400, NO_MATCH, np.int64)
    off[100:150], off[150:300] = 900, 5000
    assert realignments(off) == [149]  # without the matches: taken for a realignment
    assert realignments(off, (offs, masks)) == []
    masks[2, 0:100] = True  # an ident before the intro, apart in the other episode
    off[0:100] = 0
    assert realignments(off, (offs, masks)) == [99]


def test_an_ident_glued_to_the_intro_is_split_off(tmp_path: Path) -> None:
    """Every episode opens with the same 3 s studio ident; in two of four the 6 s intro
    follows it at once, in the others after a cold open. The sound repeats all through
    ident + intro where they are glued; the repeat changes place where the intro starts,
    so the answer is the intro alone, there too."""
    rng = np.random.default_rng(3)
    ident = rng.integers(1, 1 << 16, int(3 * FRAMES_PER_S), dtype=np.uint16)
    theme = rng.integers(1, 1 << 16, int(6 * FRAMES_PER_S), dtype=np.uint16)
    intro_at = {"s01e01": 3.0, "s01e02": 40.0, "s01e03": 3.0, "s01e04": 25.0}
    ids, prints, reps = list(intro_at), {}, {}
    for eid in ids:
        fp = _prints(rng, 120, ident, 0.0)
        fp[int(intro_at[eid] * FRAMES_PER_S) : int(intro_at[eid] * FRAMES_PER_S) + len(theme)] = (
            theme
        )
        prints[eid] = fp
        reps[eid] = np.zeros((240, N_CHANNELS), np.float32)
    groups = dict.fromkeys(ids, "show")
    rp = RepetitionParams()
    add_audio_share(reps, groups, prints, FPS, rp)
    glued = reps["s01e01"]
    assert glued[: int(8.5 * FPS), AUDIO_SHARE].min() > 0.6  # one run: ident + intro
    assert glued[int(2.5 * FPS) : int(3.5 * FPS) + 1, AUDIO_SPLIT].max() >= 2 / 3
    assert np.nan_to_num(glued[int(4 * FPS) :, AUDIO_SPLIT]).max() == 0.0
    for eid in ids:
        _store(tmp_path, eid, reps[eid], 120.0)
    pp = dataclasses.replace(PredictParams(), refine=False, season_consistent=False)
    sound = unsupervised_episodes(
        ids, tmp_path / "rep", tmp_path / "feat", pp, rp, groups, sound_only=True
    )
    for d in sound:
        assert abs(d.interval[0] - intro_at[d.episode_id]) <= 0.5, d
        assert abs(d.interval[1] - intro_at[d.episode_id] - 6) <= 0.5, d


def test_the_piece_that_opens_the_episode_is_the_ident_not_the_intro() -> None:
    """A 4 s ident every other episode opens with (share 1.0), glued to a 3 s intro two in
    three of them repeat (share 0.67), split where the sound realigns: the intro stays,
    though the ident holds more share. The same pieces later in the episode (a recap shot,
    then the intro): the piece with more share stays."""
    from introdetect.repetition import unsupervised_detect

    def rep(start: int) -> np.ndarray:
        r = np.zeros((200, N_CHANNELS), np.float32)
        r[start : start + 8, 3] = 1.0
        r[start + 8 : start + 14, 3] = 2 / 3
        r[start + 8, AUDIO_SPLIT] = 2 / 3
        return r

    a, b, _ = unsupervised_detect(rep(0), FPS, 1.0, 30.0, 0.5, smooth_s=0.0)
    assert (a, b) == (4.0, 7.0)
    a, b, _ = unsupervised_detect(rep(40), FPS, 1.0, 30.0, 0.5, smooth_s=0.0)
    assert (a, b) == (20.0, 24.0)


def test_the_season_step_sees_no_credits_that_run_into_the_last_fifth(tmp_path: Path) -> None:
    """The curve a model-free answer carries (what the season step re-decides on) is zero
    over long credits that start before the last fifth and run into it, not only in the
    last fifth: re-deciding an off-length answer there cannot pick the credits."""
    rng = np.random.default_rng(4)
    ids = ["s01e01", "s01e02", "s01e03"]
    reps = {eid: _pictures(200, [(10.0, 3.0), (60.0, 40.0)]) for eid in ids}  # intro, credits
    prints = {eid: _prints(rng, 100, np.zeros(0, np.uint16), 0.0) for eid in ids}
    groups, rp, pp = _season(tmp_path, reps, prints, 100.0)
    for d in unsupervised_episodes(ids, tmp_path / "rep", tmp_path / "feat", pp, rp, groups):
        assert abs(d.interval[0] - 10.0) <= 0.5 and abs(d.interval[1] - 13.0) <= 0.5, d
        assert d.probs[int(11.5 * FPS)] > 0.5
        assert d.probs[int(60.5 * FPS) :].max() == 0.0, d.probs[int(60.5 * FPS) :]


def test_the_answer_ends_where_its_pictures_stop_repeating() -> None:
    """The theme runs on for 2 s under the first shot after the intro: its sound repeats,
    the new picture does not, so the answer ends with the intro's last repeated picture.
    Half a second of run-on, or an answer whose pictures never repeat, stays as it is."""
    from introdetect.modelfree import end_where_pictures_stop

    picture = np.zeros(40, np.float32)
    picture[10:18] = 1.0  # the intro's pictures repeat over 5.0-9.0 s (fps 2)
    assert end_where_pictures_stop((5.0, 11.0), picture, 2.0, 1.0) == (5.0, 9.0)
    assert end_where_pictures_stop((5.0, 9.5), picture, 2.0, 1.0) == (5.0, 9.5)
    assert end_where_pictures_stop((12.0, 16.0), np.zeros(40), 2.0, 1.0) == (12.0, 16.0)
    similar = np.zeros(40, bool)
    similar[18:20] = True  # the intro's last shot: too short for a shared run, same picture
    assert end_where_pictures_stop((5.0, 11.0), picture, 2.0, 1.0, similar) == (5.0, 10.0)
    similar[18:22] = True
    assert end_where_pictures_stop((5.0, 11.0), picture, 2.0, 1.0, similar) == (5.0, 11.0)
    picture[:] = 0.0
    picture[10] = 1.0  # what would stay is shorter than min_len_s
    assert end_where_pictures_stop((5.0, 11.0), picture, 2.0, 1.0) == (5.0, 11.0)


def test_a_season_opening_with_an_ident_answers_past_it_and_none_where_only_it_repeats(
    tmp_path: Path,
) -> None:
    """Every episode opens with the same 2.5 s ident; two of three have a 6 s intro after a
    cold open, the third none. The ident is shared by both others (1.0), the intro by one
    (0.5): the episodes with an intro answer it, past the ident, and the episode without one
    has no intro rather than the ident the season opens with."""
    rng = np.random.default_rng(5)
    ident = rng.integers(1, 1 << 16, int(2.5 * FRAMES_PER_S), dtype=np.uint16)
    theme = rng.integers(1, 1 << 16, int(6 * FRAMES_PER_S), dtype=np.uint16)
    intro_at = {"s01e01": 40.0, "s01e02": 25.0, "s01e03": None}
    ids, prints, reps = list(intro_at), {}, {}
    for eid, at in intro_at.items():
        fp = _prints(rng, 120, ident, 0.0)
        if at is not None:
            a = int(at * FRAMES_PER_S)
            fp[a : a + len(theme)] = theme
        prints[eid] = fp
        reps[eid] = _pictures(240, [(0.0, 2.5)])
        if at is not None:  # the pictures repeat as widely as the sound
            reps[eid][int(at * FPS) : int((at + 6) * FPS), 3] = 0.5
    groups, rp, pp = _season(tmp_path, reps, prints, 120.0)
    assert reps["s01e01"][int(0.5 * FPS) : int(2 * FPS), AUDIO_SHARE].min() == 1.0
    for d in unsupervised_episodes(ids, tmp_path / "rep", tmp_path / "feat", pp, rp, groups):
        at = intro_at[d.episode_id]
        if at is None:
            assert d.interval is None, d
        else:
            assert abs(d.interval[0] - at) <= 0.5 and abs(d.interval[1] - at - 6) <= 0.5, d
            assert "past the opening ident" in d.source


def _theme_season(tmp_path: Path, sound_s: dict, picture_s: dict, at: dict):
    """Episodes whose theme sound (its first ``sound_s`` seconds) starts at ``at`` and whose
    pictures repeat for ``picture_s`` seconds from there."""
    tmp_path.mkdir()
    rng = np.random.default_rng(6)
    theme = rng.integers(1, 1 << 16, int(12 * FRAMES_PER_S), dtype=np.uint16)
    prints, reps = {}, {}
    for eid in at:
        prints[eid] = _prints(rng, 120, theme[: int(sound_s[eid] * FRAMES_PER_S)], at[eid])
        reps[eid] = _pictures(240, [(at[eid], picture_s[eid])])
    groups, rp, pp = _season(tmp_path, reps, prints, 120.0)
    return unsupervised_episodes(list(at), tmp_path / "rep", tmp_path / "feat", pp, rp, groups)


def test_an_intro_ends_with_its_sound_where_its_pictures_differ_between_episodes(
    tmp_path: Path,
) -> None:
    """A 7 s intro whose last shot differs from episode to episode (its pictures repeat for
    2-5 s, its sound for all 7 s in every episode): ending each answer where its pictures
    stop would give lengths 2-5 s, ending them with the sound gives 7 s in all, closer in
    length, so the sound's end stands. A 5 s intro whose theme runs on for 2-4 s under the
    next shot: the pictures' end stands (5 s in every episode)."""
    at = {"s01e01": 20.0, "s01e02": 35.0, "s01e03": 50.0}
    varied = _theme_season(
        tmp_path / "a", dict.fromkeys(at, 7.0), dict(zip(at, (2, 4, 5), strict=True)), at
    )
    for d in varied:
        assert abs(d.interval[0] - at[d.episode_id]) <= 0.5, d
        assert abs(d.interval[1] - at[d.episode_id] - 7.0) <= 0.5, d
        assert "sound end" in d.source
    run_on = _theme_season(
        tmp_path / "b", dict(zip(at, (7, 9, 8), strict=True)), dict.fromkeys(at, 5.0), at
    )
    for d in run_on:
        assert abs(d.interval[1] - at[d.episode_id] - 5.0) <= 0.5, d


def test_an_intro_that_opens_one_episode_is_no_ident(tmp_path: Path) -> None:
    """A 4.5 s intro opens one episode and comes after a cold open in the others; that
    episode also shares a scene with one other. Its opening run is short and something else
    repeats, but its sound repeats at the others' intros, not at their openings: an intro,
    not an ident, so it stays the answer."""
    rng = np.random.default_rng(7)
    theme = rng.integers(1, 1 << 16, int(4.5 * FRAMES_PER_S), dtype=np.uint16)
    scene = rng.integers(1, 1 << 16, int(4 * FRAMES_PER_S), dtype=np.uint16)
    intro_at = {"s01e01": 0.0, "s01e02": 20.0, "s01e03": 30.0}
    scene_at = {"s01e01": 60.0, "s01e02": 80.0}
    ids, prints, reps = list(intro_at), {}, {}
    for eid, at in intro_at.items():
        fp = _prints(rng, 120, theme, at)
        if eid in scene_at:
            a = int(scene_at[eid] * FRAMES_PER_S)
            fp[a : a + len(scene)] = scene
        prints[eid] = fp
        reps[eid] = _pictures(240, [(at, 4.5)])
        if eid in scene_at:
            reps[eid][int(scene_at[eid] * FPS) : int((scene_at[eid] + 4) * FPS), 3] = 0.5
    groups, rp, pp = _season(tmp_path, reps, prints, 120.0)
    for d in unsupervised_episodes(ids, tmp_path / "rep", tmp_path / "feat", pp, rp, groups):
        at = intro_at[d.episode_id]
        assert abs(d.interval[0] - at) <= 0.5 and abs(d.interval[1] - at - 4.5) <= 0.5, d
        assert "past the opening" not in d.source


def test_an_ident_whose_sound_repeats_too_briefly_for_a_copy_is_still_passed_over(
    tmp_path: Path,
) -> None:
    """Every episode opens with the same 2.5 s ident whose sound repeats for its first
    second only (a jingle that rings out differently over each episode's room tone): too
    short for a copy of the sound, so nothing says where else it repeats. Each episode has
    its intro after a cold open, its pictures repeating a little less widely than the
    ident's: the answer is the intro, past the ident, not the second the sound shares at
    the opening."""
    rng = np.random.default_rng(8)
    jingle = rng.integers(1, 1 << 16, int(1.0 * FRAMES_PER_S), dtype=np.uint16)
    theme = rng.integers(1, 1 << 16, int(6 * FRAMES_PER_S), dtype=np.uint16)
    intro_at = {"s01e01": 40.0, "s01e02": 25.0, "s01e03": 60.0}
    ids, prints, reps = list(intro_at), {}, {}
    for eid, at in intro_at.items():
        fp = _prints(rng, 120, jingle, 0.0)
        a = int(at * FRAMES_PER_S)
        fp[a : a + len(theme)] = theme
        prints[eid] = fp
        reps[eid] = _pictures(240, [(0.0, 2.5)])
        reps[eid][int(at * FPS) : int((at + 6) * FPS), 3] = 0.5  # its pictures vary a little
    groups, rp, pp = _season(tmp_path, reps, prints, 120.0)
    for d in unsupervised_episodes(ids, tmp_path / "rep", tmp_path / "feat", pp, rp, groups):
        at = intro_at[d.episode_id]
        assert abs(d.interval[0] - at) <= 0.5 and abs(d.interval[1] - at - 6) <= 0.5, d
        assert "past the opening ident" in d.source


def test_an_episode_that_answers_only_the_ident_another_chose_its_intro_over_has_none(
    tmp_path: Path,
) -> None:
    """A season of two opening with the same 2.5 s ident jingle (over pictures that differ):
    the first episode has a 6 s intro 40 s in whose theme the second replays only under its
    end credits (the second has no intro). Both repeat in sound alone, as widely: the first
    answers the longer, its intro, outright (nothing was passed over); the second, where
    only the ident repeats, has no intro rather than the ident."""
    rng = np.random.default_rng(9)
    ident = rng.integers(1, 1 << 16, int(2.5 * FRAMES_PER_S), dtype=np.uint16)
    theme = rng.integers(1, 1 << 16, int(6 * FRAMES_PER_S), dtype=np.uint16)
    prints = {eid: _prints(rng, 120, ident, 0.0) for eid in ("s01e01", "s01e02")}
    prints["s01e01"][int(40 * FRAMES_PER_S) : int(46 * FRAMES_PER_S)] = theme
    prints["s01e02"][int(105 * FRAMES_PER_S) : int(111 * FRAMES_PER_S)] = theme  # credits
    reps = {eid: _pictures(240, []) for eid in prints}
    groups, rp, pp = _season(tmp_path, reps, prints, 120.0)
    first, second = unsupervised_episodes(
        list(prints), tmp_path / "rep", tmp_path / "feat", pp, rp, groups
    )
    assert abs(first.interval[0] - 40) <= 0.5 and abs(first.interval[1] - 46) <= 0.5, first
    assert "past the opening" not in first.source
    assert second.interval is None, second
