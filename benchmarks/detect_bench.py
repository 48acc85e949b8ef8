"""Accuracy of ``introdetect detect`` as a media user runs it, on the development set.

The accuracy benchmark scores the DVC pipeline, whose predict stage compares each test
episode with its whole season (the training episodes of a seen series too). A media user
runs ``introdetect detect`` on a library folder instead: each series' folder is a season of
the episodes in it, nothing more. This lays each seed's test episodes out as such a library
(``<out>/detect_<size>_seed<N>/library/Show<k>/Show<k>.S01E<nn>.mp4``, links to the
development set's files, named so that the audio paths can tell the series apart), runs
``introdetect detect`` on it once per path, and prints per split (seen / unseen series) the
scores against the frame-exact truth, pooled over the seeds, with each path's wall time:

* ``audio-only``: ``--audio-only`` (no pictures, no network; the fastest path);
* ``model-free``: pictures and sound, no model;
* ``model``: ``--model <out>/run_<size>_seed<N>/<variant>/best.pt`` (``--model VARIANT``,
  per seed ``--model-at SEED=VARIANT``), trained by the accuracy benchmark.

    uv run python benchmarks/detect_bench.py --seeds 1 2 4 5 6 --paths audio-only model-free
    uv run python benchmarks/detect_bench.py --seeds 11 --paths model --model fp32 --model-at 11=s12

The development sets come from (and are cached like) ``benchmarks/accuracy_bench.py``;
features are cached per seed (``.../cache``), so a second path or run reuses them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from accuracy_bench import COLS, _dataset

from introdetect.accuracy import SIZES, score_rows, summarize_split, truth_rows
from introdetect.params import load_params

PATHS = ("audio-only", "model-free", "model")


def library(data: Path, dest: Path) -> dict[str, str]:
    """Links to the test episodes of ``data``, one folder per series; ``{file stem: episode
    id}``."""
    truth = json.loads((data / "truth.json").read_text())["episodes"]
    names: dict[str, str] = {}
    for eid, ep in truth.items():
        src = next((data / "test").glob(f"{eid}.*"), None) if ep["split"] == "test" else None
        if src is None:
            continue
        stem = f"Show{ep['series']}.S01E{ep['number']:02d}"
        link = dest / f"Show{ep['series']}" / f"{stem}{src.suffix}"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(src.resolve())
        names[stem] = eid
    return names


def run_path(path: str, work: Path, model: Path | None, params: str) -> tuple[dict, float]:
    """``introdetect detect`` on ``work/library`` for one path; (predictions by file stem,
    wall seconds)."""
    out = work / f"out_{path}"
    cmd = [sys.executable, "-m", "introdetect.cli", "detect", str(work / "library")]
    cmd += ["--out", str(out), "--cache", str(work / "cache"), "--params", params, "--no-report"]
    if path == "audio-only":
        cmd.append("--audio-only")
    if path == "model":
        cmd += ["--model", str(model)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (work / f"{path}.log").write_text(proc.stderr)
    if proc.returncode not in (0, 1):  # 1: some episode failed, the rest answered
        raise SystemExit(f"{path}: detect failed ({proc.returncode}), see {work}/{path}.log")
    return json.loads((out / "predictions.json").read_text()), wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=list(SIZES), default="demo", help="dataset size")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="dataset seeds")
    ap.add_argument("--paths", nargs="+", choices=PATHS, default=["audio-only", "model-free"])
    ap.add_argument("--params", default="params.yaml", help="params for detect")
    ap.add_argument("--model", default="fp32", help="variant whose model the model path uses")
    ap.add_argument("--model-at", action="append", default=[], help="SEED=VARIANT override")
    ap.add_argument("--out", default="benchmarks/out/accuracy", help="accuracy bench folder")
    ap.add_argument("--workers", type=int, default=2, help="dataset render processes")
    args = ap.parse_args(argv)
    at = {int(k): v for k, v in (x.split("=", 1) for x in args.model_at)}
    out = Path(args.out)
    rows: dict[str, list[dict]] = {p: [] for p in args.paths}
    walls = {p: 0.0 for p in args.paths}
    for seed in args.seeds:
        data = _dataset(load_params(args.params), args.size, seed, out, args.workers)
        work = out / f"detect_{args.size}_seed{seed}"
        names = library(data, work / "library")
        truth = truth_rows(data)
        model = out / f"run_{args.size}_seed{seed}" / at.get(seed, args.model) / "best.pt"
        for path in args.paths:
            preds, wall = run_path(path, work, model, args.params)
            walls[path] += wall
            got = score_rows({names.get(k, k): v for k, v in preds.items()}, truth)
            rows[path] += got
            split = summarize_split(got)
            ious = {k: round(v["mean_iou"], 3) for k, v in split.items()}
            print(f"seed {seed} {path}: {wall:.1f} s, mean IoU {ious}", flush=True)
    print(f"\nsize {args.size}, seeds {args.seeds} (test episodes pooled over seeds)\n")
    print("| path | split | " + " | ".join(COLS) + " | wall s |")
    print("|" + "---|" * (len(COLS) + 3))
    for path in args.paths:
        for split, s in summarize_split(rows[path]).items():
            cells = " | ".join(str(round(s[c], 4)) for c in COLS)
            print(f"| {path} | {split} | {cells} | {walls[path]:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
