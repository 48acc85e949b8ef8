"""Exports checked with the real clients: ffprobe and mpv read the chapters, MPlayer acts
on the EDL; a foreign EDL is never overwritten and our stale one is removed."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import make_clip

from introdetect.export import (
    EDL_MARKER,
    apply_chapters_command,
    edl_text,
    export_all,
    ffmetadata_text,
    mux_chapters,
    plan_edl,
)

EDL_LINE = re.compile(r"^(\d+\.\d+)\t(\d+\.\d+)\t([0-3])\t## introdetect$")


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed (Debian: apt-get install {tool}; .ci/run does)")


def test_edl_line_per_target():
    m = EDL_LINE.match(edl_text((12.3, 20.0)).rstrip("\n"))
    assert m and float(m[1]) == 12.3 and float(m[2]) == 20.0 and m[3] == "3"  # kodi: commbreak
    assert edl_text((1, 2), "mplayer").startswith("1.00\t2.00\t0\t")  # mplayer: cut


def _rich_mkv(path: Path) -> Path:
    """An mkv with 1 video, 2 audio and 2 subtitle tracks, a font attachment, titles and
    language tags."""
    src = make_clip(path.with_suffix(".src.mkv"), seconds=6.0, n_audio=2, container="matroska")
    srt = path.with_suffix(".srt")
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nhello\n")
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-i", str(srt), "-i", str(srt)]
    cmd += ["-map", "0", "-map", "1", "-map", "2", "-c", "copy", "-c:s", "srt"]
    cmd += ["-metadata", "title=Show S01E01", "-metadata:s:a:0", "language=eng"]
    cmd += ["-metadata:s:a:1", "language=fra", "-metadata:s:a:1", "title=Commentary"]
    cmd += ["-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=deu"]
    font = path.with_suffix(".ttf")
    font.write_bytes(b"\x00\x01\x00\x00" + bytes(60))  # an attachment (a font, as in anime)
    cmd += ["-attach", str(font), "-metadata:s:t", "mimetype=application/x-truetype-font"]
    cmd.append(str(path))
    subprocess.run(cmd, check=True)
    return path


def _ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", "-show_chapters"]
        + ["-show_format", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_chapters_go_in_losslessly_and_players_read_them(tmp_path, ext):
    _need("ffmpeg")
    _need("ffprobe")
    if ext == "mkv":
        video = _rich_mkv(tmp_path / "ep.mkv")
    else:
        video = make_clip(tmp_path / "ep.mp4", seconds=6.0, n_audio=2)
    before = _ffprobe(video)
    duration = float(before["format"]["duration"])
    meta = tmp_path / "ep.ffmeta"
    meta.write_text(ffmetadata_text((1.0, 3.5), duration))
    out = mux_chapters(video, meta, tmp_path / f"out.{ext}")
    after = _ffprobe(out)
    # mp4 keeps its chapters in a text track of its own: every other stream as before
    kinds = [(s["codec_type"], s["codec_name"]) for s in after["streams"]]
    assert [k for k in kinds if k[0] != "data"] == [
        (s["codec_type"], s["codec_name"]) for s in before["streams"]
    ]
    after["streams"] = [s for s in after["streams"] if s["codec_type"] != "data"]
    if ext == "mkv":
        assert ("attachment", "ttf") in kinds
    for a, b in zip(before["streams"], after["streams"], strict=True):
        for key in ("language", "title"):
            assert a.get("tags", {}).get(key) == b.get("tags", {}).get(key)
    assert after["format"].get("tags", {}).get("title") == before["format"].get("tags", {}).get(
        "title"
    )
    titles = [c["tags"]["title"] for c in after["chapters"]]
    assert titles == ["Cold Open", "Opening", "Episode"]
    assert float(after["chapters"][1]["start_time"]) == 1.0
    assert float(after["chapters"][1]["end_time"]) == 3.5
    assert float(after["chapters"][-1]["end_time"]) == pytest.approx(duration, abs=0.01)
    _need("mpv")
    msg = "CH=${chapter-list/count} T=${chapter-list/1/title} S=${chapter-list/1/time}"
    res = subprocess.run(
        ["mpv", "--no-config", "--vo=null", "--ao=null", "--frames=1"]
        + [f"--term-playing-msg={msg}", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "CH=3 T=Opening S=00:00:01" in res.stdout + res.stderr
    # mpv can also take the chapters without muxing (--chapters-file)
    res = subprocess.run(
        ["mpv", "--no-config", "--vo=null", "--ao=null", "--frames=1"]
        + [f"--chapters-file={meta}", f"--term-playing-msg={msg}", str(video)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "CH=3 T=Opening" in res.stdout + res.stderr


def test_chapter_titles_and_apply_command():
    assert "Opening" not in ffmetadata_text(None, 10.0)
    assert ffmetadata_text((0.0, 4.0), 10.0).count("[CHAPTER]") == 2  # intro at 0 s
    assert "Prologue" not in ffmetadata_text((3.0, 8.0), 60.0)  # chapterskip would drop it
    cmd = apply_chapters_command(Path("a b.mkv"), Path("m.ffmeta"), Path("o.mkv"))
    assert cmd[cmd.index("-map") + 1] == "0" and "copy" in cmd and "-n" in cmd


def test_mplayer_skips_what_the_edl_says(tmp_path):
    _need("mplayer")
    # a keyframe every 0.2 s, so the skip's seek lands where the EDL says
    video = make_clip(tmp_path / "ep.mp4", seconds=6.0, x264_params="keyint=5:scenecut=0")
    video.with_suffix(".edl").write_text(edl_text((2.0, 4.0), "mplayer"))
    res = subprocess.run(
        ["mplayer", "-msglevel", "all=9", "-edl", str(video.with_suffix(".edl"))]
        + ["-vo", "null", "-nosound", "-benchmark", str(video)],
        capture_output=True,
        timeout=60,
    )
    out = res.stdout.decode(errors="replace")
    assert "Read 1 EDL actions" in out
    assert re.search(r"EDL_SKIP: .*start \[2\.0+\], stop \[4\.0+\]", out)


def test_edl_never_overwrites_a_foreign_file_and_removes_our_stale_one(tmp_path):
    video = make_clip(tmp_path / "ep1.mp4", seconds=2.0)
    edl = video.with_suffix(".edl")
    edl.write_text("10.0\t20.0\t3\n")  # comskip's
    plan = plan_edl(video, (0.5, 1.5), "kodi")
    assert plan.action == "keep" and "not ours" in plan.note
    edl.unlink()
    assert plan_edl(video, (0.5, 1.5), "kodi").note.endswith("Kodi may not skip it")
    assert plan_edl(video, (0.5, 9.5), "kodi").note == ""
    edl.write_text(edl_text((0.5, 1.5)))
    assert plan_edl(video, None, "kodi").action == "remove"
    assert EDL_MARKER in edl.read_text()


def _rows(tmp_path):
    video = make_clip(tmp_path / "v" / "ep1.mp4", seconds=2.0)
    base = {"confidence": 0.9, "presence": 0.95, "source": "steps"}
    return [
        {"episode_id": "ep1", "video": str(video), "status": "ok", "interval": (0.5, 1.5)}
        | base
        | {"duration_s": 2.0},
        {
            "episode_id": "ep2",
            "video": str(tmp_path / "v" / "ep2.mp4"),
            "status": "no_intro",
            "interval": None,
        }
        | base
        | {"duration_s": 30.0},
        {"episode_id": "ep3", "video": str(tmp_path / "v" / "ep3.mp4"), "status": "failed: x"}
        | base
        | {"interval": None, "presence": None, "duration_s": None},
    ]


def test_export_all_formats_and_dry_run(tmp_path):
    rows = _rows(tmp_path)
    (tmp_path / "v" / "ep2.edl").write_text(edl_text((1.0, 2.0)))  # ours, now stale
    planned = export_all(rows, tmp_path / "out", ("csv", "edl", "chapters"), dry_run=True)
    assert f"would write {tmp_path / 'v/ep1.edl'}" in planned
    assert f"would remove stale {tmp_path / 'v/ep2.edl'}" in planned
    assert not (tmp_path / "out").exists() and not (tmp_path / "v/ep1.edl").exists()
    done = export_all(rows, tmp_path / "out", ("json", "csv", "edl", "chapters"))
    assert len(done) == len(planned)
    assert EDL_LINE.match((tmp_path / "v/ep1.edl").read_text().strip())
    assert not (tmp_path / "v/ep2.edl").exists()
    with av.open(str(tmp_path / "out/chapters/ep1.ffmeta"), format="ffmetadata") as c:
        titles = [ch["metadata"]["title"] for ch in c.chapters()]
    assert titles == ["Cold Open", "Opening", "Episode"]
    assert "ffmpeg" in (tmp_path / "out/chapters/apply.sh").read_text()
    csv_lines = (tmp_path / "out/predictions.csv").read_text().splitlines()
    assert csv_lines[0].startswith("episode_id,video,status,start_s,end_s") and len(csv_lines) == 4


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian chromium not installed (apt-get install chromium)")

    from introdetect.report import EpisodeView, html_report

    video = make_clip(tmp_path / "ep.mp4", seconds=8.0, size=(160, 120))
    probs = np.zeros(16)
    probs[4:10] = 0.9
    page = html_report(
        [EpisodeView("ep", str(video), 2.0, probs, np.ones(16) * 0.1, (2.0, 5.0), 0.8, (2.0, 5.5))],
        tmp_path / "rep",
    )
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'prof'}",
            f"--screenshot={shot}",
            "--window-size=1200,900",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("L"))
    assert img.std() > 10  # something was drawn, not a blank page


def test_one_writer_for_predictions_and_sidecar(tmp_path):
    """Model answers, model-free answers and unreadable episodes through one writer."""

    from introdetect.decision import Detection, write_detections

    dets = [
        Detection("a", (1.0, 9.5), 0.97, 0.8, "steps", np.zeros(4), 2.0),
        Detection("b", None, 0.1, 0.0, "absent", np.zeros(4), 2.0),
        Detection.missing("c", "c.h5: no feature file"),
    ]
    write_detections(dets, tmp_path / "p.json", tmp_path / "side.json")
    # a failed episode is no answer: absent from the predictions, "failed" in the sidecar
    assert json.loads((tmp_path / "p.json").read_text()) == {"a": [1.0, 9.5], "b": None}
    side = json.loads((tmp_path / "side.json").read_text())
    assert side["a"] == {"status": "ok", "presence": 0.97, "confidence": 0.8, "source": "steps"}
    assert side["b"]["status"] == "no_intro"
    assert side["c"]["presence"] is None and side["c"]["source"].startswith("no_features")
    assert side["c"]["status"] == "failed: c.h5: no feature file"
