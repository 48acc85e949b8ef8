"""Exports for players and servers: CSV, Kodi EDL, FFmpeg chapters, Jellyfin Intro Skipper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from introdetect.errors import describe_os_error
from introdetect.fileio import write_csv, write_json, write_text

# Kodi EDL actions: 0 cut, 1 mute, 2 scene marker, 3 commercial break (skipped automatically).
EDL_ACTIONS = {"cut": 0, "mute": 1, "scene": 2, "commbreak": 3}


def edl_text(interval: tuple[float, float], action: str = "commbreak") -> str:
    """One Kodi EDL line: ``start<TAB>end<TAB>action`` in seconds."""
    return f"{interval[0]:.2f}\t{interval[1]:.2f}\t{EDL_ACTIONS[action]}\n"


def ffmetadata_text(interval: tuple[float, float] | None, duration_s: float) -> str:
    """FFmpeg metadata with chapters; the intro is the chapter titled "Opening"."""
    lines = [";FFMETADATA1"]
    marks: list[tuple[float, float, str]] = []
    if interval is None:
        marks.append((0.0, duration_s, "Episode"))
    else:
        a, b = interval
        if a > 0.05:
            marks.append((0.0, a, "Prologue"))
        marks.append((a, b, "Opening"))
        if duration_s - b > 0.05:
            marks.append((b, duration_s, "Episode"))
    for start, end, title in marks:
        lines += [
            "[CHAPTER]",
            "TIMEBASE=1/1000",
            f"START={round(start * 1000)}",
            f"END={round(end * 1000)}",
            f"title={title}",
        ]
    return "\n".join(lines) + "\n"


def jellyfin_entry(episode_id: str, interval: tuple[float, float] | None) -> dict[str, Any]:
    """An entry in the shape of Jellyfin Intro Skipper's timestamps (seconds)."""
    if interval is None:
        return {"EpisodeId": episode_id, "Valid": False, "IntroStart": 0.0, "IntroEnd": 0.0}
    return {
        "EpisodeId": episode_id,
        "Valid": True,
        "IntroStart": interval[0],
        "IntroEnd": interval[1],
    }


FORMATS = ("json", "edl", "chapters", "jellyfin", "csv")


def export_all(
    results: list[dict[str, Any]],
    out_dir: str | Path,
    formats: tuple[str, ...],
    edl_action: str = "commbreak",
) -> list[str]:
    """Write the requested formats for ``results`` rows (episode_id, video, status,
    interval, confidence, presence, duration_s), except ``json``, which
    :func:`introdetect.inference.write_detections` writes. EDL files go next to each
    video. Files in ``out_dir`` that cannot be written raise ``OSError`` (the caller
    writes elsewhere); an EDL beside a video that cannot be written (a read-only media
    folder) is reported in the returned list of one-line failures, not raised."""
    out_dir = Path(out_dir)
    failures: list[str] = []
    by_id = {r["episode_id"]: r for r in results}
    if "csv" in formats:
        write_csv(
            [
                {
                    "episode_id": k,
                    "video": r["video"],
                    "status": r["status"],
                    "start_s": r["interval"][0] if r["interval"] else "",
                    "end_s": r["interval"][1] if r["interval"] else "",
                    "confidence": r["confidence"],
                    "presence": "" if r["presence"] is None else r["presence"],
                    "source": r.get("source", ""),
                }
                for k, r in by_id.items()
            ],
            out_dir / "predictions.csv",
        )
    if "jellyfin" in formats:
        write_json(
            {
                k: jellyfin_entry(k, r["interval"])
                for k, r in by_id.items()
                if not r["status"].startswith("failed")
            },
            out_dir / "jellyfin_intros.json",
        )
    for k, r in by_id.items():
        if "edl" in formats and r["interval"] and r.get("video"):
            p = Path(r.get("path") or r["video"]).with_suffix(".edl")  # path: the real name
            try:
                write_text(p, edl_text(r["interval"], edl_action))
            except OSError as e:
                failures.append(f"{p}: EDL not written ({describe_os_error(e)})")
        if "chapters" in formats and r.get("duration_s"):
            p = out_dir / "chapters" / f"{k}.ffmeta"
            write_text(p, ffmetadata_text(r["interval"], r["duration_s"]))
    return failures


def mux_chapters(video: str | Path, ffmetadata: str | Path, out: str | Path) -> Path:
    """Copy ``video``'s streams into ``out`` (mkv/mp4) with the chapters of an ffmetadata
    file, without re-encoding (the equivalent of ``ffmpeg -i v -i meta -map_chapters 1``)."""
    import av

    out = Path(out)
    with av.open(str(ffmetadata), format="ffmetadata") as meta:
        chapters = meta.chapters()
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        mapping = {
            s.index: dst.add_stream_from_template(s)
            for s in src.streams
            if s.type in ("video", "audio")
        }
        dst.set_chapters(chapters)
        for packet in src.demux(*[s for s in src.streams if s.index in mapping]):
            if packet.dts is None:
                continue
            packet.stream = mapping[packet.stream.index]
            dst.mux(packet)
    return out
