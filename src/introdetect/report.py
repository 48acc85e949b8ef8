"""A visual report a person can check a season with: one timeline PNG per episode and one
HTML page listing the episodes, least confident first.

Each timeline shows the per-step intro probability, the chosen interval, the label when it
is known, the audio RMS, and a strip of thumbnails around the predicted boundaries.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from introdetect.fileio import write_text  # noqa: E402
from introdetect.media import MediaError, grab_frames, show_path  # noqa: E402

log = logging.getLogger(__name__)


@dataclass
class EpisodeView:
    """What one timeline needs."""

    episode_id: str
    video: str
    fps: float
    probs: np.ndarray  # [T] smoothed intro probability
    rms: np.ndarray  # [T] audio RMS
    interval: tuple[float, float] | None
    confidence: float
    label: tuple[float, float] | None = None
    threshold: float = 0.5


def _thumb_times(v: EpisodeView) -> list[float]:
    dur = len(v.probs) / v.fps
    if v.interval is None:  # nothing chosen: a glance over the whole window
        return [dur * (k + 0.5) / 5 for k in range(5)]
    a, b = v.interval
    times = [a - 2.0, a + 0.5, (a + b) / 2, b - 0.5, b + 2.0]
    return [min(max(0.0, t), max(0.0, dur - 0.05)) for t in times]


def timeline_png(v: EpisodeView, path: str | Path) -> Path:
    """Render one episode's timeline to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(len(v.probs)) / v.fps
    times = _thumb_times(v)
    try:
        thumbs = grab_frames(v.video, times) if v.video else []
    except MediaError as e:
        log.warning("%s", e)
        thumbs = []
    fig = plt.figure(figsize=(11, 4.2), dpi=90)
    gs = fig.add_gridspec(2, max(1, len(thumbs)), height_ratios=[2.2, 1.2], hspace=0.35)
    ax = fig.add_subplot(gs[0, :])
    ax.plot(t, v.probs, color="#1f5fbf", lw=1.4, label="intro probability")
    ax.axhline(v.threshold, color="#888", lw=0.8, ls=":")
    if v.interval:
        ax.axvspan(*v.interval, color="#2ca02c", alpha=0.25, label="predicted")
    if v.label:
        ax.axvspan(
            *v.label, facecolor="none", edgecolor="#d62728", hatch="//", lw=1.0, label="label"
        )
    ax2 = ax.twinx()
    ax2.plot(t, v.rms, color="#ff7f0e", lw=0.6, alpha=0.6)
    ax2.set_yticks([])
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, max(t[-1] if t.size else 1.0, 1.0))
    ax.set_xlabel("seconds (orange: audio RMS)")
    iv = f"{v.interval[0]:.2f}-{v.interval[1]:.2f} s" if v.interval else "no intro"
    ax.set_title(f"{v.episode_id}: {iv}, confidence {v.confidence:.2f}", fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    for i, (img, ts) in enumerate(zip(thumbs, times, strict=False)):
        axi = fig.add_subplot(gs[1, i])
        axi.imshow(img)
        axi.set_title(f"{ts:.1f} s", fontsize=8)
        axi.axis("off")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def _href(rel: Path) -> str:
    """A relative file path as an attribute value: percent-encoded (``#``, ``%``, ``?``
    and spaces in file names stay part of the path) and HTML-escaped."""
    return html.escape(quote(rel.as_posix(), safe="/"), quote=True)


def html_report(views: list[EpisodeView], out_dir: str | Path, title: str = "introdetect") -> Path:
    """Timelines for every episode plus ``report.html`` (least confident first)."""
    out_dir = Path(out_dir)
    rows = []
    for v in sorted(views, key=lambda x: (x.confidence, x.episode_id)):
        png = timeline_png(v, out_dir / "timelines" / f"{v.episode_id}.png")
        iv = f"{v.interval[0]:.2f} – {v.interval[1]:.2f}" if v.interval else "none"
        lab = f"{v.label[0]:.2f} – {v.label[1]:.2f}" if v.label else ""
        rows.append(
            f"<section><h2>{html.escape(v.episode_id)}</h2><p>intro <b>{iv}</b> s · "
            f"confidence <b>{v.confidence:.2f}</b>{' · label ' + lab if lab else ''} · "
            f"<code>{html.escape(show_path(v.video))}</code></p>"
            f'<img src="{_href(png.relative_to(out_dir))}" alt="timeline of '
            f'{html.escape(v.episode_id)}"></section>'
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}img{{max-width:100%}}
section{{border-top:1px solid #ccc;padding:.5em 0}}h2{{font-size:1.05em;margin:.3em 0}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>{len(views)} episodes, least confident first. Green: predicted intro; red hatching: label;
blue: per-step intro probability; orange: audio loudness.</p>
{"".join(rows)}
</body></html>
"""
    path = out_dir / "report.html"
    write_text(path, page)
    return path
