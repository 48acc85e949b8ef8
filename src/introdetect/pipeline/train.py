"""Stage 'train': the BiLSTM and its heads on cached feature sequences."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from introdetect.data import load_raw
from introdetect.errors import IntrodetectError
from introdetect.fileio import write_json, write_text
from introdetect.index import read_index
from introdetect.inputs import InputSpec, training_spec
from introdetect.params import Params, feature_identity
from introdetect.store import identity_attr
from introdetect.training import fit, provenance, split_train_val

log = logging.getLogger(__name__)


class TrainError(IntrodetectError):
    """There is not enough to train on."""


def checkpoint_meta(p: Params, attrs: dict[str, Any], spec: InputSpec) -> dict[str, Any]:
    """What a checkpoint carries besides the weights: everything that defines the model's
    input (feature identity and provenance, the input spec with its templates, repetition
    settings), and the model/train params for the record. Nothing about how to run it."""
    return spec.to_meta() | {
        # int8 as the training features were made (features.int8 may say auto)
        "feature_identity": feature_identity(p.features)
        | {"int8": bool(identity_attr(attrs, "int8"))},
        "provenance": provenance(attrs),
        # how the repetition channels were made (min_share is a detector setting, not input)
        "repetition_params": {
            k: v for k, v in dataclasses.asdict(p.repetition).items() if k != "min_share"
        },
        "model_params": dataclasses.asdict(p.model),
        "train_params": dataclasses.asdict(p.train),
    }


def run(
    p: Params,
    index: Path,
    features: Path,
    repetition: Path,
    model: Path,
    metrics: Path,
    live: Path = Path("dvclive"),
) -> dict[str, Any]:
    """Train on the labelled episodes of ``index``; write ``model``, ``metrics`` and the
    training curves (DVCLive folder ``live``)."""
    from dvclive import Live

    rows = [r for r in read_index(index) if r.labelled and r.has_video]
    items = [(r.episode_id, r.series, r.start_s, r.end_s) for r in rows]
    rep_dir = repetition if p.model.repetition else None
    raws, missing = load_raw(items, features, rep_dir=rep_dir)
    for reason in missing.values():
        log.warning("train: %s", reason)
    if len(raws) < 2:
        raise TrainError(f"train: {len(raws)} usable training episodes; need at least 2")
    tp, mp = p.train, p.model
    train_raw, val_raw, how = split_train_val(raws, tp.val_fraction, tp.val_split, tp.seed)
    # known intros of the training part only, so validation sees no template of its own
    spec = training_spec(
        train_raw,
        mp.use_mels,
        mp.appearance,
        mp.evidence,
        mp.repetition,
        mp.audio_share,
        mp.evidence_groups,
    )
    train_eps = [spec.episode(e, training=True) for e in train_raw]
    val_eps = [spec.episode(e) for e in val_raw]
    spec.add_templates(val_raw)  # the model answers with every labelled intro it knows
    try:
        live_log = Live(str(live), dvcyaml=None, save_dvc_exp=False, report=None)
    except Exception as e:  # e.g. a git repo without commits: train anyway, plots by hand
        log.warning("DVCLive unavailable (%s); writing loss plots without it", e)
        live_log = None
    meta = checkpoint_meta(p, raws[0].attrs, spec)
    res = fit(train_eps, val_eps, mp, tp, model, meta, live_log, split=how)
    if live_log is not None:
        live_log.end()
    else:
        _write_loss_plots(res.history, live / "plots" / "metrics")
    out = {
        "best_epoch": res.best_epoch,
        "best_val_loss": round(res.best_val_loss, 5),
        "best_val_iou": round(res.best_val_iou, 4),
        "epochs_run": res.epochs_run,
        "n_train": res.n_train,
        "n_val": res.n_val,
        "validation": res.split,
    }
    write_json(out, metrics)
    return out


def _write_loss_plots(history: list[dict[str, float]], folder: Path) -> None:
    """The TSV files DVCLive would write (``step`` + value), for ``dvc plots``."""
    for key in ("train_loss", "val_loss"):
        lines = ["step\t" + key] + [f"{h['epoch'] - 1}\t{h[key]}" for h in history]
        write_text(folder / f"{key}.tsv", "\n".join(lines) + "\n")
