"""The ``introdetect`` command: demo data, detection on new episodes without DVC, checks.

introdetect synth [--params params.yaml] [--out DIR]
introdetect detect EP1.mp4 SEASON_DIR/ --model models/best.pt [--out DIR] [--cache DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
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


def _collect_videos(paths: list[str], extensions: tuple[str, ...]) -> list[tuple[str, Path]]:
    from introdetect.index import DatasetError, find_videos

    found: dict[str, Path] = {}
    for raw in paths:
        p = Path(raw)
        items = find_videos(p, extensions).items() if p.is_dir() else [(p.stem, p)]
        for eid, path in items:
            if not path.exists():
                raise FileNotFoundError(f"{path}: file not found")
            if eid in found and found[eid] != path:
                raise DatasetError(f"duplicate episode id {eid!r}: {found[eid]} and {path}")
            found[eid] = path
    if not found:
        raise DatasetError(f"no video files in {', '.join(paths)}")
    return sorted(found.items())


def _cmd_detect(args: argparse.Namespace) -> None:
    from introdetect.data import load_episodes
    from introdetect.export import write_json
    from introdetect.features.extract import featurize_many
    from introdetect.features.visual import load_backbone
    from introdetect.inference import detect, detections_to_json
    from introdetect.params import DataParams, PredictParams, params_from_dict
    from introdetect.training import load_checkpoint

    model, meta = load_checkpoint(args.model)
    trained = params_from_dict(meta["params"])
    fp = dataclasses.replace(trained.features, device=args.device)
    pp = trained.predict
    if args.threshold is not None:
        pp = dataclasses.replace(pp, threshold=args.threshold)
    assert isinstance(pp, PredictParams)
    videos = _collect_videos(args.paths, DataParams().video_extensions)
    out = Path(args.out)
    cache = Path(args.cache) if args.cache else out / "features"
    backbone = load_backbone(fp.weights, fp.device, fp.precision)
    if backbone.weights_id != meta["provenance"]["weights_id"]:
        raise RuntimeError(
            f"{args.model}: trained on features of weights {meta['provenance']['weights_id']!r} "
            f"but this machine resolves {fp.weights!r} to {backbone.weights_id!r}"
        )
    summary = featurize_many(videos, cache, backbone, fp)
    items = [(eid, "", None, None) for eid, _ in videos]
    episodes, missing = load_episodes(items, cache, meta["use_mels"], meta["provenance"])
    dets = detect(model, episodes, pp)
    preds, side = detections_to_json(dets)
    for eid in missing:
        preds[eid] = None
        side[eid] = {
            "presence": None,
            "confidence": 0.0,
            "source": "failed",
            "error": summary.failed.get(eid, {}).get("error", missing[eid]),
        }
    write_json(preds, out / "predictions.json")
    write_json(side, out / "confidence.json")
    print(f"{'episode':<32} {'start':>8} {'end':>8} {'conf':>6}")
    for eid in sorted(preds, key=lambda k: -(side[k]["confidence"] or 0)):
        iv = preds[eid]
        a, b = (f"{iv[0]:8.2f}", f"{iv[1]:8.2f}") if iv else ("       -", "       -")
        print(f"{eid:<32} {a} {b} {side[eid]['confidence']:6.2f}")
    print(f"results: {out / 'predictions.json'} ({len(summary.failed)} failed)")


def _cmd_doctor(args: argparse.Namespace) -> int:
    from introdetect.doctor import diagnose
    from introdetect.params import DataParams

    results = diagnose(_collect_videos(args.paths, DataParams().video_extensions))
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
    for who, block in (("introdetect", m), ("median baseline", m.get("baseline_median_interval"))):
        for split in ("overall", "seen", "unseen"):
            if block and block.get(split, {}).get("n"):
                vals = ["-" if block[split].get(c) is None else str(block[split][c]) for c in cols]
                print(f"| {who} | {split} | " + " | ".join(vals) + " |")


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

    d = sub.add_parser("detect", help="find intros in video files or folders with a trained model")
    d.add_argument("paths", nargs="+", help="video files and/or folders (searched recursively)")
    d.add_argument("--model", default="models/best.pt", help="checkpoint from the train stage")
    d.add_argument("--out", default="detect_out", help="folder for predictions.json etc.")
    d.add_argument(
        "--cache",
        default=None,
        help="feature cache folder, reused across runs (default: OUT/features)",
    )
    d.add_argument("--device", default="auto", help="auto | cpu | cuda for the backbone")
    d.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="per-step probability threshold (default: the model's predict params)",
    )
    d.set_defaults(func=_cmd_detect)

    c = sub.add_parser(
        "doctor", help="list the files in folders that will fail to featurize, and why"
    )
    c.add_argument("paths", nargs="+", help="video files and/or folders (searched recursively)")
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
