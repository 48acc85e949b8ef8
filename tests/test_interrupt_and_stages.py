"""Interruptions (SIGKILL mid-featurize, mid-training) and stage-level failure rules."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_clip

from introdetect.features.extract import featurize_many
from introdetect.features.visual import load_backbone
from introdetect.params import FeatureParams, params_from_dict
from introdetect.pipeline import featurize, prepare
from introdetect.pipeline.featurize import FeaturizeError
from introdetect.runner import run_stage
from introdetect.store import read_episode
from introdetect.training import load_checkpoint

FP = FeatureParams(weights="random", frame_size=64, precision="fp32", batch_size=8)

FEATURIZE_SCRIPT = """
import sys
from pathlib import Path
from introdetect.features.extract import featurize_many
from introdetect.features.visual import load_backbone
from introdetect.params import FeatureParams
fp = FeatureParams(weights="random", frame_size=64, precision="fp32", batch_size=8)
vids = sorted(Path(sys.argv[1]).glob("*.mp4"))
featurize_many([(v.stem, v) for v in vids], sys.argv[2], load_backbone("random", "cpu", "fp32"), fp)
"""


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    """SIGKILL ``proc`` once ``ready()``; killed too when the wait fails (a loaded machine),
    so a failed test never leaves it running."""
    t0 = time.time()
    try:
        while not ready():
            assert proc.poll() is None, "finished before it could be interrupted"
            assert time.time() - t0 < timeout, f"not ready after {timeout} s"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def test_sigkill_mid_featurize_then_rerun_equals_uninterrupted(tmp_path):
    vids = tmp_path / "v"
    for i in range(5):
        make_clip(vids / f"ep{i}.mp4", seconds=40.0, size=(320, 240), tone_hz=200 + 50 * i)
    out = tmp_path / "f"
    proc = subprocess.Popen(
        [sys.executable, "-c", FEATURIZE_SCRIPT, str(vids), str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _kill_when(proc, lambda: len(list(out.glob("*.h5"))) >= 1)
    finished = sorted(p.stem for p in out.glob("*.h5"))
    assert 1 <= len(finished) < 5
    for p in out.glob("*.h5"):
        read_episode(p)  # every file there is whole
    eps = [(v.stem, v) for v in sorted(vids.glob("*.mp4"))]
    bb = load_backbone("random", "cpu", "fp32")
    s = featurize_many(eps, out, bb, FP)
    assert sorted(s.skipped) == finished and len(s.done) == 5 - len(finished)
    assert not list(out.glob(".*.tmp"))  # the killed run's temp file was cleaned up
    ref = tmp_path / "ref"
    featurize_many(eps, ref, bb, FP)
    for eid, _ in eps:
        a, b = read_episode(out / f"{eid}.h5"), read_episode(ref / f"{eid}.h5")
        assert np.array_equal(a.visual, b.visual) and np.allclose(a.audio, b.audio)


TRAIN_SCRIPT = """
import sys
import numpy as np
from introdetect.data import Episode
from introdetect.params import ModelParams, TrainParams
from introdetect.training import fit
rng = np.random.default_rng(0)
eps = [Episode(f"e{i}", "abc"[i % 3], rng.standard_normal((400, 16)).astype(np.float32), 2.0,
               10.0, 18.0, {}) for i in range(12)]
fit(eps[:-2], eps[-2:], ModelParams(hidden=64), TrainParams(epochs=10000, patience=10000, lr=1e-4),
    sys.argv[1], {"use_mels": True, "feature_identity": {}})
"""


def test_sigkill_mid_training_leaves_a_loadable_checkpoint(tmp_path):
    ckpt = tmp_path / "best.pt"
    proc = subprocess.Popen(
        [sys.executable, "-c", TRAIN_SCRIPT, str(ckpt)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    t_first: list[float] = []

    def ready() -> bool:  # some time after the first save, while later saves keep coming
        if ckpt.exists() and not t_first:
            t_first.append(time.time())
        return bool(t_first) and time.time() - t_first[0] > 1.5

    _kill_when(proc, ready)
    model, meta = load_checkpoint(ckpt)
    assert meta["epoch"] >= 1 and model.in_dim == 16


@pytest.fixture
def small_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        make_clip(tmp_path / "train" / f"{name}.mp4", seconds=3.0)
    (tmp_path / "train" / "broken.mp4").write_bytes(b"junk" * 100)
    make_clip(tmp_path / "test" / "c.mp4", seconds=3.0)
    labels = {
        "a": {"name": "Show. 1 сезон, 1 серия", "start": "0:00:01", "end": "0:00:02"},
        "b": {"name": "Show. 1 сезон, 2 серия", "start": "0:00:09", "end": "0:00:12"},
        "broken": {"name": "Show. 1 сезон, 3 серия", "start": "0:00:01", "end": "0:00:02"},
        "ghost": {"name": "Show. 1 сезон, 4 серия", "start": "0:00:01", "end": "0:00:02"},
    }
    (tmp_path / "train.json").write_text(json.dumps(labels, ensure_ascii=False))
    raw = {
        "data": {
            "source": "dirs",
            "train_dir": "train",
            "train_labels": "train.json",
            "test_dir": "test",
            "test_labels": None,
        },
        "features": {"weights": "random", "frame_size": 32, "window_s": 60.0},
    }
    return tmp_path, raw


def test_prepare_reports_mismatches_and_labels_beyond_duration(small_project):
    root, raw = small_project
    report = prepare.run(params_from_dict(raw), Path("data/index"))
    tr = report["train"]
    assert tr["labels_without_video"] == ["ghost"] and tr["n_labels_without_video"] == 1
    assert any(p["episode_id"] == "b" and "beyond" in p["problem"] for p in tr["problems"])
    assert report["test"]["n_videos_without_label"] == 1


@pytest.mark.logs_errors
def test_featurize_stage_fails_below_min_ok_fraction(small_project):
    root, raw = small_project
    prepare.run(params_from_dict(raw), Path("data/index"))
    with pytest.raises(FeaturizeError, match=r"only 3/4 episodes succeeded"):
        featurize.run(params_from_dict(raw), Path("data/index"), Path("data/features"))
    errors = json.loads((root / "data/features/train/errors.json").read_text())
    assert "broken.mp4" in errors["broken"]["error"]
    raw["features"]["min_ok_fraction"] = 0.7
    # the good episodes were kept: nothing redone
    featurize.run(params_from_dict(raw), Path("data/index"), Path("data/features"))
    assert len(list((root / "data/features/train").glob("*.h5"))) == 2


@pytest.mark.logs_errors
def test_stage_runner_one_line_error(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text("features:\n  fps: -1\n")
    assert run_stage("x", lambda p: None, ["--params", str(tmp_path / "p.yaml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "features.fps" in err[0] and "p.yaml" in err[0]
