"""What the model reads per step, built the same way for training and for inference.

An :class:`InputSpec` says which groups of channels make up the input and carries what
building them needs (the training-set centre and the known-intro templates):

* appearance: ResNet18 512 ++ log-RMS (++ log-mel): series-specific, memorisable;
* evidence: :data:`introdetect.evidence.EVIDENCE_CHANNELS` (known intros, position,
  content cues): the same meaning in every series; ``evidence_groups`` keeps some of them
  (:data:`introdetect.evidence.EVIDENCE_GROUPS`);
* repetition: the cross-episode channels of :mod:`introdetect.repetition` (the picture's
  four, and with ``audio_share`` the share of episodes in which the step's sound repeats;
  an episode without audio reads 0 there).

The spec travels in the checkpoint as tensors and plain data (loadable with
``weights_only=True``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from introdetect.data import Episode, RawEpisode, episode_input
from introdetect.evidence import (
    EVIDENCE_GROUPS,
    Centre,
    Template,
    evidence,
    group_columns,
    make_template,
    template_channels,
)
from introdetect.repetition import VISUAL_CHANNELS


@dataclass
class InputSpec:
    """Which channel groups, and what the evidence needs."""

    use_mels: bool = True
    appearance: bool = True
    evidence: bool = False
    repetition: bool = False
    audio_share: bool = False
    evidence_groups: tuple[str, ...] = tuple(EVIDENCE_GROUPS)
    centre: Centre | None = None
    templates: list[Template] = field(default_factory=list)

    def build(self, e: RawEpisode, exclude: set[str] | None = None, series_out: bool = False):
        """``[T, D]`` input of one episode. ``exclude``: template episode ids to leave out
        (the episode's own, in training); ``series_out``: leave out its whole series (as if
        it were unseen)."""
        parts = []
        if self.appearance:
            parts.append(episode_input(e.visual, e.audio, self.use_mels))
        if self.evidence:
            tmpls = [
                t
                for t in self.templates
                if t.episode_id not in (exclude or set())
                and not (series_out and t.series == e.series)
            ]
            ev = evidence(e.visual, e.audio, e.fps, self.centre, tmpls)
            parts.append(ev[:, group_columns(self.evidence_groups)])
        if self.repetition:
            n = VISUAL_CHANNELS + int(self.audio_share)
            if e.rep.shape[1] < n:
                raise ValueError(
                    f"{e.episode_id}: {e.rep.shape[1]} repetition channels, this model reads "
                    f"{n} (run the repetition stage again)"
                )
            parts.append(np.nan_to_num(e.rep[:, :n], nan=0.0))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def episode(self, e: RawEpisode, training: bool = False) -> Episode:
        """The model's view of ``e``; in training, known intros leave out ``e``'s own
        template, and ``x_alt`` leaves out its whole series."""
        exclude = {e.episode_id} if training else None
        x = self.build(e, exclude)
        known = self.evidence and "known" in self.evidence_groups
        alt = self.build(e, exclude, series_out=True) if training and known else None
        reps = VISUAL_CHANNELS + int(self.audio_share) if self.repetition else 0
        return Episode(e.episode_id, e.series, x, e.fps, e.start_s, e.end_s, e.attrs, alt, reps)

    def known_sound(self, e: RawEpisode) -> np.ndarray | None:
        """Per step of ``e``, the audio known-intro score (channel ``tmpl_aud``: how well the
        sound matches the best-aligned labelled intro) [T]; None without known intros."""
        if not self.knows_intros:
            return None
        return template_channels(self.centre.describe(e.visual, e.audio), self.templates)[:, 1]

    @property
    def knows_intros(self) -> bool:
        """Whether the model reads the known-intro channels and has templates for them."""
        return self.evidence and "known" in self.evidence_groups and bool(self.templates)

    def taught_series(self) -> set[str]:
        """The series whose labelled intros the model knows (empty without known intros)."""
        return {t.series for t in self.templates} if self.knows_intros else set()

    def add_templates(self, raws: list[RawEpisode]) -> None:
        """Add the labelled intros of ``raws`` to the known ones (same centre)."""
        if self.evidence:
            self.templates += _templates(self, raws)

    def to_meta(self) -> dict[str, Any]:
        """Plain data and tensors for the checkpoint."""
        meta: dict[str, Any] = {
            "use_mels": self.use_mels,
            "appearance": self.appearance,
            "evidence": self.evidence,
            "repetition": self.repetition,
            "audio_share": self.audio_share,
            "evidence_groups": list(self.evidence_groups),
        }
        if self.evidence:
            meta["centre"] = [torch.from_numpy(self.centre.vis), torch.from_numpy(self.centre.aud)]
            meta["templates"] = [
                {
                    "episode_id": t.episode_id,
                    "series": t.series,
                    "vis": torch.from_numpy(t.vis.astype(np.float16)),
                    "aud": torch.from_numpy(t.aud.astype(np.float16)),
                }
                for t in self.templates
            ]
        return meta

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> InputSpec:
        """Inverse of :meth:`to_meta`."""
        spec = cls(
            use_mels=meta["use_mels"],
            appearance=meta.get("appearance", True),
            evidence=meta.get("evidence", False),
            repetition=meta.get("repetition", False),
            audio_share=meta.get("audio_share", False),
            evidence_groups=tuple(meta.get("evidence_groups", EVIDENCE_GROUPS)),
        )
        if spec.evidence:
            vis, aud = meta["centre"]
            spec.centre = Centre(vis.numpy(), aud.numpy())
            spec.templates = [
                Template(
                    t["episode_id"], t["series"], t["vis"].float().numpy(), t["aud"].float().numpy()
                )
                for t in meta["templates"]
            ]
        return spec


def _templates(spec: InputSpec, raws: list[RawEpisode]) -> list[Template]:
    out = []
    for e in raws:
        if e.start_s is not None:
            d = spec.centre.describe(e.visual, e.audio)
            t = make_template(e.episode_id, e.series, d, e.start_s, e.end_s, e.fps)
            if t is not None:
                out.append(t)
    return out


def training_spec(
    raws: list[RawEpisode],
    use_mels: bool,
    appearance: bool,
    use_evidence: bool,
    repetition: bool,
    audio_share: bool = False,
    evidence_groups: tuple[str, ...] = tuple(EVIDENCE_GROUPS),
) -> InputSpec:
    """The spec for a training run: centre and templates from the labelled ``raws``."""
    spec = InputSpec(
        use_mels, appearance, use_evidence, repetition, audio_share and repetition, evidence_groups
    )
    if use_evidence:
        spec.centre = Centre.of([(e.visual, e.audio) for e in raws])
        spec.templates = _templates(spec, raws)
    return spec
