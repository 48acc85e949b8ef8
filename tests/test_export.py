import json
import re
import shutil
import subprocess

import av
import pytest
from conftest import make_clip

from introdetect.export import (
    edl_text,
    export_all,
    ffmetadata_text,
    jellyfin_entry,
    mux_chapters,
)

EDL_LINE = re.compile(r"^(\d+(?:\.\d+)?)\t(\d+(?:\.\d+)?)\t([0-3])$")


def test_edl_line_parses():
    line = edl_text((12.3, 20.0)).rstrip("\n")
    m = EDL_LINE.match(line)
    assert m and float(m[1]) == 12.3 and float(m[2]) == 20.0 and m[3] == "3"
    assert edl_text((1, 2), "cut").endswith("\t0\n")


def test_chapters_round_trip_through_ffmpeg(tmp_path):
    video = make_clip(tmp_path / "ep.mp4", seconds=5.0)
    meta = tmp_path / "ep.ffmeta"
    meta.write_text(ffmetadata_text((1.0, 3.5), 5.0))
    out = mux_chapters(video, meta, tmp_path / "ep.mkv")
    with av.open(str(out)) as c:
        chapters = c.chapters()
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
    opening = [ch for ch in chapters if ch["metadata"]["title"] == "Opening"]
    assert len(opening) == 1
    tb = opening[0]["time_base"]
    assert float(opening[0]["start"] * tb) == 1.0 and float(opening[0]["end"] * tb) == 3.5
    assert "Opening" not in ffmetadata_text(None, 10.0)
    assert ffmetadata_text((0.0, 4.0), 10.0).count("[CHAPTER]") == 2  # intro at 0 s


def test_export_all_formats(tmp_path):
    video = make_clip(tmp_path / "v" / "ep1.mp4", seconds=2.0)
    rows = [
        {
            "episode_id": "ep1",
            "video": str(video),
            "status": "ok",
            "interval": (0.5, 1.5),
            "confidence": 0.9,
            "presence": 0.95,
            "duration_s": 2.0,
        },
        {
            "episode_id": "ep2",
            "video": str(tmp_path / "v" / "ep2.mp4"),
            "status": "no_intro",
            "interval": None,
            "confidence": 0.0,
            "presence": 0.1,
            "duration_s": 30.0,
        },
    ]
    export_all(rows, tmp_path / "out", ("json", "edl", "chapters", "jellyfin", "csv"))
    assert not (tmp_path / "out/predictions.json").exists()  # inference.write_detections'
    assert EDL_LINE.match((tmp_path / "v/ep1.edl").read_text().strip())
    assert not (tmp_path / "v/ep2.edl").exists()
    jf = json.loads((tmp_path / "out/jellyfin_intros.json").read_text())
    assert jf["ep1"] == jellyfin_entry("ep1", (0.5, 1.5)) and jf["ep1"]["IntroEnd"] == 1.5
    assert jf["ep2"]["Valid"] is False
    with av.open(str(tmp_path / "out/chapters/ep1.ffmeta"), format="ffmetadata") as c:
        titles = [ch["metadata"]["title"] for ch in c.chapters()]
    assert titles == ["Prologue", "Opening", "Episode"]
    csv_lines = (tmp_path / "out/predictions.csv").read_text().splitlines()
    assert csv_lines[0].startswith("episode_id,video,status,start_s,end_s") and len(csv_lines) == 3


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    import numpy as np

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
    import numpy as np

    from introdetect.inference import Detection, write_detections

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
