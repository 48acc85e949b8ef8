"""Per-step audio features from a mono PCM track: RMS amplitude and log-mel bands.

Column 0 is the RMS amplitude of the step (the seed's feature, linear scale); columns
``1..n_mels`` are log-mel energies (dB) averaged over the step. An episode without audio
gets zeros and ``has_audio=False`` in its store attributes.
"""

from __future__ import annotations

import librosa
import numpy as np


def audio_dim(n_mels: int) -> int:
    """Width of the audio feature vector."""
    return 1 + n_mels


def step_audio_features(
    audio: np.ndarray | None, sr: int, fps: float, n_steps: int, n_mels: int
) -> np.ndarray:
    """float32 [n_steps, 1 + n_mels]: per-step RMS and mean log-mel (dB, floor -100)."""
    out = np.zeros((n_steps, audio_dim(n_mels)), np.float32)
    if audio is None or audio.size == 0:
        out[:, 1:] = -100.0
        return out
    step_len = sr / fps
    need = int(np.ceil(n_steps * step_len))
    if audio.size < need:  # audio shorter than video: silence after it ends
        audio = np.pad(audio, (0, need - audio.size))
    edges = np.round(np.arange(n_steps + 1) * step_len).astype(np.int64)
    sq = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    out[:, 0] = np.sqrt((sq[edges[1:]] - sq[edges[:-1]]) / counts)

    hop = 256
    n_fft = 1024
    mel = librosa.feature.melspectrogram(
        y=audio[:need], sr=sr, n_fft=n_fft, hop_length=hop, n_mels=n_mels, center=True
    )  # [n_mels, F], frame f centred on sample f*hop
    step_of_frame = np.minimum(
        (np.arange(mel.shape[1]) * hop / step_len).astype(np.int64), n_steps - 1
    )
    sums = np.zeros((n_steps, n_mels))
    np.add.at(sums, step_of_frame, mel.T)
    cnt = np.bincount(step_of_frame, minlength=n_steps)[:, None]
    power = sums / np.maximum(cnt, 1)
    out[:, 1:] = np.maximum(10.0 * np.log10(np.maximum(power, 1e-10)), -100.0)
    return out
