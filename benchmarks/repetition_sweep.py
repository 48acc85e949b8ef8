"""Sweep the repetition thresholds on labelled episodes (train split by default, so the
choice is not made on the test set) and print the unsupervised detector's scores.

    uv run python benchmarks/repetition_sweep.py --thresholds 0.7 0.8 0.85 0.9 --shares 0.34 0.5

Needs the prepare and featurize outputs (``dvc repro featurize``).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from introdetect.index import read_index
from introdetect.metrics import episode_scores, summarize
from introdetect.params import RepetitionParams
from introdetect.repetition import compute_repetition, unsupervised_detect


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        default=[0.7, 0.8, 0.85, 0.9],
        help="repetition.sim_threshold values",
    )
    ap.add_argument(
        "--shares", type=float, nargs="+", default=[0.34, 0.5], help="repetition.min_share values"
    )
    ap.add_argument(
        "--split",
        default="train",
        choices=["train", "test"],
        help="which labelled episodes to score (default train)",
    )
    ap.add_argument("--fps", type=float, default=2.0, help="features.fps of the store")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = read_index("data/index/train.csv") + read_index("data/index/test.csv")
    eps = [
        (r.episode_id, r.series, Path(f"data/features/{r.split}/{r.episode_id}.h5"))
        for r in rows
        if r.has_video
    ]
    scored = [r for r in rows if r.split == args.split and r.labelled and r.has_video]
    print("| sim_threshold | min_share | n | mean IoU | IoU>=0.5 | within 1 s | presence | s |")
    print("|---|---|---|---|---|---|---|---|")
    for thr in args.thresholds:
        t0 = time.perf_counter()
        reps = compute_repetition(eps, RepetitionParams(sim_threshold=thr))
        dt = time.perf_counter() - t0
        for share in args.shares:
            res = []
            for r in scored:
                det = unsupervised_detect(reps[r.episode_id], args.fps, 1.5, 30.0, share)
                label = (r.start_s, r.end_s) if r.start_s is not None else None
                res.append(episode_scores(det[:2] if det else None, label))
            s = summarize(res)
            print(
                f"| {thr} | {share} | {s['n']} | {s['mean_iou']} | {s['iou_ge_0.5']} | "
                f"{s['within_1s']} | {s['presence_acc']} | {dt:.1f} |"
            )


if __name__ == "__main__":
    main()
