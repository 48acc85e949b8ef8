"""The ``introdetect`` command: demo data, detection on new episodes without DVC, checks.

introdetect synth [--params params.yaml] [--out DIR]
introdetect detect EP1.mp4 SEASON_DIR/ --model models/best.pt [--out DIR] [--cache DIR]
introdetect detect SEASON_DIR/                 # no model: the model-free detector
introdetect doctor SEASON_DIR/
introdetect metrics [metrics/eval.json]
JELLYFIN_TOKEN=... introdetect jellyfin-push RESULTS_DIR --server URL [--apply]

Exit codes: 0 all answered, 1 some episodes failed, 2 usage error or nothing usable,
130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from introdetect.runner import USER_ERRORS, exit_process, setup_logging

log = logging.getLogger("introdetect")

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _cmd_synth(args: argparse.Namespace) -> None:
    from introdetect.params import load_params
    from introdetect.synth import generate_dataset

    p = load_params(args.params)
    out = generate_dataset(p.synth, args.out, workers=args.workers)
    print(f"demo dataset written to {out}")


def _cmd_detect(args: argparse.Namespace) -> int:
    from introdetect.detect import DetectOptions, UsageError, run_detect
    from introdetect.export import FORMATS

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    if "jellyfin" in formats:
        raise UsageError(
            "--format jellyfin: Jellyfin reads no file of ours; use `introdetect "
            "jellyfin-push RESULTS_DIR --server URL`, or --format chapters"
        )
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise UsageError(f"--format: unknown {', '.join(bad)} (choose from {', '.join(FORMATS)})")
    if not formats:
        raise UsageError(f"--format: nothing to write (choose from {', '.join(FORMATS)})")
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
        edl_target=args.edl_target,
        dry_run=args.dry_run,
        unsupervised=args.unsupervised,
        audio_only=args.audio_only,
        report=not args.no_report,
        labels=args.labels,
        predict=overrides,
    )
    res = run_detect(opts)
    print(f"{'episode':<32} {'start':>8} {'end':>8} {'conf':>6}  status")
    for r in sorted(res.rows, key=lambda r: -(r["confidence"] or 0)):
        iv = r["interval"]
        a, b = (f"{iv[0]:8.2f}", f"{iv[1]:8.2f}") if iv else ("       -", "       -")
        print(f"{r['episode_id']:<32} {a} {b} {r['confidence']:6.2f}  {r['status']}")
    for line in res.groups:
        print(line)
    for note in res.notes:
        if opts.dry_run or not note.startswith(("wrote", "removed")):
            print(note)
    for s in res.skipped:
        if not s.sidecar:
            print(f"skipped {s.path}: {s.reason}")
    n_side = sum(s.sidecar for s in res.skipped)
    print(
        f"results: {res.out} ({len(res.rows)} episodes, {res.n_failed} failed; "
        f"{len(res.skipped) - n_side} files skipped, {n_side} sidecars ignored)"
    )
    if res.n_failed == len(res.rows):
        return EXIT_USAGE  # nothing usable
    return EXIT_SOME_FAILED if res.n_failed else EXIT_OK


def _cmd_doctor(args: argparse.Namespace) -> int:
    from introdetect.doctor import diagnose
    from introdetect.params import Params, load_params
    from introdetect.scan import scan_paths

    p = load_params(args.params) if Path(args.params).exists() else Params()
    scan = scan_paths(args.paths, p.data.video_extensions)
    scan.require_videos(args.paths)
    results = diagnose(scan.videos)
    bad = [d for d in results if not d.ok]
    for d in results:
        print(f"{'OK  ' if d.ok else 'FAIL'} {d.episode_id:<32} {d.detail}")
    for s in scan.skipped:
        print(f"SKIP {s.path}: {s.reason}")
    print(
        f"{len(results) - len(bad)} of {len(results)} files decode; {len(bad)} will fail; "
        f"{len(scan.skipped)} files skipped"
    )
    return EXIT_SOME_FAILED if bad else EXIT_OK


def _cmd_jellyfin_push(args: argparse.Namespace) -> int:
    from introdetect.detect import UsageError
    from introdetect.jellyfin import push

    path_map = []
    for item in args.path_map:
        local, sep, server = item.partition("=")
        if not sep or not local:
            raise UsageError(f"--path-map {item!r}: expected LOCAL=SERVER")
        path_map.append((local, server))
    plan = push(Path(args.results), args.server, path_map, apply=args.apply)
    verb = "pushed" if args.apply else "would push"
    for item in plan:
        if item.item_id and item.interval:
            a, b = item.interval
            print(f"{verb} {a:.2f}-{b:.2f} s -> item {item.item_id}  {item.video}")
        else:
            print(f"skipped {item.video}: {item.why}")
    missing = sum(bool(i.interval) and not i.item_id for i in plan)
    if not args.apply:
        print("dry run: nothing sent; add --apply to push")
    return EXIT_SOME_FAILED if missing else EXIT_OK


def _cmd_metrics(args: argparse.Namespace) -> None:
    import json

    from introdetect.errors import IntrodetectError

    try:
        m = json.loads(Path(args.path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IntrodetectError(f"{args.path}: not a metrics file (not JSON: {e})") from None
    if not isinstance(m, dict):
        raise IntrodetectError(f"{args.path}: not a metrics file (a JSON {type(m).__name__})")
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
    d = sub.add_parser(
        "detect",
        help="find intros in video files or folders (with a trained model, or without one)",
    )
    d.add_argument(
        "paths",
        nargs="+",
        help="video files and/or folders (searched recursively); "
        "the videos of one folder are treated as one season",
    )
    d.add_argument(
        "--model",
        default=None,
        help="checkpoint from the train stage (e.g. models/best.pt); without it the "
        "model-free season detector answers",
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
        "edl (an EDL file next to each video, see --edl-target), chapters "
        "(chapters/<id>.ffmeta with the intro chapter 'Opening', and chapters/apply.sh "
        "that puts them into the files losslessly with ffmpeg)",
    )
    d.add_argument(
        "--edl-target",
        default="kodi",
        choices=["kodi", "mplayer"],
        help="player the EDL files are for: kodi (action 3, commercial break, skipped "
        "automatically) or mplayer (action 0, cut); mpv reads no EDL (use chapters)",
    )
    d.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would be written where (features are still computed and cached)",
    )
    _add_model_free_options(d)
    d.add_argument("--labels", default=None, help="a label file to draw on the report")
    d.add_argument("--no-report", action="store_true", help="skip the PNG/HTML report")
    d.set_defaults(func=_cmd_detect)


def _add_model_free_options(d: argparse.ArgumentParser) -> None:
    """``detect``'s options for answering without a model."""
    d.add_argument(
        "--unsupervised",
        action="store_true",
        help="no model (the default when --model is not given): pick the stretch that "
        "repeats across each series' episodes",
    )
    d.add_argument(
        "--audio-only",
        action="store_true",
        help="no model: answer from where each episode's sound repeats across its series, "
        "decoding no pictures (features.audio_only; the fastest path, less accurate than "
        "pictures and sound: see the README's Speed section)",
    )


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

    j = sub.add_parser(
        "jellyfin-push",
        help="send detect results to Jellyfin's Intro Skipper plugin (dry run by default)",
    )
    j.add_argument("results", help="a detect --out folder (reads its predictions.csv)")
    j.add_argument("--server", required=True, help="Jellyfin URL, e.g. http://localhost:8096")
    j.add_argument(
        "--path-map",
        action="append",
        default=[],
        help="LOCAL=SERVER: the library's path prefix here and on the server (repeatable)",
    )
    j.add_argument(
        "--apply", action="store_true", help="really push (default: list what would be sent)"
    )
    j.set_defaults(func=_cmd_jellyfin_push)

    m = sub.add_parser("metrics", help="print metrics/eval.json as a table (model vs baseline)")
    m.add_argument("path", nargs="?", default="metrics/eval.json", help="an eval.json file")
    m.set_defaults(func=_cmd_metrics)
    return ap


def _protect_dash_paths(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """``-abc.mp4`` (every id of the original task starts with ``-``) is a file, not an
    option: arguments that name an existing path and no option get a ``./`` prefix, so
    ``introdetect detect *.mp4`` works without ``--``."""
    options = {
        flag
        for p in [parser, *_subparsers(parser)]
        for action in p._actions
        for flag in action.option_strings
    }
    out = []
    for arg in argv:
        if arg.startswith("-") and arg not in options and "=" not in arg and os.path.lexists(arg):
            arg = os.path.join(".", arg)
        out.append(arg)
    return out


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [
        sp
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for sp in action.choices.values()
    ]


def main(argv: list[str] | None = None, *, hard_exit: bool = False) -> int:
    """Entry point of the ``introdetect`` console script. Exit codes: 0 every episode
    answered; 1 some episodes (or, for doctor, files) failed; 2 a usage error or nothing
    usable; 130 interrupted (Ctrl-C; finished episodes stay in the feature cache). With
    ``hard_exit`` (the console script) Ctrl-C ends the process inside the handler
    (:func:`introdetect.runner.exit_process`)."""
    parser = build_parser()
    args = parser.parse_args(_protect_dash_paths(sys.argv[1:] if argv is None else argv, parser))
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        if args.verbose:
            raise
        log.error("%s", e)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted: episodes already featurized stay in the cache; run again to go on")
        if hard_exit:
            exit_process(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED


def console() -> None:
    """The console script: ``main`` (after Ctrl-C the process ends inside its handler,
    with no teardown), then ``exit_process``."""
    exit_process(main(hard_exit=True))


if __name__ == "__main__":
    console()
