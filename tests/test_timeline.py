"""One player timeline: a video or audio track that starts late (mp4 edit list, mkv, MPEG-TS)
starts late in the features too, and the frame a step shows is the frame a player shows at
that time (checked with ffmpeg and mpv where they are installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import decode, make_clip

from introdetect.media import stream_offsets

CONTAINERS = [("mp4", "mp4"), ("matroska", "mkv"), ("mpegts", "ts")]
SR = 16000


def _clip(tmp_path: Path, container: str, ext: str, late: str) -> Path:
    """8 s of video whose gray level is 10 x the second of its own content, and a tone;
    ``late`` ("video" | "audio") starts 5 s after the other."""
    starts = {"start_s": 5.0, "audio_start_s": 0.0} if late == "video" else {"audio_start_s": 5.0}
    return make_clip(tmp_path / f"{late}_late.{ext}", seconds=8.0, container=container, **starts)


def _rms(audio: np.ndarray, a: float, b: float) -> float:
    return float(np.sqrt(np.mean(audio[int(a * SR) : int(b * SR)] ** 2)))


@pytest.mark.parametrize("container, ext", CONTAINERS)
def test_a_late_video_starts_late_on_the_timeline(tmp_path, container, ext):
    path = _clip(tmp_path, container, ext, "video")
    steps, stats = decode(path, size=16)
    frames = dict(steps)
    # at player time 7.25 s the video has played 2.25 s of its content: gray 20, not 70
    assert abs(float(np.mean(frames[14])) - 20) < 6
    assert stats.duration_s == pytest.approx(13.0, abs=0.15)
    assert _rms(stats.audio, 0.5, 4.5) > 0.1  # the audio plays from 0
    offsets = stream_offsets(path)
    assert offsets["video#0"] == pytest.approx(5.0, abs=0.1)
    assert offsets["audio#1"] == pytest.approx(0.0, abs=0.1)


@pytest.mark.parametrize("container, ext", CONTAINERS)
def test_a_late_audio_track_starts_late_in_the_features(tmp_path, container, ext):
    path = _clip(tmp_path, container, ext, "audio")
    steps, stats = decode(path, size=16)
    assert abs(float(np.mean(dict(steps)[14])) - 70) < 6  # the video plays from 0
    assert _rms(stats.audio, 0.2, 4.6) < 0.01  # silence before the late audio
    assert _rms(stats.audio, 5.5, 7.5) > 0.1
    assert stream_offsets(path)["audio#1"] == pytest.approx(5.0, abs=0.1)


def test_doctor_reports_stream_offsets(tmp_path):
    from introdetect.doctor import check_video

    d = check_video("v", _clip(tmp_path, "mp4", "mp4", "video"))
    assert d.ok and "starts late: video#0 +5.00 s" in d.detail


def _ffmpeg_gray(path: Path, t: float) -> float:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-ss", str(t), "-frames:v", "1"]
        + ["-f", "rawvideo", "-pix_fmt", "gray", "-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return float(np.frombuffer(out, np.uint8).mean())


def _mpv_gray(path: Path, t: float, out_dir: Path) -> float:
    from PIL import Image

    subprocess.run(
        ["mpv", "--no-config", "--really-quiet", "--ao=null", "--vo=image"]
        + ["--vo-image-format=png", f"--vo-image-outdir={out_dir}", f"--start={t}"]
        + ["--frames=1", "--hr-seek=yes", str(path)],
        check=True,
        timeout=60,
    )
    (png,) = sorted(out_dir.glob("*.png"))
    return float(np.asarray(Image.open(png).convert("L")).mean())


@pytest.mark.parametrize("container, ext", CONTAINERS[:2])
@pytest.mark.parametrize("player", ["ffmpeg", "mpv"])
def test_steps_show_what_a_player_shows(tmp_path, container, ext, player):
    if shutil.which(player) is None:
        pytest.skip(f"{player} not installed (Debian: apt-get install {player})")
    path = _clip(tmp_path, container, ext, "video")
    frames = dict(decode(path, size=16)[0])
    for step in (12, 14, 20):  # player times 6.25, 7.25, 10.25 s
        t = (step + 0.5) / 2
        seen = (
            _ffmpeg_gray(path, t)
            if player == "ffmpeg"
            else _mpv_gray(path, t, tmp_path / str(step))
        )
        assert abs(float(np.mean(frames[step])) - seen) < 6, (step, seen)


@pytest.mark.parametrize("late", ["video", "audio"])
def test_offsets_match_ffprobe_in_mpegts(tmp_path, late):
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe not installed (Debian: apt-get install ffmpeg)")
    import json

    path = _clip(tmp_path, "mpegts", "ts", late)
    probe = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams"]
            + ["-show_format", str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    t0 = float(probe["format"]["start_time"])
    ours = stream_offsets(path)
    for s in probe["streams"]:
        key = f"{s['codec_type']}#{s['index']}"
        assert ours[key] == pytest.approx(float(s["start_time"]) - t0, abs=0.01)
