"""Per-step evidence that means the same in every series, from cached features only.

Channels (``EVIDENCE_CHANNELS``), each ``[T]`` float32:

* ``tmpl_vis``, ``tmpl_aud`` -- known intros: the best alignment of the step's
  neighbourhood with any labelled intro of the training series (templates), visual and
  audio. A template is slid along the episode; its score at an offset is the mean, over the
  template's steps, of the cosine to the episode step it lands on (each allowed to slip one
  step, so a trimmed second or a different frame rate does not break the match), and a step
  gets the best score of any placement that covers it.
* ``pos_rel``, ``pos_start``, ``pos_end`` -- position: share of the episode, minutes from the
  start and minutes to the end (each clipped at 10): intros come early, credits last.
* ``loud``, ``centroid``, ``flatness`` -- content cues from the log-mel frames: loudness,
  spectral centroid (bright theme vs dialogue) and flatness (noise vs tones).
* ``cut``, ``cut_rate`` -- visual change from the previous step, and its mean over 10 s
  (title sequences cut faster than dialogue scenes).

Descriptors are centred on training statistics kept with the model, so that what every
picture shares (the backbone's bias) does not count as similarity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d

EVIDENCE_CHANNELS = (
    "tmpl_vis",
    "tmpl_aud",
    "pos_rel",
    "pos_start",
    "pos_end",
    "loud",
    "centroid",
    "flatness",
    "cut",
    "cut_rate",
)
# The evidence in groups a model can be trained on alone (``model.evidence_groups``): what
# each kind of evidence is worth by itself, and a model without the ones a library lacks.
EVIDENCE_GROUPS: dict[str, tuple[str, ...]] = {
    "known": ("tmpl_vis", "tmpl_aud"),
    "position": ("pos_rel", "pos_start", "pos_end"),
    "content": ("loud", "centroid", "flatness", "cut", "cut_rate"),
}


def group_columns(groups: tuple[str, ...]) -> list[int]:
    """The columns of :data:`EVIDENCE_CHANNELS` that ``groups`` (names of
    :data:`EVIDENCE_GROUPS`) keep, in channel order."""
    names = {n for g in groups for n in EVIDENCE_GROUPS[g]}
    return [i for i, n in enumerate(EVIDENCE_CHANNELS) if n in names]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-6)


@dataclass
class Descriptors:
    """Centred unit descriptors of one episode's steps."""

    vis: np.ndarray  # [T, 512]
    aud: np.ndarray  # [T, n_mels]


@dataclass
class Centre:
    """Training-set means the descriptors are centred on."""

    vis: np.ndarray  # [512]
    aud: np.ndarray  # [n_mels]

    @classmethod
    def of(cls, feats: list[tuple[np.ndarray, np.ndarray]]) -> Centre:
        """From ``(visual [T, 512], audio [T, 1 + n_mels])`` of the training episodes."""
        vis = np.concatenate([v for v, _ in feats]).astype(np.float64).mean(0)
        aud = np.concatenate([a[:, 1:] for _, a in feats]).astype(np.float64).mean(0)
        return cls(vis.astype(np.float32), aud.astype(np.float32))

    def describe(self, visual: np.ndarray, audio: np.ndarray) -> Descriptors:
        return Descriptors(
            _unit(visual.astype(np.float32) - self.vis),
            _unit(audio[:, 1:].astype(np.float32) - self.aud),
        )


@dataclass
class Template:
    """One labelled intro: its steps' descriptors and where it came from."""

    episode_id: str
    series: str
    vis: np.ndarray  # [L, 512]
    aud: np.ndarray  # [L, n_mels]


def make_template(
    episode_id: str, series: str, d: Descriptors, start_s: float, end_s: float, fps: float
) -> Template | None:
    """The steps whose centre lies in ``[start, end)``; None for an intro under two steps."""
    centres = (np.arange(len(d.vis)) + 0.5) / fps
    idx = np.flatnonzero((centres >= start_s) & (centres < end_s))
    if len(idx) < 2:
        return None
    return Template(episode_id, series, d.vis[idx], d.aud[idx])


def match_template(desc: np.ndarray, tmpl: np.ndarray) -> np.ndarray:
    """Per step: the best alignment score of ``tmpl [L, D]`` over placements that cover the
    step, for ``desc [T, D]`` (both unit rows). ``[T]`` in [-1, 1]."""
    t, length = len(desc), len(tmpl)
    sim = maximum_filter1d(desc @ tmpl.T, size=3, axis=0, mode="nearest")  # slip one step
    padded = np.concatenate([sim, np.full((length, length), -1.0, sim.dtype)])
    offsets = np.arange(t)[:, None] + np.arange(length)[None, :]
    score = padded[offsets, np.arange(length)[None, :]].mean(1)  # [T]: placement at o
    # a step is covered by placements o in [t - L + 1, t]
    return maximum_filter1d(score, size=length, origin=(length - 1) // 2, mode="nearest")


def template_channels(d: Descriptors, templates: list[Template]) -> np.ndarray:
    """``[T, 2]``: best visual and audio template score per step (0 with no templates)."""
    out = np.zeros((len(d.vis), 2), np.float32)
    if not templates:
        return out
    out[:] = -1.0
    for tp in templates:
        out[:, 0] = np.maximum(out[:, 0], match_template(d.vis, tp.vis))
        out[:, 1] = np.maximum(out[:, 1], match_template(d.aud, tp.aud))
    return out


def content_channels(visual: np.ndarray, audio: np.ndarray, fps: float) -> np.ndarray:
    """``[T, 8]``: position (3), loudness/centroid/flatness (3), cut/cut rate (2)."""
    t = len(visual)
    time_s = (np.arange(t) + 0.5) / fps
    dur = t / fps
    pos = np.stack(
        [time_s / dur, np.minimum(time_s / 60, 10), np.minimum((dur - time_s) / 60, 10)], 1
    )
    mel_db = audio[:, 1:].astype(np.float32)
    power = 10 ** (mel_db / 10)
    bands = np.arange(power.shape[1], dtype=np.float32)
    centroid = (power * bands).sum(1) / np.maximum(power.sum(1), 1e-9) / max(1, len(bands) - 1)
    flatness = np.exp(np.log(power + 1e-10).mean(1)) / np.maximum(power.mean(1), 1e-10)
    loud = np.log(audio[:, 0] + 1e-4)
    v = _unit(visual.astype(np.float32))
    cut = np.zeros(t, np.float32)
    cut[1:] = 1 - (v[1:] * v[:-1]).sum(1)
    rate = uniform_filter1d(cut, size=max(1, int(10 * fps)), mode="nearest")
    cues = np.stack([loud, centroid, flatness, cut, rate], 1)
    return np.concatenate([pos, cues], 1).astype(np.float32)


def evidence(
    visual: np.ndarray, audio: np.ndarray, fps: float, centre: Centre, templates: list[Template]
) -> np.ndarray:
    """All :data:`EVIDENCE_CHANNELS` for one episode: ``[T, 10]`` float32."""
    d = centre.describe(visual, audio)
    return np.concatenate(
        [template_channels(d, templates), content_channels(visual, audio, fps)], 1
    ).astype(np.float32)
