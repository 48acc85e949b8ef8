"""Real-world media oddities: each decodes to the right steps/audio or fails with one line."""

from __future__ import annotations

import struct
from fractions import Fraction

import numpy as np
import pytest
from conftest import decode, make_clip

from introdetect.media import MediaError, decode_audio_span


def _decode(path, fps=2.0, window=600.0, size=32, sr=16000, **kw):
    steps, res = decode(path, fps, window, size, sr, **kw)
    return dict(steps), res


def _gray_matches_time(steps, fps=2.0, tol=3):
    for i, rgb in steps.items():
        expected = 10 * int((i + 0.5) / fps)
        assert abs(int(rgb.mean()) - expected) <= tol, (i, rgb.mean(), expected)


@pytest.mark.parametrize(
    "layout, rate", [("mono", 8000), ("stereo", 16000), ("5.1", 44100), ("stereo", 48000)]
)
def test_audio_layouts_and_rates(tmp_path, layout, rate):
    path = make_clip(tmp_path / "a.mp4", seconds=2.0, audio_rate=rate, layout=layout)
    _, res = _decode(path, sr=16000)
    assert abs(res.audio.size - 32000) < 2048
    rms = np.sqrt(np.mean(res.audio[3000:-3000] ** 2))
    assert 0.1 < rms < 1.0  # the tone survives the downmix (5.1 folds channels together)


def test_several_audio_streams_use_the_default_and_say_so(tmp_path):
    path = make_clip(tmp_path / "a.mkv", seconds=2.0, n_audio=2)
    _, res = _decode(path)
    assert "2 audio streams" in res.audio_note and res.audio.size > 0


def test_variable_frame_rate_samples_by_timestamp(tmp_path):
    # 30 fps for a second, then a 1.5 s gap with no frame, then 10 fps
    times = [i / 30 for i in range(30)] + [2.5 + i / 10 for i in range(15)]
    path = make_clip(tmp_path / "vfr.mkv", seconds=4.0, times=times, audio_rate=None)
    steps, res = _decode(path)
    assert len(steps) == 8 and res.duration_s == pytest.approx(4.0, abs=0.15)
    # steps in the gap repeat the last frame before it (second 0 -> gray 0)
    assert int(steps[2].mean()) <= 3 and int(steps[3].mean()) <= 3
    assert abs(int(steps[6].mean()) - 30) <= 3


@pytest.mark.parametrize("container, start", [("mpegts", 0.0), ("mp4", 5.0), ("matroska", 3.2)])
def test_nonzero_start_time_is_playback_zero(tmp_path, container, start):
    ext = {"mpegts": "ts", "mp4": "mp4", "matroska": "mkv"}[container]
    path = make_clip(tmp_path / f"s.{ext}", seconds=4.0, container=container, start_s=start)
    steps, res = _decode(path)
    # 4 s from the file's start, not from pts 0; the AAC encoder's priming samples may put
    # the audio (so the player's time zero) up to 64 ms before the first frame
    assert res.duration_s == pytest.approx(4.0, abs=0.07)
    assert len(steps) == np.ceil(res.duration_s * 2 - 1e-6)
    _gray_matches_time({i: v for i, v in steps.items() if i < 8})
    assert abs(res.audio.size - 4 * 16000) < 4096


def _rotate_mp4(path, out):
    """Set the video track's display matrix to a 90-degree clockwise rotation."""
    data = bytearray(path.read_bytes())
    off = data.find(b"tkhd") - 4 + 48
    data[off : off + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    out.write_bytes(bytes(data))
    return out


def test_rotation_metadata_is_applied(tmp_path):
    import av

    src = tmp_path / "r.mp4"
    with av.open(str(src), "w") as o:
        vs = o.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:24, :32] = 255  # top-left white
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in vs.encode(f):
                o.mux(p)
        for p in vs.encode(None):
            o.mux(p)
    steps, _ = _decode(_rotate_mp4(src, tmp_path / "r90.mp4"), size=32)
    rgb = steps[0][..., 0].astype(float)
    assert rgb[:16, 16:].mean() > 200 and rgb[:16, :16].mean() < 50  # now top-right
    plain, _ = _decode(src, size=32)
    assert plain[0][:16, :16, 0].mean() > 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": (65, 49), "pix_fmt": "yuv444p"},  # odd width and height
        {"sar": Fraction(4, 3)},  # anamorphic
        {"pix_fmt": "yuv420p10le"},  # 10-bit
    ],
)
def test_odd_sizes_sar_and_10bit(tmp_path, kwargs):
    steps, res = _decode(make_clip(tmp_path / "o.mp4", seconds=2.0, **kwargs))
    assert len(steps) == 4 and steps[0].shape == (32, 32, 3)
    _gray_matches_time(steps)


@pytest.mark.parametrize("seconds", [0.2, 1 / 25])  # shorter than a step; a single frame
def test_very_short_files(tmp_path, seconds):
    steps, res = _decode(make_clip(tmp_path / "s.mp4", seconds=seconds, audio_rate=None))
    assert len(steps) == 1 and res.n_steps == 1


def test_truncated_mkv_keeps_what_decodes(tmp_path):
    path = make_clip(tmp_path / "t.mkv", seconds=6.0, size=(160, 120))
    cut = tmp_path / "cut.mkv"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    steps, res = _decode(cut)
    assert 2.0 < res.duration_s < 5.0  # decoded timestamps, not the header duration
    assert len(steps) == res.n_steps


def test_mid_file_corruption_does_not_crash(tmp_path):
    path = make_clip(tmp_path / "c.mp4", seconds=6.0, size=(160, 120))
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 2000] = np.random.default_rng(0).integers(0, 256, 2000, np.uint8).tobytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    try:
        steps, res = _decode(bad)
    except MediaError as e:  # acceptable: a clear one-line error naming the file
        assert "bad.mp4" in str(e) and "\n" not in str(e)
    else:
        assert len(steps) == res.n_steps >= 10


def test_audio_only_file_is_a_clear_error(tmp_path):
    import av

    path = tmp_path / "audio.mka"
    with av.open(str(path), "w") as o:
        s = o.add_stream("aac", rate=16000, layout="mono")
        f = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        f.sample_rate, f.pts = 16000, 0
        for p in s.encode(f):
            o.mux(p)
        for p in s.encode(None):
            o.mux(p)
    with pytest.raises(MediaError, match="audio.mka: no video stream"):
        _decode(path)


def test_undecodable_video_codec(tmp_path):
    src = make_clip(tmp_path / "u.mkv", seconds=2.0)
    bad = tmp_path / "unknown_codec.mkv"
    bad.write_bytes(src.read_bytes().replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC"))
    with pytest.raises(
        MediaError, match="unknown_codec.mkv: no decoder for the video stream's codec"
    ):
        _decode(bad)


def test_doctor_names_an_unknown_codec(tmp_path):
    from introdetect.doctor import check_video

    src = make_clip(tmp_path / "u.mkv", seconds=2.0)
    bad = tmp_path / "unknown_codec.mkv"
    bad.write_bytes(src.read_bytes().replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC"))
    d = check_video("unknown_codec", bad)
    assert not d.ok and "unknown_codec.mkv" in d.detail and "codec" in d.detail


def test_audio_layout_change_mid_stream(tmp_path):
    """Two MPEG-TS pieces (mono, then stereo, timestamps continuing) joined byte-wise, as
    broadcast recordings are: the resampler is recreated and audio covers both parts."""
    import av

    a = make_clip(tmp_path / "a.ts", seconds=2.0, container="mpegts", layout="mono")
    b = make_clip(tmp_path / "b.ts", seconds=2.0, container="mpegts", layout="stereo", start_s=2.0)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    with av.open(str(joined)) as c:
        assert {f.layout.name for f in c.decode(audio=0)} == {"mono", "stereo"}
    steps, res = _decode(joined)
    assert len(steps) == 8 and res.duration_s == pytest.approx(4.0, abs=0.1)
    assert abs(res.audio.size / 16000 - 4.0) < 0.3
    assert np.sqrt(np.mean(res.audio[-8000:-2000] ** 2)) > 0.1  # the stereo part is there
    span = decode_audio_span(joined, 16000, 1.0, 3.5)  # across the change (the speech cue)
    assert abs(span.size / 16000 - 2.5) < 0.1 and np.sqrt(np.mean(span[-4000:] ** 2)) > 0.1


def test_hardware_decoding_falls_back_to_cpu(tmp_path, caplog):
    """Asking for NVDEC where there is none (CI, this machine) decodes on the CPU, same result."""
    import logging

    from introdetect import media

    clip = make_clip(tmp_path / "c.mp4", seconds=2.0)
    media._HW_WARNED.clear()
    with caplog.at_level(logging.WARNING):
        hw, _ = _decode(clip, hwaccel="cuda")
    plain, _ = _decode(clip)
    assert hw.keys() == plain.keys()
    import torch

    if not torch.cuda.is_available():
        assert "decoding on the CPU" in caplog.text
        assert all(np.array_equal(hw[i], plain[i]) for i in hw)


@pytest.mark.cuda
def test_featurize_on_cuda(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from introdetect.features.extract import featurize_episode
    from introdetect.features.visual import load_backbone
    from introdetect.params import FeatureParams

    clip = make_clip(tmp_path / "c.mp4", seconds=4.0, size=(320, 240))
    fp = FeatureParams(weights="random", device="cuda")
    gpu = featurize_episode(clip, "c", tmp_path / "g.h5", load_backbone("random", "cuda"), fp)
    cpu = featurize_episode(
        clip,
        "c",
        tmp_path / "c.h5",
        load_backbone("random", "cpu", "fp32"),
        FeatureParams(weights="random", device="cpu", precision="fp32"),
    )
    cos = np.sum(gpu.visual.astype(np.float32) * cpu.visual.astype(np.float32), 1) / (
        np.linalg.norm(gpu.visual.astype(np.float32), axis=1)
        * np.linalg.norm(cpu.visual.astype(np.float32), axis=1)
    )
    assert gpu.visual.shape == cpu.visual.shape and cos.min() > 0.98
    assert gpu.attrs["decoder"] == "nvdec" and cpu.attrs["decoder"] == "cpu"


@pytest.mark.cuda
def test_nvdec_frames_stay_on_the_gpu(tmp_path):
    """NVDEC output is read in GPU memory (DLPack) and matches swscale on the downloaded
    frame; the converter never falls back for H.264."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from introdetect.features.frames import DeviceFrames
    from introdetect.media import frame_to_rgb, open_container

    clip = make_clip(tmp_path / "c.mp4", seconds=2.0, size=(320, 240))
    conv = DeviceFrames(torch.device("cuda"))
    with open_container(clip, "cuda", hw_owned=True) as c:
        frames = list(c.decode(video=0))[:10]
        assert frames[0].format.name == "cuda"
        for f in frames:
            on_gpu = conv(f, 64)
            assert on_gpu.is_cuda
            ref = frame_to_rgb(f, 64)  # reformat downloads the surface
            assert np.abs(on_gpu.cpu().numpy().astype(int) - ref).mean() < 3.0
    assert conv.on_device == 10 and conv.via_host == 0
    steps, _ = _decode(clip, size=64, hwaccel="cuda", convert=conv)
    assert len(steps) == 4 and all(t.is_cuda for t in steps.values())


def test_sd_sources_are_decoded_on_half_the_cores(tmp_path):
    """SD frames: half the cores (frame threads cost more than they give on small frames);
    larger ones and an explicit thread count: as asked (0 is FFmpeg's own choice)."""
    from introdetect.media import DecodeOptions, EpisodeDecoder, cpu_cores

    sd = make_clip(tmp_path / "sd.mp4", seconds=1.0, size=(64, 48), audio_rate=None)
    hd = make_clip(tmp_path / "hd.mp4", seconds=1.0, size=(800, 608), audio_rate=None)
    for path, threads, expected in ((sd, 0, max(1, cpu_cores() // 2)), (hd, 0, 0), (sd, 3, 3)):
        opts = DecodeOptions(2.0, 600.0, 32, 16000, decode_threads=threads)
        with EpisodeDecoder(path, opts) as dec:
            assert dec.video.thread_count == expected, (path.name, threads)
            assert len(list(dec.steps())) == 2
