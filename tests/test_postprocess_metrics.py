import dataclasses

import numpy as np
import pytest

from introdetect.decision import (
    Detection,
    combine,
    heard_despite_absence,
    known_sound,
    with_repeat_bounds,
)
from introdetect.metrics import episode_scores, interval_iou, summarize
from introdetect.params import PredictParams
from introdetect.postprocess import extract_best_interval, smooth_predictions


def test_smoothing_keeps_range_and_edges():
    p = np.array([1.0, 1, 1, 0, 0, 0, 0, 1, 1, 1])
    for method in ("gaussian", "moving_average"):
        s = smooth_predictions(p, 2.0, method, 1.0)
        assert s.shape == p.shape and s.min() >= 0 and s.max() <= 1
        assert s[0] > 0.8 and s[-1] > 0.8  # no sagging at the ends
    assert np.array_equal(smooth_predictions(p, 2.0, "none", 1.0), p)
    with pytest.raises(ValueError):
        smooth_predictions(p, 2.0, "median", 1.0)


def test_smoothing_removes_a_single_spike():
    p = np.zeros(40)
    p[10] = 1.0
    assert smooth_predictions(p, 2.0, "gaussian", 1.0).max() < 0.5


def test_best_interval_picks_the_largest_mass():
    p = np.zeros(40)
    p[4:8] = 0.6  # 2 s, weak
    p[20:32] = 0.9  # 6 s, strong
    assert extract_best_interval(p, 2.0, 0.5, 1.5, 30) == pytest.approx((10.0, 16.0, 0.9))


def test_best_interval_bounds():
    p = np.zeros(100)
    p[10:12] = 1.0  # 1 s: shorter than min
    assert extract_best_interval(p, 2.0, 0.5, 1.5, 30) is None
    p[:] = 0
    p[0:80] = 0.6
    p[30:40] = 0.95
    a, b, _ = extract_best_interval(p, 2.0, 0.5, 1.5, 10.0)  # 40 s run cut to best 10 s
    assert b - a == 10.0 and a <= 15.0 <= 20.0 <= b
    assert extract_best_interval(np.zeros(10), 2.0) is None


def test_iou_cases():
    assert interval_iou((0, 10), (5, 15)) == pytest.approx(1 / 3)
    assert interval_iou((0, 10), (10, 20)) == 0
    assert interval_iou(None, None) == 1 and interval_iou(None, (1, 2)) == 0
    assert interval_iou((1, 2), None) == 0


def test_episode_scores_and_summary():
    rows = [
        episode_scores((10.0, 20.0), (10.5, 19.0)),  # within 1 s
        episode_scores((10.0, 20.0), (12.0, 20.0)),  # start off by 2
        episode_scores(None, None),  # correct null
        episode_scores(None, (5.0, 9.0)),  # miss
    ]
    assert rows[0]["within_1s"] and not rows[1]["within_1s"] and rows[1]["within_2s"]
    s = summarize(rows)
    assert s["n"] == 4 and s["presence_acc"] == 0.75
    assert s["mean_iou"] == pytest.approx((8.5 / 10 + 8 / 10 + 1 + 0) / 4, abs=1e-4)
    assert s["iou_ge_0.5"] == 0.75 and s["within_1s"] == 0.5 and s["within_2s"] == 0.75
    assert s["mae_start_s"] == pytest.approx(1.25) and s["mae_end_s"] == pytest.approx(0.5)
    assert summarize([]) == {"n": 0}


def test_regression_fallback_needs_step_evidence():
    from introdetect.data import Episode
    from introdetect.inference import _decide
    from introdetect.params import PredictParams

    ep = Episode("e", "s", np.zeros((100, 4), np.float32), 2.0, None, None, {})
    pp = PredictParams(smoothing="none")
    reg = np.array([0.2, 0.3])  # 10 s .. 15 s of a 50 s episode
    step = np.zeros(100)
    d = _decide(ep, step, 0.9, reg, pp)
    assert d.interval is None and d.source == "no_step_evidence"
    step[20:30] = 0.4  # some evidence, below the threshold: the regression interval stands
    d = _decide(ep, step, 0.9, reg, pp)
    assert d.interval == (10.0, 15.0) and d.source == "regression"
    step[20:30] = 0.9  # clear evidence: the step curve decides
    assert _decide(ep, step, 0.9, reg, pp).source == "steps"
    assert _decide(ep, step, 0.2, reg, pp).interval is None  # presence head says no


def test_the_model_answers_nowhere_the_model_free_detector_sees_credits():
    """Credits replaying the theme start before the last fifth (60 s of a 100 s episode)
    and are shared by every other episode: the model's step head firing on them (where
    they sound like a known intro) gives no answer, and an intro it also sees early on is
    the answer; an episode whose end is past the window masks nothing."""
    from introdetect.data import Episode
    from introdetect.inference import _decide
    from introdetect.params import PredictParams
    from introdetect.repetition import AUDIO_SHARE, N_CHANNELS, credits_of

    rep = np.zeros((200, N_CHANNELS), np.float32)
    rep[120:200, 3] = rep[120:200, AUDIO_SHARE] = 1.0  # credits, 60 s to the end
    rep[20:30, 3] = rep[20:30, AUDIO_SHARE] = 1.0  # the intro, 10-15 s
    attrs = {"fps": 2.0, "duration_s": 100.0, "window_s": 600.0}
    mask = credits_of(rep, attrs, 0.5)
    assert mask[120:].all() and not mask[:119].any()
    assert credits_of(rep, {**attrs, "window_s": 100.0}, 0.5) is None  # end not seen
    ep = Episode("e", "s", np.zeros((200, 4), np.float32), 2.0, None, None, attrs)
    pp = PredictParams(smoothing="none")
    reg = np.array([0.6, 0.65])  # the regression head points at the credits too
    step = np.zeros(200)
    step[120:130] = 0.95
    assert _decide(ep, step, 0.9, reg, pp).interval == (60.0, 65.0)
    assert _decide(ep, step, 0.9, reg, pp, mask).interval is None
    step[20:30] = 0.7
    assert _decide(ep, step, 0.9, reg, pp, mask).interval == (10.0, 15.0)


def test_repeat_bounds_narrow_the_model_where_both_agree_on_the_place():
    def det(eid: str, interval, source: str = "steps") -> Detection:
        return Detection(eid, interval, 0.9, 0.8, source, np.zeros(4), 2.0)

    model = [
        det("spill", (20.0, 31.0)),  # runs into the title card; the repeat ends at 28.4
        det("ident", (12.5, 20.0)),  # the repeat includes the ident before the intro
        det("brief", (10.0, 14.0)),  # overlap of 0.5 s: another place, the model stands
        det("elsewhere", (40.0, 45.0)),
        det("none", None, "absent"),
        det("free_none", (5.0, 9.0)),
    ]
    free = [
        det("spill", (19.6, 28.4), "repetition+audio"),
        det("ident", (10.0, 20.0), "repetition+audio"),
        det("brief", (13.5, 20.0), "repetition"),
        det("elsewhere", (3.0, 8.0), "repetition"),
        det("none", (3.0, 8.0), "repetition"),
        det("free_none", None, "repetition"),
    ]
    got = {d.episode_id: d for d in with_repeat_bounds(model, free, 1.0)}
    assert got["spill"].interval == (20.0, 28.4)
    assert got["spill"].source == "steps+repetition"
    assert got["ident"].interval == (12.5, 20.0) and got["ident"].source == "steps"
    for eid in ("brief", "elsewhere", "free_none"):
        assert got[eid] == model[[d.episode_id for d in model].index(eid)], eid
    assert got["none"].interval is None


def test_repetition_first_takes_the_repeat_wherever_it_answers():
    def det(eid: str, interval, source: str, presence: float = 0.9) -> Detection:
        return Detection(eid, interval, presence, 0.8, source, np.zeros(4), 2.0)

    model = [
        det("both", (20.0, 31.0), "steps"),
        det("model_null", None, "absent", 0.2),  # a series the model never saw
        det("free_null", (5.0, 9.0), "steps"),
        det("alone", (5.0, 9.0), "steps"),  # no other episode to compare with
        det("doubted", None, "no_step_evidence"),
        det("agreed", None, "no_step_evidence"),
        # the step head sees some intro inside the model-free answer, not enough to answer
        dataclasses.replace(det("seen_inside", None, "no_step_evidence"), probs=np.full(30, 0.2)),
    ]
    free = [
        det("both", (19.6, 28.4), "repetition+audio", 1.0),
        det("model_null", (3.0, 8.0), "repetition+audio", 0.5),
        det("free_null", None, "repetition+audio", 0.0),
        det("alone", None, "alone in its series 'x'", 0.0),
        # a shot recapped in one of the two other episodes: the model finds no intro either
        dataclasses.replace(det("doubted", (4.0, 9.0), "repetition+audio"), agreed=(1, 2)),
        dataclasses.replace(det("agreed", (4.0, 9.0), "repetition+audio"), agreed=(2, 2)),
        dataclasses.replace(det("seen_inside", (4.0, 9.0), "repetition+audio"), agreed=(1, 2)),
    ]
    pp = PredictParams()
    got = {d.episode_id: d for d in combine(model, free, pp)}
    assert got["both"].interval == (19.6, 28.4)
    assert got["both"].source == "repetition+audio, model steps+repetition"
    assert got["model_null"].interval == (3.0, 8.0) and got["model_null"].presence == 0.2
    assert got["doubted"].interval is None
    assert "agreed by 1 of 2 other episodes" in got["doubted"].source
    assert got["agreed"].interval == (4.0, 9.0)
    assert got["seen_inside"].interval == (4.0, 9.0)
    # the season's repetition finds none and the model's answer sounds like no known intro
    assert got["free_null"].interval is None
    assert got["free_null"].source.endswith("sounds like no known intro")
    assert got["alone"].interval == (5.0, 9.0)  # nothing to compare with: the model's
    only_bounds = dataclasses.replace(pp, repetition_first=False)
    got = {d.episode_id: d for d in combine(model, free, only_bounds)}
    assert got["both"].interval == (20.0, 28.4) and got["model_null"].interval is None
    neither = dataclasses.replace(only_bounds, repeat_bounds=False)
    assert all(a is b for a, b in zip(combine(model, free, neither), model, strict=True))


def test_known_intro_stands_against_a_repeat_that_sounds_like_none():
    """A seen series' two-episode season: the model's answer sounds like a labelled intro
    (audio template score 0.9), the pair's repeat (an ident-like opening) does not (0.6)."""
    known = np.full(120, 0.6, np.float32)  # 60 s at 2 steps a second
    known[40:50] = 0.9  # 20-25 s sounds like a known intro

    def det(eid: str, interval, source: str, agreed=None) -> Detection:
        return Detection(
            eid, interval, 0.9, 0.8, source, np.zeros(120), 2.0, agreed=agreed, known=known
        )

    model = [
        det("ident", (20.0, 25.0), "steps"),
        det("both_known", (20.0, 25.5), "steps"),
        det("doubted_known", None, "no_step_evidence"),
        det("doubted", None, "no_step_evidence"),
        dataclasses.replace(det("unseen", (20.0, 25.0), "steps"), known=None),
        det("free_none", (20.0, 25.0), "steps"),  # the repeat finds none; sounds known
    ]
    free = [
        det("ident", (0.0, 4.0), "repetition+audio"),
        det("both_known", (20.2, 24.9), "repetition+audio"),
        det("doubted_known", (20.0, 25.0), "repetition+audio", agreed=(0, 1)),
        det("doubted", (0.0, 4.0), "repetition+audio", agreed=(0, 1)),
        det("unseen", (0.0, 4.0), "repetition+audio"),
        det("free_none", None, "repetition+audio"),
    ]
    pp = PredictParams()
    got = {d.episode_id: d for d in combine(model, free, pp)}
    assert got["ident"].interval == (20.0, 25.0)
    assert "known intro; model-free [0.0, 4.0] sounds less like a known intro" in (
        got["ident"].source
    )
    assert got["both_known"].interval == (20.2, 24.9)  # the repeat's sharper edges
    assert got["doubted_known"].interval == (20.0, 25.0)  # not doubted: it sounds known
    assert got["doubted_known"].source.endswith("no_step_evidence, sounds like a known intro")
    assert got["doubted"].interval is None
    assert got["unseen"].interval == (0.0, 4.0)  # no known intros: the repeat, as before
    assert got["free_none"].interval == (20.0, 25.0)  # the model's: it sounds known
    got = {
        d.episode_id: d for d in combine(model, free, dataclasses.replace(pp, known_intros=False))
    }
    assert got["ident"].interval == (0.0, 4.0) and got["doubted_known"].interval is None
    assert got["free_none"].interval == (20.0, 25.0)
    assert known_sound(model[0], (20.0, 25.0)) == pytest.approx(0.9)
    assert known_sound(model[4], (20.0, 25.0)) is None


def test_an_ident_that_sounds_unlike_the_series_known_intro_is_not_its_intro():
    """A series the model was trained on (``known_series``), the model finds no intro and the
    repeat answers a 2.5 s run opening the episode that sounds nothing like the series'
    labelled intro (0.4): the ident, so no intro. The same answer in a series the model never
    saw, a longer opening run, one that sounds a little like the intro (0.7), or a run later
    in the episode: the repeat's answer, as before."""
    plain = np.full(120, 0.4, np.float32)
    like = plain.copy()
    like[:5] = 0.7

    def det(eid: str, interval, source: str, seen: bool = True, known=plain) -> Detection:
        return Detection(
            eid, interval, 0.4, 0.0, source, np.zeros(120), 2.0, known=known, known_series=seen
        )

    cases = {  # episode: (its series known to the model, the repeat's answer, sound, stays)
        "ident": (True, (0.0, 2.5), plain, False),
        "unseen": (False, (0.0, 2.5), plain, True),
        "long": (True, (0.0, 6.0), plain, True),
        "sounds_like": (True, (0.0, 2.5), like, True),
        "later": (True, (30.0, 32.5), plain, True),
    }
    model = [det(e, None, "absent", seen, k) for e, (seen, _, k, _) in cases.items()]
    free = [det(e, iv, "repetition+audio") for e, (_, iv, _, _) in cases.items()]
    got = {d.episode_id: d for d in combine(model, free, PredictParams())}
    for eid, (_, iv, _, stays) in cases.items():
        assert got[eid].interval == (iv if stays else None), eid
    assert "opens the episode and sounds unlike the series' known intro" in got["ident"].source
    off = dataclasses.replace(PredictParams(), known_intros=False)
    assert combine(model, free, off)[0].interval == (0.0, 2.5)


def test_a_step_run_that_sounds_like_a_known_intro_answers_despite_the_presence_head():
    """The presence head says "no intro" (0.43) while the step head finds a run: where the
    episode's series is one the model was trained on and the run sounds like its labelled
    intro (0.94), the part of the run that does is the answer; a run that sounds unlike it
    (0.5), a series the model never saw, a step curve with no run, or
    ``predict.known_intros`` off: no intro."""
    probs = np.zeros(120, np.float32)
    probs[36:60] = 0.9  # 18-30 s: the step curve spills over the intro's shots
    flat = np.full(120, 0.3, np.float32)
    known = np.full(120, 0.4, np.float32)
    known[40:56] = 0.94  # 20-28 s: where it sounds like the known intro (the answer)
    unlike = np.full(120, 0.5, np.float32)

    def det(eid, curve=probs, heard=known, seen=True, source="absent") -> Detection:
        return Detection(eid, None, 0.43, 0.0, source, curve, 2.0, known=heard, known_series=seen)

    dets = [
        det("heard"),
        det("unlike", heard=unlike),
        det("unseen", seen=False),
        det("no_run", curve=flat),
        det("no_steps", source="no_step_evidence"),
    ]
    got = {d.episode_id: d for d in heard_despite_absence(dets, PredictParams())}
    assert got["heard"].interval == (20.0, 28.0)
    assert got["heard"].source == "steps, a known intro (presence 0.43)"
    assert got["heard"].confidence == pytest.approx(0.43 * 0.9)
    assert [got[e].interval for e in ("unlike", "unseen", "no_run", "no_steps")] == [None] * 4
    off = dataclasses.replace(PredictParams(), known_intros=False)
    assert heard_despite_absence(dets, off)[0].interval is None
