"""What an answer costs, part by part, in seconds per analysed episode-minute: the seed's
design (featurize: decode + frozen ResNet18 + audio features; the BiLSTM) against today's
(the same, plus the repetition channels and audio fingerprints, the evidence channels, the
model-free detector with its speech cue, and the boundary refinement), measured in one run
on the test episodes of one development-set seed, each series' test episodes a season (as
``introdetect detect`` sees a library folder).

    uv run python benchmarks/accuracy_bench.py --size demo --seeds 1 --variant base
    uv run python benchmarks/cost_bench.py --size demo --seed 1 --model base

The development set and the trained model come from ``benchmarks/accuracy_bench.py``'s
``--out`` folder; everything timed here is recomputed in a fresh temporary folder (features
too), nothing is read from a cache. Prints one row per part: wall seconds, seconds per
analysed episode-minute, and the total of each design with their ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from accuracy_bench import _dataset

from introdetect.accuracy import with_dataset
from introdetect.candidates import add_audio_share
from introdetect.data import load_raw
from introdetect.decision import refine_all
from introdetect.features.audio import fingerprints
from introdetect.features.extract import featurize_many
from introdetect.features.visual import backbone_for
from introdetect.index import read_index
from introdetect.inference import detect
from introdetect.inputs import InputSpec
from introdetect.modelfree import unsupervised_episodes
from introdetect.params import load_params
from introdetect.pipeline import prepare
from introdetect.repetition import compute_repetition, write_copies, write_repetition
from introdetect.runner import setup_logging
from introdetect.store import read_attrs
from introdetect.training import load_checkpoint

T = TypeVar("T")
# (part, in the seed's design too)
PARTS = [
    ("featurize (decode, ResNet18, audio features)", True),
    ("repetition channels (pictures)", False),
    ("audio fingerprints (decode of the sound)", False),
    ("where the sound repeats (copies)", False),
    ("load features", True),
    ("evidence channels (known intros, position, content)", False),
    ("BiLSTM", True),
    ("model-free detector (with the speech cue)", False),
    ("boundary refinement", False),
]


def _timed(times: dict[str, float], part: str, fn: Callable[[], T]) -> T:
    t0 = time.perf_counter()
    out = fn()
    times[part] = times.get(part, 0.0) + time.perf_counter() - t0
    return out


def measure(p: Any, data: Path, model: Path, work: Path) -> tuple[dict[str, float], float, int]:
    """Every part's wall seconds on the test episodes of ``data``, the analysed minutes and
    the number of episodes."""
    p = with_dataset(p, data)
    index = work / "index"
    prepare.run(p, index)
    rows = [r for r in read_index(index / "test.csv") if r.has_video]
    ids = [r.episode_id for r in rows]
    videos = {r.episode_id: Path(r.path) for r in rows}
    seasons = {r.episode_id: r.series for r in rows}
    feats, reps = work / "features", work / "repetition"
    times: dict[str, float] = {}
    backbone = backbone_for(p.features)  # loading it is not part of an episode's cost
    part = iter(name for name, _ in PARTS)
    _timed(
        times,
        next(part),
        lambda: featurize_many(list(videos.items()), feats, backbone, p.features),
    )
    episodes = [(eid, seasons[eid], feats / f"{eid}.h5") for eid in ids]
    rep = _timed(times, next(part), lambda: compute_repetition(episodes, p.repetition))
    prints = _timed(times, next(part), lambda: fingerprints(videos, p.features.window_s))
    copies = _timed(
        times,
        next(part),
        lambda: add_audio_share(rep, seasons, prints, p.features.fps, p.repetition),
    )
    for eid, channels in rep.items():
        write_repetition(channels, reps / f"{eid}.npy")
        write_copies(copies.get(eid, {}), reps / f"{eid}.npy")
    net, meta = load_checkpoint(model)
    spec = InputSpec.from_meta(meta)
    items = [(eid, "", None, None) for eid in ids]
    raws, _ = _timed(
        times,
        next(part),
        lambda: load_raw(items, feats, meta["provenance"], reps if spec.repetition else None),
    )
    inputs = _timed(times, next(part), lambda: [spec.episode(e) for e in raws])
    pp = p.predict
    dets = _timed(times, next(part), lambda: detect(net, inputs, pp))
    _timed(
        times,
        next(part),
        lambda: unsupervised_episodes(
            ids, reps, feats, _no_refine(pp), p.repetition, seasons, videos
        ),
    )
    _timed(times, next(part), lambda: refine_all(dets, videos, pp.refine_search_s))
    minutes = sum(
        min(float(a["duration_s"]), float(a["window_s"])) / 60.0
        for a in (read_attrs(feats / f"{eid}.h5") for eid in ids)
    )
    return times, minutes, len(ids)


def _no_refine(pp: Any) -> Any:
    """``pp`` without the refinement (timed on its own)."""
    return dataclasses.replace(pp, refine=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=["demo", "large"], default="demo", help="dataset size")
    ap.add_argument("--seed", type=int, default=1, help="development-set seed")
    ap.add_argument("--model", default="base", help="accuracy-bench variant whose model runs")
    ap.add_argument("--params", default="params.yaml", help="params")
    ap.add_argument("--out", default="benchmarks/out/accuracy", help="accuracy bench folder")
    ap.add_argument("--workers", type=int, default=2, help="dataset render processes")
    args = ap.parse_args(argv)
    setup_logging()
    logging.getLogger("introdetect").setLevel(logging.WARNING)
    p = load_params(args.params)
    out = Path(args.out)
    model = out / f"run_{args.size}_seed{args.seed}" / args.model / "best.pt"
    if not model.exists():
        raise SystemExit(
            f"{model}: no trained model; run benchmarks/accuracy_bench.py --size {args.size} "
            f"--seeds {args.seed} --variant {args.model} --out {out} first"
        )
    data = _dataset(p, args.size, args.seed, out, args.workers)
    with tempfile.TemporaryDirectory(prefix="cost_bench_") as tmp:
        times, minutes, n = measure(p, data, model, Path(tmp))
    print(f"\n{n} test episodes of seed {args.seed} ({args.size}), {minutes:.1f} analysed min\n")
    print("| part | in the seed's design | wall s | s per episode-minute |")
    print("|---|---|---|---|")
    for name, old in PARTS:
        t = times[name]
        print(f"| {name} | {'yes' if old else 'no'} | {t:.2f} | {t / minutes:.3f} |")
    before = sum(times[name] for name, old in PARTS if old)
    after = sum(times.values())
    print(f"| **the seed's design** | | {before:.2f} | {before / minutes:.3f} |")
    print(f"| **today's** | | {after:.2f} | {after / minutes:.3f} |")
    print(f"\ntoday's / the seed's design: {after / before:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
