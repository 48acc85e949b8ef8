"""Exports that players and servers read: CSV, EDL files beside the videos (Kodi, MPlayer)
and chapters (FFmpeg metadata plus a lossless command that puts them into the file, where
mpv, Kodi and Jellyfin's chapter readers find them). Jellyfin's Intro Skipper plugin is fed
through its API instead (:mod:`introdetect.jellyfin`): no file is written that nothing reads.

EDL, per target (``--edl-target``):

* ``kodi``: action 3, commercial break: Kodi skips it automatically. Kodi merges or drops
  commercial breaks shorter than 5 s (``CEdl::MergeShortCommBreaks``), so such intros get a
  warning; action 0 (cut) would be honoured but removes the stretch from Kodi's timeline.
* ``mplayer``: action 0, cut: MPlayer skips it. MPlayer acts on 0 (cut) and 1 (mute)
  only; a commercial break (3) is read and ignored.
* mpv reads no EDL file (its ``edl://`` is another format): use the chapters.

Our EDL lines end in the marker ``## introdetect`` (both players read three fields and
ignore the rest of the line): an ``.edl`` without it (comskip's, a person's) is never
overwritten, and ours is removed when a rerun finds no intro.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from introdetect.errors import IntrodetectError, describe_os_error
from introdetect.fileio import write_csv, write_text

FORMATS = ("json", "csv", "edl", "chapters")
EDL_TARGETS = {"kodi": 3, "mplayer": 0}
EDL_MARKER = "## introdetect"
KODI_MIN_COMMBREAK_S = 5.0
# Chapter titles: the intro is "Opening" (Jellyfin's chapter readers match
# Intro/Introduction/OP/Opening; mpv's chapterskip skips its "opening" category by
# default); the others are neutral, so no skip tool drops content ("Prologue" and "Intro*"
# are chapterskip's prologue category).
INTRO_CHAPTER, BEFORE_CHAPTER, AFTER_CHAPTER = "Opening", "Cold Open", "Episode"


class ExportError(IntrodetectError):
    """An export cannot be made (e.g. ffmpeg missing for the chapter muxing)."""


def edl_text(interval: tuple[float, float], target: str = "kodi") -> str:
    """One EDL line: ``start<TAB>end<TAB>action<TAB>## introdetect`` in seconds."""
    return f"{interval[0]:.2f}\t{interval[1]:.2f}\t{EDL_TARGETS[target]}\t{EDL_MARKER}\n"


def is_ours(edl: Path) -> bool:
    """True when ``edl`` was written by introdetect (its marker is on a line)."""
    try:
        return EDL_MARKER in edl.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


@dataclass(frozen=True)
class EdlPlan:
    """What the EDL export does for one video: ``write``, ``remove`` (our stale file) or
    ``keep`` (a foreign file, or nothing to do), and a warning for the user, if any."""

    path: Path
    action: str
    text: str = ""
    note: str = ""


def plan_edl(video: Path, interval: tuple[float, float] | None, target: str) -> EdlPlan:
    """The EDL decision for one video (nothing is written here)."""
    path = video.with_suffix(".edl")
    exists = path.exists()
    if exists and not is_ours(path):
        return EdlPlan(path, "keep", note=f"{path}: not ours (no '{EDL_MARKER}'), left as it is")
    if interval is None:
        return EdlPlan(path, "remove" if exists else "keep")
    note = ""
    if target == "kodi" and interval[1] - interval[0] < KODI_MIN_COMMBREAK_S:
        note = (
            f"{path}: intro {interval[1] - interval[0]:.1f} s is shorter than Kodi's "
            f"{KODI_MIN_COMMBREAK_S:g} s minimum commercial break; Kodi may not skip it"
        )
    return EdlPlan(path, "write", edl_text(interval, target), note)


def ffmetadata_text(interval: tuple[float, float] | None, duration_s: float) -> str:
    """FFmpeg metadata with chapters covering ``[0, duration_s]`` (the whole file); the
    intro is the chapter titled "Opening"."""
    lines = [";FFMETADATA1"]
    marks: list[tuple[float, float, str]] = []
    if interval is None:
        marks.append((0.0, duration_s, AFTER_CHAPTER))
    else:
        a, b = interval
        if a > 0.05:
            marks.append((0.0, a, BEFORE_CHAPTER))
        marks.append((a, b, INTRO_CHAPTER))
        if duration_s - b > 0.05:
            marks.append((b, duration_s, AFTER_CHAPTER))
    for start, end, title in marks:
        lines += [
            "[CHAPTER]",
            "TIMEBASE=1/1000",
            f"START={round(start * 1000)}",
            f"END={round(end * 1000)}",
            f"title={title}",
        ]
    return "\n".join(lines) + "\n"


def apply_chapters_command(video: Path, ffmeta: Path, out: Path) -> list[str]:
    """The lossless ffmpeg command that writes ``video`` with the chapters of ``ffmeta``
    to ``out`` (same container): every stream (video, audio, subtitles, attachments,
    data) copied, global and per-stream tags and titles kept."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-n", "-i", str(video), "-i", str(ffmeta)]
    cmd += ["-map", "0", "-map_metadata", "0", "-map_chapters", "1", "-c", "copy"]
    if out.suffix.lower() in (".mp4", ".m4v", ".mov"):
        cmd += ["-movflags", "use_metadata_tags"]  # keep custom tags in mp4
    return cmd + [str(out)]


def mux_chapters(video: str | Path, ffmetadata: str | Path, out: str | Path) -> Path:
    """Run :func:`apply_chapters_command` (needs ffmpeg on PATH)."""
    if shutil.which("ffmpeg") is None:
        raise ExportError("ffmpeg not found: install it to write chapters into files")
    out = Path(out)
    cmd = apply_chapters_command(Path(video), Path(ffmetadata), out)
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        why = (res.stderr.strip().splitlines() or ["failed"])[-1]
        raise ExportError(f"{video}: chapters not written ({why})")
    return out


def chapter_script(entries: list[tuple[Path, Path]]) -> str:
    """A shell script with one lossless apply command per ``(video, ffmeta)``, writing
    ``<video>.chapters.<ext>`` beside the video (existing files are not overwritten)."""
    lines = ["#!/bin/sh", "# introdetect: put the chapters into the files (lossless copy)"]
    for video, meta in entries:
        out = video.with_name(f"{video.stem}.chapters{video.suffix}")
        lines.append(shlex.join(apply_chapters_command(video, meta, out)))
    return "\n".join(lines) + "\n"


def export_all(
    results: list[dict[str, Any]],
    out_dir: str | Path,
    formats: tuple[str, ...],
    edl_target: str = "kodi",
    dry_run: bool = False,
) -> list[str]:
    """Write the requested formats for ``results`` rows (episode_id, video, path, status,
    interval, confidence, presence, duration_s), except ``json``, which
    :func:`introdetect.decision.write_detections` writes. Returns one line per thing
    done, planned (``dry_run``) or refused. Files in ``out_dir`` that cannot be written
    raise ``OSError`` (the caller writes elsewhere); an EDL that cannot be written beside a
    read-only video is reported, not raised."""
    out_dir = Path(out_dir)
    notes: list[str] = []
    verb = "would write" if dry_run else "wrote"

    def emit(path: Path, text: str) -> None:
        if not dry_run:
            write_text(path, text)
        notes.append(f"{verb} {path}")

    if "csv" in formats:
        if not dry_run:
            write_csv([_csv_row(r) for r in results], out_dir / "predictions.csv")
        notes.append(f"{verb} {out_dir / 'predictions.csv'}")
    answered = [r for r in results if not r["status"].startswith("failed")]
    if "edl" in formats:
        notes += _export_edl(answered, edl_target, dry_run)
    if "chapters" in formats:
        entries = []
        for r in answered:
            if not r.get("duration_s"):
                continue
            meta = out_dir / "chapters" / f"{r['episode_id']}.ffmeta"
            emit(meta, ffmetadata_text(r["interval"], r["duration_s"]))
            entries.append((Path(r.get("path") or r["video"]), meta))
        if entries:
            emit(out_dir / "chapters" / "apply.sh", chapter_script(entries))
    return notes


def _csv_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "episode_id": r["episode_id"],
        "video": r["video"],
        "status": r["status"],
        "start_s": r["interval"][0] if r["interval"] else "",
        "end_s": r["interval"][1] if r["interval"] else "",
        "confidence": r["confidence"],
        "presence": "" if r["presence"] is None else r["presence"],
        "source": r.get("source", ""),
    }


def _export_edl(rows: list[dict[str, Any]], target: str, dry_run: bool) -> list[str]:
    notes = []
    for r in rows:
        plan = plan_edl(Path(r.get("path") or r["video"]), r["interval"], target)
        if plan.note:
            notes.append(plan.note)
        try:
            if plan.action == "write":
                if not dry_run:
                    write_text(plan.path, plan.text)
                notes.append(f"{'would write' if dry_run else 'wrote'} {plan.path}")
            elif plan.action == "remove":
                if not dry_run:
                    plan.path.unlink()
                notes.append(f"{'would remove' if dry_run else 'removed'} stale {plan.path}")
        except OSError as e:
            notes.append(f"{plan.path}: EDL not written ({describe_os_error(e)})")
    return notes
