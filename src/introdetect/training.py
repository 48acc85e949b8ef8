"""Training: series-aware validation split, loss, train/eval loops, early stopping, checkpoints."""

from __future__ import annotations

import logging
import math
import random
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from introdetect.data import Episode, IntroDataset, collate
from introdetect.errors import IntrodetectError
from introdetect.fileio import atomic_path
from introdetect.model import IntroDetector
from introdetect.params import ModelParams, TrainParams
from introdetect.store import MODEL_COMPAT_KEYS, identity_attr

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Deterministic CPU training for a fixed seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _hold_out_episodes(eps: list, val_fraction: float, rng: np.random.Generator):
    """A share of each series' episodes (one at least where a series has three or more)."""
    train, val = [], []
    for s in sorted({e.series for e in eps}):
        mine = [e for e in eps if e.series == s]
        order = rng.permutation(len(mine))
        n_val = int(math.floor(val_fraction * len(mine) + 0.5)) if len(mine) > 1 else 0
        n_val = max(n_val, 1 if len(mine) >= 3 else 0)
        val += [mine[i] for i in order[:n_val]]
        train += [mine[i] for i in order[n_val:]]
    return train, val


def split_train_val(episodes: list, val_fraction: float, mode: str, seed: int):
    """(train, val, description) of items with a ``series``. ``series``: hold out whole
    series (needs >= 3), which is what matters on new shows; ``episodes``: a share of each
    series' episodes; ``mixed`` (default): both, so the chosen checkpoint is good on held-out
    episodes of known series and on series never seen."""
    rng = np.random.default_rng(seed)
    series = sorted({e.series for e in episodes})
    val_series: set[str] = set()
    if mode in ("series", "mixed") and len(series) >= 3:
        n_val = max(1, round(val_fraction * len(series)))
        val_series = set(rng.permutation(series)[:n_val].tolist())
    elif mode == "series":
        log.warning("only %d series: validating on held-out episodes instead", len(series))
    held = [e for e in episodes if e.series in val_series]
    rest = [e for e in episodes if e.series not in val_series]
    if mode == "series" and held:
        return rest, held, f"series hold-out: {sorted(val_series)}"
    train, val = _hold_out_episodes(rest, val_fraction, rng)
    if not val and not held and len(train) > 1:
        val = [train.pop()]
    how = f"series hold-out: {sorted(val_series)}; " if held else ""
    return train, held + val, how + f"{len(val)} episodes of the other series"


def input_stats(episodes: list[Episode]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean/std over all steps of the training episodes."""
    x = np.concatenate([e.x for e in episodes], axis=0).astype(np.float64)
    return torch.from_numpy(x.mean(0)).float(), torch.from_numpy(x.std(0)).float()


def compute_loss(
    out: dict[str, torch.Tensor], batch: dict[str, Any], tp: TrainParams
) -> torch.Tensor:
    """w_reg * MSE(relative interval, present episodes) + w_cls * BCE(presence)
    + w_step * BCE(per-step intro, valid steps)."""
    present = batch["presence"] > 0.5
    reg = (
        F.mse_loss(out["reg"][present], batch["reg"][present])
        if present.any()
        else out["reg"].sum() * 0.0
    )
    cls = F.binary_cross_entropy_with_logits(out["presence_logit"], batch["presence"])
    mask = batch["mask"]
    step = F.binary_cross_entropy_with_logits(
        out["step_logit"][mask],
        batch["y"][mask],
        pos_weight=torch.tensor(tp.step_pos_weight),
    )
    return tp.w_reg * reg + tp.w_cls * cls + tp.w_step * step


def train_one_epoch(
    model: IntroDetector, loader: DataLoader, optimizer: torch.optim.Optimizer, tp: TrainParams
) -> float:
    """One pass over ``loader``; returns the mean loss."""
    model.train()
    total, n = 0.0, 0
    for batch in loader:
        out = model(batch["x"], batch["lengths"])
        loss = compute_loss(out, batch, tp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        total += loss.item() * len(batch["episode_id"])
        n += len(batch["episode_id"])
    return total / max(n, 1)


@torch.no_grad()
def evaluate_loss(model: IntroDetector, loader: DataLoader, tp: TrainParams) -> float:
    """Mean loss over ``loader`` without gradient."""
    model.eval()
    total, n = 0.0, 0
    for batch in loader:
        loss = compute_loss(model(batch["x"], batch["lengths"]), batch, tp)
        total += loss.item() * len(batch["episode_id"])
        n += len(batch["episode_id"])
    return total / max(n, 1)


@dataclass
class FitResult:
    """What training did."""

    best_epoch: int = 0
    best_val_loss: float = float("inf")
    best_val_iou: float = 0.0
    min_val_loss: float = float("inf")
    epochs_run: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    split: str = ""
    n_train: int = 0
    n_val: int = 0


def save_checkpoint(path: str | Path, model: IntroDetector, meta: dict[str, Any]) -> None:
    """Atomic save: a killed run leaves the previous checkpoint intact."""
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), **meta}, tmp)


class ModelError(IntrodetectError):
    """A model file cannot be loaded as an introdetect checkpoint."""


def load_checkpoint(path: str | Path) -> tuple[IntroDetector, dict[str, Any]]:
    """Rebuild the model from a checkpoint; returns (model in eval mode, metadata).

    Loaded with ``weights_only=True``: a checkpoint holds tensors and plain data only, so
    a crafted file cannot run code."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: model checkpoint not found")
    if path.is_file() and not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise ModelError(f"{path}: not a loadable introdetect checkpoint (not a PyTorch file)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or "model_args" not in ckpt:
            raise ModelError(f"holds a {type(ckpt).__name__}, not a model")
        model = IntroDetector(**ckpt["model_args"])
        model.load_state_dict(ckpt["state_dict"])
    except Exception as e:  # pickle, zip, key and shape errors all mean "not a checkpoint"
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ModelError(f"{path}: not a loadable introdetect checkpoint ({why})") from e
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    if "feature_identity" not in meta:
        raise ModelError(f"{path}: checkpoint from an older introdetect; retrain (dvc repro)")
    model.eval()
    return model, meta


@torch.no_grad()
def validation_iou(model: IntroDetector, episodes: list[Episode]) -> float:
    """Mean IoU of the model's answers (default decoding) against the episodes' labels:
    what selects the checkpoint, since a validation loss rises as soon as the model starts
    memorising while its answers may still get better."""
    from introdetect.inference import detect
    from introdetect.metrics import interval_iou
    from introdetect.params import PredictParams

    if not episodes:
        return 0.0
    dets = detect(model, episodes, PredictParams())
    truth = [(e.start_s, e.end_s) if e.start_s is not None else None for e in episodes]
    return float(np.mean([interval_iou(d.interval, t) for d, t in zip(dets, truth, strict=True)]))


def _loaders(train_eps: list[Episode], val_eps: list[Episode], tp: TrainParams):
    gen = torch.Generator().manual_seed(tp.seed)
    train_loader = DataLoader(
        IntroDataset(
            train_eps,
            augment=tp.augment,
            seed=tp.seed,
            crop_s=tp.crop_s,
            drop_repetition=tp.drop_repetition,
        ),
        batch_size=tp.batch_size,
        shuffle=True,
        collate_fn=collate,
        generator=gen,
    )
    val_loader = DataLoader(IntroDataset(val_eps), batch_size=tp.batch_size, collate_fn=collate)
    return train_loader, val_loader


def fit(
    train_eps: list[Episode],
    val_eps: list[Episode],
    mp: ModelParams,
    tp: TrainParams,
    checkpoint: str | Path,
    meta: dict[str, Any],
    live: Any = None,
    split: str = "",
) -> FitResult:
    """Train on ``train_eps``; keep the best epoch on ``val_eps`` (by mean IoU of the
    answers, ties and ``train.select: loss`` by validation loss) in ``checkpoint`` together
    with ``meta``; stop early by ``train.stop_rule``."""
    seed_everything(tp.seed)
    val_eps = val_eps or train_eps
    log.info("training on %d episodes, validating on %d (%s)", len(train_eps), len(val_eps), split)
    in_dim = train_eps[0].x.shape[1]
    model_args = {"in_dim": in_dim, "hidden": mp.hidden, "layers": mp.layers, "dropout": mp.dropout}
    model = IntroDetector(**model_args)
    model.set_normalisation(*input_stats(train_eps))
    train_loader, val_loader = _loaders(train_eps, val_eps, tp)
    opt = torch.optim.Adam(model.parameters(), lr=tp.lr, weight_decay=tp.weight_decay)
    res = FitResult(split=split, n_train=len(train_eps), n_val=len(val_eps))
    full_meta = {**meta, "model_args": model_args}
    best_key, bad_epochs = (-math.inf, -math.inf), 0
    bar = tqdm(range(1, tp.epochs + 1), desc="train", unit="epoch")
    for epoch in bar:
        train_loss = train_one_epoch(model, train_loader, opt, tp)
        val_loss = evaluate_loss(model, val_loader, tp)
        val_iou = validation_iou(model, val_eps) if tp.select == "iou" else 0.0
        res.history.append(
            {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_iou": val_iou}
        )
        res.epochs_run = epoch
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}", iou=f"{val_iou:.3f}")
        if live is not None:
            for k in ("train_loss", "val_loss", "val_iou"):
                live.log_metric(k, res.history[-1][k])
            live.next_step()
        key = (round(val_iou, 4), -val_loss)
        if key > best_key:
            best_key, bad_epochs = key, 0
            res.best_val_loss, res.best_epoch, res.best_val_iou = val_loss, epoch, val_iou
            save_checkpoint(
                checkpoint,
                model,
                full_meta | {"epoch": epoch, "val_loss": val_loss, "val_iou": val_iou},
            )
        else:
            bad_epochs += 1
        res.min_val_loss = min(res.min_val_loss, val_loss)
        if tp.stop_rule == "seed" and val_loss > res.min_val_loss * 1.1:
            log.info("stopping at epoch %d: val loss %.4f > 1.1 x best", epoch, val_loss)
            break
        if tp.stop_rule == "patience" and bad_epochs >= tp.patience:
            log.info("stopping at epoch %d: no improvement for %d epochs", epoch, tp.patience)
            break
    return res


def provenance(attrs: dict[str, Any]) -> dict[str, Any]:
    """The feature-file attributes a model depends on."""
    return {k: identity_attr(attrs, k) for k in MODEL_COMPAT_KEYS}
