"""Typed, validated parameters loaded once from ``params.yaml``.

Every section is a frozen dataclass. Unknown keys, wrong types and impossible values are
rejected at load time with an error naming the key and the allowed values, so a typo in
``dvc exp run -S ...`` fails in a second instead of after an hour of featurizing.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from introdetect.errors import IntrodetectError


class ParamsError(IntrodetectError):
    """A params file is unreadable, has unknown keys, wrong types or impossible values."""


@dataclass(frozen=True)
class SynthParams:
    """Demo dataset generator: ``realistic`` (``introdetect.devset``: real footage, recaps,
    idents, credits, long cold opens) or ``simple`` (``introdetect.synth``: the first toy
    demo, noise textures and a title card)."""

    kind: Literal["realistic", "simple"] = "realistic"
    seed: int = 0
    out_dir: str = "data/demo"
    n_train_series: int = 6
    n_unseen_series: int = 3
    train_episodes_per_series: int = 6
    test_episodes_per_seen_series: int = 2
    episodes_per_unseen_series: int = 3
    no_intro_fraction: float = 0.08
    max_cold_open_s: float = 150.0
    tail_s: tuple[float, float] = (15.0, 35.0)
    n_broken_labels: int = 4


@dataclass(frozen=True)
class DataParams:
    """Where the episodes and labels are, and how labels are cleaned."""

    source: Literal["demo", "dirs"] = "demo"
    train_dir: str = "data/demo/train"
    train_labels: str = "data/demo/train_labels.json"
    test_dir: str = "data/demo/test"
    test_labels: str | None = "data/demo/test_labels.json"
    label_policy: Literal["repair", "swap", "drop"] = "repair"
    min_intro_s: float = 1.0
    max_intro_s: float = 40.0
    series_regex: str | None = None
    video_extensions: tuple[str, ...] = (
        ".mp4",
        ".mkv",
        ".avi",
        ".mov",
        ".webm",
        ".ts",
        ".m4v",
        ".m2ts",
        ".mts",
        ".mpg",
        ".mpeg",
        ".vob",
        ".wmv",
        ".asf",
        ".flv",
        ".3gp",
        ".ogv",
        ".divx",
        ".rmvb",
    )


@dataclass(frozen=True)
class FeatureParams:
    """Stage one: decode, sample on the step grid, embed.

    Two kinds of keys: the *identity* (:data:`FEATURE_IDENTITY`: what the features are;
    a model is trained on one identity and reads only features of that identity) and
    *how to run* (device, precision, batch size, workers, executor: the caller's choice,
    never taken from a checkpoint)."""

    fps: float = 2.0
    window_s: float = 600.0
    frame_size: int = 224
    weights: str = "auto"
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    engine: Literal["auto", "torch", "onnxruntime"] = "auto"
    batch_size: int = 64
    skip_nonref: bool = True
    skip_loop_filter: bool = False
    reuse_static: bool = False  # a step whose frame did not change reuses the last embedding
    # the network quantized to int8 and run by OpenVINO (CPU; ~2.5x faster than fp32);
    # auto: where the network runs on the CPU (introdetect.features.visual)
    int8: bool | Literal["auto"] = "auto"
    audio_first: bool = False  # model-free detect: decode pictures only where audio repeats
    audio_only: bool = False  # model-free detect: the sound alone, no pictures (README)
    workers: int = 0  # 0: auto (see introdetect.features.extract.resolve_workers)
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    audio_sr: int = 16000
    n_mels: int = 32
    min_ok_fraction: float = 0.9


# The FeatureParams keys that define what the features are (see FeatureParams).
FEATURE_IDENTITY = (
    "fps",
    "window_s",
    "frame_size",
    "weights",
    "audio_sr",
    "n_mels",
    "skip_nonref",
    "skip_loop_filter",
    "reuse_static",
    "int8",
)


# Identity keys added later, with the value every older checkpoint's features were made with.
IDENTITY_BEFORE_KEY: dict[str, Any] = {"reuse_static": False, "int8": False}


def feature_identity(fp: FeatureParams) -> dict[str, Any]:
    """The identity keys of ``fp`` as a plain dict (stored in checkpoints)."""
    return {k: getattr(fp, k) for k in FEATURE_IDENTITY}


def with_int8(fp: FeatureParams, int8: bool) -> FeatureParams:
    """``fp`` with ``features.int8`` resolved to what the network runs (``int8``; False
    where there is no network: files with no pictures): what feature files record. An
    explicit value that contradicts it is an error (a file would claim features it does
    not hold)."""
    if fp.int8 != "auto" and fp.int8 != int8:
        raise ValueError(f"the network runs int8={int8} but features.int8={fp.int8}")
    return dataclasses.replace(fp, int8=int8)


def with_identity(run: FeatureParams, identity: dict[str, Any]) -> FeatureParams:
    """``run``'s how-to-run settings with the feature identity of a checkpoint (one made
    before a key existed gets the value that matches how its features were made)."""
    identity = IDENTITY_BEFORE_KEY | dict(identity)
    missing = [k for k in FEATURE_IDENTITY if k not in identity]
    if missing:
        raise ParamsError(f"feature identity lacks {', '.join(missing)}")
    return dataclasses.replace(run, **{k: identity[k] for k in FEATURE_IDENTITY})


@dataclass(frozen=True)
class RepetitionParams:
    """Cross-episode repetition features (see ``introdetect.repetition``)."""

    max_others: int = 8
    sim_threshold: float = 0.6
    min_run_s: float = 1.0
    min_share: float = 0.5


# The groups of evidence channels (the keys of introdetect.evidence.EVIDENCE_GROUPS; kept
# here so reading params imports no numpy code).
EVIDENCE_GROUP_NAMES = ("known", "position", "content")


@dataclass(frozen=True)
class ModelParams:
    """IntroDetector architecture."""

    hidden: int = 128
    layers: int = 2
    dropout: float = 0.3
    use_mels: bool = True
    appearance: bool = False  # ResNet18 ++ audio features per step (series-specific)
    evidence: bool = True  # known intros, position, content cues (introdetect.evidence)
    repetition: bool = True
    audio_share: bool = False  # with repetition: also the share where the step's sound repeats
    # with evidence: which groups of it (introdetect.evidence.EVIDENCE_GROUPS)
    evidence_groups: tuple[str, ...] = EVIDENCE_GROUP_NAMES


@dataclass(frozen=True)
class TrainParams:
    """Stage two: training the BiLSTM and its heads on cached features."""

    lr: float = 1e-3
    batch_size: int = 4
    epochs: int = 80
    patience: int = 15
    stop_rule: Literal["patience", "seed"] = "patience"
    seed: int = 0
    w_reg: float = 0.7
    w_cls: float = 0.3
    w_step: float = 1.0
    step_pos_weight: float = 3.0
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    val_split: Literal["mixed", "series", "episodes"] = "mixed"
    select: Literal["iou", "loss"] = "iou"
    augment: bool = True
    crop_s: float = 120.0  # > 0: train mostly on crops of this many seconds around the intro
    # share of training items (not those seen as if their series were unseen) whose
    # repetition channels read 0: the model learns to answer without the season's repeat
    drop_repetition: float = 0.0


@dataclass(frozen=True)
class PredictParams:
    """Stage three: smoothing and interval extraction."""

    smoothing: Literal["gaussian", "moving_average", "none"] = "gaussian"
    smooth_s: float = 1.0
    threshold: float = 0.5
    presence_threshold: float = 0.5
    min_len_s: float = 1.0
    max_len_s: float = 30.0
    season_consistent: bool = True  # one intro length per season (introdetect.decision)
    # model-free: an answer moves to where more of the other episodes' answers repeat in
    # it than support it where it is (introdetect.agreement)
    season_agree: bool = True
    refine: bool = True  # snap boundaries to the nearest cut or fade in the video
    refine_search_s: float = 1.5  # how far from the coarse boundary to look
    # the model-free detector's share of a step weighs how often its sound (audio
    # fingerprint, introdetect.candidates.step_share; repetition.SOUND_WEIGHT) and its
    # picture repeat in other episodes
    model_free_audio: bool = True
    # a trained model's answer narrowed to where it overlaps the model-free answer (the
    # repeated part's edges are sample-exact; the model's are 0.5 s steps, smoothed)
    repeat_bounds: bool = True
    # with a trained model: the model-free answer wherever it finds an intro, the model's
    # (narrowed by repeat_bounds) only where it finds none (introdetect.decision)
    repetition_first: bool = True
    # with a trained model that knows labelled intros: its answer stands against a
    # model-free answer that sounds less like any of them (introdetect.decision)
    known_intros: bool = True
    # model-free: of runs shared about as widely, one that is mostly speech (silero-vad,
    # introdetect.speech) loses to one that is not
    speech: bool = True
    # with speech: a run heard as dialogue gives way to a quiet run shared less widely
    dialogue_yields: bool = True
    # with speech: two episodes of a season that share a quiet run with half of the others
    # (one episode lacks the intro) answer it where they had none, speech or a sound-only
    # repeat (introdetect.pairs)
    quiet_pairs: bool = True


@dataclass(frozen=True)
class Params:
    """All sections of params.yaml."""

    synth: SynthParams = field(default_factory=SynthParams)
    data: DataParams = field(default_factory=DataParams)
    features: FeatureParams = field(default_factory=FeatureParams)
    repetition: RepetitionParams = field(default_factory=RepetitionParams)
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)
    predict: PredictParams = field(default_factory=PredictParams)


# (section, key) -> (check, human-readable allowed range)
_RANGES: dict[tuple[str, str], tuple[typing.Callable[[Any], bool], str]] = {
    ("features", "fps"): (lambda v: 0 < v <= 30, "0 < fps <= 30"),
    ("features", "window_s"): (lambda v: v > 0, "> 0"),
    ("features", "frame_size"): (lambda v: 32 <= v <= 1024, "32..1024"),
    ("features", "batch_size"): (lambda v: v >= 1, ">= 1"),
    ("features", "workers"): (lambda v: 0 <= v <= 256, "0 (auto)..256"),
    ("features", "audio_sr"): (lambda v: 4000 <= v <= 96000, "4000..96000"),
    ("features", "n_mels"): (lambda v: 1 <= v <= 256, "1..256"),
    ("features", "min_ok_fraction"): (lambda v: 0 <= v <= 1, "[0, 1]"),
    ("features", "device"): (
        lambda v: v in ("auto", "cpu") or v.startswith("cuda"),
        "auto|cpu|cuda[:N]",
    ),
    ("repetition", "max_others"): (lambda v: v >= 1, ">= 1"),
    ("repetition", "sim_threshold"): (lambda v: -1 <= v <= 1, "[-1, 1]"),
    ("repetition", "min_run_s"): (lambda v: v > 0, "> 0"),
    ("repetition", "min_share"): (lambda v: 0 < v <= 1, "(0, 1]"),
    ("model", "hidden"): (lambda v: v >= 1, ">= 1"),
    ("model", "layers"): (lambda v: v >= 1, ">= 1"),
    ("model", "dropout"): (lambda v: 0 <= v < 1, "[0, 1)"),
    ("train", "lr"): (lambda v: 0 < v < 1, "0 < lr < 1"),
    ("train", "batch_size"): (lambda v: v >= 1, ">= 1"),
    ("train", "epochs"): (lambda v: v >= 1, ">= 1"),
    ("train", "patience"): (lambda v: v >= 1, ">= 1"),
    ("train", "w_reg"): (lambda v: v >= 0, ">= 0"),
    ("train", "w_cls"): (lambda v: v >= 0, ">= 0"),
    ("train", "w_step"): (lambda v: v >= 0, ">= 0"),
    ("train", "step_pos_weight"): (lambda v: v > 0, "> 0"),
    ("train", "val_fraction"): (lambda v: 0 < v < 1, "0 < val_fraction < 1"),
    ("train", "crop_s"): (lambda v: v >= 0, ">= 0"),
    ("train", "drop_repetition"): (lambda v: 0 <= v <= 1, "[0, 1]"),
    ("predict", "threshold"): (lambda v: 0 <= v <= 1, "[0, 1]"),
    ("predict", "presence_threshold"): (lambda v: 0 <= v <= 1, "[0, 1]"),
    ("predict", "smooth_s"): (lambda v: v >= 0, ">= 0"),
    ("predict", "min_len_s"): (lambda v: v >= 0, ">= 0"),
    ("predict", "max_len_s"): (lambda v: v > 0, "> 0"),
    ("predict", "refine_search_s"): (lambda v: 0 < v <= 5, "(0, 5]"),
    ("data", "min_intro_s"): (lambda v: v >= 0, ">= 0"),
    ("data", "max_intro_s"): (lambda v: v > 0, "> 0"),
    ("synth", "no_intro_fraction"): (lambda v: 0 <= v < 1, "[0, 1)"),
    ("synth", "n_train_series"): (lambda v: v >= 1, ">= 1"),
    ("model", "evidence_groups"): (
        lambda v: 0 < len(v) == len(set(v)) and set(v) <= set(EVIDENCE_GROUP_NAMES),
        f"one or more of {', '.join(EVIDENCE_GROUP_NAMES)}, each once",
    ),
    ("synth", "max_cold_open_s"): (lambda v: v >= 20, ">= 20"),
}


def _coerce(section: str, key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the type hint ``hint``; return it (tuples from lists)."""
    where = f"{section}.{key}"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(section, key, value, arg)
            except ParamsError as e:
                errors.append(str(e))
        raise ParamsError(f"params: {where}={value!r} has the wrong type ({'; '.join(errors)})")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ParamsError(f"params: {where}={value!r} is not one of {'|'.join(allowed)}")
        return value
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise ParamsError(f"params: {where}={value!r} must be a list")
        inner = args[0]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(section, key, v, inner) for v in value)
        if len(value) != len(args):
            raise ParamsError(f"params: {where} must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(section, key, v, a) for v, a in zip(value, args, strict=True))
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"params: {where}={value!r} must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"params: {where}={value!r} must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamsError(f"params: {where}={value!r} must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"params: {where}={value!r} must be a string")
        return value
    return value


def _build_section(name: str, cls: type, raw: Any) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"params: section '{name}' must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamsError(
            f"params: unknown key(s) {', '.join(f'{name}.{k}' for k in unknown)}; "
            f"known keys of '{name}': {', '.join(sorted(known))}"
        )
    values = {}
    for key, value in raw.items():
        v = _coerce(name, key, value, hints[key])
        check = _RANGES.get((name, key))
        if check is not None and v is not None and not check[0](v):
            raise ParamsError(f"params: {name}.{key}={v!r} is out of range (allowed: {check[1]})")
        values[key] = v
    return cls(**values)


def params_from_dict(raw: dict[str, Any] | None) -> Params:
    """Build and validate :class:`Params` from a parsed params.yaml mapping."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ParamsError("params: the file must contain a mapping of sections")
    sections = {f.name: f for f in dataclasses.fields(Params)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ParamsError(
            f"params: unknown section(s) {', '.join(unknown)}; known: {', '.join(sections)}"
        )
    hints = typing.get_type_hints(Params)
    built = {name: _build_section(name, hints[name], raw.get(name)) for name in sections}
    p = Params(**built)
    _check_cross(p)
    return p


def _check_cross(p: Params) -> None:
    """Constraints that involve more than one key."""
    if p.predict.min_len_s >= p.predict.max_len_s:
        raise ParamsError(
            f"params: predict.min_len_s={p.predict.min_len_s} must be < "
            f"predict.max_len_s={p.predict.max_len_s}"
        )
    if p.features.window_s < p.predict.max_len_s:
        raise ParamsError(
            f"params: features.window_s={p.features.window_s} is shorter than the longest "
            f"intro predict.max_len_s={p.predict.max_len_s}"
        )
    if p.data.min_intro_s >= p.data.max_intro_s:
        raise ParamsError("params: data.min_intro_s must be < data.max_intro_s")
    lo, hi = p.synth.tail_s
    if not 0 <= lo <= hi:
        raise ParamsError(
            f"params: synth.tail_s={list(p.synth.tail_s)} must be [lo, hi], 0<=lo<=hi"
        )


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params.yaml file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML ({e})") from e
    try:
        return params_from_dict(raw)
    except ParamsError as e:
        raise ParamsError(f"{path}: {e}") from None
