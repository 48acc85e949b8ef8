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
import multiprocessing as mp
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import av
import numpy as np
import yaml
from tqdm import tqdm

from introdetect.devset.plan import EpisodePlan, Shot, content_shot, plan_episode, plan_series
from introdetect.devset.render import render_episode
from introdetect.metrics import episode_scores, summarize
from introdetect.params import load_params

PATHS = ("full", "audio-first", "audio-only")


def make_season(
    out: Path, n: int, minutes: float, size: str, seed: int, window_s: float, workers: int
) -> dict[str, list | None]:
    """Render the season into ``out`` (kept when the same arguments made it); truth by id.

    An episode longer than the analysis window plus two minutes is made in two parts: its
    head (everything ``detect`` reads, ``window_s`` + 20 s: idents, recap, cold open, intro,
    content; painted in motion through 30 s after the intro, held pictures with cuts every
    few seconds after that) rendered per episode, and a tail (content held on one picture,
    then the end credits replaying the theme) rendered once and appended to every head by
    stream copy. Painting runs at ~1.5x realtime at 360p: ten distinct 45-minute episodes
    in motion would take hours; this way ten take minutes, and every second detect
    analyses is distinct per episode."""
    stamp = json.dumps(
        {"n": n, "minutes": minutes, "size": size, "seed": seed, "window": window_s, "v": 2}
    )
    if (out / "stamp.json").exists() and (out / "stamp.json").read_text() == stamp:
        return json.loads((out / "truth.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    (out / "season").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    series = plan_series(rng, 0, "Bench Show")
    w, h = map(int, size.split("x"))
    long = minutes * 60 > window_s + 120
    head_s = window_s + 20 if long else minutes * 60
    pool: list = []
    jobs = []
    for number in range(1, n + 1):
        shots = plan_episode(
            rng, series, number, pool, True, max_cold_open_s=300.0, tail_s=(60.0, 60.0)
        )
        credits = [x for x in shots if x.kind == "credits"]
        shots = [x for x in shots if x.kind != "credits"]
        if long:  # content through the head; credits go to the shared tail
            while sum(x.seconds for x in shots) < head_s:
                shots.append(content_shot(rng, series.look, series.pool))
            credits = []
        # stretch the last shot so the episode (its head) lasts exactly as planned
        extra = head_s - sum(x.seconds for x in shots + credits)
        shots[-1] = dataclasses.replace(shots[-1], seconds=max(0.5, shots[-1].seconds + extra))
        end_intro = _intro_end(shots)
        eid = f"Bench.Show.S01E{number:02d}"
        ep = EpisodePlan(
            eid, 0, 1, number, "test", shots + credits, width=w, height=h, audio_sr=48000
        )
        path = out / ("parts" if long else "season") / f"{eid}.mp4"
        jobs.append((ep, series, path, end_intro + 30.0 if long else None))
    (out / "parts").mkdir(exist_ok=True)
    if long:
        tail_s = minutes * 60 - head_s
        credit = [x for x in plan_episode(rng, series, n + 1, [], True, 0.0, (5.0, 5.0))
                  if x.kind == "credits"]  # fmt: skip
        filler = Shot("content", tail_s - sum(x.seconds for x in credit), "photo:0")
        tail = EpisodePlan(
            "tail", 0, 1, 0, "test", [filler, *credit], width=w, height=h, audio_sr=48000
        )
        jobs.append((tail, series, out / "parts" / "tail.mp4", 0.0))
    truth: dict[str, list | None] = {}
    with ProcessPoolExecutor(max(1, workers), mp_context=mp.get_context("spawn")) as pool_ex:
        futures = {pool_ex.submit(render_episode, *job): job[0].episode_id for job in jobs}
        for f in tqdm(as_completed(futures), total=len(futures), desc="render", unit="ep"):
            truth[futures[f]] = f.result()["intro"]
    truth.pop("tail", None)
    if long:
        for eid in truth:
            concat(
                [out / "parts" / f"{eid}.mp4", out / "parts" / "tail.mp4"],
                out / "season" / f"{eid}.mp4",
            )
    shutil.rmtree(out / "parts", ignore_errors=True)
    truth = dict(sorted(truth.items()))
    (out / "truth.json").write_text(json.dumps(truth))
    (out / "stamp.json").write_text(stamp)
    return truth


def _intro_end(shots: list[Shot]) -> float:
    t, end = 0.0, 0.0
    for x in shots:
        t += x.seconds
        if x.kind == "intro":
            end = t
    return end


def concat(parts: list[Path], path: Path) -> None:
    """Join mp4 files of identical encoding settings by stream copy (no re-encoding): each
    part's timestamps shifted to follow the previous part's end (a part whose decode order
    starts before 0, B-frames or AAC priming, is shifted that much further)."""
    with av.open(str(path), "w", format="mp4") as out:
        streams: list = []
        end = [0, 0]  # per stream, in its time base: where the parts so far end
        last_dts = [-(1 << 62)] * 2
        for part in parts:
            with av.open(str(part)) as src:
                ins = [src.streams.video[0], src.streams.audio[0]]
                if not streams:
                    streams = [out.add_stream_from_template(s) for s in ins]
                shift: list[int | None] = [None, None]
                part_end = list(end)
                for packet in src.demux(ins):
                    if packet.dts is None:
                        continue
                    k = 0 if packet.stream.type == "video" else 1
                    if shift[k] is None:
                        shift[k] = max(end[k], last_dts[k] + 1 - packet.dts)
                    packet.dts += shift[k]
                    if packet.pts is not None:
                        packet.pts += shift[k]
                    last_dts[k] = packet.dts
                    stop = (packet.pts if packet.pts is not None else packet.dts) + packet.duration
                    part_end[k] = max(part_end[k], stop)
                    packet.stream = streams[k]
                    out.mux(packet)
                end = part_end


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--season", type=int, default=10, help="episodes")
    ap.add_argument("--minutes", type=float, default=45.0, help="length of each episode")
    ap.add_argument("--size", default="640x360", help="WxH of every episode")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="render processes")
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
    window = load_params(args.params).features.window_s
    truth = make_season(out, args.season, args.minutes, args.size, args.seed, window, args.workers)
    print(f"season ready in {time.perf_counter() - t0:.0f} s: {out / 'season'}")
    base = yaml.safe_load(Path(args.params).read_text())
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
