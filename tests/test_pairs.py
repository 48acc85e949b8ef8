"""The intro of a small season that one episode lacks (introdetect.pairs): two episodes that
share a quiet run answer it; the third keeps its null."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from test_agreement import _runs, _store
from test_speech import _sound, _write

from introdetect.decision import Detection, repetition_first
from introdetect.modelfree import _paired, unsupervised_episodes
from introdetect.pairs import pair_runs, quiet_pairs
from introdetect.params import PredictParams, RepetitionParams
from introdetect.repetition import N_CHANNELS

FPS = 2.0
STEPS = 56  # 28 s episodes


def _rep(*spans: tuple[int, int], picture: bool = True, share: float = 0.5) -> np.ndarray:
    rep = np.zeros((STEPS, N_CHANNELS), np.float32)
    for a, b in spans:
        rep[a:b, 4] = share
        if picture:
            rep[a:b, 3] = share
    return rep


def test_pair_runs_are_shared_in_sound_and_picture_away_from_ident_and_credits() -> None:
    rep = _rep((0, 6), (10, 16), (20, 21), (46, 56))  # ident, intro, a blip, credits
    rep[30:36, 4] = 0.5  # a music cue under other pictures: sound alone
    rep[13, 4] = 0.0  # one step whose sound failed to match
    assert pair_runs(rep, FPS, 28.0, 0.5, 1.0, 30.0) == [(10, 16)]
    assert pair_runs(rep, FPS, 28.0, 0.5, 1.0, 30.0, sound_only=True) == [(10, 16), (30, 36)]
    third, quarter = _rep((10, 16), share=1 / 3), _rep((10, 16), share=0.25)
    assert pair_runs(third, FPS, 28.0, 0.5, 1.0, 30.0) == [(10, 16)]  # one of three others
    assert pair_runs(quarter, FPS, 28.0, 0.5, 1.0, 30.0) == []  # one of four
    rep[:, 4] = np.nan  # no audio: nothing to pair
    assert pair_runs(rep, FPS, 28.0, 0.5, 1.0, 30.0) == []


def test_a_run_glued_to_the_opening_ident_is_cut_where_the_sound_realigns() -> None:
    """The ident (steps 0-5, every other episode) and, right after it, the intro (6-15, half
    of them), one step between them whose sound matched nowhere: one run from the start,
    which opens the episode; cut where the others' copies change place, the intro is a
    candidate of its own."""
    rep = _rep((0, 6), (6, 16))
    rep[:6, 3:5] = 1.0
    rep[6, 4] = 0.0  # the dropout between them (filled)
    assert pair_runs(rep, FPS, 28.0, 0.5, 1.0, 30.0) == []  # without the realignment
    rep[6, 5] = 0.5  # half of the others repeat the sound before and after at other places
    assert pair_runs(rep, FPS, 28.0, 0.5, 1.0, 30.0) == [(6, 16)]


class _Quiet:
    def is_quiet(self, span: tuple[float, float]) -> bool:
        return True


def test_an_episode_pairs_with_a_settled_answer_of_another() -> None:
    """e1 answered its intro (steps 32-38) and keeps it; e2 has none: its copy of e1's
    intro (6-16, glued to its ident) pairs with e1's answer and becomes e2's answer. An
    episode whose answer is settled pairs only through that answer."""
    attrs = {"fps": FPS, "duration_s": 28.0, "window_s": 600.0}
    e2 = _rep((0, 6), (6, 16))
    e2[:6, 3:5] = 1.0
    e2[6, 5] = 0.5
    inputs = {"e1": (_rep((32, 38)), attrs), "e2": (e2, attrs)}
    copies = {"e1": {"e2": _runs((32, 38, 6))}, "e2": {"e1": _runs((6, 12, 32))}}
    settled = Detection("e1", (16.0, 19.0), 0.5, 0.5, "repetition+audio", np.zeros(STEPS), FPS)
    found = {"e1": settled, "e2": Detection("e2", None, 0.0, 0.0, "repetition", e2[:, 4], FPS)}
    heard = dict.fromkeys(found, _Quiet())
    pp, rp = PredictParams(), RepetitionParams()
    got = _paired(found, inputs, copies, heard, GROUPS, pp, rp, False, dict.fromkeys(found, False))
    assert set(got) == {"e2"} and got["e2"].paired and "paired" in got["e2"].source
    assert got["e2"].interval == pytest.approx((3.0, 8.0))


# e1: a recap (steps 8-15) of e3's scene (8-15), and the intro (32-38) that e2 has at 16-22;
# e3 has no intro
COPIES = {
    "e1": {"e2": _runs((32, 38, 16)), "e3": _runs((8, 15, 8))},
    "e2": {"e1": _runs((16, 22, 32))},
    "e3": {"e1": _runs((8, 15, 8))},
}
RUNS = {"e1": [(8, 15), (32, 38)], "e2": [(16, 22)], "e3": [(8, 15)]}
SPOKEN = {("e1", (4.0, 7.5)), ("e3", (4.0, 7.5))}


def _q(eid: str, span: tuple[float, float]) -> bool:
    return (eid, span) not in SPOKEN


GROUPS = dict.fromkeys(RUNS, "show")
RATES = dict.fromkeys(RUNS, FPS)


def test_the_quiet_pair_is_taken_and_the_longer_spoken_one_is_not() -> None:
    got = quiet_pairs(RUNS, COPIES, GROUPS, RATES, lambda e, s: (e, s) not in SPOKEN)
    assert got == {"e1": (32, 38), "e2": (16, 22)}


def test_an_episode_is_in_one_pair_at_most_the_longer_first() -> None:
    got = quiet_pairs(RUNS, COPIES, GROUPS, RATES, lambda e, s: True)
    assert got == {"e1": (8, 15), "e3": (8, 15)}  # e2 has no one left to pair with


def test_a_third_episode_pairs_through_the_run_an_episode_answers_not_another() -> None:
    runs = {**RUNS, "e4": [(20, 26)]}  # e4 shares the intro with e1
    copies = {**COPIES, "e1": {**COPIES["e1"], "e4": _runs((32, 38, 20))}}
    copies["e4"] = {"e1": _runs((20, 26, 32))}
    got = quiet_pairs(runs, copies, dict.fromkeys(runs, "show"), dict.fromkeys(runs, FPS), _q)
    assert got == {"e1": (32, 38), "e2": (16, 22), "e4": (20, 26)}  # e3 stays out


def test_copies_one_way_only_or_across_seasons_make_no_pair() -> None:
    one_way = {**COPIES, "e2": {}}
    quiet = lambda e, s: (e, s) not in SPOKEN  # noqa: E731
    assert quiet_pairs(RUNS, one_way, GROUPS, RATES, quiet) == {}
    apart = {**GROUPS, "e2": "another show"}
    assert quiet_pairs(RUNS, COPIES, apart, RATES, quiet) == {}


@pytest.fixture(scope="module")
def season(tmp_path_factory) -> Path:
    """Three 28 s episodes with real sound: e1 a recap of dialogue (4-7.5 s) and the theme
    (16-19 s), e2 the theme (8-11 s), e3 the recapped scene (4-7.5 s) and no intro; each
    shared with exactly half of the others."""
    tmp = tmp_path_factory.mktemp("pairs")
    room, speech, theme = _sound("room", 4.0), _sound("speech", 3.5), _sound("theme", 3.0)
    sounds = {
        "e1": [room, speech, _sound("room", 4.5), room, theme, room, room, _sound("room", 1.0)],
        "e2": [room, room, theme, room, room, room, room, _sound("room", 1.0)],
        "e3": [room, speech, _sound("room", 4.5), room, room, room, room],
    }
    for eid, parts in sounds.items():
        _write(tmp / f"{eid}.mp4", np.concatenate(parts), 28.0)
    _store(tmp, "e1", _rep((8, 15), (32, 38)), COPIES["e1"])
    _store(tmp, "e2", _rep((16, 22)), COPIES["e2"])
    _store(tmp, "e3", _rep((8, 15)), COPIES["e3"])
    return tmp


def _answers(tmp: Path, **kw) -> dict[str, Detection]:
    pp = dataclasses.replace(PredictParams(), refine=False, season_consistent=False, **kw)
    videos = {e: tmp / f"{e}.mp4" for e in RUNS}
    dets = unsupervised_episodes(
        list(RUNS), tmp / "rep", tmp / "feat", pp, RepetitionParams(), GROUPS, videos
    )
    return {d.episode_id: d for d in dets}


def test_a_season_of_three_one_without_intro_answers_the_quiet_pair(season: Path) -> None:
    got = _answers(season)
    assert got["e1"].interval == pytest.approx((16.0, 19.0), abs=0.6)
    assert got["e2"].interval == pytest.approx((8.0, 11.0), abs=0.6)
    assert got["e3"].interval is None  # its recapped scene is dialogue
    assert got["e1"].paired and got["e2"].paired and not got["e3"].paired
    assert "paired" in got["e1"].source


@pytest.mark.parametrize("off", ["speech", "quiet_pairs"])
def test_without_the_speech_cue_nothing_is_paired(season: Path, off: str) -> None:
    got = _answers(season, **{off: False})
    assert all(d.interval is None for d in got.values())


def test_the_model_does_not_doubt_a_paired_answer(season: Path) -> None:
    free = list(_answers(season).values())
    model = [
        Detection(d.episode_id, None, 0.9, 0.0, "no_step_evidence", np.zeros(STEPS), FPS)
        for d in free
    ]
    got = {d.episode_id: d.interval for d in repetition_first(model, free)}
    assert got["e1"] is not None and got["e2"] is not None and got["e3"] is None
    unpaired = [dataclasses.replace(d, paired=False) for d in free]
    got = {d.episode_id: d.interval for d in repetition_first(model, unpaired)}
    assert got["e1"] is None  # one of two others agrees: the model's "no intro" stands
