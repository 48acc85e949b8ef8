"""Which files are episodes: every file under the paths a user names is either a candidate
or listed with the reason it was skipped, so nothing is dropped without a word.

* Files with a video extension (``data.video_extensions``) are candidates.
* Sidecars (``.nfo``, subtitles, ``.edl``, images, ...) are skipped by name.
* Any other file is a candidate when FFmpeg opens it and finds a moving picture in it
  (content, not the extension list, decides).
* Broken symlinks, symlink loops, FIFOs, sockets, devices, empty and hidden files are
  skipped with the reason; symlinked folders are followed (media libraries are often built
  from links), each real folder once.
* Episode ids are file stems; bytes of a name that are not UTF-8 show as ``\\xNN`` so the
  id can be printed and written anywhere.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from introdetect.errors import IntrodetectError
from introdetect.media import MediaError, not_a_file, open_container, pick_video_stream, show_path

log = logging.getLogger(__name__)


class ScanError(IntrodetectError):
    """The paths given hold no video to analyse."""


# Files that sit beside episodes in media libraries and are never episodes themselves.
SIDECAR_EXTENSIONS = frozenset(
    {
        ".nfo",
        ".srt",
        ".ass",
        ".ssa",
        ".sub",
        ".idx",
        ".vtt",
        ".sup",
        ".smi",
        ".lrc",
        ".edl",
        ".txt",
        ".json",
        ".xml",
        ".yaml",
        ".yml",
        ".csv",
        ".jpg",
        ".jpeg",
        ".png",
        ".gif",
        ".bmp",
        ".webp",
        ".tbn",
        ".ico",
        ".svg",
        ".ffmeta",
        ".html",
        ".htm",
        ".md",
        ".pdf",
        ".log",
        ".sfv",
        ".md5",
        ".sha1",
        ".nzb",
        ".torrent",
        ".url",
        ".db",
        ".ini",
        ".h5",
        ".npy",
        ".pt",
        ".part",
        ".tmp",
        ".lock",
        ".py",
        ".sh",
    }
)


@dataclass(frozen=True)
class Skipped:
    """A file that is not analysed, and why."""

    path: str
    reason: str
    sidecar: bool = False


@dataclass
class Scan:
    """The episodes found (sorted by id) and everything skipped."""

    videos: list[tuple[str, Path]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def require_videos(self, paths: list[str]) -> None:
        """Raise :class:`ScanError` (naming the first reasons) when nothing was found."""
        if not self.videos:
            why = "; ".join(_line(s) for s in self.skipped[:3])
            raise ScanError(
                f"no video files in {', '.join(map(str, paths))}" + (f" ({why})" if why else "")
            )

    def report(self) -> None:
        """Log every skipped file (sidecars at debug level, since libraries are full of
        them) and a one-line count."""
        for s in self.skipped:
            log.log(logging.DEBUG if s.sidecar else logging.WARNING, "skipped %s", _line(s))
        if self.skipped:
            n_side = sum(s.sidecar for s in self.skipped)
            log.info(
                "%d files skipped (%d sidecars, %d others)",
                len(self.skipped),
                n_side,
                len(self.skipped) - n_side,
            )


def _line(s: Skipped) -> str:
    return f"{s.path}: {s.reason}"


def episode_id(path: Path) -> str:
    """The episode id of a video file: its stem, printable."""
    return show_path(path.stem)


def _by_content(path: Path) -> str | None:
    """None when FFmpeg opens ``path`` and finds a moving picture, else why not."""
    try:
        with open_container(path) as c:
            pick_video_stream(c, path)
    except MediaError as e:
        return "not a video: " + str(e).removeprefix(f"{show_path(path)}: ")
    return None


def classify(path: Path, extensions: frozenset[str], explicit: bool = False) -> Skipped | None:
    """None when ``path`` is an episode candidate, else the reason it is skipped.
    ``explicit``: named on the command line (a hidden file is then taken)."""
    shown = show_path(path)
    suffix = path.suffix.lower()
    if not explicit and path.name.startswith("."):
        return Skipped(shown, "hidden file")
    why = not_a_file(path)
    if why:
        return Skipped(shown, why)
    if suffix in SIDECAR_EXTENSIONS:
        return Skipped(shown, f"sidecar file ({suffix})", sidecar=True)
    if suffix in extensions:  # an episode even when broken: it fails with the cause
        return None
    why = "empty file" if path.stat().st_size == 0 else _by_content(path)
    return Skipped(shown, why) if why else None


def _walk(root: Path, skipped: list[Skipped], exclude: set[str]) -> list[Path]:
    """Every file under ``root``, symlinked folders followed, each real folder once."""
    files: list[Path] = []
    seen: set[str] = set()

    def onerror(e: OSError) -> None:
        skipped.append(Skipped(show_path(e.filename or root), f"cannot list ({e.strerror})"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=onerror):
        real = os.path.realpath(dirpath)
        if real in exclude:
            dirnames[:] = []
            continue
        if real in seen:
            skipped.append(Skipped(show_path(dirpath), f"folder already scanned as {real}"))
            dirnames[:] = []
            continue
        seen.add(real)
        for d in [d for d in dirnames if d.startswith(".")]:
            skipped.append(Skipped(show_path(Path(dirpath, d)), "hidden folder"))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files += [Path(dirpath, f) for f in sorted(filenames)]
    return files


def scan_paths(
    paths: list[str | Path], extensions: tuple[str, ...], exclude: tuple[Path, ...] = ()
) -> Scan:
    """Files and folders (recursive) -> the episode candidates and the skipped files.

    ``exclude``: folders never searched (the run's own output and cache). Two different
    files with one id: the first (in sorted order) is taken, the other skipped."""
    exts = frozenset(e.lower() for e in extensions)
    excluded = {os.path.realpath(p) for p in exclude}
    scan = Scan()
    found: dict[str, Path] = {}
    real_seen: set[str] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            candidates = [(f, False) for f in _walk(p, scan.skipped, excluded)]
        else:
            candidates = [(p, True)]
        for f, explicit in candidates:
            bad = classify(f, exts, explicit)
            if bad:
                scan.skipped.append(bad)
                continue
            real = os.path.realpath(f)
            if real in real_seen:  # the same file named twice (a link, or file + folder)
                continue
            real_seen.add(real)
            eid = episode_id(f)
            if eid in found:
                why = f"duplicate episode id {eid!r} (also {show_path(found[eid])})"
                scan.skipped.append(Skipped(show_path(f), why))
                continue
            found[eid] = f
    scan.videos = sorted(found.items())
    return scan
