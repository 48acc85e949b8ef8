"""Bad input, round two: no failure that looks like an answer, no file that stops a season,
no model file that runs code. Each test makes its own bad input (PyAV clips, os.mkfifo,
symlinks, a monkeypatched OSError for full disks and read-only folders)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from conftest import make_clip

from introdetect.cli import main
from introdetect.scan import scan_paths

DETECT_PARAMS = {
    "features": {"weights": "random", "frame_size": 32, "window_s": 60.0, "workers": 1},
}
EXTS = (".mp4", ".mkv")


@pytest.fixture
def params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(DETECT_PARAMS))
    return path


def _detect(params: Path, out: Path, *paths: str | Path, extra: tuple[str, ...] = ()) -> int:
    args = ["detect", *map(str, paths), "--unsupervised", "--params", str(params)]
    return main(args + ["--out", str(out), "--no-report", "--format", "json,csv", *extra])


def _season(folder: Path, n: int = 2, seconds: float = 3.0) -> list[Path]:
    return [make_clip(folder / f"ep{i}.mp4", seconds=seconds) for i in range(1, n + 1)]


# 1. failures look like answers -------------------------------------------------------


@pytest.mark.logs_errors
def test_every_episode_has_a_status_and_failures_set_the_exit_code(tmp_path, params, capsys):
    season = tmp_path / "s"
    _season(season)
    (season / "ep3.mp4").write_bytes(b"\x00garbage" * 100)
    assert _detect(params, tmp_path / "out", season) == 1  # some failed
    preds = json.loads((tmp_path / "out/predictions.json").read_text())
    side = json.loads((tmp_path / "out/presence.json").read_text())
    assert set(preds) == {"ep1", "ep2"}  # a failure is no answer, not a null
    assert side["ep3"]["status"].startswith("failed: ") and "ep3.mp4" in side["ep3"]["status"]
    assert {side[e]["status"] for e in ("ep1", "ep2")} <= {"ok", "no_intro"}
    csv = (tmp_path / "out/predictions.csv").read_text().splitlines()
    assert csv[0].split(",")[:3] == ["episode_id", "video", "status"]
    assert any(line.startswith("ep3,") and ",failed: " in line for line in csv)
    out = capsys.readouterr().out
    assert "1 failed" in out and "failed: " in out
    (season / "ep1.mp4").unlink()
    (season / "ep2.mp4").unlink()
    assert _detect(params, tmp_path / "out2", season) == 2  # nothing usable
    (season / "ep3.mp4").unlink()
    _season(season)
    assert _detect(params, tmp_path / "out3", season) == 0


def test_evaluate_scores_a_missing_answer_as_wrong():
    from introdetect.metrics import episode_scores, summarize

    failed = episode_scores(None, None, failed=True)  # a no-intro label: null would be right
    assert failed["iou"] == 0.0 and not failed["presence_correct"]
    assert summarize([failed, episode_scores(None, None)])["n_failed"] == 1


# 2. one file stops a season ------------------------------------------------------------


def test_a_non_utf8_file_name_is_analysed_and_printable(tmp_path, params, capsys):
    season = tmp_path / "s"
    (good,) = _season(season, 1)
    odd = Path(os.fsdecode(bytes(season) + b"/caf\xe9.mp4"))
    os.link(good, odd)
    make_clip(season / "ep9.mp4", seconds=3.0, tone_hz=660.0)
    assert _detect(params, tmp_path / "out", season) == 0
    side = json.loads((tmp_path / "out/presence.json").read_text(encoding="utf-8"))
    assert set(side) == {"caf\\xe9", "ep1", "ep9"}
    assert "caf\\xe9" in capsys.readouterr().out
    assert main(["doctor", str(season)]) == 0


def test_prepare_indexes_a_non_utf8_file_name(tmp_path):
    from introdetect.index import build_split, read_index, write_index
    from introdetect.params import DataParams

    root = tmp_path / "train"
    (good,) = _season(root, 1)
    os.link(good, os.fsdecode(bytes(root) + b"/\xff\xfe.mp4"))
    rows, _ = build_split("train", root, None, DataParams())
    assert {r.episode_id for r in rows} == {"ep1", "\\xff\\xfe"}
    write_index(rows, tmp_path / "train.csv")
    back = read_index(tmp_path / "train.csv")
    assert [r.episode_id for r in back] == [r.episode_id for r in rows]
    assert all(Path(r.path).is_file() for r in back)  # the path still names the file


# 3. everyday names ---------------------------------------------------------------------


def test_names_without_a_slash_with_a_colon_or_a_leading_dash(tmp_path, params, monkeypatch):
    season = tmp_path / "s"
    season.mkdir()
    make_clip(season / "Show: Ep 1.mp4", seconds=3.0)
    make_clip(season / "-220020068_456255414.mp4", seconds=3.0)
    monkeypatch.chdir(season)
    code = _detect(params, tmp_path / "out", "Show: Ep 1.mp4", "-220020068_456255414.mp4")
    assert code == 0
    side = json.loads((tmp_path / "out/presence.json").read_text())
    assert set(side) == {"Show: Ep 1", "-220020068_456255414"}
    assert not any(v["status"].startswith("failed") for v in side.values())


def test_kodi_folder_with_sidecars_given_as_a_glob(tmp_path, params, capsys):
    season = tmp_path / "Season 1"
    (ep,) = _season(season, 1)
    for name in ("ep1.nfo", "ep1-thumb.jpg", "ep1.srt", "ep1.en.srt", "tvshow.nfo", "ep1.edl"):
        (season / name).write_text("x")
    assert _detect(params, tmp_path / "out", *sorted(season.iterdir())) == 0
    assert set(json.loads((tmp_path / "out/presence.json").read_text())) == {"ep1"}
    assert "0 files skipped, 6 sidecars ignored" in capsys.readouterr().out
    scan = scan_paths(sorted(season.iterdir()), EXTS)
    assert [e for e, _ in scan.videos] == ["ep1"]
    assert all(s.sidecar for s in scan.skipped) and len(scan.skipped) == 6


# 4. silent drops and a hang ----------------------------------------------------------------


def _container_clip(path: Path, fmt: str, codec: str = "libx264") -> Path:
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream(codec, rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for i in range(25):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 8, np.uint8), format="rgb24")
            f.pts, f.time_base = i, Fraction(1, 25)
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return path


def test_every_file_in_a_folder_is_analysed_or_listed_with_a_reason(tmp_path):
    from introdetect.params import DataParams

    lib = tmp_path / "lib"
    lib.mkdir()
    _container_clip(lib / "a.m2ts", "mpegts")
    _container_clip(lib / "b.mpg", "mpeg", "mpeg2video")
    _container_clip(lib / "c.wmv", "asf", "wmv2")
    _container_clip(lib / "d.flv", "flv", "flv")
    _container_clip(lib / "e.video", "matroska")  # unknown extension: taken by content
    (lib / "f.xyz").write_bytes(b"not a video at all" * 50)
    (lib / "g.nfo").write_text("<episodedetails/>")
    (lib / "broken.mp4").symlink_to(lib / "missing.mp4")
    (lib / "loop.mp4").symlink_to(lib / "loop.mp4")
    os.mkfifo(lib / "pipe.mp4")
    real = tmp_path / "elsewhere" / "Season 2"
    make_clip(real / "h.mp4", seconds=1.0)
    (lib / "linked").symlink_to(real, target_is_directory=True)
    (lib / "again").symlink_to(lib)  # a loop back to the top
    scan = scan_paths([lib], DataParams().video_extensions)
    assert [e for e, _ in scan.videos] == ["a", "b", "c", "d", "e", "h"]
    reasons = {Path(s.path).name: s.reason for s in scan.skipped}
    assert reasons["f.xyz"].startswith("not a video")
    assert reasons["g.nfo"] == "sidecar file (.nfo)"
    assert reasons["broken.mp4"] == "broken symlink"
    assert reasons["loop.mp4"] == "symlink loop"
    assert reasons["pipe.mp4"] == "not a regular file (a FIFO)"
    assert reasons["again"].startswith("folder already scanned")


def test_a_fifo_given_explicitly_does_not_hang(tmp_path, params):
    from introdetect.media import MediaError, probe

    fifo = tmp_path / "x.mp4"
    os.mkfifo(fifo)
    with pytest.raises(MediaError, match=r"x.mp4: not a regular file \(a FIFO\)"):
        probe(fifo)
    good = make_clip(tmp_path / "s" / "ep1.mp4")
    assert _detect(params, tmp_path / "out", fifo, good) == 0


# 5. wrong stream chosen ------------------------------------------------------------------


def test_cover_art_before_the_real_track_is_passed_over(tmp_path):
    from introdetect.doctor import check_video
    from introdetect.media import probe

    path = tmp_path / "cover.mkv"
    with av.open(str(path), "w") as out:
        art = out.add_stream("mjpeg", rate=1)
        art.width, art.height, art.pix_fmt = 32, 32, "yuvj420p"
        art.disposition = 0  # not flagged as cover art, not default: as found in the wild
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.disposition = av.stream.Disposition.default
        f = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        f.pts, f.time_base = 0, Fraction(1, 1)
        for p in [*art.encode(f), *art.encode(None)]:
            out.mux(p)
        for i in range(75):
            g = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 100, np.uint8), format="rgb24")
            g.pts, g.time_base = i, Fraction(1, 25)
            for p in vs.encode(g):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    info = probe(path)
    assert info.video_index == 1 and (info.width, info.height) == (64, 48)
    from conftest import decode

    steps, stats = decode(path)
    assert stats.duration_s > 2.5 and len(steps) >= 5
    assert "video stream #1 of 2 used" in check_video("cover", path).detail


# 6. output-side errors -------------------------------------------------------------------


@pytest.mark.logs_errors
def test_out_that_is_a_file_is_a_usage_error_before_any_work(tmp_path, params, capsys):
    (ep,) = _season(tmp_path / "s", 1)
    (tmp_path / "out").write_text("I am a file")
    assert _detect(params, tmp_path / "out", ep) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists and is not a folder" in err[0]


def _failing_atomic_path(monkeypatch, under: Path, code: int, suffix: str = ""):
    """Every atomic write below ``under`` (of files ending in ``suffix``) fails with
    ``code`` (a full disk, a read-only folder) after its temp file was created, as a real
    one would."""
    import introdetect.fileio as fileio
    import introdetect.store as store

    real = fileio.atomic_path

    from contextlib import contextmanager

    @contextmanager
    def failing(path):
        if Path(path).resolve().is_relative_to(under.resolve()) and str(path).endswith(suffix):
            with real(path) as tmp:
                tmp.write_bytes(b"partial")
                raise OSError(code, os.strerror(code), str(tmp))
        with real(path) as tmp:
            yield tmp

    monkeypatch.setattr(fileio, "atomic_path", failing)
    monkeypatch.setattr(store, "atomic_path", failing)


@pytest.mark.logs_errors
def test_a_full_disk_blames_the_cache_and_leaves_no_temp_file(tmp_path, params, monkeypatch):
    _season(tmp_path / "s")
    cache = tmp_path / "cache"
    cache.mkdir()
    _failing_atomic_path(monkeypatch, cache, errno.ENOSPC, ".h5")  # fills while featurizing
    assert _detect(params, tmp_path / "out", tmp_path / "s", extra=("--cache", str(cache))) == 2
    side = json.loads((tmp_path / "out/presence.json").read_text())
    for eid, row in side.items():
        assert f"{cache / eid}.h5: cannot write features (No space left on device)" in row["status"]
    assert [p.name for p in cache.iterdir()] == ["errors.json"]  # no temp file left


@pytest.mark.logs_errors
def test_a_read_only_cache_serves_what_it_holds(tmp_path, params, monkeypatch, caplog):
    _season(tmp_path / "s")
    cache = tmp_path / "cache"
    assert _detect(params, tmp_path / "a", tmp_path / "s", extra=("--cache", str(cache))) == 0
    _failing_atomic_path(monkeypatch, cache, errno.EROFS)
    assert _detect(params, tmp_path / "b", tmp_path / "s", extra=("--cache", str(cache))) == 0
    assert "every episode is cached, reading only" in caplog.text
    assert json.loads((tmp_path / "b/predictions.json").read_text()) == json.loads(
        (tmp_path / "a/predictions.json").read_text()
    )
    make_clip(tmp_path / "s" / "ep3.mp4", seconds=3.0, tone_hz=300.0)  # one not cached yet
    assert _detect(params, tmp_path / "c", tmp_path / "s", extra=("--cache", str(cache))) == 2
    assert "1 episodes need featurizing" in caplog.text
    assert not (tmp_path / "c/predictions.json").exists()


@pytest.mark.logs_errors
def test_results_that_cannot_be_written_go_elsewhere_and_say_where(
    tmp_path, params, monkeypatch, caplog
):
    import introdetect.decision as decision
    import introdetect.export as export

    _season(tmp_path / "s")
    out = tmp_path / "out"
    real = decision.write_json

    def full_disk(obj, path):
        if Path(path).parent == out:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(obj, path)

    monkeypatch.setattr(decision, "write_json", full_disk)
    edl_real = export.write_text

    def read_only_media(path, text):
        if str(path).endswith(".edl"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        edl_real(path, text)

    monkeypatch.setattr(export, "write_text", read_only_media)
    code = _detect(params, out, tmp_path / "s", extra=("--format", "json,csv,edl"))
    assert code == 0
    moved = [r.getMessage() for r in caplog.records if "instead" in r.getMessage()]
    assert len(moved) == 1
    elsewhere = Path(moved[0].removeprefix("results written to ").removesuffix(" instead"))
    assert set(json.loads((elsewhere / "presence.json").read_text())) == {"ep1", "ep2"}


# 7. late checks --------------------------------------------------------------------------


@pytest.mark.logs_errors
def test_a_mistyped_labels_path_stops_before_featurizing(tmp_path, params, capsys):
    (ep,) = _season(tmp_path / "s", 1)
    code = _detect(params, tmp_path / "out", ep, extra=("--labels", str(tmp_path / "nope.json")))
    assert code == 2
    assert not (tmp_path / "out/features").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.json: label file not found" in err[0]


# 8. model files that are not checkpoints --------------------------------------------------


@pytest.mark.logs_errors
@pytest.mark.parametrize("kind", ["text", "video", "tensor", "folder"])
def test_anything_but_a_checkpoint_as_model_is_one_line(tmp_path, params, capsys, kind):
    import torch

    ep = make_clip(tmp_path / "s" / "ep1.mp4")
    model = tmp_path / f"model.{kind}"
    if kind == "text":
        model.write_text("hello")
    elif kind == "video":
        model = ep
    elif kind == "tensor":
        torch.save(torch.zeros(3), model)
    else:
        model.mkdir()
    args = ["detect", str(ep), "--model", str(model), "--params", str(params)]
    assert main(args + ["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a loadable introdetect checkpoint" in err[0]
    assert not (tmp_path / "out/features").exists()


# 9. HTML injection -------------------------------------------------------------------------


def test_report_escapes_names_and_quotes_image_links(tmp_path):
    from introdetect.report import EpisodeView, html_report

    eid = 'x"><script>alert(1)</script> #1 100%'
    video = make_clip(tmp_path / f"{eid}.mp4", seconds=2.0)
    view = EpisodeView(eid, str(video), 2.0, np.zeros(4), np.zeros(4), (0.5, 1.5), 0.9)
    page = html_report([view], tmp_path / "out").read_text()
    assert "<script>" not in page
    src = page.split('<img src="')[1].split('"')[0]
    assert "%23" in src and "%25" in src and "%22" in src
    from urllib.parse import unquote

    assert (tmp_path / "out" / unquote(src)).exists()


# 10. stale cache ---------------------------------------------------------------------------


def test_an_in_place_edit_of_the_same_size_is_featurized_again(tmp_path):
    from introdetect.features.extract import featurize_many
    from introdetect.features.visual import load_backbone
    from introdetect.params import FeatureParams

    ep = make_clip(tmp_path / "ep.mp4", seconds=4.0)
    fp = FeatureParams(weights="random", frame_size=32, workers=1)
    bb = load_backbone("random", "cpu", "fp32")
    first = featurize_many([("ep", ep)], tmp_path / "f", bb, fp)
    assert first.done == ["ep"]
    assert featurize_many([("ep", ep)], tmp_path / "f", bb, fp).skipped == ["ep"]
    data = bytearray(ep.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 16] = bytes(16)  # same size, same first and last MiB
    st = ep.stat()
    ep.write_bytes(bytes(data))
    os.utime(ep, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    again = featurize_many([("ep", ep)], tmp_path / "f", bb, fp)
    assert again.done == ["ep"] and again.skipped == []


# 11. labels ---------------------------------------------------------------------------------


def test_duplicate_json_keys_and_ends_past_the_video_are_reported(tmp_path):
    from introdetect.labels import clean_label, load_label_file

    f = tmp_path / "labels.json"
    f.write_text(
        '{"a": {"start": "0:00:05", "end": "0:00:15"}, "a": {"start": "0:00:06", "end": "0:00:16"},'
        ' "b": {"start": "0:00:01", "end": "0:00:09"}}'
    )
    rows, problems = load_label_file(f)
    assert len(problems) == 1 and "a: key given more than once" in problems[0]
    assert [r.start for r in rows if r.episode_id == "a"] == ["0:00:06"]
    b = next(r for r in rows if r.episode_id == "b")
    clipped = clean_label(b, duration_s=6.0)
    assert clipped.status == "repaired" and clipped.end_s == 6.0
    assert "beyond episode duration" in clipped.problem
    assert clean_label(b, duration_s=1.5).status == "dropped"


# 12. shared cache race ---------------------------------------------------------------------


def test_only_dead_writers_temp_files_are_cleaned(tmp_path):
    from introdetect.fileio import clean_stale_temps, temp_name

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        mine = temp_name(tmp_path / "a.h5")
        host = mine.name.split(".")[-3]
        theirs = tmp_path / f".b.h5.{host}.{live.pid}.tmp"
        stale = tmp_path / f".c.h5.{host}.{dead.pid}.tmp"
        other_host = tmp_path / f".d.h5.otherhost.{dead.pid}.tmp"
        for p in (mine, theirs, stale, other_host):
            p.write_bytes(b"x")
        assert clean_stale_temps(tmp_path) == 1
        assert {p.name for p in tmp_path.iterdir()} == {
            mine.name,
            theirs.name,
            other_host.name,
        }
    finally:
        live.kill()


# 13. Ctrl-C, --format "", metrics on a list --------------------------------------------------


@pytest.mark.logs_errors
def test_format_empty_and_metrics_on_a_list_are_one_line(tmp_path, params, capsys):
    (ep,) = _season(tmp_path / "s", 1)
    assert _detect(params, tmp_path / "out", ep, extra=("--format", "")) == 2
    assert not (tmp_path / "out").exists()
    (tmp_path / "m.json").write_text("[1, 2]")
    assert main(["metrics", str(tmp_path / "m.json")]) == 2
    (tmp_path / "n.json").write_text("{not json")
    assert main(["metrics", str(tmp_path / "n.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all("Traceback" not in line for line in err)
    assert "not a metrics file (a JSON list)" in err[1]


def test_ctrl_c_stops_with_one_line_and_keeps_finished_episodes(tmp_path, params):
    season = tmp_path / "s"
    for i in range(6):
        make_clip(season / f"ep{i}.mp4", seconds=40.0, size=(160, 120), tone_hz=200 + 50 * i)
    cache = tmp_path / "cache"
    exe = str(Path(sys.executable).parent / "introdetect")
    args = [exe, "detect", str(season), "--unsupervised", "--params", str(params)]
    proc = subprocess.Popen(
        args + ["--out", str(tmp_path / "out"), "--cache", str(cache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},  # a crash shows where it happened
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(cache.glob("*.h5")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    finished = list(cache.glob("*.h5"))
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err
    assert 1 <= len(finished) < 6
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]
