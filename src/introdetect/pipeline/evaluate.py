"""Stage 'evaluate': score the predictions (and the model-free detector and the
median-interval baseline) against the clean test labels, seen and unseen series apart."""

from __future__ import annotations

import json
import logging
import statistics
from pathlib import Path
from typing import Any

from introdetect.fileio import write_csv, write_json
from introdetect.index import DatasetError, read_index
from introdetect.metrics import episode_scores, summarize
from introdetect.params import Params

log = logging.getLogger(__name__)


def _group_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "overall": summarize(rows),
        "seen": summarize([r for r in rows if r["seen"]]),
        "unseen": summarize([r for r in rows if not r["seen"]]),
    }


def run(
    p: Params,
    index_dir: Path,
    predictions: Path,
    unsupervised: Path,
    metrics: Path,
    episodes: Path,
) -> dict[str, Any]:
    """Write ``metrics`` (summary JSON) and ``episodes`` (one CSV row per test episode)."""
    test = [r for r in read_index(index_dir / "test.csv") if r.labelled and r.has_video]
    train = [r for r in read_index(index_dir / "train.csv") if r.labelled and r.start_s is not None]
    preds = json.loads(predictions.read_text(encoding="utf-8"))
    unsup = json.loads(unsupervised.read_text(encoding="utf-8"))
    if not test:
        log.warning("evaluate: no labelled test episodes; writing empty metrics")
        write_json({"note": "no test labels"}, metrics)
        write_csv([], episodes)
        return {}
    if not train:
        raise DatasetError("evaluate: no labelled train intervals for the baseline")
    base = (statistics.median(r.start_s for r in train), statistics.median(r.end_s for r in train))
    rows, base_rows, unsup_rows = [], [], []
    for r in test:
        label = (r.start_s, r.end_s) if r.start_s is not None else None
        pred = preds.get(r.episode_id)  # absent: the episode failed (see presence.json)
        s = episode_scores(pred, label, failed=r.episode_id not in preds)
        rows.append(
            {
                "episode_id": r.episode_id,
                "series": r.series,
                "seen": r.seen,
                "label_start": r.start_s,
                "label_end": r.end_s,
                "pred_start": pred[0] if pred else None,
                "pred_end": pred[1] if pred else None,
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()},
            }
        )
        base_rows.append({"seen": r.seen, **episode_scores(base, label)})
        free = unsup.get(r.episode_id)
        unsup_rows.append(
            {"seen": r.seen, **episode_scores(free, label, failed=r.episode_id not in unsup)}
        )
    out = _group_summary(rows) | {
        "baseline_median_interval": {"interval": list(base), **_group_summary(base_rows)},
        "unsupervised_repetition": _group_summary(unsup_rows),
    }
    write_json(out, metrics)
    write_csv(rows, episodes)
    return out
