"""Where to look: candidate time ranges from an audio-only pass over a season.

Decoding the audio of an episode costs a fraction of decoding its pictures, and the intro's
theme is the audio that repeats across a season. Per series, each episode's log-mel steps
are compared with up to ``repetition.max_others`` other episodes' (whitened on the season,
as :mod:`introdetect.repetition` does); a step belongs to a candidate when it lies on an
aligned run of above-threshold audio similarity at least ``repetition.min_run_s`` long with
any other episode. Runs are widened by a margin (the picture can start before the music)
and merged. The picture is then decoded only inside the candidates
(:mod:`introdetect.fastpath`); an episode whose audio finds nothing is decoded in full.
"""

from __future__ import annotations

import numpy as np

from introdetect.params import RepetitionParams
from introdetect.repetition import _unit, diagonal_runs, pick_others, whitener

Ranges = list[tuple[int, int]]  # [first step, last step + 1) per range, ascending


def audio_descriptors(mels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{id: log-mels [T, M]}`` of one series -> whitened unit descriptors (16 directions),
    all-zero rows for silent or missing audio."""
    rows = np.concatenate(list(mels.values()))
    mu, proj = whitener(rows, 16)
    return {eid: _unit(((m - mu) @ proj).astype(np.float32)) for eid, m in mels.items()}


def repeated_steps(
    own: np.ndarray, others: list[np.ndarray], fps: float, cfg: RepetitionParams
) -> np.ndarray:
    """Boolean [T]: steps on an aligned audio run of at least ``min_run_s`` with any other."""
    min_steps = max(1, int(round(cfg.min_run_s * fps)))
    hit = np.zeros(own.shape[0], bool)
    for other in others:
        runs = diagonal_runs((own @ other.T) >= cfg.sim_threshold).max(1)
        hit |= runs >= min_steps
    return hit


def to_ranges(mask: np.ndarray, margin: int) -> Ranges:
    """Runs of True in ``mask``, each widened by ``margin`` steps and merged."""
    t = mask.size
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    out: Ranges = []
    for a, b in zip(starts, ends, strict=True):
        a, b = max(0, int(a) - margin), min(t, int(b) + margin)
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def audio_candidates(
    mels: dict[str, np.ndarray],
    fps: float,
    cfg: RepetitionParams,
    margin_s: float = 10.0,
) -> dict[str, Ranges]:
    """``{id: log-mels [T, M]}`` of one series -> ``{id: candidate step ranges}``; an
    episode whose audio repeats nowhere (or a series of one) gets ``[]``."""
    ids = list(mels)
    if len(ids) < 2:
        return {eid: [] for eid in ids}
    desc = audio_descriptors(mels)
    margin = int(round(margin_s * fps))
    out = {}
    for eid in ids:
        others = [desc[o] for o in pick_others(ids, eid, cfg.max_others)]
        out[eid] = to_ranges(repeated_steps(desc[eid], others, fps, cfg), margin)
    return out


def coverage(ranges: Ranges) -> int:
    """Steps inside the ranges."""
    return sum(b - a for a, b in ranges)
