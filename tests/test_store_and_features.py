import json
import logging

import numpy as np
import pytest
import torch
from conftest import decode, encode_h264, make_clip

from introdetect.features.audio import (
    FP_BANDS,
    FP_HOP,
    FP_N_FFT,
    FP_SR,
    HOP,
    N_FFT,
    StepAudio,
    file_fingerprint,
    fingerprint,
    mel_filters,
    step_audio_features,
)
from introdetect.features.extract import featurize_episode, featurize_many
from introdetect.features.visual import WeightsError, load_backbone, resolve_weights
from introdetect.params import FeatureParams
from introdetect.store import (
    EpisodeFeatures,
    StoreError,
    check_compatible,
    feature_config,
    is_current,
    read_episode,
    read_prints,
    source_fingerprint,
    write_episode,
)

FP = FeatureParams(weights="random", frame_size=32, batch_size=4)


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("random", "cpu", "fp32")


def test_store_round_trip_is_atomic(tmp_path):
    feats = EpisodeFeatures(
        np.random.rand(5, 512).astype(np.float16),
        np.random.rand(5, 33).astype(np.float32),
        np.arange(5, dtype=np.float32) / 2,
        {"episode_id": "x", "fps": 2.0, "has_audio": True},
    )
    path = tmp_path / "x.h5"
    write_episode(path, feats)
    back = read_episode(path)
    assert np.array_equal(back.visual, feats.visual) and np.array_equal(back.audio, feats.audio)
    assert back.attrs["episode_id"] == "x" and back.attrs["fps"] == 2.0
    assert [p.name for p in tmp_path.iterdir()] == ["x.h5"]  # no temp file left behind
    (tmp_path / "torn.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 10)
    with pytest.raises(StoreError, match="torn.h5"):
        read_episode(tmp_path / "torn.h5")
    assert not is_current(tmp_path / "torn.h5", {}, "")


def test_check_compatible_refuses_other_backbone():
    ref = {
        "schema_version": 1,
        "fps": 2.0,
        "backbone": "resnet18",
        "weights_id": "IMAGENET1K_V1",
        "frame_size": 224,
        "audio_sr": 16000,
        "n_mels": 32,
    }
    check_compatible(dict(ref), ref, "x")
    with pytest.raises(StoreError, match="weights_id"):
        check_compatible(ref | {"weights_id": "random-seed0"}, ref, "x.h5")
    with pytest.raises(StoreError, match="fps"):
        check_compatible(ref | {"fps": 1.0}, ref, "x.h5")


def test_audio_features_of_a_sine():
    sr = 8000
    t = np.arange(4 * sr) / sr
    a = (0.5 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)
    f = step_audio_features(a, sr, 2.0, 8, 16)
    assert f.shape == (8, 17)
    assert np.allclose(f[:, 0], 0.5 / np.sqrt(2), atol=0.01)
    silent = step_audio_features(None, sr, 2.0, 8, 16)
    assert np.all(silent[:, 0] == 0) and np.all(silent[:, 1:] == -100)


def _reference_steps(a: np.ndarray, sr: int, fps: float, n_steps: int, n_mels: int):
    """The audio features as their docstring defines them, one step at a time, float64."""
    fb = mel_filters(sr, N_FFT, n_mels).astype(np.float64)
    window = np.hanning(N_FFT + 1)[:-1]
    a = np.concatenate([a.astype(np.float64), np.zeros(3 * int(sr / fps) + 3)])
    rows = []
    for i in range(n_steps):
        x = a[round(i * sr / fps) : round((i + 1) * sr / fps)]
        rms = np.sqrt(np.mean(x**2))
        x = np.pad(x, (0, max(0, N_FFT - x.size)))
        frames = [x[k : k + N_FFT] for k in range(0, x.size - N_FFT + 1, HOP)]
        power = np.mean([np.abs(np.fft.rfft(f * window)) ** 2 for f in frames], axis=0)
        rows.append([rms, *np.maximum(10 * np.log10(np.maximum(fb @ power, 1e-10)), -100)])
    return np.array(rows)


@pytest.mark.parametrize("sr,fps", [(16000, 2.0), (16000, 3.0), (8000, 10.0), (22050, 1.5)])
def test_step_audio_features_match_their_definition(sr: int, fps: float) -> None:
    """Steps computed together in single precision (whole or streamed in odd chunks) equal
    the per-step float64 definition: whole and fractional step lengths, steps shorter than
    an FFT frame (8 kHz at 10 steps/s: 800 samples), the audio ending inside a step."""
    rng = np.random.default_rng(3)
    t = np.arange(int(7.3 * sr)) / sr
    a = 0.3 * np.sin(2 * np.pi * 440 * t) * (t < 3) + 0.1 * rng.standard_normal(t.size) * (t > 2)
    a = a.astype(np.float32)
    n = int(np.ceil(7.3 * fps)) + 2  # two steps past the end: silence
    want = _reference_steps(a, sr, fps, n, 24)
    got = step_audio_features(a, sr, fps, n, 24)
    assert got.shape == (n, 25) and got.dtype == np.float32
    np.testing.assert_allclose(got[:, 0], want[:, 0], rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(got[:, 1:], want[:, 1:], atol=0.01)  # dB, -100 to +20
    acc = StepAudio(sr, fps, 24)
    for chunk in np.array_split(a, 23):
        acc.push(chunk)
    np.testing.assert_array_equal(acc.finish(n), got)


def test_fingerprint_matches_its_definition() -> None:
    """Bit ``k`` of a frame: the energy difference of bands ``k`` and ``k + 1`` grew since
    the previous frame (float64, one frame at a time); the fast single-precision transform
    may flip a bit where a difference is within rounding of zero, no more."""
    rng = np.random.default_rng(4)
    t = np.arange(20 * FP_SR) / FP_SR
    tones = sum(
        np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) * rng.uniform(0, 1, t.size).cumsum()
        for f in (350, 700, 1200, 1900)
    )
    pcm = (tones / np.abs(tones).max() + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    fb = mel_filters(FP_SR, FP_N_FFT, FP_BANDS, fmin=300, fmax=2000).astype(np.float64)
    window = np.hanning(FP_N_FFT)
    starts = range(0, pcm.size - FP_N_FFT + 1, FP_HOP)
    energy = np.array(
        [
            np.log(fb @ np.abs(np.fft.rfft(pcm[s : s + FP_N_FFT] * window)) ** 2 + 1e-10)
            for s in starts
        ]
    )
    d = np.diff(energy, axis=1)
    bits = (d[1:] - d[:-1]) > 0
    want = np.packbits(bits, axis=1, bitorder="little").view(np.uint16).ravel()
    got = fingerprint(pcm, FP_SR)
    assert got.shape == want.shape == (len(starts) - 1,)
    flips = np.unpackbits((got ^ want).view(np.uint8)).sum()
    assert flips <= 0.001 * got.size * 16, flips


def test_weights_resolution(caplog, tmp_path, monkeypatch):
    monkeypatch.setenv("INTRODETECT_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert resolve_weights("random") == (None, "random-seed0")
    with caplog.at_level(logging.WARNING):
        sd, wid = resolve_weights("auto")
    assert sd is None and wid == "random-seed0" and "NO IMAGENET WEIGHTS" in caplog.text
    with pytest.raises(WeightsError):
        resolve_weights("imagenet")
    with pytest.raises(WeightsError, match="no such file"):
        resolve_weights(str(tmp_path / "missing.pth"))
    import torchvision

    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    sd, wid = resolve_weights(str(path))
    assert sd is not None and wid.startswith("file:r18.pth:")
    # an ImageNet file in the torch cache is picked up by torchvision's own mechanism
    ckpt = tmp_path / "th" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "resnet18-f37072fd.pth").write_bytes(path.read_bytes())
    sd_cached, wid = resolve_weights("imagenet")  # torchvision trusts its cache, offline too
    assert wid == "IMAGENET1K_V1" and torch.equal(sd_cached["fc.bias"], sd["fc.bias"])


def test_backbone_is_frozen_and_deterministic(backbone):
    frames = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    a, b = backbone.embed(frames), load_backbone("random", "cpu", "fp32").embed(frames)
    assert a.shape == (3, 512) and np.allclose(a, b, atol=1e-5)
    eager = load_backbone("random", "cpu", "fp32", "torch")  # (onnxruntime: a cached graph)
    assert not any(p.requires_grad for p in eager.model.parameters())


def test_featurize_episode_writes_provenance(tmp_path, clip, backbone):
    out = tmp_path / "f" / "ep.h5"
    feats = featurize_episode(clip, "ep", out, backbone, FP)
    back = read_episode(out)
    assert back.visual.shape == (6, 512) and back.visual.dtype == np.float16
    assert back.audio.shape == (6, 33) and np.allclose(back.t, np.arange(6) / 2)
    for key in (
        "schema_version",
        "episode_id",
        "duration_s",
        "fps",
        "window_s",
        "backbone",
        "weights_id",
        "frame_size",
        "audio_sr",
        "n_mels",
        "source_size",
        "source_mtime",
        "source_fingerprint",
    ):
        assert key in back.attrs, key
    assert back.attrs["weights_id"] == "random-seed0" and back.attrs["has_audio"]
    assert back.prints is not None and np.array_equal(back.prints, feats.prints)
    assert np.allclose(feats.visual.astype(np.float32), back.visual.astype(np.float32))


def _joined_ts(tmp_path):
    """Mono then stereo MPEG-TS joined byte-wise: the layout changes mid-stream."""
    a = make_clip(tmp_path / "a.ts", seconds=2.0, container="mpegts", layout="mono")
    b = make_clip(tmp_path / "b.ts", seconds=2.0, container="mpegts", layout="stereo", start_s=2.0)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    return joined


@pytest.mark.parametrize(
    "kind", ["plain", "late_audio", "late_start_mkv", "two_streams", "layout_change", "silent"]
)
def test_featurize_audio_thread_hands_over_what_the_one_pass_decoder_does(tmp_path, backbone, kind):
    """The audio is decoded in a thread of its own (``AudioThread``): its features, note and
    presence are those of the one pass over video + audio (``EpisodeDecoder``'s sink)."""
    from conftest import decode

    from introdetect.features.audio import step_audio_features

    clip = {
        "plain": lambda: make_clip(tmp_path / "p.mp4", seconds=4.0),
        "late_audio": lambda: make_clip(tmp_path / "l.mp4", seconds=4.0, audio_start_s=1.3),
        "late_start_mkv": lambda: make_clip(
            tmp_path / "s.mkv", seconds=4.0, container="matroska", start_s=3.2
        ),
        "two_streams": lambda: make_clip(tmp_path / "t.mkv", seconds=3.0, n_audio=2),
        "layout_change": lambda: _joined_ts(tmp_path),
        "silent": lambda: make_clip(tmp_path / "n.mp4", seconds=3.0, audio_rate=None),
    }[kind]()
    feats = featurize_episode(clip, "e", tmp_path / "e.h5", backbone, FP)
    steps, one_pass = decode(clip, FP.fps, FP.window_s, FP.frame_size, FP.audio_sr)
    n = len(steps)
    expected = step_audio_features(one_pass.audio, FP.audio_sr, FP.fps, n, FP.n_mels)
    assert feats.audio.shape == (n, 1 + FP.n_mels)
    np.testing.assert_array_equal(feats.audio, expected)
    assert feats.attrs["has_audio"] == (one_pass.audio is not None and one_pass.audio.size > 0)
    assert feats.attrs["audio_note"] == one_pass.audio_note
    assert feats.attrs["has_audio"] == (kind != "silent")
    # the fingerprint made on the way is the one a separate audio decode makes
    want = file_fingerprint(clip, FP.window_s)
    held = read_prints(tmp_path / "e.h5", FP.window_s)
    assert (held is None) == (want is None) == (kind == "silent")
    if want is not None:
        np.testing.assert_array_equal(held, want)


def test_no_fingerprint_is_kept_for_audio_at_another_rate(tmp_path, backbone):
    """The fingerprint is made at 16 kHz: features at another audio rate hold none (the
    repetition channels decode the audio for it)."""
    import dataclasses

    clip = make_clip(tmp_path / "a.mp4", seconds=3.0)
    fp = dataclasses.replace(FP, audio_sr=22050)
    feats = featurize_episode(clip, "a", tmp_path / "a.h5", backbone, fp)
    assert feats.attrs["has_audio"] and feats.prints is None
    assert read_prints(tmp_path / "a.h5", fp.window_s) is None


def test_a_damaged_audio_track_keeps_the_episode(tmp_path, backbone, monkeypatch, caplog):
    """Audio that stops decoding (too many corrupt packets in a row) keeps what decoded
    before it and the episode's pictures; the note says where it stopped."""
    from introdetect.features import extract
    from introdetect.media import MediaError

    def broken(path, sr, window_s, sink, stop=None):
        sink(np.full(sr, 0.3, np.float32))  # one second, then the track breaks
        raise MediaError(f"{path.name}: 20 corrupt packets in a row (invalid data)")

    monkeypatch.setattr(extract, "decode_audio", broken)
    clip = make_clip(tmp_path / "a.mp4", seconds=3.0)
    feats = featurize_episode(clip, "a", tmp_path / "a.h5", backbone, FP)
    assert feats.visual.shape == (6, 512) and feats.attrs["has_audio"]
    assert feats.attrs["audio_note"] == "audio stopped at 1.0 s"
    assert feats.audio[0, 0] > 0.2 and feats.audio[-1, 0] == 0.0  # RMS, then silence
    assert "a.mp4: 20 corrupt packets in a row" in caplog.text
    assert read_prints(tmp_path / "a.h5", FP.window_s) is None  # decoded again, if it can be


def test_a_failing_video_stops_the_audio_thread_and_reports_the_video(tmp_path, backbone):
    """The video's error is the one reported, and no audio thread outlives the episode."""
    import threading

    from introdetect.media import MediaError

    src = make_clip(tmp_path / "u.mkv", seconds=20.0, size=(32, 24))
    bad = tmp_path / "unknown_codec.mkv"
    bad.write_bytes(src.read_bytes().replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC"))
    before = threading.active_count()
    with pytest.raises(MediaError, match="unknown_codec.mkv: no decoder for the video"):
        featurize_episode(bad, "u", tmp_path / "u.h5", backbone, FP)
    assert threading.active_count() == before and not (tmp_path / "u.h5").exists()


@pytest.mark.logs_errors
def test_featurize_many_skips_current_and_records_failures(tmp_path, backbone):
    good = make_clip(tmp_path / "v" / "a.mp4")
    other = make_clip(tmp_path / "v" / "b.mp4", seconds=2.0)
    bad = tmp_path / "v" / "c.mp4"
    bad.write_bytes(b"not a video" * 50)
    eps = [("a", good), ("b", other), ("c", bad)]
    s1 = featurize_many(eps, tmp_path / "feat", backbone, FP)
    assert sorted(s1.done) == ["a", "b"] and list(s1.failed) == ["c"]
    errors = json.loads((tmp_path / "feat" / "errors.json").read_text())
    assert "c.mp4" in errors["c"]["error"] and errors["c"]["file"] == str(bad)
    s2 = featurize_many(eps, tmp_path / "feat", backbone, FP)
    assert sorted(s2.skipped) == ["a", "b"] and not s2.done
    # a changed config is not current: the episode is recomputed
    fp2 = FeatureParams(weights="random", frame_size=32, batch_size=4, fps=1.0, int8=False)
    cfg = feature_config(fp2, backbone.weights_id)
    assert not is_current(tmp_path / "feat" / "a.h5", cfg, source_fingerprint(good))


def test_skip_nonref_keeps_sampling_error_under_a_quarter_step(tmp_path, backbone):
    """B-frame clip: the fast path differs little; sparse references fall back to all frames."""
    from fractions import Fraction

    import av

    path = tmp_path / "b.mp4"
    with av.open(str(path), "w") as o:
        vs = o.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.options = {"preset": "veryfast", "x264-params": "bframes=3:slices=1"}
        rng = np.random.default_rng(0)
        for i in range(100):
            img = np.full((48, 64, 3), (i * 2) % 256, np.uint8)
            img[rng.integers(0, 40) :, :8] = 255
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in vs.encode(f):
                o.mux(p)
        for p in vs.encode(None):
            o.mux(p)
    fast = featurize_episode(
        path,
        "b",
        tmp_path / "f.h5",
        backbone,
        FeatureParams(weights="random", frame_size=32, skip_nonref=True),
    )
    plain = featurize_episode(
        path,
        "b",
        tmp_path / "p.h5",
        backbone,
        FeatureParams(weights="random", frame_size=32, skip_nonref=False),
    )
    assert fast.attrs["sample_err_max_s"] <= 0.125 and plain.attrs["sample_err_max_s"] <= 0.05
    assert fast.visual.shape == plain.visual.shape
    # an impossible grid for skipping (20 steps/s): falls back to decoding every frame
    dense = featurize_episode(
        path,
        "b",
        tmp_path / "d.h5",
        backbone,
        FeatureParams(weights="random", frame_size=32, fps=20.0),
    )
    assert dense.attrs["skip_nonref_used"] is False or dense.attrs["sample_err_max_s"] <= 0.0125


def test_skip_loop_filter_takes_effect_and_changes_little(tmp_path, backbone):
    """Deblocking off: the decoder really skips it (pictures differ), the sampled frames stay
    close, and the setting is part of the feature config (a change recomputes)."""
    path = tmp_path / "blocky.mp4"
    rng = np.random.default_rng(1)
    tex = np.repeat(np.repeat(rng.integers(0, 255, (26, 34, 3), dtype=np.uint8), 4, 0), 4, 1)
    frames = (np.roll(tex, (i, 2 * i), (0, 1))[:96, :128] for i in range(50))
    encode_h264(path, frames, {"crf": "32"})  # coarse: deblocking works
    on = dict(decode(path)[0])
    off = dict(decode(path, skip_loop_filter=True)[0])
    assert on.keys() == off.keys()
    diffs = [np.abs(on[i].astype(int) - off[i]).mean() for i in on]
    assert max(diffs) > 0.05  # the option reached the decoder
    assert max(diffs) < 4.0  # at 4x downscale the picture is the same picture (~1.3 levels)
    fp_on = FeatureParams(weights="random", frame_size=32, skip_loop_filter=False)
    feats = featurize_episode(path, "b", tmp_path / "b.h5", backbone, fp_on)
    assert feats.attrs["skip_loop_filter"] is False
    fp_off = FeatureParams(weights="random", frame_size=32, skip_loop_filter=True, int8=False)
    config = feature_config(fp_off, backbone.weights_id)
    assert not is_current(tmp_path / "b.h5", config, source_fingerprint(path))


@pytest.mark.logs_errors
def test_parallel_workers_give_the_same_files(tmp_path, backbone):
    eps = [(f"e{i}", make_clip(tmp_path / "v" / f"e{i}.mp4", seconds=2.0 + i)) for i in range(3)]
    bad = tmp_path / "v" / "bad.mp4"
    bad.write_bytes(b"x" * 100)
    eps.append(("bad", bad))
    fp1 = FeatureParams(weights="random", frame_size=32, precision="fp32")
    fp2 = FeatureParams(weights="random", frame_size=32, precision="fp32", workers=2)
    s1 = featurize_many(eps, tmp_path / "one", backbone, fp1)
    s2 = featurize_many(eps, tmp_path / "two", backbone, fp2)
    assert sorted(s1.done) == sorted(s2.done) == ["e0", "e1", "e2"]
    assert list(s2.failed) == ["bad"] and "bad.mp4" in s2.failed["bad"]["error"]
    for eid in s1.done:
        a, b = (
            read_episode(tmp_path / "one" / f"{eid}.h5"),
            read_episode(tmp_path / "two" / f"{eid}.h5"),
        )
        assert np.array_equal(a.visual, b.visual)


@pytest.mark.slow
def test_ray_executor_writes_the_same_files(tmp_path, backbone):
    import os

    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")  # before ray is imported
    ray = pytest.importorskip("ray")

    eps = [(f"e{i}", make_clip(tmp_path / "v" / f"e{i}.mp4", seconds=2.0 + i)) for i in range(3)]
    bad = tmp_path / "v" / "bad.mp4"
    bad.write_bytes(b"x" * 100)
    eps.append(("bad", bad))
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        fp = FeatureParams(weights="random", frame_size=32, precision="fp32", executor="ray")
        s = featurize_many(eps, tmp_path / "ray", backbone, fp)
    finally:
        ray.shutdown()
    local = featurize_many(
        eps,
        tmp_path / "local",
        backbone,
        FeatureParams(weights="random", frame_size=32, precision="fp32"),
    )
    assert sorted(s.done) == sorted(local.done) == ["e0", "e1", "e2"]
    assert list(s.failed) == ["bad"] and "bad.mp4" in s.failed["bad"]["error"]
    for eid in s.done:
        a = read_episode(tmp_path / "ray" / f"{eid}.h5")
        b = read_episode(tmp_path / "local" / f"{eid}.h5")
        assert np.array_equal(a.visual, b.visual)


def test_workers_auto_resolves_per_device():
    import torch

    from introdetect.features.extract import resolve_workers, torch_threads
    from introdetect.media import cpu_cores

    auto = FeatureParams(workers=0)
    assert resolve_workers(auto, torch.device("cpu")) == 1
    assert resolve_workers(auto, torch.device("cuda")) == max(1, min(8, cpu_cores()))
    assert resolve_workers(FeatureParams(workers=3), torch.device("cuda")) == 3
    assert torch_threads(1) == cpu_cores() and torch_threads(10 * cpu_cores()) == 1
