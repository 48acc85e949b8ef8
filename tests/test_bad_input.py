"""Bad media and folders: one-line errors naming the file, nothing lost for the others."""

from __future__ import annotations

import json

import pytest
from conftest import make_clip

from introdetect.cli import main
from introdetect.doctor import diagnose
from introdetect.features.extract import featurize_many
from introdetect.features.visual import load_backbone
from introdetect.index import DatasetError, find_videos
from introdetect.params import FeatureParams


def _truncate(src, dst, fraction):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.fixture(scope="module")
def season(tmp_path_factory):
    d = tmp_path_factory.mktemp("season")
    good = make_clip(d / "good.mp4", seconds=4.0)
    make_clip(d / "сезон 1 эп 2.mkv", seconds=3.0, layout="stereo")  # non-ASCII, spaces, mkv
    make_clip(d / "silent.mp4", seconds=3.0, audio_rate=None)
    (d / "empty.mp4").write_bytes(b"")
    (d / "garbage.mp4").write_bytes(b"\x00\x01garbage" * 300)
    for frac in (0.1, 0.5, 0.9):
        _truncate(good, d / f"trunc{int(frac * 100)}.mp4", frac)
    return d


@pytest.mark.logs_errors
def test_featurize_records_failures_and_keeps_the_rest(season, tmp_path):
    videos = sorted(find_videos(season, (".mp4", ".mkv")).items())
    bb = load_backbone("random", "cpu", "fp32")
    s = featurize_many(videos, tmp_path / "f", bb, FeatureParams(weights="random", frame_size=32))
    assert sorted(s.done) == ["good", "silent", "сезон 1 эп 2"]
    assert {"empty", "garbage", "trunc10", "trunc50", "trunc90"} == set(s.failed)
    errors = json.loads((tmp_path / "f" / "errors.json").read_text())
    for eid, e in errors.items():
        assert f"{eid}.mp4" in e["error"] and "\n" not in e["error"]
    assert "empty file" in errors["empty"]["error"]


def test_doctor_lists_failures_first(season, capsys):
    res = diagnose(sorted(find_videos(season, (".mp4", ".mkv")).items()))
    assert [d.ok for d in res] == sorted(d.ok for d in res)
    assert {d.episode_id for d in res if not d.ok} == {
        "empty",
        "garbage",
        "trunc10",
        "trunc50",
        "trunc90",
    }
    silent = next(d for d in res if d.episode_id == "silent")
    assert silent.ok and "no audio" in silent.detail
    assert main(["doctor", str(season)]) == 1
    out = capsys.readouterr().out
    assert "FAIL garbage" in out and "3 of 8 files decode" in out


def test_duplicate_ids_name_both_files(tmp_path):
    make_clip(tmp_path / "a" / "ep1.mp4", seconds=1.0)
    make_clip(tmp_path / "b" / "ep1.mkv", seconds=1.0)
    with pytest.raises(DatasetError) as e:
        find_videos(tmp_path, (".mp4", ".mkv"))
    assert "a/ep1.mp4" in str(e.value) and "b/ep1.mkv" in str(e.value)


@pytest.mark.logs_errors
def test_folder_without_videos(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert main(["doctor", str(tmp_path)]) == 2  # nothing usable
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no video files" in err[0] and str(tmp_path) in err[0]


def test_prepare_on_a_folder_without_videos(tmp_path):
    from introdetect.index import build_split
    from introdetect.params import DataParams

    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no video files"):
        build_split("train", tmp_path / "empty", None, DataParams())
    with pytest.raises(DatasetError, match="video folder not found"):
        build_split("train", tmp_path / "missing", None, DataParams())


class _Payload:
    """Unpickling this runs code (creates a file) -- what a crafted model file would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_a_crafted_model_file_runs_no_code_and_fails_in_one_line(tmp_path):
    import pickle

    import torch

    from introdetect.training import ModelError, load_checkpoint

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "model_args": _Payload(str(marker))}, evil)
    with pytest.raises(ModelError, match=r"evil\.pt: not a loadable introdetect checkpoint"):
        load_checkpoint(evil)
    assert not marker.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Payload(str(marker))))
    for bad in (raw, tmp_path / "text.pt", tmp_path / "tensor.pt"):
        if bad.name == "text.pt":
            bad.write_text("not a model\n")
        if bad.name == "tensor.pt":
            torch.save(torch.zeros(3), bad)
        with pytest.raises(ModelError, match=bad.name):
            load_checkpoint(bad)
    assert not marker.exists()
