"""Per-step audio features from mono PCM: RMS amplitude and log-mel bands, streamed.

Column 0 is the RMS amplitude of the step (the seed's feature, linear scale); columns
``1..n_mels`` are log-mel energies (dB, floor -100) of the step: the mean power spectrum of
1024-sample Hann frames (hop 256) inside the step, through librosa's mel filter bank (kept
on disk by :func:`mel_filters`: importing ``librosa.filters`` costs seconds). Each
step depends only on its own samples, so :class:`StepAudio` computes steps as PCM arrives
and memory does not grow with the episode. An episode without audio gets zeros (RMS) and
-100 dB (mels), and ``has_audio=False`` in its store attributes.
:func:`audio_only_features` computes the same columns from an audio-only pass (no video
decoded), the cheap first look of a season.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import signal
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import numpy as np
from tqdm import tqdm

from introdetect.fileio import atomic_path, user_cache_dir
from introdetect.media import MediaError, cpu_cores, decode_audio

N_FFT = 1024
HOP = 256
FLOOR_DB = -100.0

log = logging.getLogger(__name__)

FP_SR = 16000  # the fingerprint's sample rate
# 256 ms frames every 32 ms: the same intro in two AAC-encoded episodes differed by a bit
# error rate of 0.27-0.32 with 128 ms frames (at the 0.30 threshold: patchy or no match) and
# 0.20-0.25 with 256 ms (development set, five series; unrelated sound stays at 0.5). 512 ms
# lowered it further but blurs a boundary by a quarter second either way.
FP_N_FFT = 4096
FP_HOP = 512  # 32 ms at 16 kHz
FP_BANDS = 17  # -> 16 bits per frame


def mel_filters(
    sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """``librosa.filters.mel`` [n_mels, 1 + n_fft // 2], kept on disk
    (:func:`introdetect.fileio.user_cache_dir`, per librosa version): importing
    ``librosa.filters`` pulls in scipy.signal and numba, several seconds of every run that
    would otherwise need nothing else from them. An unreadable or unwritable cache only
    costs that import."""
    name = f"mel-{sr}-{n_fft}-{n_mels}-{fmin:g}-{fmax}-librosa{version('librosa')}.npy"
    path = user_cache_dir("mel") / name
    try:
        fb = np.load(path)
        if fb.shape == (n_mels, 1 + n_fft // 2):
            return fb
    except (OSError, ValueError):
        pass
    import librosa

    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    try:
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.save(f, fb)
    except OSError as e:
        log.debug("%s: mel filters not cached (%s)", path.parent, e.strerror)
    return fb


def audio_dim(n_mels: int) -> int:
    """Width of the audio feature vector."""
    return 1 + n_mels


class StepAudio:
    """Streaming per-step features: ``push`` PCM chunks, then ``finish(n_steps)``."""

    def __init__(self, sr: int, fps: float, n_mels: int) -> None:
        self.sr, self.fps, self.n_mels = sr, fps, n_mels
        self.step_len = sr / fps
        self.mel_fb = mel_filters(sr, N_FFT, n_mels)  # [M, F]
        self.window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
        self.buf = np.zeros(0, np.float32)
        self.buf_start = 0  # absolute index of buf[0]
        self.rows: list[np.ndarray] = []
        self.samples = 0

    def _edges(self, i: int) -> tuple[int, int]:
        return round(i * self.step_len), round((i + 1) * self.step_len)

    def _step(self, x: np.ndarray) -> np.ndarray:
        row = np.empty(1 + self.n_mels, np.float32)
        row[0] = np.sqrt(np.mean(x.astype(np.float64) ** 2)) if x.size else 0.0
        if x.size < N_FFT:
            x = np.pad(x, (0, N_FFT - x.size))
        n_frames = 1 + (x.size - N_FFT) // HOP
        idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
        spec = np.abs(np.fft.rfft(x[idx] * self.window, axis=1)) ** 2  # [frames, F]
        mel = self.mel_fb @ spec.mean(0)
        row[1:] = np.maximum(10.0 * np.log10(np.maximum(mel, 1e-10)), FLOOR_DB)
        return row

    def push(self, pcm: np.ndarray) -> None:
        """Add decoded samples; every step whose samples are complete is computed."""
        self.samples += pcm.size
        self.buf = np.concatenate([self.buf, pcm.astype(np.float32, copy=False)])
        while True:
            a, b = self._edges(len(self.rows))
            if b > self.buf_start + self.buf.size:
                break
            self.rows.append(self._step(self.buf[a - self.buf_start : b - self.buf_start]))
            self.buf = self.buf[b - self.buf_start :]
            self.buf_start = b

    def finish(self, n_steps: int) -> np.ndarray:
        """float32 [n_steps, 1 + n_mels]; steps after the audio ends are silence."""
        if self.samples == 0:
            out = np.zeros((n_steps, audio_dim(self.n_mels)), np.float32)
            out[:, 1:] = FLOOR_DB
            return out
        need = self._edges(n_steps - 1)[1] - (self.buf_start + self.buf.size)
        if need > 0 and len(self.rows) < n_steps:
            self.buf = np.concatenate([self.buf, np.zeros(need, np.float32)])
            self.push(np.zeros(0, np.float32))
        return np.stack(self.rows[:n_steps]).astype(np.float32)


def step_audio_features(
    audio: np.ndarray | None, sr: int, fps: float, n_steps: int, n_mels: int
) -> np.ndarray:
    """The same features for a whole PCM array at once. float32 [n_steps, 1 + n_mels]."""
    acc = StepAudio(sr, fps, n_mels)
    if audio is not None and audio.size:
        acc.push(audio)
    return acc.finish(n_steps)


def audio_only_features(
    path: str | Path, sr: int, fps: float, n_mels: int, window_s: float
) -> tuple[np.ndarray, float, np.ndarray]:
    """One episode from an audio-only pass (no video decoded): its audio features
    (float32 [T, 1 + n_mels], on the same step grid as featurizing, ``T`` the steps that
    cover the container's duration within the window), that duration, and the audio's
    :func:`fingerprint`."""
    chunks: list[np.ndarray] = []
    done = decode_audio(path, sr, window_s, chunks.append)
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    n = max(1, int(math.ceil(done.duration_s * fps - 1e-6)))
    acc = StepAudio(sr, fps, n_mels)
    if pcm.size:
        acc.push(pcm)
    return acc.finish(n), done.duration_s, fingerprint(pcm, sr)


def file_fingerprint(path: str | Path, window_s: float) -> np.ndarray | None:
    """The :func:`fingerprint` of a file's audio in the analysis window, decoded straight at
    the fingerprint's rate (no video decoded); None when the file has no audio stream."""
    chunks: list[np.ndarray] = []
    done = decode_audio(path, FP_SR, window_s, chunks.append)
    if not chunks or "no audio" in done.note:
        return None
    return fingerprint(np.concatenate(chunks), FP_SR)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


@contextmanager
def audio_pool(n_jobs: int) -> Iterator[Executor]:
    """Where audio-only passes run: one process per core when there are several episodes
    and cores. Decoding audio is bound by Python, not by the codec (PyAV's calls per
    packet hold the GIL): ten 2-minute episodes took 8.3 s one after the other and 7.9 s
    on two threads. The workers import only this module (no torch); on an error or Ctrl-C
    they are stopped at once."""
    workers = max(1, min(cpu_cores(), n_jobs))
    if workers == 1:
        with ThreadPoolExecutor(1) as pool:
            yield pool
        return
    pool = ProcessPoolExecutor(
        workers, mp_context=mp.get_context("spawn"), initializer=_ignore_sigint
    )
    try:
        yield pool
    except BaseException:
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            proc.terminate()
        raise
    pool.shutdown()


def fingerprints(videos: dict[str, Path], window_s: float) -> dict[str, np.ndarray | None]:
    """:func:`file_fingerprint` of every episode (:func:`audio_pool`); an episode whose
    audio cannot be read gets None (and a warning): it is then judged on its pictures
    alone."""
    out: dict[str, np.ndarray | None] = {}
    with audio_pool(len(videos)) as pool:
        futures = {pool.submit(file_fingerprint, v, window_s): eid for eid, v in videos.items()}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="fingerprint", unit="ep"):
            eid = futures[fut]
            try:
                out[eid] = fut.result()
            except (MediaError, OSError) as e:
                log.warning("fingerprint: %s", e)
                out[eid] = None
    return out


def fingerprint(pcm: np.ndarray, sr: int) -> np.ndarray:
    """Mono PCM -> a Philips-style audio fingerprint (Haitsma & Kalker 2002), uint16
    [frames], one frame per 32 ms: bit k is set when the energy difference between mel bands
    k and k + 1 (17 bands, 300 Hz - 2 kHz) grew since the previous frame. Loudness does not
    change it; re-encoding flips a few bits (see :mod:`introdetect.candidates`)."""
    if sr != FP_SR:
        import librosa

        pcm = librosa.resample(pcm, orig_sr=sr, target_sr=FP_SR)
    x = pcm
    n = 1 + (len(x) - FP_N_FFT) // FP_HOP
    if n < 3:
        return np.zeros(0, np.uint16)
    fb = mel_filters(FP_SR, FP_N_FFT, FP_BANDS, fmin=300, fmax=2000)
    window = np.hanning(FP_N_FFT).astype(np.float32)
    energies = []
    for k in range(0, n, 2048):  # bounded memory for long windows
        idx = np.arange(FP_N_FFT)[None] + FP_HOP * np.arange(k, min(n, k + 2048))[:, None]
        spec = np.abs(np.fft.rfft(x[idx] * window, axis=1)) ** 2
        energies.append(np.log(spec @ fb.T + 1e-10))
    d = np.diff(np.concatenate(energies), axis=1)  # [n, 16]
    bits = (d[1:] - d[:-1]) > 0  # [n - 1, 16]
    packed = np.packbits(bits, axis=1, bitorder="little")  # [n - 1, 2]
    return np.ascontiguousarray(packed).view(np.uint16).ravel()
