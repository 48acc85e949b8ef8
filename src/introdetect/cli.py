"""The ``introdetect`` command: demo data, detection on new episodes without DVC, checks.

introdetect synth [--params params.yaml] [--out DIR]
introdetect detect EP1.mp4 SEASON_DIR/ --model models/best.pt [--out DIR] [--cache DIR]
introdetect detect SEASON_DIR/ --unsupervised
introdetect doctor SEASON_DIR/
introdetect metrics [metrics/eval.json]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from introdetect.runner import USER_ERRORS, setup_logging

log = logging.getLogger("introdetect")


def _cmd_synth(args: argparse.Namespace) -> None:
    from introdetect.params import load_params
    from introdetect.synth import generate_dataset

    p = load_params(args.params)
    out = generate_dataset(p.synth, args.out, workers=args.workers)
    print(f"demo dataset written to {out}")


def _cmd_detect(args: argparse.Namespace) -> None:
    from introdetect.detect import DetectOptions, UsageError, run_detect
    from introdetect.export import FORMATS

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise UsageError(f"--format: unknown {', '.join(bad)} (choose from {', '.join(FORMATS)})")
    overrides = {
        key: getattr(args, key)
        for key in ("threshold", "presence_threshold", "min_len_s", "max_len_s")
        if getattr(args, key) is not None
    }
    opts = DetectOptions(
        paths=args.paths,
        model=args.model,
        params=args.params,
        out=args.out,
        cache=args.cache,
        device=args.device,
        formats=formats,
        edl_action=args.edl_action,
        unsupervised=args.unsupervised,
        report=not args.no_report,
        labels=args.labels,
        predict=overrides,
    )
    rows = run_detect(opts)
    print(f"{'episode':<32} {'start':>8} {'end':>8} {'conf':>6}")
    for r in sorted(rows, key=lambda r: -(r["confidence"] or 0)):
        iv = r["interval"]
        a, b = (f"{iv[0]:8.2f}", f"{iv[1]:8.2f}") if iv else ("       -", "       -")
        print(f"{r['episode_id']:<32} {a} {b} {r['confidence']:6.2f}")
    failed = sum(str(r["source"]).startswith("failed") for r in rows)
    print(f"results: {Path(args.out)} ({len(rows)} episodes, {failed} failed)")


def _cmd_doctor(args: argparse.Namespace) -> int:
    from introdetect.detect import collect_videos
    from introdetect.doctor import diagnose
    from introdetect.params import Params, load_params

    p = load_params(args.params) if Path(args.params).exists() else Params()
    results = diagnose(collect_videos(args.paths, p.data.video_extensions))
    bad = [d for d in results if not d.ok]
    for d in results:
        print(f"{'OK  ' if d.ok else 'FAIL'} {d.episode_id:<32} {d.detail}")
    print(f"{len(results) - len(bad)} of {len(results)} files decode; {len(bad)} will fail")
    return 1 if bad else 0


def _cmd_metrics(args: argparse.Namespace) -> None:
    import json

    m = json.loads(Path(args.path).read_text(encoding="utf-8"))
    if "overall" not in m:
        print(f"{args.path}: no metrics ({m.get('note', 'empty')})")
        return
    cols = [
        "n",
        "mean_iou",
        "iou_ge_0.5",
        "within_1s",
        "within_2s",
        "mae_start_s",
        "mae_end_s",
        "presence_acc",
    ]
    print("| model | split | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 2) + "|")
    blocks = (
        ("introdetect", m),
        ("median baseline", m.get("baseline_median_interval")),
        ("unsupervised repetition", m.get("unsupervised_repetition")),
    )
    for who, block in blocks:
        for split in ("overall", "seen", "unseen"):
            if block and block.get(split, {}).get("n"):
                vals = ["-" if block[split].get(c) is None else str(block[split][c]) for c in cols]
                print(f"| {who} | {split} | " + " | ".join(vals) + " |")


def _add_detect_parser(sub: argparse._SubParsersAction) -> None:
    """``introdetect detect`` and its options."""
    d = sub.add_parser("detect", help="find intros in video files or folders with a trained model")
    d.add_argument(
        "paths",
        nargs="+",
        help="video files and/or folders (searched recursively); "
        "the videos of one folder are treated as one season",
    )
    d.add_argument(
        "--model",
        default=None,
        help="checkpoint from the train stage (e.g. models/best.pt); without it, "
        "--unsupervised is required",
    )
    d.add_argument(
        "--params",
        default="params.yaml",
        help="params file for predict.*, data.video_extensions and how to run features "
        "(device, workers, ...); used when it exists (default params.yaml). The feature "
        "identity (fps, window, frame size, weights, audio) always comes from the model",
    )
    for flag, key, what in (
        ("--threshold", "threshold", "step probability threshold"),
        ("--presence-threshold", "presence_threshold", "presence probability threshold"),
        ("--min-len", "min_len_s", "shortest intro in seconds"),
        ("--max-len", "max_len_s", "longest intro in seconds"),
    ):
        d.add_argument(
            flag, dest=key, type=float, default=None, help=f"override predict.{key}: {what}"
        )
    d.add_argument(
        "--out",
        default="detect_out",
        help="folder for predictions, chapters, report.html (default detect_out)",
    )
    d.add_argument(
        "--cache",
        default=None,
        help="feature cache folder, reused across runs (default: OUT/features)",
    )
    d.add_argument(
        "--device", default=None, help="auto | cpu | cuda for the backbone (default: params)"
    )
    d.add_argument(
        "--format",
        default="json,csv",
        help="comma-separated: json (predictions.json + presence.json), csv, "
        "edl (Kodi <video>.edl next to each video), chapters (ffmetadata per episode,"
        " chapter 'Opening'), jellyfin (Intro Skipper IntroStart/IntroEnd)",
    )
    d.add_argument(
        "--edl-action",
        default="commbreak",
        choices=["commbreak", "cut", "mute", "scene"],
        help="Kodi EDL action for the intro (default commbreak = skip)",
    )
    d.add_argument(
        "--unsupervised",
        action="store_true",
        help="no model: pick the stretch that repeats across the season's episodes",
    )
    d.add_argument("--labels", default=None, help="a label file to draw on the report")
    d.add_argument("--no-report", action="store_true", help="skip the PNG/HTML report")
    d.set_defaults(func=_cmd_detect)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every option has help text)."""
    ap = argparse.ArgumentParser(
        prog="introdetect",
        description="Find the short intro near the start of TV-series episodes.",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    sub = ap.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="generate the built-in demo dataset")
    s.add_argument("--params", default="params.yaml", help="params file with a 'synth' section")
    s.add_argument("--out", default=None, help="output folder (default: synth.out_dir)")
    s.add_argument("--workers", type=int, default=2, help="parallel encoder processes")
    s.set_defaults(func=_cmd_synth)

    _add_detect_parser(sub)

    c = sub.add_parser(
        "doctor", help="list the files in folders that will fail to featurize, and why"
    )
    c.add_argument("paths", nargs="+", help="video files and/or folders (searched recursively)")
    c.add_argument("--params", default="params.yaml", help="params file for data.video_extensions")
    c.set_defaults(func=_cmd_doctor)

    m = sub.add_parser("metrics", help="print metrics/eval.json as a table (model vs baseline)")
    m.add_argument("path", nargs="?", default="metrics/eval.json", help="an eval.json file")
    m.set_defaults(func=_cmd_metrics)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``introdetect`` console script."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        if args.verbose:
            raise
        log.error("%s", e)
        return 1


if __name__ == "__main__":
    sys.exit(main())
