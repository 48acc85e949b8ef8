import json
from pathlib import Path

import pytest

from introdetect.index import build_split
from introdetect.labels import (
    LabelError,
    RawLabel,
    clean_label,
    format_time,
    load_label_file,
    parse_time,
    series_from_name,
)
from introdetect.params import DataParams

REAL = Path(__file__).resolve().parent / "fixtures" / "real_labels"  # copied from shared/


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("0:01:42", 102),
        ("1:00:00", 3600),
        ("0:00:06.250", 6.25),
        ("01:42", 102),
        ("12.5", 12.5),
        (7, 7.0),
        (3.5, 3.5),
        (" 0:00:09 ", 9),
    ],
)
def test_parse_time(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "abc", "1:2:3:4", "0:61:00", "0:00:75", "-3", -1, None, True])
def test_parse_time_rejects(bad):
    with pytest.raises(LabelError):
        parse_time(bad)


def test_format_roundtrip():
    assert format_time(102) == "0:01:42" and parse_time(format_time(3725)) == 3725


@pytest.mark.parametrize(
    "name, series",
    [
        ("Баскетс. 4 сезон, 7 серия", "баскетс"),
        ("Бывaeт и xyжe. 1 сезон, 14 серия", "бывает и хуже"),  # Latin look-alikes folded
        ("Бывает и хуже. 2 сезон ,6 серия", "бывает и хуже"),
        ("Анатомия скандала. 1 сезон. 2 серия.", "анатомия скандала"),
        ("Берлин. 8 серия (финал)", "берлин"),
        ("Night Harbor. Season 2, Episode 3", "night harbor"),
        ("Night Harbor S02E03", "night harbor"),
    ],
)
def test_series_from_name(name, series):
    assert series_from_name(name) == series


def test_clean_policies():
    typo = RawLabel("a", start="0:01:58", end="0:01:02")  # start minute one too high
    assert clean_label(typo, "repair").status == "repaired"
    assert (clean_label(typo, "repair").start_s, clean_label(typo, "repair").end_s) == (58, 62)
    assert clean_label(typo, "drop").status == "dropped"
    swapped = RawLabel("b", start="0:00:30", end="0:00:22")
    assert clean_label(swapped, "swap").status == "swapped"
    assert clean_label(swapped, "repair").status == "dropped"  # 52 s is not plausible
    assert clean_label(RawLabel("c", start=None, end=None)).status == "no_intro"
    assert clean_label(RawLabel("d", start="x", end="0:00:05")).status == "dropped"
    assert clean_label(RawLabel("e", start="0:00:05", end="0:00:05")).status == "dropped"
    late = clean_label(RawLabel("f", start="0:05:00", end="0:05:05"), duration_s=100.0)
    assert late.status == "dropped" and "beyond" in late.problem


def test_real_label_files_every_broken_row_reported(tmp_path):
    """Prepare on the real task's label files: each end<start row is reported and none is
    used as written."""
    for name in ("train_labels.json", "test_labels.json"):
        rows, problems = load_label_file(REAL / name)
        assert not problems
        raw = json.loads((REAL / name).read_text(encoding="utf-8"))
        broken = {k for k, v in raw.items() if parse_time(v["end"]) < parse_time(v["start"])}
        assert broken  # the real files do have them
        vids = tmp_path / name / "videos"
        vids.mkdir(parents=True)
        (vids / "dummy.mp4").write_bytes(b"\0")  # the split needs one video file to exist
        index, report = build_split("train", vids, REAL / name, DataParams())
        by_id = {r.episode_id: r for r in index}
        reported = {p["episode_id"] for p in report["problems"] if "< start" in p["problem"]}
        assert reported == broken
        for eid in broken:
            r = by_id[eid]
            assert r.status in ("repaired", "dropped")
            if r.status == "repaired":
                assert r.start_s < r.end_s and r.start_s == parse_time(raw[eid]["start"]) - 60
        assert report["labels_without_video"] == sorted(raw)
        assert {r.series for r in index if r.episode_id in raw} >= {"баскетс", "бывает и хуже"}


def test_label_file_errors(tmp_path):
    bad = tmp_path / "l.json"
    bad.write_text("{not json")
    with pytest.raises(LabelError, match="l.json"):
        load_label_file(bad)
    bad.write_text(json.dumps({"a": [1, 2], "b": {"start": "0:00:01", "end": "0:00:04"}}))
    rows, problems = load_label_file(bad)
    assert [r.episode_id for r in rows] == ["b"] and "a" in problems[0]


def test_a_detect_group_names_the_series_of_labelled_episodes():
    """``introdetect detect`` names a file-name group ``show s01``; a model's known intros
    name their series as the label files do (decision._ident_not_intro compares the two)."""
    from introdetect.labels import series_from_name, series_key

    assert series_key("the office s02") == series_key("The Office") == "the office"
    assert series_key("баскетс s4") == series_from_name("Баскетс. 4 сезон, 7 серия")
    assert series_key("show") != series_key("other show s01")
