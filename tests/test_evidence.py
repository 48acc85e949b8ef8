"""Known-intro templates, content channels, the input spec's round trip through a
checkpoint, season-consistent decisions and frame-accurate refinement."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from conftest import encode_h264

from introdetect.data import RawEpisode
from introdetect.decision import Detection, best_window, season_consistent
from introdetect.evidence import EVIDENCE_CHANNELS, Centre, match_template, template_channels
from introdetect.inputs import InputSpec, training_spec
from introdetect.refine import refine_interval


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_template_match_finds_the_intro_and_tolerates_a_slip():
    rng = np.random.default_rng(0)
    ep = _unit(rng.standard_normal((300, 64)).astype(np.float32))
    tmpl = ep[100:116].copy()
    s = match_template(ep, tmpl)
    assert s[100:116].min() > 0.99 and np.delete(s, range(99, 117)).max() < 0.5
    # the same intro one step longer per frame (a frame-rate change): still a match
    stretched = np.repeat(tmpl, 2, axis=0)[::2][:16]
    slipped = np.concatenate([tmpl[:8], tmpl[7:15]])
    assert match_template(ep, slipped)[100:116].mean() > 0.85
    assert match_template(ep, stretched)[100:116].mean() > 0.85


def _raw(eid, series, n, intro, seed, shared):
    rng = np.random.default_rng(seed)
    vis = rng.standard_normal((n, 512)).astype(np.float32)
    aud = np.abs(rng.standard_normal((n, 33))).astype(np.float32)
    if intro is not None:
        a = int(intro[0] * 2)
        vis[a : a + len(shared[0])] = shared[0]
        aud[a : a + len(shared[1])] = shared[1]
    return RawEpisode(eid, series, vis, aud, None, 2.0, *(intro or (None, None)), {})


def _season(n: int, seed: int) -> list[RawEpisode]:
    """``n`` episodes of one series, each with the same 6 s intro a little later."""
    rng = np.random.default_rng(seed)
    shared = (
        rng.standard_normal((12, 512)).astype(np.float32) * 3,
        np.abs(rng.standard_normal((12, 33))).astype(np.float32) * 3,
    )
    return [_raw(f"e{i}", "s", 120, (10.0 + 7 * i, 16.0 + 7 * i), i, shared) for i in range(n)]


def test_known_intro_channel_in_training_leaves_out_the_episode_itself(tmp_path):
    raws = _season(4, 1)
    spec = training_spec(raws, True, False, True, False)
    assert len(spec.templates) == 4
    ep = spec.episode(raws[0], training=True)
    col = EVIDENCE_CHANNELS.index("tmpl_vis")
    a, b = 20, 32  # the intro's steps
    # found by the other 3 (a one-step slip is allowed, so the step before counts too)
    assert ep.x[a:b, col].mean() > 0.9 > ep.x[: a - 1, col].max()
    assert np.abs(ep.x_alt[:, col]).max() == 0.0  # as if its series were unseen: no template
    # the spec (centre + templates) survives a checkpoint loaded with weights_only=True
    meta = spec.to_meta()
    torch.save(meta, tmp_path / "spec.pt")
    back = InputSpec.from_meta(torch.load(tmp_path / "spec.pt", weights_only=True))
    assert np.allclose(back.build(raws[1]), spec.build(raws[1]), atol=1e-2)
    # what decision.repetition_first reads: the audio known-intro channel, all templates
    heard = spec.known_sound(raws[1])
    assert np.allclose(heard, spec.build(raws[1])[:, EVIDENCE_CHANNELS.index("tmpl_aud")])
    assert heard[34:46].mean() > 0.9 > heard[:33].max()
    assert training_spec(raws, True, True, False, False).known_sound(raws[1]) is None
    # which series' intros it knows (decision._ident_not_intro), through a checkpoint too
    assert spec.taught_series() == back.taught_series() == {"s"}
    assert training_spec(raws, True, True, False, False).taught_series() == set()
    # the repetition channels come last, and the training episode says how many
    # (train.drop_repetition blanks them)
    assert ep.rep_cols == 0
    rep = np.random.default_rng(3).random((120, 6)).astype(np.float32)
    raws = [dataclasses.replace(e, rep=rep) for e in raws]
    for audio_share, n in ((False, 4), (True, 5)):
        spec = training_spec(raws, True, False, True, True, audio_share=audio_share)
        ep = spec.episode(raws[0], training=True)
        assert ep.rep_cols == n and np.array_equal(ep.x[:, -n:], rep[:, :n])


def test_a_model_can_read_one_group_of_evidence_alone(tmp_path):
    raws = _season(3, 2)
    full = training_spec(raws, True, False, True, False)
    x = full.build(raws[1])
    for groups, names in [
        (("position",), ["pos_rel", "pos_start", "pos_end"]),
        (("content", "known"), [n for n in EVIDENCE_CHANNELS if not n.startswith("pos")]),
    ]:
        spec = training_spec(raws, True, False, True, False, evidence_groups=groups)
        cols = [EVIDENCE_CHANNELS.index(n) for n in names]
        assert np.array_equal(spec.build(raws[1]), x[:, cols])
        torch.save(spec.to_meta(), tmp_path / "spec.pt")
        back = InputSpec.from_meta(torch.load(tmp_path / "spec.pt", weights_only=True))
        assert back.evidence_groups == groups and back.build(raws[1]).shape[1] == len(names)
    # without the known-intro channels the model neither reads nor reports them
    position = training_spec(raws, True, False, True, False, evidence_groups=("position",))
    assert position.known_sound(raws[1]) is None
    assert position.episode(raws[0], training=True).x_alt is None
    # a checkpoint from before the groups existed reads every channel
    meta = full.to_meta()
    del meta["evidence_groups"]
    assert InputSpec.from_meta(meta).build(raws[1]).shape == x.shape


def test_template_channels_are_zero_without_templates():
    c = Centre(np.zeros(4, np.float32), np.zeros(2, np.float32))
    d = c.describe(np.ones((10, 4), np.float32), np.ones((10, 3), np.float32))
    assert not template_channels(d, []).any()


def _det(eid, iv, probs):
    return Detection(eid, iv, 0.9, 0.8, "steps", np.asarray(probs, float), 2.0)


def test_season_consistency_fixes_the_odd_length_out():
    curve = np.zeros(100)
    curve[20:32] = 0.9  # a 6 s intro ...
    curve[32:50] = 0.55  # ... with the theme running on, over threshold in one episode
    dets = [_det(f"e{i}", (10.0, 16.0), curve) for i in range(3)]
    dets.append(_det("odd", (10.0, 25.0), curve))
    out = season_consistent(dets, {d.episode_id: "s" for d in dets}, min_mean=0.5)
    assert out[3].interval == (10.0, 16.0) and out[3].source.endswith("+season")
    assert [d.interval for d in out[:3]] == [(10.0, 16.0)] * 3
    assert best_window(curve, 2.0, 6.0)[:2] == (10.0, 16.0)
    asked = []

    def may_move(d, iv):  # the model-free detector: not from a quiet run onto dialogue
        asked.append((d.episode_id, iv))
        return False

    kept = season_consistent(dets, {d.episode_id: "s" for d in dets}, 0.5, may_move=may_move)
    assert kept[3].interval == (10.0, 25.0) and asked == [("odd", (10.0, 16.0))]


def _three_shots(tmp_path, seed: int, frames: int, cuts: tuple[int, int]):
    """A 25 fps clip of three random 3x4 colour-block shots, cut at frames ``cuts``."""
    rng = np.random.default_rng(seed)
    shots = [rng.integers(0, 255, (3, 4, 3), dtype=np.uint8) for _ in range(3)]

    def gen():
        for i in range(frames):
            k = 0 if i < cuts[0] else (1 if i < cuts[1] else 2)
            yield np.kron(shots[k], np.ones((18, 16, 1), np.uint8)) + np.uint8(i % 3)

    return encode_h264(tmp_path / "c.mp4", gen())


def test_refine_snaps_to_the_cut(tmp_path):
    """Coarse boundaries half a second off move to the cuts at 4.0 s and 9.0 s (25 fps)."""
    clip = _three_shots(tmp_path, 3, 300, (100, 225))
    (a, b), moved = refine_interval(clip, (4.5, 8.5), search_s=1.5)
    assert moved == 2 and (a, b) == (4.0, 9.0)


def test_refine_an_intro_that_opens_the_file_starts_at_its_first_frame(tmp_path):
    """An intro playing from the first frame, with an inner cut at 0.8 s: the start stays at
    0.0 (a cut from black) instead of moving to the inner cut; the end still snaps to 4.0 s."""
    clip = _three_shots(tmp_path, 5, 200, (20, 100))
    (a, b), moved = refine_interval(clip, (0.3, 4.5), search_s=1.5)
    assert (a, b) == (0.0, 4.0) and moved == 2
    # the end of a short intro near the file start never snaps to the first frame
    (a, b), _ = refine_interval(clip, (0.3, 1.0), search_s=1.5)
    assert b >= 0.8


def test_refine_prefers_the_cut_beside_the_coarse_boundary_to_a_stronger_one_inside(tmp_path):
    """A soft cut at 4.0 s (the intro's start) beside the coarse start 4.1 s, a hard cut
    between two shots of the intro at 5.0 s: the coarse boundary is good to about a step
    (0.5 s), so the soft cut wins though the hard one is three times as strong."""
    levels = [(100, 0), (140, 40), (250, 110)]  # (grey, blue) per shot

    def frames():
        for i in range(250):
            g, b = levels[0 if i < 100 else (1 if i < 125 else 2)]
            f = np.full((54, 64, 3), g, np.uint8)
            f[..., 2] = b
            yield f + np.uint8(i % 3)

    clip = encode_h264(tmp_path / "c.mp4", frames())
    (a, _), _ = refine_interval(clip, (4.1, 8.0), search_s=1.5, step_s=0.5)
    assert a == 4.0
