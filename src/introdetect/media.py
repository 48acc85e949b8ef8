"""PyAV media access: open, probe, and one streaming pass over video + audio.

One pass over the container demuxes the video and the default audio stream together, so
each episode is decoded once. Video frames are sampled on the step grid (step ``i`` covers
``[i/fps, (i+1)/fps)``; its sample is the frame on screen at the step's centre), rotated as
a player shows them, and resized inside PyAV (only sampled frames are converted). Audio is
resampled to mono float32 at a fixed rate. All times are seconds from the stream start.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

log = logging.getLogger(__name__)


class MediaError(RuntimeError):
    """A media file cannot be opened or decoded; the message names the file and cause."""


@dataclass(frozen=True)
class ProbeInfo:
    """What the container header says (decoded timestamps are trusted over it)."""

    path: str
    duration_s: float | None
    width: int
    height: int
    video_codec: str
    avg_fps: float | None
    has_audio: bool
    audio_codec: str | None
    audio_rate: int | None
    audio_channels: int | None


_HW_WARNED: set[str] = set()


def open_container(
    path: str | Path, hwaccel: str | None = None, hw_device: int = 0, hw_owned: bool = False
) -> av.container.InputContainer:
    """Open a media file with PyAV, turning every failure into a one-line :class:`MediaError`.

    ``hwaccel`` (e.g. ``"cuda"`` for NVDEC on GPU ``hw_device``) asks for hardware decoding;
    where the machine or the codec cannot (no GPU: PermissionError; AV1 on Hopper: software
    fallback inside FFmpeg), the file is decoded on the CPU and this is logged once per
    device type. ``hw_owned`` keeps decoded frames in device memory (read them with DLPack;
    ``reformat`` still downloads them).
    """
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file")
    if hwaccel:
        from av.codec.hwaccel import HWAccel

        try:
            hw = HWAccel(
                device_type=hwaccel,
                device=str(hw_device),
                allow_software_fallback=True,
                is_hw_owned=hw_owned,
            )
            return av.open(str(path), metadata_errors="ignore", hwaccel=hw)
        except (av.error.FFmpegError, OSError, ValueError) as e:
            if hwaccel not in _HW_WARNED:
                _HW_WARNED.add(hwaccel)
                log.warning(
                    "%s hardware decoding unavailable (%s): decoding on the CPU", hwaccel, e
                )
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise MediaError(f"{path}: cannot open ({e})") from e


def _stream_start(stream: av.stream.Stream) -> float:
    if stream.start_time is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def probe(path: str | Path) -> ProbeInfo:
    """Read stream metadata without decoding."""
    with open_container(path) as c:
        if not c.streams.video:
            raise MediaError(f"{path}: no video stream")
        v = c.streams.video[0]
        if v.codec_context is None:
            raise MediaError(f"{path}: no decoder for the video stream's codec")
        a = c.streams.audio[0] if c.streams.audio else None
        if a is not None and a.codec_context is None:
            a = None
        dur = None
        if v.duration is not None:
            dur = float(v.duration * v.time_base)
        elif c.duration is not None:
            dur = c.duration / 1e6
        rate = v.average_rate
        return ProbeInfo(
            path=str(path),
            duration_s=dur,
            width=v.codec_context.width,
            height=v.codec_context.height,
            video_codec=v.codec_context.name,
            avg_fps=float(rate) if rate else None,
            has_audio=a is not None,
            audio_codec=a.codec_context.name if a else None,
            audio_rate=a.codec_context.sample_rate if a else None,
            audio_channels=a.codec_context.channels if a else None,
        )


@dataclass
class DecodeResult:
    """Filled in by :func:`stream_episode` once the pass is over."""

    duration_s: float = 0.0
    n_steps: int = 0
    audio: np.ndarray | None = None  # mono float32 at the requested rate, or None (no audio)
    audio_note: str = ""
    audio_samples: int = 0  # decoded (and resampled) audio samples within the window
    corrupt_packets: int = 0
    # how far (s) the sampled frame's start lies from each step centre: with every frame
    # decoded this is under one frame interval; skipping non-reference frames raises it
    sample_err_max_s: float = 0.0
    sample_err_sum_s: float = 0.0
    # seconds spent in the decoder, in converting sampled frames, in audio (resample + sink)
    decode_s: float = 0.0
    convert_s: float = 0.0
    audio_s: float = 0.0

    @property
    def sample_err_mean_s(self) -> float:
        return self.sample_err_sum_s / max(self.n_steps, 1)


def frame_to_rgb(frame: av.VideoFrame, size: int) -> np.ndarray:
    """Resize inside PyAV (swscale) and apply the display rotation: [size, size, 3] uint8."""
    return _rotate_as_displayed(frame.reformat(width=size, height=size, format="rgb24"), frame)


def _rotate_as_displayed(small: av.VideoFrame, frame: av.VideoFrame) -> np.ndarray:
    """``small`` as an RGB array, turned the way a player shows ``frame`` (PyAV reports
    the counter-clockwise display rotation)."""
    rgb = small.to_ndarray()
    rot = int(getattr(frame, "rotation", 0) or 0) % 360
    return np.ascontiguousarray(np.rot90(rgb, k=rot // 90)) if rot else rgb


def stream_episode(
    path: str | Path,
    fps: float,
    window_s: float,
    frame_size: int,
    audio_sr: int,
    result: DecodeResult,
    max_corrupt: int = 20,
    skip_nonref: bool = False,
    skip_loop_filter: bool = False,
    audio_sink: Callable[[np.ndarray], None] | None = None,
    hwaccel: str | None = None,
    convert: Callable[[av.VideoFrame, int], Any] = frame_to_rgb,
    hw_device: int = 0,
    decode_threads: int = 0,
) -> Iterator[tuple[int, Any]]:
    """Decode ``path`` once; yield ``(step_index, rgb[frame_size, frame_size, 3])`` per step.

    Each sampled frame goes through ``convert(frame, frame_size)``: swscale into a numpy
    array by default; :class:`introdetect.features.frames.DeviceFrames` keeps NVDEC frames on
    the GPU (then ``hwaccel="cuda"`` decodes into device memory and nothing is downloaded).

    Video and the default audio stream are demuxed in one pass up to ``window_s`` seconds.
    ``skip_nonref`` asks the decoder to drop frames no other frame refers to (B-frames):
    less decoding, at the price of a sampled frame up to a few frame intervals older.
    ``skip_loop_filter`` turns the in-loop deblocking filter off (H.264/HEVC software
    decoding): ~6-10 % less decoding for slightly blockier pictures, which a network
    looking at 224 px thumbnails hardly sees (cosine 0.9999 to the filtered frames).
    With ``audio_sink``, mono PCM chunks are handed to it as they are decoded (so memory
    does not grow with the window) instead of being collected in ``result.audio``.
    When the generator is exhausted, ``result`` holds the decoded duration, the step count
    and the audio track. Steps with no frame of their own (variable frame rate, gaps) repeat
    the frame on screen. Raises :class:`MediaError` when nothing can be decoded.
    """
    path = Path(path)
    # frames stay in device memory only for a converter that says it can read them there
    hw_owned = bool(getattr(convert, "reads_device_memory", False))
    container = open_container(path, hwaccel, hw_device, hw_owned)
    perf = time.perf_counter
    try:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        vstream = container.streams.video[0]
        vstream.thread_type = "AUTO"
        if decode_threads:  # several episodes in parallel: each decoder gets its share
            vstream.thread_count = decode_threads
        if skip_nonref:
            vstream.codec_context.skip_frame = "NONREF"
        if skip_loop_filter:  # read when the decoder opens, at the first packet
            vstream.codec_context.options = {"skip_loop_filter": "all"}
        audio_ok = [s for s in container.streams.audio if s.codec_context is not None]
        astream = audio_ok[0] if audio_ok else None
        if astream is not None and len(audio_ok) > 1:
            default = [s for s in audio_ok if s.disposition & 1]  # DEFAULT flag
            astream = default[0] if default else astream
            result.audio_note = f"{len(audio_ok)} audio streams, used #{astream.index}"
        v0 = _stream_start(vstream)
        a0 = _stream_start(astream) if astream is not None else 0.0
        streams = [vstream] + ([astream] if astream is not None else [])

        resampler = None
        resampler_layout = None
        audio_chunks: list[np.ndarray] = []
        audio_samples = 0

        def emit(arr: np.ndarray) -> None:
            nonlocal audio_samples
            arr = arr[: max(0, audio_needed - audio_samples)]
            if arr.size:
                (audio_sink or audio_chunks.append)(arr)
                audio_samples += arr.size

        audio_needed = int(window_s * audio_sr)
        audio_done = astream is None
        video_done = False

        step = 0
        prev: av.VideoFrame | None = None
        last_t = None
        # how long the last frame stays on screen: the nominal frame interval where the
        # stream has one (decoded-frame gaps overstate it when non-reference frames are
        # skipped, which would add a step), else the smallest gap seen
        rate = vstream.average_rate or vstream.guessed_rate
        nominal = 1.0 / float(rate) if rate and 1 <= float(rate) <= 300 else None
        last_dur = nominal or 1.0 / 25
        n_frames = 0
        bad_run = 0

        for packet in container.demux(streams):
            if video_done and audio_done:
                break
            is_video = packet.stream.type == "video"
            if (is_video and video_done) or (not is_video and audio_done):
                continue
            t_dec = perf()
            try:
                frames = packet.decode()
                bad_run = 0
            except av.error.FFmpegError as e:
                result.corrupt_packets += 1
                bad_run += 1
                if bad_run >= max_corrupt:
                    raise MediaError(f"{path}: {bad_run} corrupt packets in a row ({e})") from e
                continue
            finally:
                if is_video:
                    result.decode_s += perf() - t_dec
                else:
                    result.audio_s += perf() - t_dec
            for frame in frames:
                if is_video:
                    if frame.pts is None:
                        continue
                    t = float(frame.pts * frame.time_base) - v0
                    if nominal is None and last_t is not None and t > last_t:
                        last_dur = min(last_dur, t - last_t) if n_frames > 1 else t - last_t
                    if t >= window_s:
                        video_done = True
                        break
                    # Emit every step whose centre lies before this frame's time: the frame
                    # on screen at that centre is the previous one.
                    while (step + 0.5) / fps < t:
                        src_t = last_t if prev is not None else t
                        err = abs((step + 0.5) / fps - src_t)
                        result.sample_err_max_s = max(result.sample_err_max_s, err)
                        result.sample_err_sum_s += err
                        t_conv = perf()
                        rgb = convert(prev if prev is not None else frame, frame_size)
                        result.convert_s += perf() - t_conv
                        yield step, rgb
                        step += 1
                    prev, last_t = frame, max(t, last_t or t)
                    n_frames += 1
                else:
                    t_aud = perf()
                    layout = frame.layout.name
                    if resampler is None or layout != resampler_layout:
                        # Recreate on a mid-stream layout change (the resampler is fixed to
                        # one); flush what the old one still holds first.
                        if resampler is not None:
                            for out in resampler.resample(None):
                                emit(out.to_ndarray().reshape(-1))
                        resampler = av.AudioResampler(format="flt", layout="mono", rate=audio_sr)
                        resampler_layout = layout
                    t = float(frame.pts * frame.time_base) - a0 if frame.pts is not None else None
                    for out in resampler.resample(frame):
                        if t is not None and audio_samples == 0 and t > 0.05:
                            # Audio starts after the video: pad so sample 0 is time 0.
                            emit(np.zeros(int(t * audio_sr), np.float32))
                        emit(out.to_ndarray().reshape(-1))
                    if audio_samples >= audio_needed:
                        audio_done = True
                    result.audio_s += perf() - t_aud
        if n_frames == 0:
            codec = getattr(vstream.codec_context, "name", None) or "unknown"
            raise MediaError(f"{path}: no decodable video frame (video codec {codec})")
        duration = min(window_s, (last_t or 0.0) + last_dur)
        n_steps = max(1, math.ceil(duration * fps - 1e-6))
        while step < n_steps:
            result.sample_err_sum_s += abs((step + 0.5) / fps - (last_t or 0.0))
            yield step, convert(prev, frame_size)
            step += 1
        result.duration_s = duration
        result.n_steps = n_steps
        if astream is not None:
            if resampler is not None:
                for out in resampler.resample(None):
                    emit(out.to_ndarray().reshape(-1))
            result.audio_samples = audio_samples
            if audio_sink is None:
                audio = np.concatenate(audio_chunks) if audio_chunks else np.zeros(0, np.float32)
                result.audio = audio.astype(np.float32, copy=False)
        else:
            result.audio_note = "no audio stream"
    except av.error.FFmpegError as e:
        raise MediaError(f"{path}: decode failed ({e})") from e
    finally:
        container.close()


def grab_frames(path: str | Path, times: list[float], height: int = 90) -> list[np.ndarray]:
    """RGB thumbnails (``height`` px high, aspect kept, rotation applied) of the frames on
    screen at ``times`` (seconds from playback start). Seeks; for reports, not features."""
    out: list[np.ndarray] = []
    container = open_container(path)
    try:
        v = container.streams.video[0]
        v0 = _stream_start(v)
        ctx = v.codec_context
        w = max(2, int(round(ctx.width * height / max(ctx.height, 1))))
        for t in times:
            container.seek(int((max(t, 0.0) + v0) / v.time_base), stream=v, backward=True)
            chosen = None
            for frame in container.decode(v):
                if frame.pts is None:
                    continue
                chosen = frame
                if float(frame.pts * frame.time_base) - v0 >= t:
                    break
            if chosen is None:
                out.append(np.zeros((height, w, 3), np.uint8))
                continue
            small = chosen.reformat(width=w, height=height, format="rgb24")
            out.append(_rotate_as_displayed(small, chosen))
    except av.error.FFmpegError as e:
        raise MediaError(f"{path}: cannot grab frames ({e})") from e
    finally:
        container.close()
    return out
