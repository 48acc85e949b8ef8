"""Stage 'featurize': decode every indexed episode once into the HDF5 feature store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from introdetect.errors import IntrodetectError
from introdetect.features.extract import featurize_many
from introdetect.features.visual import backbone_for
from introdetect.index import read_index
from introdetect.params import Params

log = logging.getLogger(__name__)


class FeaturizeError(IntrodetectError):
    """Too many episodes failed to featurize."""


def run(p: Params, index_dir: Path, out: Path) -> dict[str, Any]:
    """Featurize both splits into ``out/<split>/<id>.h5``; finished episodes are kept even
    when the stage fails because too many others failed (``features.min_ok_fraction``)."""
    backbone = backbone_for(p.features)
    log.info(
        "backbone resnet18 weights=%s device=%s precision=%s engine=%s",
        backbone.weights_id,
        backbone.device,
        backbone.precision,
        backbone.engine,
    )
    summary: dict[str, Any] = {}
    total_ok, total = 0, 0
    for split in ("train", "test"):
        rows = [r for r in read_index(index_dir / f"{split}.csv") if r.has_video]
        s = featurize_many(
            [(r.episode_id, Path(r.path)) for r in rows], out / split, backbone, p.features
        )
        summary[split] = {"done": len(s.done), "reused": len(s.skipped), "failed": len(s.failed)}
        total_ok += len(s.done) + len(s.skipped)
        total += len(rows)
    frac = total_ok / max(total, 1)
    if frac < p.features.min_ok_fraction:
        raise FeaturizeError(
            f"featurize: only {total_ok}/{total} episodes succeeded ({frac:.0%} < "
            f"features.min_ok_fraction {p.features.min_ok_fraction:.0%}); see "
            f"{out}/*/errors.json"
        )
    return summary
