"""IntroDataset over the feature store, targets per step, and a padding collate with masks.

An item is one episode: ``x [T, D]`` (what :mod:`introdetect.inputs` builds), the per-step
intro target ``y [T]``, presence, and the relative interval ``[start, end] / (T / fps)``.
Features are read once into memory (a 10-minute episode at 2 steps/s is ~1.3 MB).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from introdetect.store import check_compatible, read_episode

log = logging.getLogger(__name__)


def episode_input(visual: np.ndarray, audio: np.ndarray, use_mels: bool) -> np.ndarray:
    """Model input per step: visual ++ log-RMS (++ log-mel). float32 [T, D]."""
    rms = np.log(audio[:, :1] + 1e-4)
    parts = [visual.astype(np.float32), rms]
    if use_mels:
        parts.append(audio[:, 1:] / 10.0)
    return np.concatenate(parts, axis=1).astype(np.float32)


def step_targets(
    n_steps: int, fps: float, start_s: float | None, end_s: float | None
) -> np.ndarray:
    """1 for steps whose centre lies inside [start, end), else 0. float32 [T]."""
    y = np.zeros(n_steps, np.float32)
    if start_s is None or end_s is None:
        return y
    centres = (np.arange(n_steps) + 0.5) / fps
    y[(centres >= start_s) & (centres < end_s)] = 1.0
    return y


@dataclass
class Episode:
    """One episode's model input and targets."""

    episode_id: str
    series: str
    x: np.ndarray  # [T, D]
    fps: float
    start_s: float | None
    end_s: float | None
    attrs: dict[str, Any]
    # another view of the same episode for training (e.g. known-intro evidence computed as
    # if its series were unseen); augmentation picks one of the two
    x_alt: np.ndarray | None = None
    # how many trailing columns of ``x`` are the season's repetition channels (0: none)
    rep_cols: int = 0


@dataclass
class RawEpisode:
    """One episode's cached features (and repetition channels), before model inputs."""

    episode_id: str
    series: str
    visual: np.ndarray  # [T, 512]
    audio: np.ndarray  # [T, 1 + n_mels]
    rep: np.ndarray | None  # [T, 5] (see introdetect.repetition) or None
    fps: float
    start_s: float | None
    end_s: float | None
    attrs: dict[str, Any]


def load_raw(
    items: list[tuple[str, str, float | None, float | None]],
    feature_dir: str | Path,
    reference: dict[str, Any] | None = None,
    rep_dir: str | Path | None = None,
) -> tuple[list[RawEpisode], dict[str, str]]:
    """Load ``(episode_id, series, start_s, end_s)`` items that have a feature file.

    With ``rep_dir``, the episode's repetition channels (``<rep_dir>/<id>.npy``) come too.
    Returns the episodes and ``{id: reason}`` for the ones left out (no features, or
    incompatible with ``reference`` provenance). The first loaded file is the reference
    when none is given, so one run never mixes backbones.
    """
    feature_dir = Path(feature_dir)
    out, missing = [], {}
    for eid, series, start, end in items:
        path = feature_dir / f"{eid}.h5"
        if not path.exists():
            missing[eid] = f"{path}: no feature file (featurize failed or skipped)"
            continue
        f = read_episode(path)
        if reference is None:
            reference = f.attrs
        check_compatible(f.attrs, reference, str(path))
        rep = None
        if rep_dir is not None:
            rp = Path(rep_dir) / f"{eid}.npy"
            if not rp.exists():
                missing[eid] = f"{rp}: no repetition features (run the repetition stage)"
                continue
            rep = np.load(rp).astype(np.float32)
        fps = float(f.attrs["fps"])
        out.append(RawEpisode(eid, series, f.visual, f.audio, rep, fps, start, end, f.attrs))
    return out, missing


class IntroDataset(Dataset):
    """Episodes as training items; optional random crops that keep the intro inside, and
    (``drop_repetition``) items whose repetition channels read as if the season repeated
    nothing, so the model also learns to answer from the other evidence (a season where few
    episodes hold the intro, a lone episode)."""

    def __init__(
        self,
        episodes: list[Episode],
        augment: bool = False,
        seed: int = 0,
        crop_s: float = 0.0,
        drop_repetition: float = 0.0,
    ) -> None:
        self.episodes = episodes
        self.augment = augment
        self.crop_s = crop_s
        self.drop_repetition = drop_repetition
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.episodes)

    def _crop(self, n: int, fps: float, start: float | None, end: float | None) -> tuple[int, int]:
        """A random span ``[a, b)`` that keeps the intro, when there is one, whole inside:
        about ``crop_s`` seconds long, or (``crop_s`` 0) from anywhere before the intro to
        anywhere after it."""
        if self.crop_s <= 0:
            lo_max = int(start * fps) if start is not None else n // 2
            a = int(self.rng.integers(0, max(1, lo_max + 1)))
            hi_min = int(np.ceil(end * fps)) if end is not None else a + 10
            return a, int(self.rng.integers(min(n, max(hi_min, a + 10)), n + 1))
        want = min(n, max(int(self.crop_s * fps), 10))
        if start is None:
            a = int(self.rng.integers(0, n - want + 1))
            return a, a + want
        lo, hi = int(start * fps), min(n, int(np.ceil(end * fps)))
        want = max(want, hi - lo)
        a = int(self.rng.integers(max(0, hi - want), min(lo, n - want) + 1))
        return a, a + want

    def __getitem__(self, i: int) -> dict[str, Any]:
        ep = self.episodes[i]
        x, fps = ep.x, ep.fps
        if self.augment and ep.x_alt is not None and self.rng.random() < 0.5:
            x = ep.x_alt
        elif self.augment and ep.rep_cols and self.drop_repetition > 0:
            # (no draw at 0, so the default keeps the random stream, and the models, as before)
            drop = self.rng.random() < self.drop_repetition
            if drop:
                x = x.copy()
                x[:, -ep.rep_cols :] = 0.0
        start, end = ep.start_s, ep.end_s
        n = x.shape[0]
        if self.augment and n > 20 and self.rng.random() < (0.8 if self.crop_s else 0.5):
            # a crop around the intro: other cold-open lengths, shorter episodes, and far
            # fewer steps to learn from when crop_s is set (balanced intro / other steps)
            a, b = self._crop(n, fps, start, end)
            x = x[a:b]
            if start is not None:
                start, end = start - a / fps, end - a / fps
        n = x.shape[0]
        dur = n / fps
        present = start is not None
        reg = np.array([start / dur, min(end, dur) / dur] if present else [0.0, 0.0], np.float32)
        return {
            "x": torch.from_numpy(np.ascontiguousarray(x)),
            "y": torch.from_numpy(step_targets(n, fps, start, end)),
            "presence": torch.tensor(float(present)),
            "reg": torch.from_numpy(np.clip(reg, 0.0, 1.0)),
            "episode_id": ep.episode_id,
        }


def pad_sequences(xs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[T_i, D] tensors -> x [B, T_max, D] (zero-padded), lengths [B], mask [B, T_max]."""
    lengths = torch.tensor([x.shape[0] for x in xs])
    x = torch.zeros(len(xs), int(lengths.max()), xs[0].shape[1])
    mask = torch.zeros(len(xs), int(lengths.max()), dtype=torch.bool)
    for i, xi in enumerate(xs):
        x[i, : xi.shape[0]], mask[i, : xi.shape[0]] = xi, True
    return x, lengths, mask


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad to the longest sequence: x [B, T, D], y [B, T], mask [B, T] (True = real step)."""
    x, lengths, mask = pad_sequences([b["x"] for b in batch])
    y = torch.zeros(mask.shape)
    for i, b in enumerate(batch):
        y[i, : b["y"].shape[0]] = b["y"]
    return {
        "x": x,
        "y": y,
        "mask": mask,
        "lengths": lengths,
        "presence": torch.stack([b["presence"] for b in batch]),
        "reg": torch.stack([b["reg"] for b in batch]),
        "episode_id": [b["episode_id"] for b in batch],
    }
