"""The season agrees on its intro: an answer moves to where the other episodes' answers
repeat in it (introdetect.agreement), from copies the sound matching finds
(introdetect.candidates.copy_runs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np

from introdetect.agreement import agree, projections
from introdetect.candidates import season_sound
from introdetect.decision import Detection
from introdetect.features.audio import FP_HOP, FP_SR
from introdetect.modelfree import unsupervised_episodes
from introdetect.params import PredictParams, RepetitionParams
from introdetect.repetition import N_CHANNELS, read_copies, write_copies

FPS = 2.0
FRAMES_PER_S = FP_SR / FP_HOP


def _det(eid: str, iv: tuple[float, float] | None) -> Detection:
    return Detection(eid, iv, 1.0, 1.0, "repetition+audio", np.zeros(200), FPS)


def _runs(*rows: tuple[int, int, int]) -> np.ndarray:
    return np.asarray(rows, np.int32).reshape(-1, 3)


# e1 answered a scene (steps 20-32) that e2 and e3 replay in their recaps; e2 and e3 answered
# their intros, which repeat in e1 at steps 100-108 and in each other
COPIES = {
    "e1": {"e2": _runs((20, 32, 4), (100, 108, 60)), "e3": _runs((20, 32, 10), (100, 108, 40))},
    "e2": {"e1": _runs((4, 16, 20), (60, 68, 100)), "e3": _runs((60, 68, 40))},
    "e3": {"e1": _runs((10, 22, 20), (40, 48, 100)), "e2": _runs((40, 48, 60))},
}


def _within(d: Detection, span: tuple[int, int]) -> Detection:
    return dataclasses.replace(d, interval=(span[0] / FPS, span[1] / FPS))


def test_an_answer_no_other_episode_agrees_with_moves_to_where_theirs_repeat() -> None:
    dets = [_det("e1", (10.0, 16.0)), _det("e2", (30.0, 34.0)), _det("e3", (20.0, 24.0))]
    out = agree(dets, COPIES, _within)
    assert out[0].interval == (50.0, 54.0)
    assert out[0].source.endswith("+agreed")
    assert [d.interval for d in out[1:]] == [d.interval for d in dets[1:]]  # they agree
    assert [d.agreed for d in out] == [(2, 2)] * 3  # after the move, every answer agrees


def test_one_other_episode_is_not_enough_and_no_intro_stays_no_intro() -> None:
    dets = [_det("e1", (10.0, 16.0)), _det("e2", (30.0, 34.0)), _det("e3", None)]
    out = agree(dets, COPIES, _within)
    assert [d.interval for d in out] == [d.interval for d in dets]  # one vote; a null stays
    assert [d.agreed for d in out] == [(0, 2), (0, 2), None]


def test_projections_finds_every_place_a_span_repeats() -> None:
    # the theme repeats at the other's intro and again under its end credits; a stray
    # one-step match covers too little of the span to count
    runs = _runs((10, 18, 40), (10, 18, 160), (12, 13, 90))
    assert projections(runs, (10, 18)) == [(40, 48), (160, 168)]
    assert projections(runs, (30, 40)) == []


def test_season_sound_copies_point_to_every_place_the_sound_repeats() -> None:
    rng = np.random.default_rng(3)
    theme = rng.integers(1, 1 << 16, int(6 * FRAMES_PER_S), dtype=np.uint16)

    def episode(*at_s: float) -> np.ndarray:
        fp = rng.integers(1, 1 << 16, int(90 * FRAMES_PER_S), dtype=np.uint16)
        for a in at_s:
            fp[int(a * FRAMES_PER_S) : int(a * FRAMES_PER_S) + len(theme)] = theme
        return fp

    prints = {"e1": episode(10.0), "e2": episode(30.0, 75.0)}  # e2: intro and credits
    sound = season_sound(prints, dict.fromkeys(prints, 180), FPS, RepetitionParams())
    runs = sound["e1"][2]["e2"]
    places = projections(runs, (21, 31))  # e1's theme, 10.5-15.5 s
    assert len(places) == 2
    assert abs(places[0][0] - 61) <= 1 and abs(places[1][0] - 151) <= 1


def _store(tmp: Path, eid: str, rep: np.ndarray, copies: dict) -> None:
    (tmp / "rep").mkdir(exist_ok=True)
    (tmp / "feat").mkdir(exist_ok=True)
    np.save(tmp / "rep" / f"{eid}.npy", rep)
    write_copies(copies, tmp / "rep" / f"{eid}.npy")
    with h5py.File(tmp / "feat" / f"{eid}.h5", "w") as f:
        f.attrs.update({"fps": FPS, "duration_s": 100.0, "window_s": 600.0})


def _shared(*spans: tuple[int, int]) -> np.ndarray:
    rep = np.zeros((200, N_CHANNELS), np.float32)
    for a, b in spans:
        rep[a:b, 3] = rep[a:b, 4] = 1.0
    return rep


def test_the_model_free_detector_takes_the_answer_the_season_agrees_on(tmp_path: Path) -> None:
    # e1's recapped scene is longer than the intro and shared as widely: alone, e1 takes it
    _store(tmp_path, "e1", _shared((20, 32), (100, 108)), COPIES["e1"])
    _store(tmp_path, "e2", _shared((60, 68)), COPIES["e2"])
    _store(tmp_path, "e3", _shared((40, 48)), COPIES["e3"])
    assert read_copies(tmp_path / "rep" / "e1.npy").keys() == {"e2", "e3"}
    ids, groups = ["e1", "e2", "e3"], dict.fromkeys(["e1", "e2", "e3"], "show")
    pp = dataclasses.replace(PredictParams(), refine=False, season_consistent=False)

    def answers(**kw) -> dict:
        p = dataclasses.replace(pp, **kw)
        dets = unsupervised_episodes(
            ids, tmp_path / "rep", tmp_path / "feat", p, RepetitionParams(), groups
        )
        return {d.episode_id: d.interval for d in dets}

    alone = answers(season_agree=False)
    assert alone["e1"][0] < 17.0  # the scene
    agreed = answers()
    assert 49.0 <= agreed["e1"][0] <= 51.0 and 53.0 <= agreed["e1"][1] <= 55.0
    assert agreed["e2"] == alone["e2"] and agreed["e3"] == alone["e3"]


def test_copies_round_trip_under_any_episode_id(tmp_path: Path) -> None:
    copies = {"Série 1 — E02 (1080p).x": _runs((1, 5, 7)), "-22_01": _runs()}
    write_copies(copies, tmp_path / "ep.npy")
    back = read_copies(tmp_path / "ep.npy")
    assert back.keys() == copies.keys()
    assert all(np.array_equal(back[k], copies[k]) for k in copies)
    assert read_copies(tmp_path / "none.npy") == {}  # older channels: nothing to agree with
    (tmp_path / "bad.copies.npz").write_bytes(b"PK\x03\x04 cut short")
    assert read_copies(tmp_path / "bad.npy") == {}  # a warning, not a failed season
