"""HDF5 feature store: one file per episode, provenance attributes, atomic writes.

``data/features/<split>/<episode_id>.h5`` holds ``visual [T, 512] float16``,
``audio [T, A] float32`` and ``t [T] float32`` (step start times), plus attributes that say
exactly how it was made; where the featurize decoded the audio at the fingerprint's rate,
also ``audio_prints [F] uint16``, the audio fingerprint of the window
(:func:`introdetect.features.audio.fingerprint`), so the repetition channels need not
decode the audio a second time (:func:`read_prints`). A file is written to a temp name
and ``os.replace``d, so a killed run never leaves a torn file. :func:`is_current` decides
whether an existing file can be reused (same source file, same feature config).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from introdetect.errors import IntrodetectError
from introdetect.fileio import atomic_path
from introdetect.params import (
    FEATURE_IDENTITY,
    IDENTITY_BEFORE_KEY,
    FeatureParams,
    feature_identity,
)

SCHEMA_VERSION = 2  # 2: per-step mel frames stay inside their step (streamed audio)
BACKBONE = "resnet18"  # the frozen network behind the visual features
EMBED_DIM = 512  # its penultimate layer: the width of the visual features

# The ``int8`` attribute of int8 features: which int8 graph made them, so features of an
# older one never mix with today's (True, i.e. 1: onnxruntime's QOperator graph, sessions
# before 22; 2: the QDQ graph that OpenVINO runs). False: fp32/bf16.
INT8_SCHEME = 2

# Attributes that must match for features to be interchangeable: the feature identity
# (params.FEATURE_IDENTITY, with the weights spec resolved to the weights actually used)
# plus the schema and the backbone.
CONFIG_KEYS = ("schema_version", "backbone", "weights_id") + tuple(
    k for k in FEATURE_IDENTITY if k != "weights"
)
# Attributes that must match between a model's training features and the features it reads.
MODEL_COMPAT_KEYS = (
    "schema_version",
    "fps",
    "backbone",
    "weights_id",
    "frame_size",
    "audio_sr",
    "n_mels",
    "int8",
)


def feature_config(fp: FeatureParams, weights_id: str) -> dict[str, Any]:
    """The provenance attributes that define a feature configuration (:data:`CONFIG_KEYS`)
    for features made with the weights ``weights_id`` (``none``: files without pictures).
    ``fp.int8`` must be resolved (:func:`introdetect.params.with_int8`); int8 features
    record :data:`INT8_SCHEME`."""
    if fp.int8 == "auto":
        raise ValueError("feature_config: features.int8 not resolved (auto)")
    identity = {k: v for k, v in feature_identity(fp).items() if k != "weights"}
    identity["int8"] = INT8_SCHEME if fp.int8 else False
    config = identity | {
        "schema_version": SCHEMA_VERSION,
        "backbone": BACKBONE,
        "weights_id": weights_id,
    }
    assert set(config) == set(CONFIG_KEYS)
    return config


class StoreError(IntrodetectError):
    """A feature file is missing, unreadable or incompatible."""


@dataclass
class EpisodeFeatures:
    """The content of one feature file."""

    visual: np.ndarray  # [T, 512] float16
    audio: np.ndarray  # [T, A] float32
    t: np.ndarray  # [T] float32, step start times in seconds
    attrs: dict[str, Any]
    prints: np.ndarray | None = None  # [F] uint16, the window's audio fingerprint, if made


def source_fingerprint(path: str | Path, chunk: int = 1 << 20) -> str:
    """Cheap content fingerprint: size + blake2b of the first and last MiB."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.blake2b(digest_size=16)
    h.update(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(chunk))
        if size > chunk:
            f.seek(max(size - chunk, chunk))
            h.update(f.read(chunk))
    return h.hexdigest()


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_episode(path: str | Path, feats: EpisodeFeatures) -> None:
    """Write atomically (:func:`introdetect.fileio.atomic_path`)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("visual", data=feats.visual.astype(np.float16))
        f.create_dataset("audio", data=feats.audio.astype(np.float32))
        f.create_dataset("t", data=feats.t.astype(np.float32))
        if feats.prints is not None:
            f.create_dataset("audio_prints", data=feats.prints.astype(np.uint16))
        for k, v in feats.attrs.items():
            f.attrs[k] = "" if v is None else v


def read_attrs(path: str | Path) -> dict[str, Any]:
    """Only the attributes (cheap)."""
    try:
        with h5py.File(path, "r") as f:
            return {k: _plain(v) for k, v in f.attrs.items()}
    except (OSError, KeyError) as e:
        raise StoreError(f"{path}: unreadable feature file ({e})") from e


def read_episode(path: str | Path) -> EpisodeFeatures:
    """Load one episode's features into memory."""
    try:
        with h5py.File(path, "r") as f:
            return EpisodeFeatures(
                visual=f["visual"][()],
                audio=f["audio"][()],
                t=f["t"][()],
                attrs={k: _plain(v) for k, v in f.attrs.items()},
                prints=f["audio_prints"][()] if "audio_prints" in f else None,
            )
    except (OSError, KeyError) as e:
        raise StoreError(f"{path}: unreadable feature file ({e})") from e


def read_prints(path: str | Path, window_s: float) -> np.ndarray | None:
    """The audio fingerprint a feature file holds when it covers the analysis window
    ``window_s``; None when it holds none (no audio, audio at another rate, a file from
    before session 24) or cannot be read: then the audio is decoded again."""
    try:
        with h5py.File(path, "r") as f:
            if "audio_prints" not in f or not _same(_plain(f.attrs.get("window_s")), window_s):
                return None
            return f["audio_prints"][()]
    except (OSError, KeyError):
        return None


def is_current(
    path: str | Path, expected: dict[str, Any], fingerprint: str, mtime: float | None = None
) -> bool:
    """True when ``path`` exists, is readable, and matches config + source fingerprint
    (size, first and last MiB) + the source's modification time ``mtime`` when given (an
    in-place edit of the same size changes only the middle)."""
    path = Path(path)
    if not path.exists():
        return False
    try:
        attrs = read_attrs(path)
    except StoreError:
        return False
    if attrs.get("source_fingerprint") != fingerprint:
        return False
    if mtime is not None and not _same(attrs.get("source_mtime"), float(mtime)):
        return False
    return all(_same(identity_attr(attrs, k), expected.get(k)) for k in CONFIG_KEYS)


def identity_attr(attrs: dict[str, Any], key: str) -> Any:
    """``attrs[key]``, or for an identity key added later the value every file written
    before it had (:data:`introdetect.params.IDENTITY_BEFORE_KEY`)."""
    return attrs.get(key, IDENTITY_BEFORE_KEY.get(key))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) < 1e-9
    return a == b


def check_compatible(attrs: dict[str, Any], reference: dict[str, Any], where: str) -> None:
    """Refuse features made with another backbone/weights/fps than ``reference``."""
    bad = [
        f"{k}={attrs.get(k)!r} (model: {reference.get(k)!r})"
        for k in MODEL_COMPAT_KEYS
        if not _same(identity_attr(attrs, k), identity_attr(reference, k))
    ]
    if bad:
        raise StoreError(f"{where}: features incompatible with the model: {', '.join(bad)}")
