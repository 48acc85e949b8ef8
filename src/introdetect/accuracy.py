"""Accuracy on development sets that look like real seasons (``introdetect.devset``), scored
against their frame-exact truth, seen and unseen series apart.

:func:`run_on_dataset` runs the pipeline stages in-process on one generated dataset
(features and repetition channels shared by every variant of params), :func:`score` turns
predictions into the summary rows of :mod:`introdetect.metrics`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import statistics
from pathlib import Path
from typing import Any

from introdetect.metrics import episode_scores, summarize
from introdetect.params import Params, SynthParams, feature_identity
from introdetect.pipeline import featurize, predict, prepare, repetition, train

log = logging.getLogger(__name__)

# development-set sizes: "demo" is params.yaml's synth section; "large" is for decisions
LARGE = {
    "n_train_series": 6,
    "n_unseen_series": 4,
    "train_episodes_per_series": 6,
    "test_episodes_per_seen_series": 2,
    "episodes_per_unseen_series": 4,
    "max_cold_open_s": 300.0,
    "tail_s": (60.0, 150.0),
    "n_broken_labels": 5,
}
# "stress": the demo's size, with seasons of four unseen episodes of which 30 % lack the
# intro (the demo's 8 %): intros shared by a third or a half of a season, idents and recaps
# shared more widely (session 20's stress seeds 31-33)
STRESS = {"n_unseen_series": 4, "episodes_per_unseen_series": 4, "no_intro_fraction": 0.3}
SIZES = {"demo": {}, "large": LARGE, "stress": STRESS}


def dataset_params(base: SynthParams, size: str, seed: int, out_dir: Path) -> SynthParams:
    """The synth params of a development set of ``size`` (:data:`SIZES`) and ``seed``."""
    return dataclasses.replace(
        base, kind="realistic", seed=seed, out_dir=str(out_dir), **SIZES[size]
    )


def with_dataset(p: Params, data_dir: Path) -> Params:
    """``p`` reading the generated dataset in ``data_dir``."""
    data = dataclasses.replace(
        p.data,
        source="dirs",
        train_dir=str(data_dir / "train"),
        train_labels=str(data_dir / "train_labels.json"),
        test_dir=str(data_dir / "test"),
        test_labels=str(data_dir / "test_labels.json"),
    )
    return dataclasses.replace(p, data=data)


# what each method's answers are written to, in a variant's folder
PREDICTION_FILES = {"model": "predictions.json", "model-free": "unsupervised.json"}


def run_on_dataset(
    p: Params, data_dir: Path, work: Path, variant: str, model_from: str | None = None
) -> dict[str, Path]:
    """Prepare, featurize and repetition once per dataset (``work``), then train and predict
    for ``variant`` (``work/<variant>``); returns the prediction files. ``model_from``: the
    variant whose trained model predicts (no training here; for ``predict.*`` variants)."""
    p = with_dataset(p, data_dir)
    # variants that change what the features are get their own feature folders
    ident = json.dumps(feature_identity(p.features) | {"repetition": repr(p.repetition)})
    key = hashlib.sha1(ident.encode()).hexdigest()[:8]
    index, feats, reps = work / "index", work / f"features-{key}", work / f"repetition-{key}"
    prepare.run(p, index)
    featurize.run(p, index, feats)
    repetition.run(p, index, feats, reps)
    out = work / variant
    model = work / (model_from or variant) / "best.pt"
    if model_from is None:
        train.run(
            p,
            index / "train.csv",
            feats / "train",
            reps / "train",
            model,
            out / "train.json",
            out / "dvclive",
        )
    elif not model.exists():
        raise FileNotFoundError(f"{model}: variant {model_from!r} has not been trained")
    files = {m: out / f for m, f in PREDICTION_FILES.items()}
    predict.run(
        p,
        index / "test.csv",
        feats / "test",
        reps / "test",
        model,
        files["model"],
        out / "presence.json",
        files["model-free"],
    )
    return files


def truth_rows(data_dir: Path) -> dict[str, dict[str, Any]]:
    """``{id: {"intro": [a, b] | None, "seen": bool, "series": str}}`` of the test split."""
    truth = json.loads((data_dir / "truth.json").read_text(encoding="utf-8"))
    series = {s["index"]: s for s in truth["series"]}
    return {
        eid: {
            "intro": e["intro"],
            "seen": series[e["series"]]["seen"],
            "series": series[e["series"]]["name"],
        }
        for eid, e in truth["episodes"].items()
        if e["split"] == "test"
    }


def median_baseline(data_dir: Path) -> tuple[float, float]:
    """The median train interval (from the truth of the train split)."""
    truth = json.loads((data_dir / "truth.json").read_text(encoding="utf-8"))
    ivs = [e["intro"] for e in truth["episodes"].values() if e["split"] == "train" and e["intro"]]
    return statistics.median(a for a, _ in ivs), statistics.median(b for _, b in ivs)


def score_rows(preds: dict[str, Any], truth: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-episode scores of ``preds`` against the frame-exact truth."""
    return [
        {
            "episode_id": eid,
            "seen": t["seen"],
            **episode_scores(preds.get(eid), t["intro"], failed=eid not in preds),
        }
        for eid, t in truth.items()
    ]


def summarize_split(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Summary for seen and unseen series."""
    return {
        "seen": summarize([r for r in rows if r["seen"]]),
        "unseen": summarize([r for r in rows if not r["seen"]]),
    }
