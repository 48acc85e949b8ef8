"""Stage 'repetition': cross-episode repetition channels (no labels): channels 0-3 from the
cached features, channels 4-5 (where the sound repeats, where its repeat realigns) from the
audio fingerprints the feature files hold (an audio-only decode of the videos where they
hold none), and beside each episode's channels where its sound repeats in each other
episode (``<id>.copies.npz``, for the season's agreement)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from introdetect.candidates import add_audio_share
from introdetect.features.audio import season_prints
from introdetect.index import read_index
from introdetect.params import Params
from introdetect.repetition import compute_repetition, write_copies, write_repetition

log = logging.getLogger(__name__)


def run(p: Params, index_dir: Path, features: Path, out: Path) -> dict[str, Any]:
    """Channels for every featurized episode, grouped by series across both splits;
    written to ``out/<split>/<id>.npy``."""
    episodes, where, videos = [], {}, {}
    for split in ("train", "test"):
        for r in read_index(index_dir / f"{split}.csv"):
            path = features / split / f"{r.episode_id}.h5"
            if r.has_video and path.exists():
                episodes.append((r.episode_id, r.series, path))
                where[r.episode_id] = split
                videos[r.episode_id] = Path(r.path)
    t0 = time.perf_counter()
    reps = compute_repetition(episodes, p.repetition)
    stores = {eid: path for eid, _, path in episodes}
    prints = season_prints(videos, stores, p.features.window_s)
    series_of = {eid: s for eid, s, _ in episodes}
    copies = add_audio_share(reps, series_of, prints, p.features.fps, p.repetition)
    dt = time.perf_counter() - t0
    for eid, rep in reps.items():
        write_repetition(rep, out / where[eid] / f"{eid}.npy")
        write_copies(copies.get(eid, {}), out / where[eid] / f"{eid}.npy")
    log.info(
        "repetition: %d episodes in %.1f s (%.3f s per episode)",
        len(reps),
        dt,
        dt / max(len(reps), 1),
    )
    return {"episodes": len(reps), "seconds": dt}
