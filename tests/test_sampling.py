"""The frame-to-step rule on hand-written timestamps, the corrupt-packet guard with fake
packets, and the decode thread's clean-up when the network fails: no video needed except
for the last."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest
from conftest import make_clip

from introdetect.media import CorruptPacketGuard, DecodeStats, MediaError, sample_steps


def test_constant_rate_shows_the_frame_on_screen_at_each_centre():
    times = [i / 25 for i in range(100)]  # 4 s at 25 fps
    shown, duration = sample_steps(times, fps=2.0, window_s=600.0, last_dur=1 / 25)
    assert duration == pytest.approx(4.0)
    # centres 0.25, 0.75, ...: the frame starting at or before the centre
    assert shown == [6, 18, 31, 43, 56, 68, 81, 93]


def test_a_gap_repeats_the_frame_on_screen():
    times = [0.0, 0.5, 3.0, 3.5]  # nothing new between 0.5 s and 3.0 s
    shown, duration = sample_steps(times, fps=2.0, window_s=600.0, last_dur=0.5)
    assert duration == 4.0
    assert shown == [0, 1, 1, 1, 1, 1, 2, 3]


def test_steps_before_the_first_frame_show_the_first_frame():
    shown, duration = sample_steps([1.1, 1.6, 2.1], fps=2.0, window_s=600.0, last_dur=0.5)
    assert duration == 2.6 and shown == [0, 0, 0, 1, 2, 2]


def test_the_window_cuts_frames_and_duration():
    times = [i * 0.1 for i in range(100)]  # 10 s
    shown, duration = sample_steps(times, fps=1.0, window_s=3.0, last_dur=0.1)
    assert duration == 3.0 and shown == [5, 15, 25]


def test_out_of_order_times_use_the_latest_start():
    """A late timestamp followed by an earlier one (a reordering glitch): the duration
    follows the latest frame time; the last decoded frame is what stays on screen."""
    shown, duration = sample_steps([0.0, 0.4, 1.2, 1.0], fps=2.0, window_s=600.0, last_dur=0.4)
    assert duration == pytest.approx(1.6) and shown == [0, 1, 3, 3]


def test_no_frames_no_steps():
    assert sample_steps([], 2.0, 600.0, 0.04) == ([], 0.0)
    assert sample_steps([700.0], 2.0, 600.0, 0.04) == ([], 0.0)


class _Packet:
    def __init__(self, ok: bool) -> None:
        self.ok = ok

    def decode(self):
        if not self.ok:
            raise av.error.InvalidDataError(1094995529, "Invalid data found")
        return ["frame"]


def test_corrupt_packets_are_skipped_until_too_many_in_a_row():
    stats = DecodeStats()
    guard = CorruptPacketGuard("ep.mp4", max_corrupt=3, stats=stats)
    pattern = [True, False, False, True, False, False, True]  # never 3 bad in a row
    assert [guard.decode(_Packet(ok)) for ok in pattern] == [
        ["frame"] if ok else [] for ok in pattern
    ]
    assert stats.corrupt_packets == 4
    guard.decode(_Packet(False))
    guard.decode(_Packet(False))
    with pytest.raises(MediaError, match=r"ep\.mp4: 3 corrupt packets in a row"):
        guard.decode(_Packet(False))
    assert stats.corrupt_packets == 7


def test_network_failure_stops_the_decode_thread_and_closes_the_file(tmp_path, monkeypatch):
    from introdetect.features import extract
    from introdetect.features.visual import load_backbone
    from introdetect.params import FeatureParams

    clip = make_clip(tmp_path / "c.mp4", seconds=20.0)
    backbone = load_backbone("random", "cpu", "fp32")
    closed = []
    real_close = extract.EpisodeDecoder.close
    monkeypatch.setattr(
        extract.EpisodeDecoder, "close", lambda self: (closed.append(1), real_close(self))
    )

    def boom(frames):
        raise RuntimeError("network exploded")

    monkeypatch.setattr(backbone, "embed", boom)
    before = threading.active_count()
    fp = FeatureParams(weights="random", frame_size=32, batch_size=2)
    with pytest.raises(RuntimeError, match="network exploded"):
        extract.featurize_episode(clip, "c", tmp_path / "c.h5", backbone, fp)
    assert threading.active_count() == before  # the producer was joined, not left blocked
    assert closed and not (tmp_path / "c.h5").exists()
    assert not list(tmp_path.glob(".*.tmp"))
    np.testing.assert_equal(closed, [1])
