"""One function per pipeline stage: what each stage reads, does and writes.

The scripts in ``stages/`` are thin wrappers around these (argument parsing, logging, exit
code); the CLI reuses them. Paths of outputs are the fixed names in dvc.yaml.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from introdetect.data import load_episodes
from introdetect.export import write_csv, write_json
from introdetect.features.extract import featurize_many
from introdetect.features.visual import load_backbone
from introdetect.index import (
    DatasetError,
    IndexRow,
    build_index,
    read_index,
    write_index,
    write_report,
)
from introdetect.inference import detect, detections_to_json
from introdetect.metrics import episode_scores, summarize
from introdetect.params import Params, params_to_dict
from introdetect.repetition import compute_repetition, unsupervised_answer, write_repetition
from introdetect.training import fit, load_checkpoint, provenance

log = logging.getLogger(__name__)

INDEX_DIR = Path("data/index")
FEATURE_DIR = Path("data/features")
REP_DIR = Path("data/repetition")
MODEL_PATH = Path("models/best.pt")
PRED_PATH = Path("predictions/test_predictions.json")
UNSUP_PATH = Path("predictions/test_predictions_unsupervised.json")
PRESENCE_PATH = Path("predictions/test_presence.json")
TRAIN_METRICS = Path("metrics/train.json")
EVAL_METRICS = Path("metrics/eval.json")
EVAL_EPISODES = Path("metrics/eval_episodes.csv")


class StageError(RuntimeError):
    """A stage cannot produce its outputs; the message says why."""


def run_prepare(p: Params) -> dict[str, Any]:
    """Index episodes and clean labels; write data/index/{train,test}.csv + label_report.json."""
    train, test, report = build_index(p.data)
    write_index(train, INDEX_DIR / "train.csv")
    write_index(test, INDEX_DIR / "test.csv")
    write_report(report, INDEX_DIR / "label_report.json")
    for split, rep in (("train", report["train"]), ("test", report["test"])):
        log.info(
            "%s: %d videos, %d label rows, statuses %s, %d problems",
            split,
            rep["videos"],
            rep["label_rows"],
            rep["status_counts"],
            len(rep["problems"]),
        )
    return report


def run_featurize(p: Params) -> dict[str, Any]:
    """Featurize every episode with a video in both splits; fail when too many failed."""
    backbone = load_backbone(p.features.weights, p.features.device, p.features.precision)
    log.info(
        "backbone resnet18 weights=%s device=%s precision=%s",
        backbone.weights_id,
        backbone.device,
        backbone.precision,
    )
    out: dict[str, Any] = {}
    total_ok, total = 0, 0
    for split in ("train", "test"):
        rows = [r for r in read_index(INDEX_DIR / f"{split}.csv") if r.has_video]
        s = featurize_many(
            [(r.episode_id, Path(r.path)) for r in rows], FEATURE_DIR / split, backbone, p.features
        )
        out[split] = {"done": len(s.done), "reused": len(s.skipped), "failed": len(s.failed)}
        total_ok += len(s.done) + len(s.skipped)
        total += len(rows)
    frac = total_ok / max(total, 1)
    if frac < p.features.min_ok_fraction:
        raise StageError(
            f"featurize: only {total_ok}/{total} episodes succeeded ({frac:.0%} < "
            f"features.min_ok_fraction {p.features.min_ok_fraction:.0%}); see "
            f"{FEATURE_DIR}/*/errors.json"
        )
    return out


def run_repetition(p: Params) -> dict[str, Any]:
    """Cross-episode repetition channels for every featurized episode, grouped by series
    across both splits (no labels are used); writes data/repetition/<split>/<id>.npy."""
    episodes, where = [], {}
    for split in ("train", "test"):
        for r in read_index(INDEX_DIR / f"{split}.csv"):
            path = FEATURE_DIR / split / f"{r.episode_id}.h5"
            if r.has_video and path.exists():
                episodes.append((r.episode_id, r.series, path))
                where[r.episode_id] = split
    t0 = time.perf_counter()
    reps = compute_repetition(episodes, p.repetition)
    dt = time.perf_counter() - t0
    for eid, rep in reps.items():
        write_repetition(rep, REP_DIR / where[eid] / f"{eid}.npy")
    log.info(
        "repetition: %d episodes in %.1f s (%.3f s per episode)",
        len(reps),
        dt,
        dt / max(len(reps), 1),
    )
    return {"episodes": len(reps), "seconds": dt}


def _items(rows: list[IndexRow]) -> list[tuple[str, str, float | None, float | None]]:
    return [(r.episode_id, r.series, r.start_s, r.end_s) for r in rows]


def run_train(p: Params) -> dict[str, Any]:
    """Train on the labelled train episodes; write models/best.pt and metrics/train.json."""
    from dvclive import Live

    rows = [r for r in read_index(INDEX_DIR / "train.csv") if r.labelled and r.has_video]
    rep_dir = REP_DIR / "train" if p.model.repetition else None
    episodes, missing = load_episodes(
        _items(rows), FEATURE_DIR / "train", p.model.use_mels, rep_dir=rep_dir
    )
    for reason in missing.values():
        log.warning("train: %s", reason)
    if len(episodes) < 2:
        raise StageError(f"train: {len(episodes)} usable training episodes; need at least 2")
    ivs = [(e.start_s, e.end_s) for e in episodes if e.start_s is not None]
    meta = {
        "params": params_to_dict(p),
        "provenance": provenance(episodes[0].attrs),
        "use_mels": p.model.use_mels,
        "repetition": p.model.repetition,
        "train_series": sorted({e.series for e in episodes}),
        "median_interval": [
            statistics.median(a for a, _ in ivs),
            statistics.median(b for _, b in ivs),
        ]
        if ivs
        else None,
    }
    try:
        live = Live("dvclive", dvcyaml=None, save_dvc_exp=False, report=None)
    except Exception as e:  # e.g. a git repo without commits: train anyway, plots by hand
        log.warning("DVCLive unavailable (%s); writing loss plots without it", e)
        live = None
    res = fit(episodes, p.model, p.train, MODEL_PATH, meta, live)
    if live is not None:
        live.end()
    else:
        _write_loss_plots(res.history, Path("dvclive/plots/metrics"))
    metrics = {
        "best_epoch": res.best_epoch,
        "best_val_loss": round(res.best_val_loss, 5),
        "epochs_run": res.epochs_run,
        "n_train": res.n_train,
        "n_val": res.n_val,
        "validation": res.split,
    }
    write_json(metrics, TRAIN_METRICS)
    return metrics


def _write_loss_plots(history: list[dict[str, float]], folder: Path) -> None:
    """The TSV files DVCLive would write (``step`` + value), for ``dvc plots``."""
    folder.mkdir(parents=True, exist_ok=True)
    for key in ("train_loss", "val_loss"):
        lines = ["step\t" + key] + [f"{h['epoch'] - 1}\t{h[key]}" for h in history]
        (folder / f"{key}.tsv").write_text("\n".join(lines) + "\n")


def run_predict(p: Params) -> dict[str, Any]:
    """Predict every featurized test episode; write predictions + presence sidecar."""
    model, meta = load_checkpoint(MODEL_PATH)
    rows = [r for r in read_index(INDEX_DIR / "test.csv") if r.has_video]
    rep_dir = REP_DIR / "test" if meta.get("repetition") else None
    episodes, missing = load_episodes(
        _items(rows), FEATURE_DIR / "test", meta["use_mels"], meta["provenance"], rep_dir
    )
    for reason in missing.values():
        log.warning("predict: %s", reason)
    dets = detect(model, episodes, p.predict)
    preds, side = detections_to_json(dets)
    for eid in missing:  # no features -> no answer, said explicitly in the sidecar
        preds[eid] = None
        side[eid] = {"presence": None, "confidence": 0.0, "source": "no_features"}
    write_json(preds, PRED_PATH)
    write_json(side, PRESENCE_PATH)
    unsup = {}
    for r in rows:  # the model-free detector, for comparison and for users without labels
        rp = REP_DIR / "test" / f"{r.episode_id}.npy"
        iv = None
        if rp.exists():
            iv, _ = unsupervised_answer(np.load(rp), p.features.fps, p.predict, p.repetition)
        unsup[r.episode_id] = list(iv) if iv else None
    write_json(unsup, UNSUP_PATH)
    return {"episodes": len(preds), "with_intro": sum(v is not None for v in preds.values())}


def _group_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "overall": summarize(rows),
        "seen": summarize([r for r in rows if r["seen"]]),
        "unseen": summarize([r for r in rows if not r["seen"]]),
    }


def run_evaluate(p: Params) -> dict[str, Any]:
    """Score predictions against clean test labels (and the median-interval baseline)."""
    test = [r for r in read_index(INDEX_DIR / "test.csv") if r.labelled and r.has_video]
    train = [r for r in read_index(INDEX_DIR / "train.csv") if r.labelled and r.start_s is not None]
    preds = json.loads(PRED_PATH.read_text(encoding="utf-8"))
    unsup = json.loads(UNSUP_PATH.read_text(encoding="utf-8")) if UNSUP_PATH.exists() else {}
    if not test:
        log.warning("evaluate: no labelled test episodes; writing empty metrics")
        write_json({"note": "no test labels"}, EVAL_METRICS)
        write_csv([], EVAL_EPISODES)
        return {}
    if not train:
        raise DatasetError("evaluate: no labelled train intervals for the baseline")
    base = (statistics.median(r.start_s for r in train), statistics.median(r.end_s for r in train))
    rows, base_rows, unsup_rows = [], [], []
    for r in test:
        label = (r.start_s, r.end_s) if r.start_s is not None else None
        pred = preds.get(r.episode_id)
        s = episode_scores(pred, label)
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
        unsup_rows.append({"seen": r.seen, **episode_scores(unsup.get(r.episode_id), label)})
    metrics = _group_summary(rows) | {
        "baseline_median_interval": {"interval": list(base), **_group_summary(base_rows)},
        "unsupervised_repetition": _group_summary(unsup_rows),
    }
    write_json(metrics, EVAL_METRICS)
    write_csv(rows, EVAL_EPISODES)
    return metrics
