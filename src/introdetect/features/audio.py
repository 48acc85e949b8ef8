"""Per-step audio features from mono PCM: RMS amplitude and log-mel bands, streamed.

Column 0 is the RMS amplitude of the step (the seed's feature, linear scale); columns
``1..n_mels`` are log-mel energies (dB, floor -100) of the step: the mean power spectrum of
1024-sample Hann frames (hop 256) inside the step, through librosa's mel filter bank (kept
on disk by :func:`mel_filters`: importing ``librosa.filters`` costs seconds). Each
step depends only on its own samples, so :class:`StepAudio` computes steps as PCM arrives
and memory does not grow with the episode. Spectra are computed in single precision, a
block of steps (or of fingerprint frames) per call (:func:`_rfft`): within 0.01 dB of the
float64 definition; per 600 s window the fingerprint takes 0.2 s instead of 0.8 s and the
step features 0.11 s instead of 0.18 s (the audio pass is most of the audio-only path's
time). An episode without audio gets zeros (RMS) and -100 dB (mels), and
``has_audio=False`` in its store attributes.
:func:`audio_only_features` computes the same columns from an audio-only pass (no video
decoded), the cheap first look of a season.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from tqdm import tqdm

from introdetect.fileio import atomic_path, user_cache_dir
from introdetect.media import MediaError, cpu_cores, decode_audio

N_FFT = 1024
HOP = 256
FLOOR_DB = -100.0
STEP_BLOCK = 64  # steps whose spectra are computed together (~7 MB of frames at 16 kHz, 2/s)

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
    """Streaming per-step features: ``push`` PCM chunks, then ``finish(n_steps)``.

    The spectra of :data:`STEP_BLOCK` steps are computed together (single precision,
    :func:`_rfft`) once all their samples have come."""

    def __init__(self, sr: int, fps: float, n_mels: int) -> None:
        self.sr, self.fps, self.n_mels = sr, fps, n_mels
        self.step_len = sr / fps
        self.mel_fb_t = np.ascontiguousarray(mel_filters(sr, N_FFT, n_mels).T)  # [F, M]
        self.window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
        self.buf = np.zeros(0, np.float32)
        self.buf_start = 0  # absolute index of buf[0]
        self.rows: list[np.ndarray] = []
        self.samples = 0

    def _edges(self, i: int) -> tuple[int, int]:
        return round(i * self.step_len), round((i + 1) * self.step_len)

    def _steps(self, x: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """Rows of consecutive steps, step ``i`` being ``x[bounds[i]:bounds[i + 1]]``: RMS,
        then log-mel of the mean power spectrum of its ``N_FFT`` frames (hop ``HOP``; a
        step shorter than a frame is one frame, zero-padded)."""
        starts, lens = bounds[:-1], np.diff(bounds)
        rows = np.empty((len(lens), 1 + self.n_mels), np.float32)
        sq = np.add.reduceat(x[bounds[0] : bounds[-1]].astype(np.float64) ** 2, starts - starts[0])
        rows[:, 0] = np.where(lens > 0, np.sqrt(sq / np.maximum(lens, 1)), 0.0)
        n_frames = np.maximum(1, 1 + (lens - N_FFT) // HOP)
        before = np.cumsum(n_frames) - n_frames  # frames of the earlier steps
        at = np.repeat(starts - HOP * before, n_frames) + HOP * np.arange(n_frames.sum())
        short = lens < N_FFT
        if short.any():  # one frame, zero past the step's end
            x = np.pad(x, (0, N_FFT))
        frames = sliding_window_view(x, N_FFT)[at]  # a copy: [frames, N_FFT]
        if short.any():
            cut = np.repeat(np.where(short, lens, N_FFT), n_frames)
            frames[np.arange(N_FFT)[None, :] >= cut[:, None]] = 0.0
        spec = _rfft()(frames * self.window, axis=1)
        power = spec.real**2 + spec.imag**2  # [frames, F]
        mel = np.add.reduceat(power @ self.mel_fb_t, before)
        mel /= n_frames[:, None]
        rows[:, 1:] = np.maximum(10.0 * np.log10(np.maximum(mel, 1e-10)), FLOOR_DB)
        return rows

    def _compute(self, stop: int) -> None:
        """Rows up to step ``stop`` (its samples all in ``buf``), in blocks of
        :data:`STEP_BLOCK` steps counted from step 0, so that a row never depends on how the
        PCM was cut into pushes."""
        while len(self.rows) < stop:
            i = len(self.rows)
            j = min(stop, (i // STEP_BLOCK + 1) * STEP_BLOCK)
            edges = [self._edges(k)[0] for k in range(i, j)] + [self._edges(j - 1)[1]]
            bounds = np.asarray(edges) - self.buf_start  # within buf
            self.rows.extend(self._steps(self.buf, bounds))
            self.buf = self.buf[bounds[-1] :]
            self.buf_start = edges[-1]

    def push(self, pcm: np.ndarray) -> None:
        """Add decoded samples; rows are computed a block at a time, as blocks complete."""
        self.samples += pcm.size
        self.buf = np.concatenate([self.buf, pcm.astype(np.float32, copy=False)])
        end = self.buf_start + self.buf.size
        block = len(self.rows) // STEP_BLOCK
        while self._edges((block + 1) * STEP_BLOCK - 1)[1] <= end:
            block += 1
        self._compute(block * STEP_BLOCK)

    def finish(self, n_steps: int) -> np.ndarray:
        """float32 [n_steps, 1 + n_mels]; steps after the audio ends are silence."""
        if self.samples == 0:
            out = np.zeros((n_steps, audio_dim(self.n_mels)), np.float32)
            out[:, 1:] = FLOOR_DB
            return out
        need = self._edges(n_steps - 1)[1] - (self.buf_start + self.buf.size)
        if need > 0:
            self.buf = np.concatenate([self.buf, np.zeros(need, np.float32)])
        self._compute(n_steps)
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
    return prints_of(chunks, done.note)


def prints_of(chunks: list[np.ndarray], note: str) -> np.ndarray | None:
    """The :func:`fingerprint` of the PCM chunks an audio decode at :data:`FP_SR` handed
    over (``note``: its :class:`introdetect.media.AudioPass` note); None when there was no
    audio. The one rule for the fingerprint decoded here and the one the featurize keeps."""
    if not chunks or "no audio" in note:
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


def season_prints(
    videos: dict[str, Path], stores: dict[str, Path], window_s: float
) -> dict[str, np.ndarray | None]:
    """The :func:`fingerprint` of every episode: read from its feature file (``stores``)
    where the featurize made it (:class:`introdetect.features.extract.AudioThread`), decoded
    (:func:`fingerprints`) for the rest."""
    from introdetect.store import read_prints  # here: the audio workers need no h5py

    known: dict[str, np.ndarray | None] = {}
    for eid in videos:
        got = read_prints(stores[eid], window_s) if eid in stores else None
        if got is not None:
            known[eid] = got
    rest = {eid: v for eid, v in videos.items() if eid not in known}
    if known:
        log.info("fingerprints: %d of %d from the feature files", len(known), len(videos))
    return known | (fingerprints(rest, window_s) if rest else {})


def fingerprint(pcm: np.ndarray, sr: int) -> np.ndarray:
    """Mono PCM -> a Philips-style audio fingerprint (Haitsma & Kalker 2002), uint16
    [frames], one frame per 32 ms: bit k is set when the energy difference between mel bands
    k and k + 1 (17 bands, 300 Hz - 2 kHz) grew since the previous frame. Loudness does not
    change it; re-encoding flips a few bits (see :mod:`introdetect.candidates`)."""
    if sr != FP_SR:
        import librosa

        pcm = librosa.resample(pcm, orig_sr=sr, target_sr=FP_SR)
    x = pcm.astype(np.float32, copy=False)
    n = 1 + (len(x) - FP_N_FFT) // FP_HOP
    if n < 3:
        return np.zeros(0, np.uint16)
    fb = mel_filters(FP_SR, FP_N_FFT, FP_BANDS, fmin=300, fmax=2000)
    used = np.flatnonzero(fb.any(0))
    lo, hi = used[0], used[-1] + 1  # the bins the bands cover (300 Hz - 2 kHz)
    fb_t = np.ascontiguousarray(fb[:, lo:hi].T)
    window = np.hanning(FP_N_FFT).astype(np.float32)
    frames = sliding_window_view(x, FP_N_FFT)[::FP_HOP][:n]
    energies = []
    for k in range(0, n, 2048):  # bounded memory for long windows
        spec = _rfft()(frames[k : k + 2048] * window, axis=1)[:, lo:hi]
        energies.append(np.log((spec.real**2 + spec.imag**2) @ fb_t + 1e-10))
    d = np.diff(np.concatenate(energies), axis=1)  # [n, 16]
    bits = (d[1:] - d[:-1]) > 0  # [n - 1, 16]
    packed = np.packbits(bits, axis=1, bitorder="little")  # [n - 1, 2]
    return np.ascontiguousarray(packed).view(np.uint16).ravel()


def _rfft() -> Callable[..., np.ndarray]:
    """``scipy.fft.rfft``, imported when first needed (a third of a second, paid by the
    processes that compute audio features only): it transforms float32 frames in single
    precision. 2048 frames of 4096 samples: 14 ms, numpy 33 ms in float64 and 64 ms in
    float32 (numpy's float32 transform is the slower one here)."""
    from scipy import fft

    return fft.rfft
