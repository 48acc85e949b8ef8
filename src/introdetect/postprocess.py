"""Post-processing shared by the predict stage and ``introdetect detect``: smoothing of
per-step probabilities and extraction of the best intro interval."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Span = tuple[int, int]  # steps [a, b)


@dataclass(frozen=True)
class Prefer:
    """What the model-free detector asks about runs beyond how widely they are shared
    (``extract_best_interval(prefer=)``; the speech cue, :mod:`introdetect.speech`)."""

    # of several runs shared about as widely, which to keep
    keep: Callable[[list[Span]], list[bool]]
    # the best run and the runs shared less widely (most widely first): the index of one of
    # those to take instead of the best, or None (``predict.dialogue_yields``)
    instead: Callable[[Span, list[Span]], int | None] | None = None


def smooth_predictions(
    probs: np.ndarray, fps: float, method: str = "gaussian", width_s: float = 1.0
) -> np.ndarray:
    """Smooth a per-step probability curve [T].

    ``gaussian``: sigma = ``width_s`` seconds; ``moving_average``: a centred box of
    ``width_s`` seconds; ``none``: unchanged. Edges are handled by renormalising the kernel
    over valid samples, so values stay in [0, 1] and do not sag at the ends.
    """
    probs = np.asarray(probs, np.float64)
    if method == "none" or width_s <= 0 or probs.size < 2:
        return probs.copy()
    if method == "gaussian":
        sigma = width_s * fps
        r = max(1, int(np.ceil(3 * sigma)))
        k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    elif method == "moving_average":
        r = max(0, int(round(width_s * fps / 2)))
        k = np.ones(2 * r + 1)
    else:
        raise ValueError(f"unknown smoothing method {method!r}")
    n = probs.size
    num = np.convolve(probs, k, mode="full")[r : r + n]  # centred; works when len(k) > n
    den = np.convolve(np.ones(n), k, mode="full")[r : r + n]
    return num / den


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` of each run of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def extract_best_interval(
    probs: np.ndarray,
    fps: float,
    threshold: float = 0.5,
    min_len_s: float = 1.5,
    max_len_s: float = 30.0,
    level_tolerance: float | None = None,
    level: np.ndarray | None = None,
    prefer: Prefer | None = None,
    weak: list[Span] | None = None,
) -> tuple[float, float, float] | None:
    """The best contiguous run of steps with ``probs >= threshold``.

    Runs shorter than ``min_len_s`` are ignored; a run longer than ``max_len_s`` is cut to
    its best ``max_len_s`` window. The best run is the one with the largest probability
    mass; with ``level_tolerance``, the one with the largest mass among the runs whose mean
    is within ``level_tolerance`` of the highest mean (the model-free detector: a run shared
    by every other episode before a longer one shared by a few), the means taken on
    ``level`` when given (the same steps of another curve: the unsmoothed share, on which a
    short run is not lowered by the smoothing its edges get). ``prefer.keep(spans)``: of
    several such runs (``[a, b)`` steps each), which to keep (:mod:`introdetect.speech`:
    those without speech where some have none: an intro is music, a recapped scene that a
    small season shares as widely is dialogue); all are kept where it keeps none.
    ``prefer.instead(best, others)``: a run shared less widely to take instead of the best
    (others ordered by how widely they are shared, then by mass: where the best is dialogue,
    the first quiet one), then the ``weak`` runs (``[a, b)`` steps each: runs no found run
    overlaps, shared as widely as the threshold asks only before smoothing; never an answer
    but in a dialogue run's place).
    Returns ``(start_s, end_s, score)`` with score = mean probability in the run, or None.
    """
    probs = np.asarray(probs, np.float64)
    above = probs >= threshold
    if not above.any():
        return None
    min_steps = max(1, int(np.ceil(min_len_s * fps - 1e-9)))
    max_steps = max(min_steps, int(np.floor(max_len_s * fps + 1e-9)))
    runs: list[tuple[int, int, float]] = []
    for a, b in true_runs(above):
        if b - a < min_steps:
            continue
        if b - a > max_steps:  # best window of max_steps inside the run
            c = np.concatenate([[0.0], np.cumsum(probs[a:b])])
            sums = c[max_steps:] - c[:-max_steps]
            off = int(np.argmax(sums))
            a, b = a + off, a + off + max_steps
        runs.append((a, b, float(probs[a:b].sum())))
    if level_tolerance is not None and runs:
        at = np.asarray(level, np.float64) if level is not None else probs
        means = [float(at[a:b].mean()) for a, b, _ in runs]
        top = max(means)
        band = [r for r, m in zip(runs, means, strict=True) if m >= top - level_tolerance]
        if prefer is not None and len(band) > 1:
            keep = prefer.keep([(a, b) for a, b, _ in band])
            band = [r for r, k in zip(band, keep, strict=True) if k] or band
        best = max(band, key=lambda r: r[2])  # the first of equal masses
        if prefer is not None and prefer.instead is not None:
            ranked = sorted(zip(runs, means, strict=True), key=lambda rm: (-rm[1], -rm[0][2]))
            others = [r for r, m in ranked if m < top - level_tolerance]
            others += [(a, b, float(at[a:b].sum())) for a, b in weak or []]
            if others:
                k = prefer.instead(best[:2], [(a, b) for a, b, _ in others])
                best = others[k] if k is not None else best
        runs = [best]
    best = max(runs, key=lambda r: r[2], default=None)  # the first of equal masses
    if best is None:
        return None
    a, b, mass = best
    return a / fps, b / fps, mass / (b - a)
