"""Frame-accurate boundaries: snap a coarse intro boundary to the cut or fade nearest to it.

The step grid is half a second and training labels are whole seconds, but title sequences
start and end on a cut (or a fade from or to black). Around each coarse boundary only a few
seconds are decoded, at the file's native frame rate (a seek to the preceding keyframe);
the picture change between consecutive frames is measured on small grey thumbnails, and the
boundary moves to the strongest cut or fade edge within ``search_s`` of it, when there is a
clear one. Times are seconds from the start of playback, like everything else.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from introdetect.media import (
    MediaError,
    open_container,
    pick_video_stream,
    playback_start,
    show_path,
)

log = logging.getLogger(__name__)

THUMB = (48, 27)  # grey thumbnails the cut measure is computed on


@dataclass(frozen=True)
class FrameChanges:
    """Frame start times in a span and how much the picture changed at each frame."""

    times: np.ndarray  # [N] seconds, frame start times (playback timeline)
    change: np.ndarray  # [N] mean |difference| to the previous frame, 0..1 (the first frame:
    # 0, or its difference from black when it is the file's first picture)
    luma: np.ndarray  # [N] mean brightness 0..1


def frame_changes(
    path: str | Path, t0: float, t1: float, start_is_cut: bool = False
) -> FrameChanges:
    """Decode ``[t0, t1]`` of ``path``'s video at its native rate (seeking first).

    With ``start_is_cut``, when the span starts at the beginning of playback, the first
    picture counts as a cut from black: an intro that opens the episode starts there, not
    at its first inner cut."""
    container = open_container(path)
    try:
        v = pick_video_stream(container, path)
        v.thread_type = "AUTO"
        start = playback_start(container)
        container.seek(int((max(0.0, t0) + start) / v.time_base), stream=v, backward=True)
        times, thumbs = [], []
        for frame in container.decode(v):
            if frame.pts is None:
                continue
            t = float(frame.pts * frame.time_base) - start
            if t > t1:
                break
            if t >= t0 - 1.0 / 25:
                g = frame.to_ndarray(width=THUMB[0], height=THUMB[1], format="gray")
                times.append(t)
                thumbs.append(g.astype(np.float32) / 255.0)
    except av.error.FFmpegError as e:
        raise MediaError(
            f"{show_path(path)}: cannot decode around {t0:.1f}-{t1:.1f} s ({e})"
        ) from e
    finally:
        container.close()
    if not thumbs:
        return FrameChanges(np.zeros(0), np.zeros(0), np.zeros(0))
    order = np.argsort(times)
    stack = np.stack([thumbs[i] for i in order])
    change = np.zeros(len(stack), np.float32)
    change[1:] = np.abs(np.diff(stack, axis=0)).mean(axis=(1, 2))
    if start_is_cut and t0 <= 0.0:  # nothing plays before the first picture
        change[0] = float(stack[0].mean())
    return FrameChanges(np.asarray(times)[order], change, stack.mean(axis=(1, 2)))


def snap_time(fc: FrameChanges, t: float, search_s: float, step_s: float = 0.5) -> float | None:
    """The start time of the frame after the clearest cut (or the first non-black frame
    after a fade) within ``search_s`` of ``t``; None when no edge stands out.

    ``t`` came from a grid of ``step_s`` steps and is good to about one step, so a cut's
    strength is weighed by a Gaussian of its distance with that spread: one a step away
    counts 0.61 of one at ``t``, two steps away 0.14. A strong cut between two shots of the
    intro a second inside it then no longer wins over the intro's own, weaker, cut beside
    the coarse boundary (development set, model-free, seeds 1, 2, 4, 5, 6: unseen mean IoU
    0.836 -> 0.855 against the former 1 / (1 + distance / search_s) weight)."""
    if len(fc.times) < 3:
        return None
    near = np.abs(fc.times - t) <= search_s
    if not near.any():
        return None
    floor = float(np.median(fc.change[1:])) + 1e-3
    # a cut: a change far above the typical frame-to-frame change, preferring nearer ones
    score = fc.change / floor * np.exp(-0.5 * ((fc.times - t) / step_s) ** 2)
    score[~near] = 0.0
    k = int(np.argmax(score))
    if fc.change[k] > max(4.0 * floor, 0.04):
        return float(fc.times[k])
    black = fc.luma < 0.06  # a fade: the edge between black and picture
    edges = np.flatnonzero(black[:-1] != black[1:]) + 1
    edges = edges[near[edges]]
    if edges.size:
        return float(fc.times[edges[np.argmin(np.abs(fc.times[edges] - t))]])
    return None


def refine_interval(
    path: str | Path, interval: tuple[float, float], search_s: float = 1.5, step_s: float = 0.5
) -> tuple[tuple[float, float], int]:
    """``interval`` with each boundary snapped to a nearby cut or fade where there is one
    (``step_s``: the step of the grid the interval was chosen on, :func:`snap_time`); also
    how many of the two boundaries moved."""
    a, b = interval
    moved = 0
    out = []
    for t, is_start in ((a, True), (b, False)):
        fc = frame_changes(path, t - search_s - 0.1, t + search_s + 0.1, start_is_cut=is_start)
        snapped = snap_time(fc, t, search_s, step_s)
        moved += snapped is not None
        out.append(t if snapped is None else snapped)
    if out[1] - out[0] < 0.5:  # snapping must not collapse the intro
        return interval, 0
    return (round(out[0], 2), round(out[1], 2)), moved  # the 0.01 s of every answer
