"""Accuracy of predicted intervals against labels: per episode and summarised.

Conventions: IoU is 1 for a correct null (no intro predicted, none labelled) and 0 for a
miss or a false alarm. "Within k s" needs both boundaries within k seconds (a correct null
counts as within). MAE of start/end is over episodes where both label and prediction have
an interval. An episode with no answer (failed) scores 0 everywhere and is counted in
``n_failed``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Interval = tuple[float, float] | list[float] | None
WITHIN = (0.5, 1, 2)  # "both boundaries within k seconds" for these k


def interval_iou(a: Interval, b: Interval) -> float:
    """Intersection over union of two intervals; the null conventions above."""
    if a is None or b is None:
        return float(a is None and b is None)
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def episode_scores(pred: Interval, label: Interval, failed: bool = False) -> dict[str, Any]:
    """All per-episode measures for one prediction against one label. A ``failed``
    episode (no answer at all: absent from the predictions) is wrong on every measure,
    so a failure can never pass for a correct "no intro"."""
    if failed:
        return {
            "iou": 0.0,
            "presence_correct": False,
            "start_err": None,
            "end_err": None,
            "failed": True,
            **{f"within_{k}s": False for k in WITHIN},
        }
    row: dict[str, Any] = {
        "iou": interval_iou(pred, label),
        "presence_correct": (pred is None) == (label is None),
        "start_err": None,
        "end_err": None,
        "failed": False,
    }
    if pred is not None and label is not None:
        row["start_err"] = abs(pred[0] - label[0])
        row["end_err"] = abs(pred[1] - label[1])
        worst = max(row["start_err"], row["end_err"])
        for k in WITHIN:
            row[f"within_{k}s"] = worst <= k
    else:
        for k in WITHIN:
            row[f"within_{k}s"] = pred is None and label is None
    return row


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean IoU, IoU >= 0.5 share, within 0.5 / 1 / 2 s shares, MAE start/end, median and
    90th-percentile boundary error (both boundaries of every episode where label and
    prediction have an interval), presence accuracy."""
    if not rows:
        return {"n": 0}
    starts = [r["start_err"] for r in rows if r["start_err"] is not None]
    ends = [r["end_err"] for r in rows if r["end_err"] is not None]
    ious = np.array([r["iou"] for r in rows])
    return {
        "n": len(rows),
        "mean_iou": round(float(ious.mean()), 4),
        "iou_ge_0.5": round(float((ious >= 0.5).mean()), 4),
        **{
            f"within_{k}s": round(float(np.mean([r[f"within_{k}s"] for r in rows])), 4)
            for k in WITHIN
        },
        "mae_start_s": round(float(np.mean(starts)), 3) if starts else None,
        "mae_end_s": round(float(np.mean(ends)), 3) if ends else None,
        "median_boundary_err_s": round(float(np.median(starts + ends)), 3) if starts else None,
        "p90_boundary_err_s": round(float(np.percentile(starts + ends, 90)), 3) if starts else None,
        "presence_acc": round(float(np.mean([r["presence_correct"] for r in rows])), 4),
        "n_failed": sum(bool(r.get("failed")) for r in rows),
    }
