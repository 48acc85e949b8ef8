"""PyAV media access: open, probe, and one streaming pass over video + audio.

:class:`EpisodeDecoder` demuxes the video and the default audio stream together (one pass:
``decode_episode``, ``doctor``); the featurize hands it the video alone and decodes the
audio in a thread of its own with :func:`decode_audio`, which demuxes past the video
packets and hands over the same samples (both go through :class:`AudioPump`). Video frames
are sampled on the step grid by :class:`StepSampler` (step ``i`` covers
``[i/fps, (i+1)/fps)``; its sample is the frame on screen at the step's centre;
:func:`sample_steps` is the same rule as a pure function), rotated as a player shows them,
and resized inside PyAV (only sampled frames are converted). Audio goes through
:class:`AudioPump` (mono float32 at a fixed rate). All times are seconds on the player's
timeline: from the container's start (:func:`playback_start`), the same origin for video
and audio, so a stream that starts late (an edit list, a delayed track) starts late in the
features too.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from introdetect.errors import IntrodetectError

log = logging.getLogger(__name__)


def cpu_cores() -> int:
    """Cores this process may run on (CPU affinity / cpuset aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# Sources of at most this many pixels (SD: 720x576 and below) are decoded on half the cores
# when the caller leaves the decoder's threads to this module: a small frame is little work
# per thread, and FFmpeg's frame threads (cores + 1) then cost more in switching and in
# cores taken from the network than they give. Interleaved on 2 cores (featurize / pure
# decode, median of 9): 640x360 1.19 with one decoder thread, 1.36 with FFmpeg's choice;
# 1920x1080 the other way round (0.99 against 0.84, median of 5), hence HD keeps FFmpeg's.
SD_PIXELS = 720 * 576


def is_sd(stream: av.video.stream.VideoStream) -> bool:
    """Whether the stream's frames are SD-sized (:data:`SD_PIXELS`); unknown: no."""
    w, h = stream.codec_context.width or 0, stream.codec_context.height or 0
    return 0 < w * h <= SD_PIXELS


class MediaError(IntrodetectError):
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
    video_index: int = 0  # the stream analysed (cover art and non-default tracks passed over)
    video_streams: int = 1
    file_duration_s: float | None = None  # the container's: what a player's timeline spans


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
    check_regular_file(path)
    # an absolute path: FFmpeg would read "Show: Ep 1.mp4" as protocol "Show"
    url = os.path.abspath(path)
    if hwaccel:
        from av.codec.hwaccel import HWAccel

        try:
            hw = HWAccel(
                device_type=hwaccel,
                device=str(hw_device),
                allow_software_fallback=True,
                is_hw_owned=hw_owned,
            )
            return av.open(url, metadata_errors="ignore", hwaccel=hw)
        except (av.error.FFmpegError, OSError, ValueError) as e:
            if hwaccel not in _HW_WARNED:
                _HW_WARNED.add(hwaccel)
                log.warning(
                    "%s hardware decoding unavailable (%s): decoding on the CPU", hwaccel, e
                )
    try:
        return av.open(url, metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeError) as e:
        raise MediaError(f"{show_path(path)}: cannot open ({e})") from e


def not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as an episode (broken symlink, symlink loop, FIFO,
    folder, device...), or None when it is a regular file. Only ``stat``: a FIFO is never
    opened (a reader would block forever)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "broken symlink" if path.is_symlink() else "file not found"
    except OSError as e:
        return "symlink loop" if e.errno == errno.ELOOP else f"cannot read ({e.strerror or e})"
    if not stat.S_ISREG(st.st_mode):
        return f"not a regular file ({file_kind(st.st_mode)})"
    return None


def check_regular_file(path: Path) -> None:
    """Refuse what is not a non-empty regular file with a one-line :class:`MediaError`."""
    why = not_a_file(path) or ("empty file" if path.stat().st_size == 0 else None)
    if why:
        raise MediaError(f"{show_path(path)}: {why}")


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a plain file"


def show_path(path: str | Path) -> str:
    """A path as text that can always be printed and written to JSON/HDF5: bytes of a
    file name that are not UTF-8 are shown as ``\\xNN`` escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def pick_video_stream(
    container: av.container.InputContainer, path: str | Path
) -> av.video.stream.VideoStream:
    """The episode's picture: not cover art (``attached_pic``/still-image streams, or a
    one-frame image codec), the DEFAULT-flagged stream first, else the first decodable one.
    Raises :class:`MediaError` when there is none."""
    streams = [s for s in container.streams.video if s.codec_context is not None]
    if not container.streams.video:
        raise MediaError(f"{show_path(path)}: no video stream")
    if not streams:
        raise MediaError(f"{show_path(path)}: no decoder for the video stream's codec")
    flags = av.stream.Disposition

    def is_picture(s: av.video.stream.VideoStream) -> bool:
        if s.disposition & (flags.attached_pic | flags.still_image):
            return False
        return not (s.codec_context.name in _IMAGE_CODECS and (s.frames or 0) <= 1)

    moving = [s for s in streams if is_picture(s)] or streams
    default = [s for s in moving if s.disposition & flags.default]
    return (default or moving)[0]


_IMAGE_CODECS = {"mjpeg", "png", "bmp", "gif", "webp", "tiff", "jpegls", "jpeg2000"}


def _stream_start(stream: av.stream.Stream) -> float | None:
    if stream.start_time is None:
        return None
    return float(stream.start_time * stream.time_base)


def playback_start(container: av.container.InputContainer) -> float:
    """The player's time zero in stream seconds: the container's start time (the earliest
    stream start, edit lists applied), which mpv, ffmpeg ``-ss`` and Jellyfin count from.
    Every time this tool reads or writes is on that one timeline, for video and audio
    alike: a stream that starts later starts later on it."""
    if container.start_time is not None:
        return float(container.start_time) / av.time_base
    starts = [t for t in map(_stream_start, container.streams) if t is not None]
    return min(starts) if starts else 0.0


def stream_offsets(path: str | Path, packets_per_stream: int = 16) -> dict[str, float]:
    """Each video/audio stream's start on the player's timeline (``{"video#0": 5.0,
    "audio#1": 0.0}``), from the earliest of its first packets (containers such as mkv
    do not store a per-stream start): what ``doctor`` reports, since a late stream shifts
    what a player shows at a given time."""
    with open_container(path) as c:
        t0 = playback_start(c)
        wanted = [s for s in c.streams if s.type in ("video", "audio")]
        first: dict[int, float] = {}
        seen: dict[int, int] = {}
        try:
            for packet in c.demux(wanted):
                k = packet.stream.index
                seen[k] = seen.get(k, 0) + 1
                if packet.pts is not None:
                    t = float(packet.pts * packet.time_base)
                    first[k] = min(first.get(k, t), t)
                if len(seen) == len(wanted) and min(seen.values()) >= packets_per_stream:
                    break
        except av.error.FFmpegError as e:
            raise MediaError(f"{show_path(path)}: cannot read packets ({e})") from e
        return {f"{s.type}#{s.index}": round(first.get(s.index, t0) - t0, 3) for s in wanted}


def probe(path: str | Path) -> ProbeInfo:
    """Read stream metadata without decoding."""
    with open_container(path) as c:
        v = pick_video_stream(c, path)
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
            video_index=v.index,
            video_streams=len(c.streams.video),
            file_duration_s=c.duration / 1e6 if c.duration is not None else dur,
        )


_SWS = threading.local()


def _reformatter() -> VideoReformatter:
    """This thread's swscale context holder. ``VideoFrame.reformat`` builds a new scaler
    (filter tables included) for every frame; one kept per thread is reused while the
    frame geometry stays the same: identical pixels, 3-5x less time per sampled frame
    (0.37 against 2.07 ms at 640x360 -> 112, benchmarks/featurize_bench.py)."""
    r = getattr(_SWS, "reformatter", None)
    if r is None:
        r = _SWS.reformatter = VideoReformatter()
    return r


def frame_to_rgb(frame: av.VideoFrame, size: int) -> np.ndarray:
    """Resize inside PyAV (swscale) and apply the display rotation: [size, size, 3] uint8."""
    small = _reformatter().reformat(frame, width=size, height=size, format="rgb24")
    return _rotate_as_displayed(small, frame)


def _rotate_as_displayed(small: av.VideoFrame, frame: av.VideoFrame) -> np.ndarray:
    """``small`` as an RGB array, turned the way a player shows ``frame`` (PyAV reports
    the counter-clockwise display rotation)."""
    rgb = small.to_ndarray()
    rot = int(getattr(frame, "rotation", 0) or 0) % 360
    return np.ascontiguousarray(np.rot90(rgb, k=rot // 90)) if rot else rgb


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode one episode onto the step grid."""

    fps: float  # steps per second
    window_s: float  # decode this many seconds from the start
    frame_size: int  # sampled frames are resized to frame_size x frame_size
    audio_sr: int = 16000  # audio is resampled to mono float32 at this rate
    # decoder drops frames no other frame refers to (B-frames): less decoding, at the price
    # of a sampled frame up to a few frame intervals older
    skip_nonref: bool = False
    # no in-loop deblocking (H.264/HEVC software decoding): ~6-10 % less decoding for
    # slightly blockier pictures
    skip_loop_filter: bool = False
    hwaccel: str | None = None  # "cuda": NVDEC (CPU fallback when it cannot)
    hw_device: int = 0
    decode_threads: int = 0  # 0: FFmpeg's choice (one per core), half the cores for SD (is_sd)
    max_corrupt: int = 20  # give up after this many undecodable packets in a row


@dataclass
class DecodeStats:
    """What one pass found and how long its parts took (filled in while decoding)."""

    duration_s: float = 0.0
    n_steps: int = 0
    audio_note: str = ""
    audio_samples: int = 0  # decoded (and resampled) audio samples within the window
    corrupt_packets: int = 0
    # how far (s) the sampled frame's start lies from each step centre: with every frame
    # decoded this is under one frame interval; skipping non-reference frames raises it
    sample_err_max_s: float = 0.0
    # seconds spent in the decoder, in converting sampled frames, in audio (resample + sink)
    decode_s: float = 0.0
    convert_s: float = 0.0
    audio_s: float = 0.0


class StepSampler:
    """The frame-to-step rule. Step ``i`` covers ``[i/fps, (i+1)/fps)``; its sample is the
    frame on screen at the step's centre, i.e. the last frame that starts at or before
    it. Fed the frames' times in order, it says which steps are settled by each frame
    (the steps whose centre lies before it, which show the previous frame)."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.next_step = 0

    def centre(self, step: int) -> float:
        return (step + 0.5) / self.fps

    def before(self, t: float) -> range:
        """The not yet emitted steps whose centre lies before a frame starting at ``t``."""
        first = self.next_step
        while self.centre(self.next_step) < t:
            self.next_step += 1
        return range(first, self.next_step)

    def rest(self, duration_s: float) -> range:
        """The steps still owed for an episode of ``duration_s`` (at least one step)."""
        first = self.next_step
        self.next_step = max(first, max(1, math.ceil(duration_s * self.fps - 1e-6)))
        return range(first, self.next_step)


def sample_steps(
    times: list[float], fps: float, window_s: float, last_dur: float
) -> tuple[list[int], float]:
    """The pure form of the rule: frame start times (decode order, seconds from the start)
    -> (the index of the frame each step shows, duration). Frames at or after ``window_s``
    are not read; the last frame lasts ``last_dur``. Before the first frame, steps show
    the first frame."""
    sampler = StepSampler(fps)
    shown: list[int] = []
    prev, last_t = None, None
    for i, t in enumerate(times):
        if t >= window_s:
            break
        shown += [i if prev is None else prev] * len(sampler.before(t))
        prev, last_t = i, t if last_t is None else max(t, last_t)
    if prev is None:
        return [], 0.0
    duration = min(window_s, last_t + last_dur)
    shown += [prev] * len(sampler.rest(duration))
    return shown, duration


class CorruptPacketGuard:
    """Decodes packets, counting the undecodable ones; gives up (:class:`MediaError`) only
    after ``max_corrupt`` in a row, so a few damaged packets never fail an episode."""

    def __init__(self, path: str | Path, max_corrupt: int, stats: DecodeStats) -> None:
        self.path, self.max_corrupt, self.stats = path, max_corrupt, stats
        self.in_a_row = 0

    def decode(self, packet: Any) -> list[Any]:
        """The packet's frames; ``[]`` for a corrupt packet."""
        try:
            frames = packet.decode()
        except av.error.FFmpegError as e:
            self.stats.corrupt_packets += 1
            self.in_a_row += 1
            if self.in_a_row >= self.max_corrupt:
                raise MediaError(
                    f"{show_path(self.path)}: {self.in_a_row} corrupt packets in a row ({e})"
                ) from e
            return []
        self.in_a_row = 0
        return frames


class AudioPump:
    """Resamples one audio stream to mono float32 at ``sr`` and hands the samples to
    ``sink`` in order, from time 0 (silence is padded in when the audio starts late) up
    to ``window_s``. The resampler is recreated when the channel layout changes
    mid-stream (it is fixed to one), after flushing what the old one holds."""

    def __init__(
        self, start_s: float, sr: int, window_s: float, sink: Callable[[np.ndarray], None]
    ) -> None:
        self.start_s, self.sr, self.sink = start_s, sr, sink
        self.needed = int(window_s * sr)
        self.samples = 0
        self._resampler: av.AudioResampler | None = None
        self._layout: str | None = None
        self._started = False

    @property
    def done(self) -> bool:
        return self.samples >= self.needed

    def _emit(self, arr: np.ndarray) -> None:
        arr = arr[: max(0, self.needed - self.samples)]
        if arr.size:
            self.sink(arr)
            self.samples += arr.size

    def _flush(self) -> None:
        if self._resampler is not None:
            for out in self._resampler.resample(None):
                self._emit(out.to_ndarray().reshape(-1))

    def push(self, frame: av.AudioFrame) -> None:
        """Resample one decoded frame."""
        if self._resampler is None or frame.layout.name != self._layout:
            self._flush()
            # one-second output frames: half the resampling time of one per input frame
            self._resampler = av.AudioResampler(
                format="flt", layout="mono", rate=self.sr, frame_size=self.sr
            )
            self._layout = frame.layout.name
        if not self._started:
            self._started = True
            t = float(frame.pts * frame.time_base) - self.start_s if frame.pts is not None else 0
            if t > 0.05:  # audio starts after the video: pad so sample 0 is time 0
                self._emit(np.zeros(int(t * self.sr), np.float32))
        for out in self._resampler.resample(frame):
            self._emit(out.to_ndarray().reshape(-1))

    def finish(self) -> int:
        """Flush the resampler; the number of samples handed over."""
        self._flush()
        return self.samples


def pick_audio_stream(
    container: av.container.InputContainer,
) -> tuple[av.audio.stream.AudioStream | None, str]:
    """The audio stream an episode is analysed with (the default-flagged one of several),
    and a note when there was a choice."""
    usable = [s for s in container.streams.audio if s.codec_context is not None]
    if len(usable) > 1:
        default = [s for s in usable if s.disposition & 1]  # the DEFAULT flag
        chosen = default[0] if default else usable[0]
        return chosen, f"{len(usable)} audio streams, used #{chosen.index}"
    return (usable[0] if usable else None), ""


@dataclass
class AudioPass:
    """What an audio-only pass found."""

    samples: int  # mono samples at the requested rate handed to the sink (from time 0)
    duration_s: float  # the container's duration, capped at the window
    note: str  # which stream, or why there is no audio
    corrupt_packets: int = 0  # audio packets that could not be decoded (skipped)


def decode_audio(
    path: str | Path,
    sr: int,
    window_s: float,
    sink: Callable[[np.ndarray], None],
    stop: threading.Event | None = None,
) -> AudioPass:
    """Only the audio of the analysis window, on the player's timeline (as
    :class:`EpisodeDecoder` hands it over): the video packets are demuxed past, never
    decoded, so this runs at hundreds of times realtime. Corrupt packets are skipped.
    Once ``stop`` is set it returns early (what it handed over so far)."""
    with open_container(path) as container:
        stream, note = pick_audio_stream(container)
        dur = float(container.duration) / 1e6 if container.duration else window_s
        if stream is None:
            return AudioPass(0, min(dur, window_s), "no audio stream")
        pump = AudioPump(playback_start(container), sr, window_s, sink)
        stats = DecodeStats()
        guard = CorruptPacketGuard(Path(path), 20, stats)
        try:
            for packet in container.demux(stream):
                for frame in guard.decode(packet):
                    pump.push(frame)
                if pump.done or (stop is not None and stop.is_set()):
                    break
        except av.error.FFmpegError as e:
            raise MediaError(f"{show_path(path)}: audio decode failed ({e})") from e
        return AudioPass(pump.finish(), min(dur, window_s), note, stats.corrupt_packets)


def decode_audio_span(path: str | Path, sr: int, start_s: float, end_s: float) -> np.ndarray:
    """The audio of ``[start_s, end_s)`` on the player's timeline, mono float32 at ``sr``
    (:class:`AudioPump`, from the first frame decoded), decoded from the packet before
    ``start_s`` (a seek: a span late in the episode costs what an early one does); to the
    frame's accuracy (tens of ms), not the sample's, and shorter where the audio ends or
    starts later. Empty without an audio stream."""
    chunks: list[np.ndarray] = []
    first = 0.0  # where the first frame decoded starts
    with open_container(path) as container:
        stream, _ = pick_audio_stream(container)
        if stream is None or end_s <= start_s:
            return np.zeros(0, np.float32)
        zero = playback_start(container)
        pump: AudioPump | None = None
        try:
            if start_s > 0 and stream.time_base:
                container.seek(int((start_s + zero) / stream.time_base), stream=stream)
            for frame in _frames(path, container, stream):
                if pump is None:
                    first = float(frame.pts * frame.time_base) - zero
                    if first >= end_s:
                        break
                    pump = AudioPump(zero + first, sr, end_s - first, chunks.append)
                pump.push(frame)
                if pump.done:
                    break
            if pump is not None:
                pump.finish()
        except av.error.FFmpegError as e:
            raise MediaError(f"{show_path(path)}: audio decode failed ({e})") from e
    if not chunks:
        return np.zeros(0, np.float32)
    return np.concatenate(chunks)[max(0, int(round((start_s - first) * sr))) :]


def _frames(
    path: str | Path, container: av.container.InputContainer, stream: av.stream.Stream
) -> Iterator[av.AudioFrame]:
    """The decodable, timestamped frames of ``stream`` from where the container stands
    (corrupt packets skipped)."""
    guard = CorruptPacketGuard(Path(path), 20, DecodeStats())
    for packet in container.demux(stream):
        for frame in guard.decode(packet):
            if frame.pts is not None:
                yield frame


class EpisodeDecoder:
    """One pass over an episode: video frames sampled on the step grid, the default audio
    stream pumped to a sink, both demuxed together so the file is decoded once.

    ``with EpisodeDecoder(path, opts, audio_sink=...) as dec: for step, img in
    dec.steps(): ...``; then ``dec.stats`` holds the duration, step count and timings.
    Each sampled frame goes through ``convert(frame, frame_size)``: swscale into an RGB
    array by default; :class:`introdetect.features.frames.DeviceFrames` keeps NVDEC frames
    on the GPU. Frames are rotated as a player shows them; steps with no frame of their
    own (variable frame rate, gaps) repeat the frame on screen. Times are seconds on the
    player's timeline (:func:`playback_start`). Raises :class:`MediaError` when nothing
    can be decoded.
    """

    def __init__(
        self,
        path: str | Path,
        opts: DecodeOptions,
        audio_sink: Callable[[np.ndarray], None] | None = None,
        convert: Callable[[av.VideoFrame, int], Any] = frame_to_rgb,
    ) -> None:
        self.path, self.opts, self.convert = Path(path), opts, convert
        self.stats = DecodeStats()
        # frames stay in device memory only for a converter that says it can read them there
        hw_owned = bool(getattr(convert, "reads_device_memory", False))
        self.container = open_container(self.path, opts.hwaccel, opts.hw_device, hw_owned)
        try:
            self.video = self._open_video()
            self.audio = self._pick_audio()
        except BaseException:
            self.container.close()
            raise
        self.pump = None
        if self.audio is not None and audio_sink is not None:
            self.pump = AudioPump(
                playback_start(self.container), opts.audio_sr, opts.window_s, audio_sink
            )
        elif self.audio is None:
            self.stats.audio_note = "no audio stream"

    def __enter__(self) -> EpisodeDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def _open_video(self) -> av.video.stream.VideoStream:
        v = pick_video_stream(self.container, self.path)
        v.thread_type = "AUTO"
        if self.opts.decode_threads:  # several episodes in parallel: each gets its share
            v.thread_count = self.opts.decode_threads
        elif self.opts.hwaccel is None and is_sd(v):
            v.thread_count = max(1, cpu_cores() // 2)
        if self.opts.skip_nonref:
            v.codec_context.skip_frame = "NONREF"
        if self.opts.skip_loop_filter:  # read when the decoder opens, at the first packet
            v.codec_context.options = {"skip_loop_filter": "all"}
        return v

    def _pick_audio(self) -> av.audio.stream.AudioStream | None:
        stream, note = pick_audio_stream(self.container)
        if note:
            self.stats.audio_note = note
        return stream

    def _frame_interval(self) -> float | None:
        """The nominal frame interval, where the stream has a plausible one."""
        rate = self.video.average_rate or self.video.guessed_rate
        return 1.0 / float(rate) if rate and 1 <= float(rate) <= 300 else None

    def steps(self) -> Iterator[tuple[int, Any]]:
        """Yield ``(step_index, converted frame)`` for every step of the window."""
        try:
            yield from self._steps()
        except av.error.FFmpegError as e:
            raise MediaError(f"{show_path(self.path)}: decode failed ({e})") from e

    def _steps(self) -> Iterator[tuple[int, Any]]:
        st, perf = self.stats, time.perf_counter
        sampler, guard = (
            StepSampler(self.opts.fps),
            CorruptPacketGuard(self.path, self.opts.max_corrupt, st),
        )
        v0 = playback_start(self.container)  # a late video starts late on the timeline
        # how long the last frame stays on screen: the nominal frame interval (decoded-frame
        # gaps overstate it when non-reference frames are skipped), else the smallest gap
        nominal = self._frame_interval()
        last_dur = nominal or 1.0 / 25
        prev, last_t, n_frames = None, None, 0
        video_done, audio_done = False, self.pump is None
        streams = [self.video] + ([self.audio] if self.pump is not None else [])
        for packet in self.container.demux(streams):
            is_video = packet.stream.type == "video"
            if video_done and audio_done:
                break
            if video_done if is_video else audio_done:
                continue
            t0 = perf()
            frames = guard.decode(packet)
            if not is_video:
                for frame in frames:
                    self.pump.push(frame)
                audio_done = self.pump.done
                st.audio_s += perf() - t0
                continue
            st.decode_s += perf() - t0
            for frame in frames:
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base) - v0
                if nominal is None and last_t is not None and t > last_t:
                    last_dur = min(last_dur, t - last_t) if n_frames > 1 else t - last_t
                if t >= self.opts.window_s:
                    video_done = True
                    break
                # before the first frame (a video that starts late) its steps show it
                shown, shown_t = (frame, None) if prev is None else (prev, last_t)
                for step in sampler.before(t):
                    yield step, self._sample(step, shown, shown_t)
                prev, last_t, n_frames = (
                    frame,
                    t if last_t is None else max(t, last_t),
                    n_frames + 1,
                )
        if n_frames == 0:
            codec = getattr(self.video.codec_context, "name", None) or "unknown"
            raise MediaError(
                f"{show_path(self.path)}: no decodable video frame (video codec {codec})"
            )
        st.duration_s = min(self.opts.window_s, last_t + last_dur)
        for step in sampler.rest(st.duration_s):
            yield step, self._sample(step, prev, last_t)
        st.n_steps = sampler.next_step
        if self.pump is not None:
            st.audio_samples = self.pump.finish()

    def _sample(self, step: int, frame: av.VideoFrame, frame_t: float | None) -> Any:
        """Convert the frame a step shows, recording how far it lies from the centre
        (``frame_t`` None: a step before the video's first frame, no sampling error)."""
        if frame_t is not None:
            err = abs((step + 0.5) / self.opts.fps - frame_t)
            self.stats.sample_err_max_s = max(self.stats.sample_err_max_s, err)
        t0 = time.perf_counter()
        out = self.convert(frame, self.opts.frame_size)
        self.stats.convert_s += time.perf_counter() - t0
        return out


def decode_episode(
    path: str | Path, opts: DecodeOptions
) -> tuple[dict[int, np.ndarray], np.ndarray, DecodeStats]:
    """Decode a whole (short) episode into memory: ``({step: rgb}, mono audio, stats)``.
    For tests, checks and tools; featurizing streams instead."""
    chunks: list[np.ndarray] = []
    with EpisodeDecoder(path, opts, audio_sink=chunks.append) as dec:
        frames = dict(dec.steps())
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return frames, audio.astype(np.float32, copy=False), dec.stats


def grab_frames(path: str | Path, times: list[float], height: int = 90) -> list[np.ndarray]:
    """RGB thumbnails (``height`` px high, aspect kept, rotation applied) of the frames on
    screen at ``times`` (seconds from playback start). Seeks; for reports, not features."""
    out: list[np.ndarray] = []
    container = open_container(path)
    try:
        v = pick_video_stream(container, path)
        v0 = playback_start(container)
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
        raise MediaError(f"{show_path(path)}: cannot grab frames ({e})") from e
    finally:
        container.close()
    return out
