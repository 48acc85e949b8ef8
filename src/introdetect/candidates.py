"""Where to look: candidate time ranges from an audio-only pass over a season.

Decoding the audio of an episode costs a fraction of decoding its pictures, and the intro's
theme is audio that repeats across a season. Per-step log-mels are too coarse to say where
(at any threshold that keeps every intro they mark nearly the whole window as repeated, on
the development set), so the audio pass also computes a Philips-style fingerprint
(:func:`introdetect.features.audio.fingerprint`: 16 bits per 32 ms that ignore loudness and
survive re-encoding with a small bit error rate).

Two episodes are matched by voting: frames with identical fingerprints propose an offset,
the most voted offsets are checked frame by frame, and frames whose smoothed bit error rate
along an offset stays under ``BER_MAX`` repeat in the other episode. Votes that only echo an
alignment already found (a theme looping under both episodes' end credits matches again at
every multiple of its bar) are not counted again, so a short intro is checked too
(:func:`offset_matches`). A step's sound share
(:func:`step_share`) is the share of up to ``repetition.max_others`` other episodes of its
series in which at least half of its frames repeat. A step is a candidate when that share
is high enough for the step to be part of a model-free answer; candidates are widened by a
margin (the picture can start before the music) and merged. (The first rule, any frame
repeating in any other episode, kept every intro step on the development set while marking
53 % of the steps (demo size, seed 1; 95 s episodes, so margins weigh heavily), the per-step
mels 98 %; with matches up to a bit error rate of 0.30 it marked 87 % of a 10-episode
season.)
"""

from __future__ import annotations

import heapq
from collections import defaultdict

import numpy as np

from introdetect.features.audio import FP_HOP, FP_N_FFT, FP_SR
from introdetect.params import RepetitionParams
from introdetect.postprocess import true_runs
from introdetect.repetition import AUDIO_SHARE, AUDIO_SPLIT, Copies, pick_others

Ranges = list[tuple[int, int]]  # [first step, last step + 1) per range, ascending

# Smoothed bit error rate under which two aligned frames are "the same". The same theme in
# two AAC-encoded episodes measured 0.26-0.36 at its true alignment with 128 ms frames (it
# starts between two 32 ms hops, so every frame straddles a different cut of the sound),
# 0.20-0.25 with today's 256 ms frames (``FP_N_FFT``); unrelated sound sits at 0.5, and a
# 1 s mean of ~500 bits is seven standard deviations from it at 0.3. With 0.25 (and 128 ms
# frames) a 10-episode season's intro matched in about half of the other episodes.
BER_MAX = 0.30
SMOOTH = 31  # frames (~1 s) over which the bit error rate is averaged
MIN_VOTES = 4  # identical fingerprints an offset needs before it is checked
# the votes of the offsets up to this many frames off count for an offset too
# (offset_matches): the copy of a short intro lies a fraction of a hop off, so its few
# identical fingerprints split between neighbours (a 2.2 s intro, bit error rate 0.1-0.27
# along it: 2, 1 and 2 votes at three offsets, development set seed 7)
SPREAD = 1
# offsets checked per pair of episodes (:func:`offset_matches`): the intro's true offset can
# rank below twenty (the longer fingerprint frames make a stationary sound's votes more
# numerous); 40 costs ~1 s more per 10-episode season of 600 s windows
TOP_OFFSETS = 40
MAX_REPEATS = 100  # a fingerprint this frequent in an episode (a stationary sound) never votes
# bits set in every 16-bit value (fingerprints are uint16)
_POP = np.unpackbits(np.arange(1 << 16, dtype=">u2").view(np.uint8)).reshape(-1, 16).sum(1)
_POP = _POP.astype(np.uint8)


def _ber(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per frame, the share of the 16 bits in which ``a`` and ``b`` differ."""
    return _POP[a ^ b] / 16.0


def _vote_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of frames with ``a[i] == b[j]`` that votes (see :func:`offset_votes`):
    ``(i, j)``, int64 arrays. Vectorised (sorting, not a Python loop per frame: a 600 s
    window has ~19,000 frames)."""
    order = np.argsort(b, kind="stable")
    values, first, counts = np.unique(b[order], return_index=True, return_counts=True)
    usable = (values != 0) & (counts <= MAX_REPEATS)
    pos = np.minimum(np.searchsorted(values, a), len(values) - 1)
    i = np.flatnonzero((values[pos] == a) & usable[pos])
    if i.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    n = counts[pos[i]]
    within = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    j = order[np.repeat(first[pos[i]], n) + within]
    return np.repeat(i, n).astype(np.int64), j.astype(np.int64)


def offset_votes(
    a: np.ndarray, b: np.ndarray, limit: int | None = TOP_OFFSETS
) -> list[tuple[int, int]]:
    """The ``limit`` (None: all) most voted offsets ``j - i`` (most votes first, then the
    one voted for first in frame order) with their votes: every pair of frames with
    ``a[i] == b[j]`` votes. Digital silence (0) and fingerprints that occur more than
    :data:`MAX_REPEATS` times in ``b`` (a stationary sound) do not vote: identical
    everywhere, they would outvote the rest."""
    return _ranked(*_vote_pairs(a, b), len(a), len(b), limit)


def _ranked(
    ii: np.ndarray,
    j: np.ndarray,
    len_a: int,
    len_b: int,
    limit: int | None,
    least: int = 1,
    spread: int = 0,
) -> list[tuple[int, int]]:
    """:func:`offset_votes` from the pairs of :func:`_vote_pairs`: offsets voted for, with
    at least ``least`` votes counting those of the offsets up to ``spread`` frames off."""
    if ii.size == 0:
        return []
    k = j - ii + len_a
    raw = np.bincount(k, minlength=len_a + len_b)
    votes = np.convolve(raw, np.ones(2 * spread + 1, raw.dtype), "same") if spread else raw
    votes = np.where(raw > 0, votes, 0)
    seen = np.full(len(votes), np.iinfo(np.int64).max)  # ties: the offset voted for first
    np.minimum.at(seen, k, ii * len_b + j)
    least = max(least, 1)
    best = np.lexsort((seen, -votes))[: int((votes >= least).sum()) if limit is None else limit]
    return [(int(o) - len_a, int(votes[o])) for o in best if votes[o] >= least]


NO_MATCH = np.iinfo(np.int64).min  # frame_offsets: the frame repeats nowhere
NEAR = 2  # offsets this many frames apart are one alignment (_Echoes, _apart)


class _Echoes:
    """The votes of an offset that are echoes of an alignment already accepted (the
    explaining-away of :func:`offset_matches`): a vote of frame ``i`` of ``a`` for offset
    ``o`` (it equals frame ``i + o`` of ``b``) is an echo of the accepted alignment ``o'``
    when ``o'`` matched frame ``i`` and also the frame of ``a`` it maps onto ``i + o``:
    the two places are one repeat, seen again through the music's own repetition (a theme
    looping under end credits matches the other episode's credits at every multiple of its
    loop). Offsets up to :data:`NEAR` frames from an accepted one are no echoes of it: the
    same alignment a fraction of a hop off, which can match where it does not (the last
    half second of an intro, on the development set)."""

    def __init__(self, ii: np.ndarray, j: np.ndarray, len_a: int) -> None:
        off = j - ii
        order = np.argsort(off, kind="stable")
        self.off, self.i = off[order], ii[order]
        self.taken = np.zeros(0, np.int64)  # the accepted offsets
        self.masks = np.zeros((TOP_OFFSETS, len_a), bool)  # where each matched

    def accept(self, off: int, mask: np.ndarray) -> None:
        self.masks[self.taken.size] = mask
        self.taken = np.append(self.taken, off)

    def fresh(self, off: int) -> int:
        """How many votes for ``off`` and the offsets up to :data:`SPREAD` frames off are
        not echoes of an accepted alignment."""
        lo, hi = np.searchsorted(self.off, [off - SPREAD, off + SPREAD + 1])
        i, o = self.i[lo:hi], self.off[lo:hi]
        far = np.abs(self.taken - off) > NEAR
        if not far.any() or i.size == 0:
            return int(i.size)
        masks, taken = self.masks[: self.taken.size][far], self.taken[far]
        k = taken.size
        there = i[None, :] + (o[None, :] - taken[:, None])  # [K, votes]
        inside = (there >= 0) & (there < masks.shape[1])
        rows = np.arange(k)[:, None]
        echo = masks[:, i] & inside & masks[rows, np.where(inside, there, 0)]
        return int(i.size - echo.any(0).sum())


def _smoothed(ber: np.ndarray) -> np.ndarray:
    """``ber`` averaged over :data:`SMOOTH` frames centred on each, over fewer at either end
    (padding with zeros made the last few frames of every overlap checked a "match")."""
    n, h = len(ber), SMOOTH // 2
    total = np.concatenate([[0.0], np.cumsum(ber)])
    at = np.arange(n)
    lo, hi = np.maximum(at - h, 0), np.minimum(at + h + 1, n)
    return (total[hi] - total[lo]) / (hi - lo)


def offset_matches(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The offsets (in frames, in the order they were accepted) at which some of ``a``
    repeats in ``b``, int64 [K], and where each matches, bool [K, len(a)] (the bit error
    rate, averaged over :data:`SMOOTH` frames, under :data:`BER_MAX`).

    Up to :data:`TOP_OFFSETS` offsets are checked, the most voted first (:func:`offset_votes`,
    counting the votes of the offsets up to :data:`SPREAD` frames off), each one's votes
    counted without the echoes of the alignments accepted before it (:class:`_Echoes`,
    lazily: a count only shrinks). Ranked by raw votes, a theme looping under 34 s of end
    credits in both episodes (development set, seed 7) filled all forty checks with its own
    bars and their neighbours; the intro, 2.4 s of it, ranked 80th and repeated nowhere."""
    if len(a) < SMOOTH or len(b) < SMOOTH:
        return np.zeros(0, np.int64), np.zeros((0, len(a)), bool)
    pairs = _vote_pairs(a, b)
    echoes = _Echoes(*pairs, len(a))
    ranked = _ranked(*pairs, len(a), len(b), None, MIN_VOTES, SPREAD)
    heap = [(-n, r, o, 0) for r, (o, n) in enumerate(ranked)]  # sorted: a heap
    checked = 0
    while heap and checked < TOP_OFFSETS:
        _, rank, off, counted = heapq.heappop(heap)
        if counted != echoes.taken.size:  # alignments accepted since it was counted
            n = echoes.fresh(off)
            if n >= MIN_VOTES:
                heapq.heappush(heap, (-n, rank, off, echoes.taken.size))
            continue
        checked += 1
        i0, i1 = max(0, -off), min(len(a), len(b) - off)
        if i1 - i0 < SMOOTH:
            continue
        m = np.zeros(len(a), bool)
        m[i0:i1] = _smoothed(_ber(a[i0:i1], b[i0 + off : i1 + off])) < BER_MAX
        if m.any():
            echoes.accept(off, m)
    return echoes.taken, echoes.masks[: echoes.taken.size].copy()


def frame_offsets(
    a: np.ndarray, b: np.ndarray, matches: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """int64 [len(a)]: the offset (in frames) at which each frame of ``a`` repeats in ``b``
    -- the most voted one where several match (a theme's repeated bars also match a bar
    later) -- or :data:`NO_MATCH`. ``matches``: :func:`offset_matches` of the pair."""
    offs, masks = offset_matches(a, b) if matches is None else matches
    out = np.full(len(a), NO_MATCH, np.int64)
    for off, m in zip(offs, masks, strict=True):
        out[m & (out == NO_MATCH)] = off
    return out


def repeated_frames(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Boolean [len(a)]: frames of ``a`` that repeat in ``b`` at some offset."""
    return frame_offsets(a, b) != NO_MATCH


def frame_steps(n_frames: int, n_steps: int, fps: float) -> np.ndarray:
    """The step (int64 [n_frames]) holding the centre of each fingerprint frame: frame i
    (after the diff) starts at hop i + 1 and spans FP_N_FFT samples."""
    centre = (np.arange(n_frames) + 1) * (FP_HOP / FP_SR) + 0.5 * FP_N_FFT / FP_SR
    return np.minimum(n_steps - 1, (centre * fps).astype(np.int64))


def step_share(
    prints: dict[str, np.ndarray | None],
    n_steps: dict[str, int],
    fps: float,
    cfg: RepetitionParams,
) -> dict[str, np.ndarray | None]:
    """Per step, the share of the other episodes of the series (up to
    ``repetition.max_others``) in which the step's audio repeats (at least half of its
    fingerprint frames): float32 [T] per episode, None for an episode without audio.
    Digital silence (fingerprint 0) never counts as repeating: two quiet stretches are not
    the same sound."""
    return {
        e: None if v is None else v[0] for e, v in season_sound(prints, n_steps, fps, cfg).items()
    }


def season_sound(
    prints: dict[str, np.ndarray | None],
    n_steps: dict[str, int],
    fps: float,
    cfg: RepetitionParams,
) -> dict[str, tuple[np.ndarray, np.ndarray, Copies] | None]:
    """Per episode ``(share, split, copies)``, None without audio: ``share`` (float32 [T])
    as in :func:`step_share`; ``split`` (float32 [T]), the share of the same others in
    which the sound's repeat changes place at the step (:func:`realignments`: an ident at
    the start of both episodes, then the intro that one of them plays after a cold open);
    ``copies``, per other episode compared, every place there where a run of its steps
    repeats (:func:`copy_runs`: the intro's theme repeats at the other's intro and again
    under its end credits)."""
    ids = [eid for eid in prints if prints[eid] is not None and np.any(prints[eid])]
    out: dict[str, tuple[np.ndarray, np.ndarray, Copies] | None] = {eid: None for eid in prints}
    steps = {eid: frame_steps(len(prints[eid]), n_steps[eid], fps) for eid in ids}
    for eid in ids:
        n, fp, step_of = n_steps[eid], prints[eid], steps[eid]
        per_step = np.maximum(np.bincount(step_of, minlength=n)[:n], 1)
        others = pick_others(ids, eid, cfg.max_others)
        share = np.zeros(n, np.float32)
        split = np.zeros(n, np.float32)
        copies: Copies = {}
        for other in others:
            matches = offset_matches(fp, prints[other])
            offsets = frame_offsets(fp, prints[other], matches)
            offsets[fp == 0] = NO_MATCH
            hit = offsets != NO_MATCH
            share += np.bincount(step_of[hit], minlength=n)[:n] * 2 >= per_step
            for frame in realignments(offsets, matches):
                split[step_of[frame]] += 1
            copies[other] = copy_runs(matches, step_of, per_step, steps[other])
        k = max(1, len(others))
        out[eid] = (share / k, split / k, copies)
    return out


def copy_runs(
    matches: tuple[np.ndarray, np.ndarray],
    step_of: np.ndarray,
    per_step: np.ndarray,
    there: np.ndarray,
) -> np.ndarray:
    """int32 [S, 3]: ``(start, end, start there)`` for every run of steps (at least one
    second of frames: :data:`SMOOTH`) in which at least half of each step's frames repeat
    in the other episode at one of ``matches``' offsets (:func:`offset_matches`), and the
    step there where the copy of its first frame lies. ``step_of``: each frame's step
    (:func:`frame_steps`); ``per_step``: frames per step; ``there``: the other episode's
    frames' steps. Silent frames (fingerprint 0) are left to the offsets' masks."""
    n = len(per_step)
    rows = []
    for off, mask in zip(*matches, strict=True):
        steps = np.bincount(step_of[mask], minlength=n)[:n] * 2 >= per_step
        for a, b in true_runs(steps):
            lo, hi = np.searchsorted(step_of, [a, b])  # the frames of steps [a, b)
            frames = lo + np.flatnonzero(mask[lo:hi])
            if frames.size < SMOOTH:
                continue
            first = int(frames[0]) + int(off)
            if 0 <= first < len(there):
                rows.append((a, b, int(there[first]) - (int(step_of[frames[0]]) - a)))
    return np.asarray(rows, np.int32).reshape(-1, 3)


def realignments(
    offsets: np.ndarray, matches: tuple[np.ndarray, np.ndarray] | None = None
) -> list[int]:
    """Frames where the sound stops repeating at one offset and repeats at another within a
    second (:func:`frame_offsets`; each side at least :data:`SMOOTH` frames long): the
    middle of the gap between the two, where a studio ident ends and the intro begins in an
    episode that plays the two apart elsewhere. Smoothing the bit error rate blurs each edge
    by up to half a second, the same way on both sides, so the middle stays put.

    With ``matches`` (:func:`offset_matches` of the pair) only where the two pieces are
    apart in the other episode: the new offset does not match the second before the frame
    and the old one does not match the second after it. Where both go on matching, the
    sound repeats twice there (the theme at the intro and again under the end credits) and
    only the preferred copy changed: nothing to split."""
    hit = np.flatnonzero(offsets != NO_MATCH)
    if hit.size == 0:
        return []
    off = offsets[hit]
    new = np.flatnonzero((np.abs(np.diff(off)) > NEAR) | (np.diff(hit) > SMOOTH)) + 1
    bounds = np.concatenate([[0], new, [hit.size]])
    runs = [
        (int(hit[a]), int(hit[b - 1]), int(off[a]))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        if b - a >= SMOOTH
    ]
    found = [
        ((end + start) // 2, o1, o2)
        for (_, end, o1), (start, _, o2) in zip(runs[:-1], runs[1:], strict=True)
        if abs(o2 - o1) > NEAR and start - end <= 2 * SMOOTH
    ]
    if matches is None:
        return [f for f, _, _ in found]
    return [f for f, o1, o2 in found if _apart(f, o1, o2, *matches)]


def _apart(frame: int, old: int, new: int, offs: np.ndarray, masks: np.ndarray) -> bool:
    """Whether ``new`` does not match over most of the second before ``frame`` and ``old``
    not over most of the second after it (offsets within :data:`NEAR` frames count as one)."""
    h = SMOOTH // 2

    def matched(off: int, lo: int, hi: int) -> float:
        near = np.abs(offs - off) <= NEAR
        span = masks[near, max(0, lo) : max(0, hi)]
        return float(span.any(0).mean()) if span.size else 0.0

    return (
        matched(new, frame - SMOOTH, frame - h) < 0.5
        and matched(old, frame + h, frame + SMOOTH) < 0.5
    )


def add_audio_share(
    reps: dict[str, np.ndarray],
    series_of: dict[str, str],
    prints: dict[str, np.ndarray | None],
    fps: float,
    cfg: RepetitionParams,
) -> dict[str, Copies]:
    """Fill the sound's channels (share and split) of the repetition channels ``reps`` (in
    place) with :func:`season_sound` per series; an episode without a fingerprint (no audio,
    unreadable audio, or not in ``prints``) gets NaN there. Returns each episode's copies
    (:func:`season_sound`; ``{}`` without audio), for the season's agreement
    (:mod:`introdetect.agreement`)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for eid in reps:
        groups[series_of[eid]].append(eid)
    copies: dict[str, Copies] = {}
    for members in groups.values():
        sound = season_sound(
            {e: prints.get(e) for e in members}, {e: len(reps[e]) for e in members}, fps, cfg
        )
        for eid, both in sound.items():
            if reps[eid].shape[1] <= AUDIO_SPLIT:  # channels from before the split one
                reps[eid] = np.pad(reps[eid], ((0, 0), (0, AUDIO_SPLIT + 1 - reps[eid].shape[1])))
            reps[eid][:, AUDIO_SHARE : AUDIO_SPLIT + 1] = (
                np.nan if both is None else np.stack(both[:2], 1)
            )
            copies[eid] = {} if both is None else both[2]
    return copies


def to_ranges(mask: np.ndarray, margin: int) -> Ranges:
    """Runs of True in ``mask``, each widened by ``margin`` steps and merged."""
    t = mask.size
    out: Ranges = []
    for a, b in true_runs(mask):
        a, b = max(0, a - margin), min(t, b + margin)
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def audio_candidates(
    prints: dict[str, np.ndarray],
    n_steps: dict[str, int],
    fps: float,
    cfg: RepetitionParams,
    min_sound: float,
    margin_s: float = 3.0,
) -> dict[str, Ranges]:
    """``{id: fingerprint}`` of one series (and each episode's step count) ->
    ``{id: candidate step ranges}``: the steps whose sound repeats in at least ``min_sound``
    of the other episodes (:func:`step_share`), widened by ``margin_s``; an episode whose
    audio repeats nowhere (or a series of one) gets ``[]``."""
    shares = step_share(prints, n_steps, fps, cfg)
    out: dict[str, Ranges] = {}
    for eid in prints:
        share = shares.get(eid)
        steps = share >= max(min_sound, 1e-6) if share is not None else np.zeros(0, bool)
        out[eid] = to_ranges(steps, int(round(margin_s * fps)))  # alone: share 0, no range
    return out


def coverage(ranges: Ranges) -> int:
    """Steps inside the ranges."""
    return sum(b - a for a, b in ranges)
