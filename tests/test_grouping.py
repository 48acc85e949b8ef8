"""Series grouping for detect without a model: file-name patterns first, then mutual
repetition; an episode alone in its series gets null with the reason."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from introdetect.cli import main
from introdetect.grouping import link_groups, name_series


@pytest.mark.parametrize(
    "path, series",
    [
        ("/tv/Show.Name.S01E02.1080p.mkv", "show name s01"),
        ("/tv/show_name_s2e10.mp4", "show name s02"),
        ("/tv/Show Name 1x02 - Pilot.mkv", "show name s01"),
        ("/tv/[Group] Anime Title - 02 [1080p].mkv", "anime title"),
        ("/tv/Great Show/S03E04.mkv", "great show s03"),
        ("/tv/x/-220020068_456255414.mp4", None),
        ("/tv/x/episode.mp4", None),
    ],
)
def test_series_from_file_names(path, series):
    assert name_series(Path(path)) == series


def test_a_shared_ident_alone_does_not_join_two_series():
    # a0-a2 share an 8 s intro, b0-b1 a 6 s one; every pair across shares a 3 s ident
    names = ["a0", "a1", "a2", "b0", "b1"]
    s = np.full((5, 5), 3.0)
    s[:3, :3] = 11.0
    s[3:, 3:] = 9.0
    np.fill_diagonal(s, 0.0)
    assert [[names[i] for i in g] for g in link_groups(s, 1.0)] == [
        ["a0", "a1", "a2"],
        ["b0", "b1"],
    ]


def episode(
    path: Path,
    series_seed: int,
    ep_seed: int,
    intro_at: float = 6.0,
    intro_s: float = 4.0,
    seconds: float = 24.0,
    melody: bool = False,
    audio: bool = True,
):
    """Blocky random shots (a new one each second) and noise; the series' intro (its own
    blocky images and chord, or with ``melody`` a tune rich in harmonics: the chord's
    fingerprint bits are noise, the tune's repeat) at ``intro_at``; ``audio`` False: no
    audio stream."""
    rng, srng = np.random.default_rng(ep_seed), np.random.default_rng(series_seed)
    intro_imgs = [srng.integers(0, 256, (6, 8, 3), dtype=np.uint8) for _ in range(int(intro_s))]
    sr, fps = 16000, 10
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.options = {"preset": "ultrafast"}
        aus = out.add_stream("aac", rate=sr, layout="mono") if audio else None
        shot = None
        for i in range(int(seconds * fps)):
            t = i / fps
            if intro_at <= t < intro_at + intro_s:
                img = intro_imgs[int(t - intro_at)]
            else:
                if i % fps == 0 or shot is None:
                    shot = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
                img = shot
            big = np.kron(img, np.ones((8, 8, 1), np.uint8))
            f = av.VideoFrame.from_ndarray(big, format="rgb24")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
        if aus is None:
            return path
        n = int(seconds * sr)
        tt = np.arange(n) / sr
        audio = 0.1 * rng.standard_normal(n).astype(np.float32)
        chord = sum(np.sin(2 * np.pi * f * tt) for f in srng.uniform(200, 1200, 3)) * 0.2
        m = (tt >= intro_at) & (tt < intro_at + intro_s)
        if melody:  # a tune of 1/8 s sawtooth notes: harmonics in every fingerprint band
            notes = srng.uniform(120, 400, int(intro_s * 8) + 1)
            local = tt[m] - intro_at
            f0 = notes[(local * 8).astype(int)]
            chord[m] = 0.2 * (2 * ((f0 * local) % 1.0) - 1)
        audio[m] = chord[m].astype(np.float32)
        for a in range(0, n, 1024):
            chunk = audio[a : a + 1024]
            af = av.AudioFrame.from_ndarray(
                chunk[None].astype(np.float32), format="flt", layout="mono"
            )
            af.sample_rate, af.pts, af.time_base = sr, a, Fraction(1, sr)
            for p in aus.encode(af):
                out.mux(p)
        for p in aus.encode(None):
            out.mux(p)
    return path


def test_detect_without_a_model_groups_a_mixed_folder(tmp_path, capsys):
    folder = tmp_path / "mixed"
    for k in range(3):
        episode(folder / f"a{k}.mp4", 1, 100 + k, intro_at=3 + 2 * k, seconds=20.0)
        episode(folder / f"b{k}.mp4", 2, 200 + k, intro_at=8 - k, seconds=20.0)
    episode(folder / "c0.mp4", 3, 300, seconds=20.0)
    params = tmp_path / "p.yaml"
    params.write_text(
        yaml.safe_dump({"features": {"weights": "random", "frame_size": 32, "workers": 1}})
    )
    out = tmp_path / "out"
    args = ["detect", str(folder), "--params", str(params), "--out", str(out), "--no-report"]
    assert main(args + ["--format", "json,chapters"]) == 0  # no --model: model-free, no error
    printed = capsys.readouterr().out
    assert "series 'mixed #1': 3 episodes (a0, a1, a2)" in printed
    assert "series 'mixed #2': 3 episodes (b0, b1, b2)" in printed
    side = json.loads((out / "presence.json").read_text())
    assert side["c0"]["status"].startswith("unknown: alone in its series")
    assert json.loads((out / "predictions.json").read_text())["c0"] is None
    for eid in ("a0", "a1", "a2", "b0", "b1", "b2"):
        assert side[eid]["status"] == "ok"
    # the chapters run to the end of the file (the container's duration)
    with av.open(str(folder / "a0.mp4")) as c:
        duration_ms = round(c.duration / 1000)
    meta = (out / "chapters" / "a0.ffmeta").read_text()
    assert abs(int(meta.rsplit("END=", 1)[1].split()[0]) - duration_ms) <= 1


def test_dry_run_lists_what_would_be_written(tmp_path, capsys):
    folder = tmp_path / "Show"
    for k in range(2):
        episode(folder / f"Show S01E0{k + 1}.mp4", 1, 400 + k, intro_at=2.0, seconds=12.0)
    (folder / "Show S01E01.edl").write_text("1.0\t2.0\t3\n")  # comskip's: never touched
    params = tmp_path / "p.yaml"
    params.write_text(
        yaml.safe_dump({"features": {"weights": "random", "frame_size": 32, "workers": 1}})
    )
    out = tmp_path / "out"
    args = ["detect", str(folder), "--params", str(params), "--out", str(out), "--dry-run"]
    assert main(args + ["--format", "json,csv,edl,chapters"]) == 0
    printed = capsys.readouterr().out
    assert f"would write {out / 'predictions.json'}" in printed
    assert f"would write {out / 'report.html'}" in printed
    assert "Show S01E01.edl: not ours" in printed
    assert "series 'show s01': 2 episodes" in printed
    assert not (out / "predictions.json").exists() and not (out / "chapters").exists()
    assert (folder / "Show S01E01.edl").read_text() == "1.0\t2.0\t3\n"
