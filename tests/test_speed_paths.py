"""The fast paths of featurizing give the reference's features: onnxruntime against eager
torch, the shared swscale context against PyAV's per-frame one, still steps that reuse the
previous embedding against running the network on every step."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import yaml
from conftest import make_clip

from introdetect.features.extract import StaticReuse, featurize_episode
from introdetect.features.visual import (
    OnnxNetwork,
    WeightsError,
    graph_key,
    load_backbone,
    openvino_available,
    ort_available,
    resolve_int8,
)
from introdetect.media import frame_to_rgb
from introdetect.params import FeatureParams
from introdetect.store import (
    INT8_SCHEME,
    StoreError,
    check_compatible,
    feature_config,
    is_current,
    read_episode,
)

needs_ort = pytest.mark.skipif(not ort_available(), reason="onnxruntime not installed")
needs_int8 = pytest.mark.skipif(
    not (ort_available() and openvino_available()), reason="onnxruntime or OpenVINO missing"
)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@needs_ort
def test_exported_graph_is_cached_on_disk_and_a_broken_one_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("INTRODETECT_CACHE", str(tmp_path))
    monkeypatch.setattr(OnnxNetwork, "_exported", {})  # as in a fresh process
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    first = load_backbone("random", "cpu", "fp32", "onnxruntime")
    (cached,) = (tmp_path / "onnx").glob("resnet18-*.onnx")
    assert cached.name == f"resnet18-{graph_key('random-seed0')}.onnx"
    monkeypatch.setattr(OnnxNetwork, "_exported", {})
    second = load_backbone("random", "cpu", "fp32", "onnxruntime")  # read from the file
    assert second.model is None and second.weights_id == first.weights_id  # nothing built
    assert np.array_equal(first.embed(frames), second.embed(frames))
    cached.write_bytes(b"not a graph")
    monkeypatch.setattr(OnnxNetwork, "_exported", {})
    third = load_backbone("random", "cpu", "fp32", "onnxruntime")
    assert "unusable exported graph" in caplog.text
    assert np.array_equal(first.embed(frames), third.embed(frames))
    assert cached.stat().st_size > 1_000_000  # exported again and rewritten
    assert graph_key("file:w.pth:0123456789ab") != graph_key("random-seed0")


@needs_ort
def test_a_cached_graph_runs_without_importing_torchvision(tmp_path: Path) -> None:
    """Importing torchvision costs seconds on every run; with the graph cached, the
    onnxruntime engine needs only the graph."""
    code = (
        "import sys, numpy as np\n"
        "from introdetect.features.visual import load_backbone\n"
        "bb = load_backbone('random', 'cpu', 'fp32', 'onnxruntime')\n"
        "bb.embed(np.zeros((1, 32, 32, 3), np.uint8))\n"
        "print('torchvision' in sys.modules, bb.weights_id)\n"
    )
    env = {**os.environ, "INTRODETECT_CACHE": str(tmp_path)}
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert [r.stdout.split() for r in runs] == [
        ["True", "random-seed0"],  # the first run builds and exports the network
        ["False", "random-seed0"],
    ], [r.stderr[-500:] for r in runs]


@needs_ort
@pytest.mark.parametrize("size", [224, 112])
def test_onnxruntime_embeds_as_eager_torch(size: int) -> None:
    frames = np.random.default_rng(size).integers(0, 256, (6, size, size, 3), dtype=np.uint8)
    ort = load_backbone("random", "cpu", "fp32", "onnxruntime")
    ref = load_backbone("random", "cpu", "fp32", "torch")
    assert (ort.engine, ref.engine) == ("onnxruntime", "torch")
    a, b = ort.embed(frames), ref.embed(frames)
    assert a.shape == b.shape == (6, 512) and a.dtype == np.float32
    assert np.abs(a - b).max() < 1e-3 * np.abs(b).max()
    centred = _cos(a - b.mean(0), b - b.mean(0))
    assert centred.min() > 0.9999


def test_auto_engine_and_impossible_requests() -> None:
    bb = load_backbone("random", "cpu", "fp32")
    assert bb.engine == ("onnxruntime" if ort_available() else "torch")
    with pytest.raises(WeightsError, match="fp32 on the CPU only"):
        load_backbone("random", "cpu", "bf16", "onnxruntime")


def test_shared_scaler_gives_per_frame_pixels(tmp_path: Path) -> None:
    """One swscale context per thread, reused across frames and re-made when the geometry
    changes (two files of different sizes through the same thread)."""
    for size in ((64, 48), (96, 40)):
        clip = make_clip(tmp_path / f"c{size[0]}.mp4", seconds=1.0, size=size)
        with av.open(str(clip)) as c:
            for frame in c.decode(video=0):
                for out in (32, 24):
                    ref = frame.reformat(width=out, height=out, format="rgb24").to_ndarray()
                    assert np.array_equal(frame_to_rgb(frame, out), ref)


def test_static_reuse_picks_changed_frames() -> None:
    r = StaticReuse()
    still = np.full((3, 8, 8, 3), 100, np.uint8)
    noisy = still.copy()
    noisy[1, 0, 0, 0] += 20  # compression-noise-sized: mean difference < 1 level
    assert list(r.fresh(noisy)) == [0]
    moved = np.concatenate([still[:1], still[:1] + 5])  # a fade: every pixel +5
    assert list(r.fresh(moved)) == [1]  # frame 0 equals the previous batch's last frame
    assert r.reused == 3
    # a slow change, 0.4 levels a step: each step is "unchanged" from the one before, but
    # the embedding is renewed once the picture has moved a level from the one embedded
    flat = np.full(8 * 8 * 3, 110, np.uint8)
    fade = np.stack([(flat + (np.arange(flat.size) < 0.4 * k * flat.size)) for k in range(6)])
    assert list(r.fresh(fade.reshape(6, 8, 8, 3).astype(np.uint8))) == [0, 3]


def test_still_steps_reuse_the_embedding(tmp_path: Path) -> None:
    """make_clip holds each grey for a second: the second step of every second is a still
    frame. With reuse it copies the first step's embedding; the features match a run that
    embeds every step, and the count is recorded."""
    clip = make_clip(tmp_path / "still.mp4", seconds=4.0)
    bb = load_backbone("random", "cpu", "fp32")
    fp = FeatureParams(frame_size=64, weights="random", device="cpu", reuse_static=True)
    on = featurize_episode(clip, "s", tmp_path / "on.h5", bb, fp)
    off = featurize_episode(
        clip, "s", tmp_path / "off.h5", bb, dataclasses.replace(fp, reuse_static=False)
    )
    assert on.attrs["reused_steps"] == 4 and off.attrs["reused_steps"] == 0
    assert read_episode(tmp_path / "on.h5").attrs["reuse_static"] is True
    a, b = on.visual.astype(np.float32), off.visual.astype(np.float32)
    assert np.array_equal(a[1::2], a[0::2])  # copies
    assert np.abs(a - b).max() < 1e-2 * np.abs(b).max()


def test_audio_first_detect_decodes_pictures_only_where_audio_repeats(tmp_path: Path) -> None:
    """Model-free detect with features.audio_first: audio pass, candidates, pictures only in
    the candidates (recorded per file), and the same answers as the full decode."""
    from test_grouping import episode

    from introdetect.cli import main
    from introdetect.repetition import visual_mask

    folder = tmp_path / "Show"
    for k in range(3):
        episode(folder / f"Show.S01E0{k + 1}.mp4", 1, 100 + k, intro_at=3 + 2 * k, seconds=40.0)
    answers = {}
    for fast in (False, True):
        params = tmp_path / f"p{fast}.yaml"
        feats = {"weights": "random", "frame_size": 32, "workers": 1, "reuse_static": False}
        params.write_text(yaml.safe_dump({"features": feats | {"audio_first": fast}}))
        out, cache = tmp_path / f"out{fast}", tmp_path / f"cache{fast}"
        args = ["detect", str(folder), "--params", str(params), "--out", str(out)]
        assert main(args + ["--cache", str(cache), "--no-report"]) == 0
        answers[fast] = json.loads((out / "predictions.json").read_text())
    files = sorted((tmp_path / "cacheTrue" / "audio-first").glob("*.h5"))
    assert len(files) == 3 and not list((tmp_path / "cacheTrue").glob("*.h5"))
    for k, f in enumerate(files):
        feats = read_episode(f)
        mask = visual_mask(feats.attrs, len(feats.t))
        assert mask is not None and 0.1 < mask.mean() < 0.5  # the noise between is skipped
        intro_at = 3 + 2 * k
        assert mask[2 * intro_at : 2 * (intro_at + 4)].all()  # the intro's steps are decoded
        assert not np.any(feats.visual[~mask])  # no pictures outside the candidates
        assert np.all(np.any(feats.visual[mask] != 0, axis=1))
    for eid, iv in answers[False].items():
        assert iv is not None and answers[True][eid] is not None
        assert (
            abs(answers[True][eid][0] - iv[0]) <= 0.5 and abs(answers[True][eid][1] - iv[1]) <= 0.5
        )


def test_seeking_to_ranges_samples_the_frames_of_a_full_decode(tmp_path: Path) -> None:
    """The audio-first path seeks to each range: its sampled frames are the full decode's,
    and steps outside the ranges stay empty (zero embeddings)."""
    import introdetect.params as P
    from introdetect.fastpath import decode_ranges, embed_ranges
    from introdetect.media import DecodeOptions, decode_episode

    clip = make_clip(tmp_path / "c.mp4", seconds=6.0)
    ranges = [(1, 4), (8, 11)]
    frames = decode_ranges(clip, ranges, 2.0, 32)
    full, _, _ = decode_episode(clip, DecodeOptions(2.0, 600.0, 32, skip_nonref=True))
    assert sorted(frames) == [1, 2, 3, 8, 9, 10]
    assert all(np.array_equal(frames[s], full[s]) for s in frames)
    p = P.Params()
    p = dataclasses.replace(
        p, features=dataclasses.replace(p.features, frame_size=32, reuse_static=True)
    )
    visual, reused = embed_ranges(frames, ranges, 12, load_backbone("random", "cpu", "fp32"), p)
    assert np.flatnonzero(np.any(visual != 0, axis=1)).tolist() == [1, 2, 3, 8, 9, 10]
    assert reused == 2  # steps 3 and 9 show the grey of steps 2 and 8 (the same second)


def test_a_checkpoint_from_before_reuse_static_reads_as_off() -> None:
    from introdetect.params import FEATURE_IDENTITY, with_identity

    old = {k: getattr(FeatureParams(), k) for k in FEATURE_IDENTITY if k != "reuse_static"}
    run = dataclasses.replace(FeatureParams(), reuse_static=True)
    assert with_identity(run, old).reuse_static is False


def test_audio_only_detect_answers_from_the_sound_without_pictures(tmp_path: Path) -> None:
    """--audio-only: no picture decoded, no network; the intro found where the sound repeats
    (a tune at a different time in each episode), and an episode without audio is unknown."""
    from test_grouping import episode

    from introdetect.cli import main

    folder = tmp_path / "Show"
    intro_at = {"Show.S01E01": 3.0, "Show.S01E02": 9.0, "Show.S01E03": 14.0}
    for k, (eid, at) in enumerate(intro_at.items()):
        episode(folder / f"{eid}.mp4", 1, 100 + k, intro_at=at, seconds=30.0, melody=True)
    episode(folder / "Show.S01E04.mp4", 1, 104, intro_at=5.0, seconds=30.0, audio=False)
    (folder / "Show.S01E05.mp4").write_bytes(b"\x00" * 4096)  # not a video
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({"features": {"weights": "no/such/file.pth"}}))
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["detect", str(folder), "--params", str(params), "--out", str(out), "--cache"]
    assert main(args + [str(cache), "--audio-only", "--no-report"]) == 1  # one failed
    preds = json.loads((out / "predictions.json").read_text())
    side = json.loads((out / "presence.json").read_text())
    for eid, at in intro_at.items():
        assert preds[eid] is not None, (eid, side[eid])
        assert abs(preds[eid][0] - at) <= 0.5 and abs(preds[eid][1] - at - 4) <= 0.5, preds
        assert side[eid]["source"].startswith("audio")
    assert side["Show.S01E04"]["status"].startswith("unknown: no audio")
    assert side["Show.S01E05"]["status"].startswith("failed: ")
    assert "Show.S01E05.mp4" in side["Show.S01E05"]["status"]  # named, with its cause
    files = sorted((cache / "audio-only").glob("*.h5"))
    assert len(files) == 4 and not (cache / "audio-first").exists()
    feats = read_episode(files[0])
    assert feats.attrs["weights_id"] == "none" and not np.any(feats.visual)


def test_audio_only_detect_never_imports_torch(tmp_path: Path) -> None:
    """The audio-only path loads no network, so it imports no torch (seconds per run)."""
    from test_grouping import episode

    folder = tmp_path / "Show"
    for k in range(2):
        episode(folder / f"Show.S01E0{k + 1}.mp4", 1, 100 + k, seconds=10.0, melody=True)
    code = (
        "import sys\n"
        "from introdetect.cli import main\n"
        f"rc = main(['detect', {str(folder)!r}, '--audio-only', '--no-report',"
        f" '--out', {str(tmp_path / 'out')!r}])\n"
        "print(rc, 'torch' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.split()[-2:] == ["0", "False"], run.stderr[-1500:]


def test_audio_first_needs_series_names(tmp_path: Path, caplog) -> None:
    """Files without a series in their name are decoded in full (no audio-first folder)."""
    from test_grouping import episode

    from introdetect.cli import main

    folder = tmp_path / "mixed"
    for k in range(3):
        episode(folder / f"a{k}.mp4", 1, 100 + k, intro_at=3 + 2 * k, seconds=20.0)
    params = tmp_path / "p.yaml"
    feats = {"weights": "random", "frame_size": 32, "workers": 1, "audio_first": True}
    params.write_text(yaml.safe_dump({"features": feats}))
    cache = tmp_path / "cache"
    args = ["detect", str(folder), "--params", str(params), "--out", str(tmp_path / "out")]
    with caplog.at_level("INFO"):
        assert main(args + ["--cache", str(cache), "--no-report"]) == 0
    assert "decoding every episode in full instead" in caplog.text
    assert len(list(cache.glob("*.h5"))) == 3 and not (cache / "audio-first").exists()


@needs_int8
def test_int8_network_is_faithful_cached_and_its_features_never_mix_with_fp32(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """features.int8: the graph quantized once and cached beside the fp32 one; embeddings
    keep the fp32 network's frame-to-frame structure; files and models of the two never
    mix (``int8`` is part of the feature identity; files from before it read as fp32)."""
    monkeypatch.setenv("INTRODETECT_CACHE", str(tmp_path))
    monkeypatch.setattr(OnnxNetwork, "_exported", {})
    q = load_backbone("random", "cpu", "auto", "auto", int8=True)
    ref = load_backbone("random", "cpu", "fp32", "onnxruntime")
    assert (q.precision, q.engine, q.int8, ref.int8) == ("int8", "openvino", True, False)
    # the int8 network runs two batches at once on a share of the cores each (two lanes)
    threads = torch.get_num_threads()
    assert (q.threads, q.lanes, ref.lanes) == (threads, 2 if threads >= 2 else 1, 1)
    assert sorted(p.name for p in (tmp_path / "onnx").glob("*.onnx")) == sorted(
        f"resnet18-{graph_key('random-seed0', int8)}.onnx" for int8 in (False, True)
    )
    rng = np.random.default_rng(7)  # blocky pictures, not the calibration frames
    frames = np.repeat(np.repeat(rng.integers(0, 256, (16, 20, 20, 3), np.uint8), 8, 1), 8, 2)
    a, b = q.embed(frames), ref.embed(frames)
    assert a.shape == (16, 512) and not np.array_equal(a, b)
    assert _cos(a - b.mean(0), b - b.mean(0)).mean() > 0.85
    sa, sb = (np.corrcoef(m - m.mean(0)) for m in (a, b))
    assert np.corrcoef(sa.ravel(), sb.ravel())[0, 1] > 0.95
    monkeypatch.setattr(OnnxNetwork, "_exported", {})
    again = load_backbone("random", "cpu", "auto", "auto", int8=True)  # from the disk cache
    assert again.model is None and np.array_equal(again.embed(frames), a)

    clip = make_clip(tmp_path / "c.mp4", seconds=1.0, size=(64, 48))
    fp8 = FeatureParams(fps=2.0, frame_size=64, int8=True)
    fp32 = FeatureParams(frame_size=64, int8=False)
    with pytest.raises(ValueError, match="int8"):
        featurize_episode(clip, "c", tmp_path / "x.h5", ref, fp8)
    feats = featurize_episode(clip, "c", tmp_path / "c.h5", q, fp8)
    assert feats.attrs["int8"] == INT8_SCHEME and feats.attrs["precision"] == "int8"
    fpr = feats.attrs["source_fingerprint"]
    assert is_current(tmp_path / "c.h5", feature_config(fp8, "random-seed0"), fpr)
    assert not is_current(tmp_path / "c.h5", feature_config(fp32, "random-seed0"), fpr)
    with pytest.raises(StoreError, match="int8"):
        check_compatible(feats.attrs, {**feats.attrs, "int8": False}, "c.h5")
    old = {k: v for k, v in feats.attrs.items() if k != "int8"}  # a file from before int8
    check_compatible(old, {**feats.attrs, "int8": False}, "old.h5")
    with pytest.raises(StoreError, match="int8=2 .model: True"):  # the older int8 graph's
        check_compatible(feats.attrs, {**feats.attrs, "int8": True}, "c.h5")
    with pytest.raises(WeightsError, match="features.int8 runs an ONNX graph on the CPU"):
        load_backbone("random", "cpu", "fp32", "torch", int8=True)


def test_int8_auto_is_int8_only_where_the_network_runs_on_the_cpu() -> None:
    """``features.int8: auto``: int8 on the CPU with the ONNX graph; the GPU path and
    explicit fp32/bf16/torch choices stay as they were; explicit values pass through."""
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert resolve_int8("auto", cpu, "auto", "auto") is (ort_available() and openvino_available())
    assert resolve_int8("auto", gpu, "auto", "auto") is False
    for precision, engine in (("fp32", "auto"), ("bf16", "auto"), ("auto", "torch")):
        assert resolve_int8("auto", cpu, precision, engine) is False
    assert resolve_int8(True, gpu, "auto", "auto") is True
    assert resolve_int8(False, cpu, "auto", "auto") is False
    with pytest.raises(ValueError, match="auto"):  # files record the resolved value
        feature_config(FeatureParams(), "random-seed0")


class _LaneNet:
    """A stand-in network with ``lanes`` lanes: each frame's embedding is its mean grey
    level; batches finish out of order (a random sleep), and batch ``fail_at`` fails."""

    def __init__(self, lanes: int, fail_at: int | None = None) -> None:
        self.lanes, self.fail_at, self.calls = lanes, fail_at, 0
        self.rng = np.random.default_rng(0)

    def embed(self, frames: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("network broke")
        time.sleep(float(self.rng.uniform(0, 0.02)))
        return np.repeat(frames.reshape(len(frames), -1).mean(1, keepdims=True), 512, 1)


@pytest.mark.parametrize("reuse", [False, True])
def test_network_lanes_keep_the_steps_in_order(tmp_path: Path, reuse: bool) -> None:
    """Two lanes embedding batches at once give exactly what one lane gives, in step
    order, with and without still-frame reuse (decided in the decode thread)."""
    from introdetect.features.extract import StaticReuse, Timing, embed_steps
    from introdetect.media import DecodeOptions, EpisodeDecoder

    clip = make_clip(tmp_path / "c.mp4", seconds=12.0, size=(64, 48))  # grey = 10 x second
    out = []
    for lanes in (1, 2):
        with EpisodeDecoder(clip, DecodeOptions(4.0, 600.0, 32, 16000)) as dec:
            rs = StaticReuse() if reuse else None
            out.append(embed_steps(dec, _LaneNet(lanes), 3, Timing(), rs))
    assert out[0].shape == (48, 512) and np.array_equal(out[0], out[1])
    expected = 10 * np.floor((np.arange(48) + 0.5) / 4)
    assert np.abs(out[1][:, 0].astype(np.float32) - expected).max() < 3


def test_a_failing_network_lane_stops_the_decoder_and_the_other_lane(tmp_path: Path) -> None:
    from introdetect.features.extract import Timing, embed_steps
    from introdetect.media import DecodeOptions, EpisodeDecoder

    clip = make_clip(tmp_path / "c.mp4", seconds=12.0, size=(64, 48))
    before = threading.active_count()
    with (
        EpisodeDecoder(clip, DecodeOptions(4.0, 600.0, 32, 16000)) as dec,
        pytest.raises(RuntimeError, match="network broke"),
    ):
        embed_steps(dec, _LaneNet(2, fail_at=3), 2, Timing())
    assert threading.active_count() == before
