"""A season answered end to end: ``introdetect detect FOLDER`` with no model, timed.

    uv run python benchmarks/season_bench.py --season 10 --minutes 45     # the issue's size
    uv run python benchmarks/season_bench.py --season 4 --minutes 4       # a quick look
    uv run python benchmarks/season_bench.py --season 10 --minutes 2 --paths full audio-only

Generates (once; cached under ``--out``) one series of ``--season`` episodes about
``--minutes`` long each, drawn like the development set (real footage, idents, recaps, cold
opens, credits; ``introdetect.devset``), all at one encoding (``--size``, 25 fps, AAC). Then
runs the real command line in a fresh process on the folder, with an empty cache, once per
``--paths`` entry (``full``; ``audio-first``: ``features.audio_first: true``; ``audio-only``:
``features.audio_only: true``), and prints
wall seconds, episode-minutes per wall second (whole episodes and analysed windows),
x realtime over the analysed windows, the share of the run spent before detect's own work
(process start, imports), and the answers' accuracy against the frame-exact truth.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import yaml
from tqdm import tqdm

from introdetect.devset.plan import EpisodePlan, plan_episode, plan_series
from introdetect.devset.render import render_episode
from introdetect.metrics import episode_scores, summarize
from introdetect.params import load_params

PATHS = ("full", "audio-first", "audio-only")


def make_season(out: Path, n: int, minutes: float, size: str, seed: int) -> dict[str, list | None]:
    """Render the season into ``out`` (kept when the same arguments made it); truth by id."""
    stamp = json.dumps({"n": n, "minutes": minutes, "size": size, "seed": seed, "v": 1})
    if (out / "stamp.json").exists() and (out / "stamp.json").read_text() == stamp:
        return json.loads((out / "truth.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    (out / "season").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    series = plan_series(rng, 0, "Bench Show")
    w, h = map(int, size.split("x"))
    pool: list = []
    truth: dict[str, list | None] = {}
    for number in tqdm(range(1, n + 1), desc="render", unit="ep"):
        shots = plan_episode(
            rng, series, number, pool, True, max_cold_open_s=300.0, tail_s=(60.0, 60.0)
        )
        # stretch the content after the intro so the episode lasts about `minutes`
        extra = max(0.0, minutes * 60 - sum(s.seconds for s in shots))
        last = max(i for i, s in enumerate(shots) if s.kind == "content")
        shots[last] = dataclasses.replace(shots[last], seconds=shots[last].seconds + extra)
        eid = f"Bench.Show.S01E{number:02d}"
        ep = EpisodePlan(eid, 0, 1, number, "test", shots, width=w, height=h, audio_sr=48000)
        truth[eid] = render_episode(ep, series, out / "season" / f"{eid}.mp4")["intro"]
    (out / "truth.json").write_text(json.dumps(truth))
    (out / "stamp.json").write_text(stamp)
    return truth


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--season", type=int, default=10, help="episodes")
    ap.add_argument("--minutes", type=float, default=45.0, help="length of each episode")
    ap.add_argument("--size", default="640x360", help="WxH of every episode")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/out/season", help="generated season (cache)")
    ap.add_argument("--params", default="params.yaml", help="params for detect")
    ap.add_argument(
        "--paths",
        nargs="+",
        choices=PATHS,
        default=["full"],
        help="detect paths to time (audio-first / audio-only: features.audio_first / "
        "features.audio_only true)",
    )
    ap.add_argument(
        "--audio-first", action="store_true", help="the same as --paths full audio-first"
    )
    args = ap.parse_args()
    out = Path(args.out) / f"s{args.season}_m{args.minutes:g}_{args.size}_seed{args.seed}"
    t0 = time.perf_counter()
    truth = make_season(out, args.season, args.minutes, args.size, args.seed)
    print(f"season ready in {time.perf_counter() - t0:.0f} s: {out / 'season'}")
    base = yaml.safe_load(Path(args.params).read_text())
    window = load_params(args.params).features.window_s
    durations = []
    for eid in truth:
        with av.open(str(out / "season" / f"{eid}.mp4")) as c:
            durations.append(float(c.duration or 0) / 1e6)
    total_min = sum(durations) / 60
    analysed_min = sum(min(d, window) for d in durations) / 60
    work = Path(tempfile.mkdtemp())
    t_start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import introdetect.detect"], check=True)
    t_import = time.perf_counter() - t_start
    print(
        "\n| path | episodes | minutes each | size | wall s | import s | episode-min / wall s "
        "| analysed-min / wall s | x realtime (analysed) | mean IoU | within 0.5 s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in ["full", "audio-first"] if args.audio_first else args.paths:
        params = work / f"{path}.yaml"
        base.setdefault("features", {})["audio_first"] = path == "audio-first"
        base["features"]["audio_only"] = path == "audio-only"
        params.write_text(yaml.safe_dump(base))
        cmd = [
            sys.executable, "-m", "introdetect.cli", "detect", str(out / "season"),
            "--out", str(work / path / "out"), "--cache", str(work / path / "cache"),
            "--params", str(params), "--no-report",
        ]  # fmt: skip
        t1 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t1
        (out / f"{path}.log").write_text(proc.stderr)  # the run's own log: where time went
        if proc.returncode not in (0, 1):
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            return proc.returncode
        preds = json.loads((work / path / "out" / "predictions.json").read_text())
        rows = [episode_scores(preds.get(e), truth[e], e not in preds) for e in truth]
        s = summarize(rows)
        print(
            f"| {path} | {len(truth)} | {args.minutes:g} | {args.size} | {wall:.1f} "
            f"| {t_import:.1f} | {total_min / wall:.1f} | {analysed_min / wall:.1f} "
            f"| {analysed_min * 60 / wall:.0f} | {s.get('mean_iou')} | {s.get('within_0.5s')} |"
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
