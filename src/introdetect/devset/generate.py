"""Write a development dataset: plan, render in parallel, labels and truth.

Layout as the demo's (what the pipeline reads): ``train/<id>/<id>.mp4``, ``test/<id>.mp4``,
``train_labels.json`` / ``test_labels.json`` in the original task's format (whole seconds,
some start minutes mistyped), and ``truth.json`` with the frame-exact intro of every episode
and the span of every shot kind (ident, recap, intro, title, credits, ...).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from introdetect.devset.plan import (
    EpisodePlan,
    SeriesPlan,
    episode_encoding,
    plan_episode,
    plan_series,
)
from introdetect.devset.render import render_episode
from introdetect.fileio import write_json
from introdetect.labels import format_time
from introdetect.params import SynthParams
from introdetect.synth import SERIES_NAMES, episode_name

log = logging.getLogger(__name__)


def _new_id(rng: np.random.Generator, used: set[str]) -> str:
    while True:
        eid = f"-2200{int(rng.integers(10000, 99999))}_4562{int(rng.integers(10000, 99999))}"
        if eid not in used:
            used.add(eid)
            return eid


def plan_dataset(p: SynthParams) -> tuple[list[SeriesPlan], list[EpisodePlan]]:
    """Every series and episode of the dataset (deterministic from ``p.seed``)."""
    rng = np.random.default_rng(p.seed)
    n_series = p.n_train_series + p.n_unseen_series
    order = rng.permutation(len(SERIES_NAMES))
    series = [
        plan_series(
            rng, i, SERIES_NAMES[order[i % len(order)]] + (f" {i}" if i >= len(order) else "")
        )
        for i in range(n_series)
    ]
    episodes, used = [], set()
    for s in series:
        if s.index < p.n_train_series:
            splits = ["train"] * p.train_episodes_per_series
            splits += ["test"] * p.test_episodes_per_seen_series
        else:
            splits = ["test"] * p.episodes_per_unseen_series
        season, pool = int(rng.integers(1, 4)), []
        for k, split in enumerate(splits):
            has_intro = rng.random() >= p.no_intro_fraction
            shots = plan_episode(rng, s, k + 1, pool, has_intro, p.max_cold_open_s, p.tail_s)
            ep = EpisodePlan(_new_id(rng, used), s.index, season, k + 1, split, shots)
            episodes.append(dataclasses.replace(ep, **episode_encoding(rng)))
    return series, episodes


def label_row(ep: EpisodePlan, s: SeriesPlan, intro: list[float] | None, rng) -> dict[str, Any]:
    """A label as a person types it: whole seconds, start rounded down or to the nearest,
    end rounded up or to the nearest."""
    row = {"url": f"https://example.invalid/video{ep.episode_id}", "name": episode_name(ep, s)}
    if intro is None:
        return row | {"start": None, "end": None}
    a = math.floor(intro[0]) if rng.random() < 0.5 else round(intro[0])
    b = math.ceil(intro[1]) if rng.random() < 0.5 else round(intro[1])
    return row | {"start": format_time(a), "end": format_time(max(b, a + 1))}


def _break_rows(rows: dict[str, dict], rng: np.random.Generator, n: int) -> None:
    """The real files' commonest fault: the start minute typed one too high."""
    with_intro = [k for k, r in rows.items() if r["start"] is not None]
    for k in rng.permutation(len(with_intro))[:n]:
        row = rows[with_intro[k]]
        h, m, sec = (int(x) for x in row["start"].split(":"))
        row["start"] = format_time(h * 3600 + (m + 1) * 60 + sec)


def _render_job(args: tuple[EpisodePlan, SeriesPlan, str]) -> tuple[str, dict[str, Any]]:
    ep, s, path = args
    return ep.episode_id, render_episode(ep, s, Path(path))


def generate(p: SynthParams, out_dir: str | Path | None = None, workers: int = 2) -> Path:
    """Render the dataset under ``out_dir`` (default ``p.out_dir``)."""
    out = Path(out_dir or p.out_dir)
    if out.exists():
        shutil.rmtree(out)
    series, episodes = plan_dataset(p)
    jobs = []
    for ep in episodes:
        sub = f"train/{ep.episode_id}" if ep.split == "train" else "test"
        jobs.append((ep, series[ep.series], str(out / sub / f"{ep.episode_id}.mp4")))
    truth: dict[str, Any] = {}
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for eid, t in tqdm(pool.map(_render_job, jobs), total=len(jobs), desc="devset", unit="ep"):
            truth[eid] = t
    rng = np.random.default_rng(p.seed + 7)
    for split, n_broken in (("train", p.n_broken_labels), ("test", 0)):
        rows = {
            ep.episode_id: label_row(ep, series[ep.series], truth[ep.episode_id]["intro"], rng)
            for ep in episodes
            if ep.split == split
        }
        _break_rows(rows, rng, n_broken)
        write_json(rows, out / f"{split}_labels.json")
    write_json(
        {
            "kind": "realistic",
            "series": [
                {
                    "index": s.index,
                    "name": s.name,
                    "seen": s.index < p.n_train_series,
                    "intro_s": sum(x.seconds for x in s.intro),
                    "studio": s.studio,
                    "credits": s.credits,
                    "title_card": s.title_card,
                }
                for s in series
            ],
            "episodes": {
                ep.episode_id: {
                    "series": ep.series,
                    "split": ep.split,
                    "number": ep.number,
                    "width": ep.width,
                    "height": ep.height,
                    "fps": ep.fps_num / ep.fps_den,
                    **truth[ep.episode_id],
                }
                for ep in episodes
            },
        },
        out / "truth.json",
    )
    log.info("development set: %d series, %d episodes in %s", len(series), len(episodes), out)
    return out
