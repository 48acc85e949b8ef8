from fractions import Fraction

import numpy as np
import pytest
from conftest import decode as _decode
from conftest import make_clip

from introdetect.media import MediaError, probe


def test_probe(clip):
    info = probe(clip)
    assert (info.width, info.height) == (64, 48) and info.has_audio and info.video_codec == "h264"


@pytest.mark.parametrize("fps", [25, Fraction(30000, 1001), 12])
def test_steps_sample_the_frame_on_screen_at_the_step_centre(tmp_path, fps):
    path = make_clip(tmp_path / "c.mp4", seconds=4.0, fps=fps)
    steps, res = _decode(path)
    assert [i for i, _ in steps] == list(range(8))
    assert res.n_steps == 8 and res.duration_s == pytest.approx(4.0, abs=0.1)
    for i, rgb in steps:
        assert rgb.shape == (32, 32, 3)
        expected = 10 * int((i + 0.5) / 2.0)  # gray level encodes the second
        assert abs(int(rgb.mean()) - expected) <= 3


def test_audio_is_mono_float_at_requested_rate(clip):
    _, res = _decode(clip, sr=8000)
    assert res.audio.dtype == np.float32
    assert abs(res.audio.size - 3 * 8000) < 2048  # AAC priming/padding
    assert 0.15 < np.sqrt(np.mean(res.audio[2000:-2000] ** 2)) < 0.25  # 0.3 amplitude sine


def test_window_limits_steps(tmp_path):
    path = make_clip(tmp_path / "c.mp4", seconds=5.0)
    steps, res = _decode(path, window=2.0)
    assert res.n_steps == 4 and len(steps) == 4
    assert res.audio.size == 2 * 16000


def test_no_audio_stream(tmp_path):
    path = make_clip(tmp_path / "c.mp4", audio_rate=None)
    steps, res = _decode(path)
    assert len(steps) == 6 and res.audio is None and "no audio" in res.audio_note


def test_stereo_mkv(tmp_path):
    path = make_clip(tmp_path / "c.mkv", layout="stereo", audio_rate=44100)
    steps, res = _decode(path)
    assert len(steps) == 6 and res.audio.size > 2.5 * 16000


@pytest.mark.parametrize("content", [b"", b"garbage" * 100])
def test_unreadable_files_give_one_line_errors(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(MediaError) as e:
        _decode(bad)
    assert "bad.mp4" in str(e.value) and "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="not found"):
        _decode(tmp_path / "nope.mp4")
