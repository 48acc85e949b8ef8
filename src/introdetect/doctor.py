"""Pre-flight check of a folder of episodes: which files will fail, and why, before a long run.

Each video is opened and its first seconds are decoded through the same code path as
featurize (so a file that passes here decodes there); audio problems are reported as
warnings, since an episode without audio is still featurized (audio features are zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from introdetect.media import (
    DecodeOptions,
    MediaError,
    decode_episode,
    probe,
    show_path,
    stream_offsets,
)


@dataclass
class Diagnosis:
    """The verdict on one file."""

    episode_id: str
    path: str
    ok: bool
    detail: str


def check_video(eid: str, path: Path, seconds: float = 3.0) -> Diagnosis:
    """Open ``path`` and decode its first ``seconds``; never raises for bad media."""
    try:
        info = probe(path)
        offsets = stream_offsets(path)
        late_by = max([0.0, *offsets.values()])  # a late video starts after `seconds`
        frames, _, res = decode_episode(path, DecodeOptions(2.0, seconds + late_by, 32))
        n = len(frames)
    except MediaError as e:
        return Diagnosis(eid, show_path(path), False, str(e))
    fps = f" {info.avg_fps:.3g} fps" if info.avg_fps else ""
    notes = [f"{info.video_codec} {info.width}x{info.height}{fps}"]
    if info.video_streams > 1:
        notes.append(f"video stream #{info.video_index} of {info.video_streams} used")
    late = {k: v for k, v in offsets.items() if abs(v) >= 0.1}
    if late:  # a player shows this stream this much later than the file starts
        notes.append("starts late: " + ", ".join(f"{k} +{v:.2f} s" for k, v in late.items()))
    if info.duration_s is not None:
        notes.append(f"{info.duration_s:.0f} s")
    notes.append(
        res.audio_note or f"audio {info.audio_codec} {info.audio_rate} Hz {info.audio_channels} ch"
    )
    if res.corrupt_packets:
        notes.append(f"{res.corrupt_packets} corrupt packets")
    return Diagnosis(eid, show_path(path), n > 0, ", ".join(notes))


def diagnose(videos: list[tuple[str, Path]]) -> list[Diagnosis]:
    """Check every ``(episode_id, path)``; failures first in the returned list."""
    out = [check_video(eid, p) for eid, p in tqdm(videos, desc="doctor", unit="file")]
    return sorted(out, key=lambda d: (d.ok, d.episode_id))
