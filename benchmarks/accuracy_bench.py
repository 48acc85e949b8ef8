"""Accuracy benchmark on development sets that look like real seasons.

Generates (once, cached) a realistic development set per seed, runs the pipeline on it for
each params variant, and prints per split (seen / unseen series) the scores against the
frame-exact truth: the model of each variant, the model-free season detector, and the
median-interval baseline. Rows pool the test episodes of all seeds.

    uv run python benchmarks/accuracy_bench.py --size large --seeds 1 2 3
    uv run python benchmarks/accuracy_bench.py --variant lr3e-4 train.lr=3e-4
    uv run python benchmarks/accuracy_bench.py --variant base --variant b predict.refine=false @base
    uv run python benchmarks/accuracy_bench.py --variant base --variant b ... --score-only

A variant that changes only ``predict.*`` can name another variant with ``@NAME``: it
predicts with that variant's trained model instead of training its own (same features and
training, so the same model). ``--score-only`` trains and predicts nothing: it scores the
prediction files earlier runs left in ``--out``.

Keep one seed out of every decision and run it once at the end (4 and 5 are used up, 6 was
looked at in session 8, 7 in session 9, 8 in session 10, 9 and 10 in session 11, 11-13 in
session 12, 14 and 15 in session 13, 16 in session 14, 17 in session 16, 18 and 19 in session
17, 20 and 21 in session 18, 22 in session 19: take 23 or later).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import yaml

from introdetect.accuracy import (
    PREDICTION_FILES,
    SIZES,
    dataset_params,
    median_baseline,
    run_on_dataset,
    score_rows,
    summarize_split,
    truth_rows,
)
from introdetect.devset.generate import generate
from introdetect.params import load_params, params_from_dict
from introdetect.runner import setup_logging

COLS = [
    "n",
    "mean_iou",
    "iou_ge_0.5",
    "within_0.5s",
    "within_1s",
    "median_boundary_err_s",
    "p90_boundary_err_s",
    "presence_acc",
]


def _variant_params(base: dict, sets: list[str]):
    raw = json.loads(json.dumps(base))
    for item in sets:
        if item.startswith("@"):
            continue
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        raw.setdefault(section, {})[name] = yaml.safe_load(value)
    return params_from_dict(raw)


def _dataset(p, size: str, seed: int, out: Path, workers: int, make: bool = True) -> Path:
    """The development set of ``size`` and ``seed`` under ``out``, generated when it is
    missing or was made with other synth params (``make`` False: an error instead -- scoring
    never replaces the dataset its predictions were made on)."""
    data = out / f"data_{size}_seed{seed}"
    sp = dataset_params(p.synth, size, seed, data)
    stamp = json.dumps(dataclasses.asdict(sp), sort_keys=True)
    if not (data / "truth.json").exists() or (data / "params.json").read_text() != stamp:
        if not make:
            raise SystemExit(
                f"{data}: no dataset made with these synth params (--params, --size); "
                "run without --score-only first"
            )
        generate(sp, data, workers=workers)
        (data / "params.json").write_text(stamp)
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=list(SIZES), default="large", help="dataset size")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="dataset seeds")
    ap.add_argument("--params", default="params.yaml", help="base params")
    ap.add_argument(
        "--variant",
        nargs="+",
        action="append",
        metavar=("NAME", "KEY=VALUE"),
        help="a named params variant (repeatable); default: the base params as 'current'",
    )
    ap.add_argument("--out", default="benchmarks/out/accuracy", help="work folder")
    ap.add_argument("--workers", type=int, default=2, help="dataset render processes")
    ap.add_argument(
        "--score-only", action="store_true", help="score earlier runs' prediction files only"
    )
    args = ap.parse_args(argv)
    setup_logging()
    logging.getLogger("introdetect").setLevel(logging.WARNING)
    base = yaml.safe_load(Path(args.params).read_text())
    variants = {v[0]: v[1:] for v in (args.variant or [["current"]])}
    out = Path(args.out)
    rows: dict[str, list] = {}
    timing: dict[str, float] = {}
    for seed in args.seeds:
        p0 = load_params(args.params)
        data = _dataset(p0, args.size, seed, out, args.workers, make=not args.score_only)
        truth = truth_rows(data)
        base_iv = median_baseline(data)
        rows.setdefault("median baseline", []).extend(
            score_rows({eid: base_iv for eid in truth}, truth)
        )
        for name, sets in variants.items():
            t0 = time.perf_counter()
            work = out / f"run_{args.size}_seed{seed}"
            model_from = next((s[1:] for s in sets if s.startswith("@")), None)
            if args.score_only:
                files = {m: work / name / f for m, f in PREDICTION_FILES.items()}
            else:
                files = run_on_dataset(_variant_params(base, sets), data, work, name, model_from)
            timing[name] = timing.get(name, 0.0) + time.perf_counter() - t0
            for method, path in files.items():
                preds = json.loads(path.read_text())
                label = f"{name}: {method}" if method == "model" or len(variants) > 1 else method
                rows.setdefault(label, []).extend(score_rows(preds, truth))
    print(f"\nsize {args.size}, seeds {args.seeds} (test episodes pooled over seeds)\n")
    print("| method | split | " + " | ".join(COLS) + " |")
    print("|---" * (len(COLS) + 2) + "|")
    results = {}
    for method, r in rows.items():
        results[method] = summarize_split(r)
        for split, summ in results[method].items():
            vals = ["-" if summ.get(c) is None else str(summ[c]) for c in COLS]
            print(f"| {method} | {split} | " + " | ".join(vals) + " |")
    print("\nwall seconds per variant (all seeds, incl. shared featurize on first):", timing)
    (out / f"results_{args.size}.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
