"""Frozen torchvision ResNet18 backbone (penultimate 512-d) and its weights resolution.

``features.weights``:

* ``imagenet`` -- torchvision's weights API (``ResNet18_Weights.IMAGENET1K_V1``): loaded from
  the TORCH_HOME cache, downloaded when online; failure is an error.
* ``auto`` -- ImageNet weights when they can be had (cache or download); otherwise a loud
  warning and a seeded random init (``random-seed0``).
* ``random`` -- the seeded random init, on purpose (tests, offline experiments).
* a file path -- a ResNet18 state dict saved with ``torch.save``.

The resolved weights are named by a ``weights_id`` that is written into every feature file;
readers refuse to mix features of different weights.

``features.engine`` says what runs the network: ``torch`` (eager, the reference) or
``onnxruntime`` (the same network exported to ONNX with its preprocessing, once per
weights, the graph kept under ``$INTRODETECT_CACHE`` or ``~/.cache/introdetect``; on the
CPU about 1.9x faster at 224 px and 1.2x at 112 px than eager fp32 on 2 cores, with
embeddings equal to eager's to cosine >= 0.99999, so features of both engines mix).
``auto`` is onnxruntime on the CPU when it is installed, torch on a GPU. When the graph of
the weights is already cached, torchvision is not even imported (:func:`load_backbone`):
importing it costs several seconds on every run (``torchvision.ops`` pulls in
``torch._dynamo``); it is needed only to build the network once, for the export.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import socket
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from introdetect.errors import IntrodetectError
from introdetect.fileio import atomic_path, user_cache_dir

log = logging.getLogger(__name__)

IMAGENET_CHECKPOINT = "resnet18-f37072fd.pth"  # ResNet18_Weights.IMAGENET1K_V1's file name
_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class WeightsError(IntrodetectError):
    """The requested backbone weights cannot be had."""


class _Preprocessed(torch.nn.Module):
    """uint8 [N, H, W, 3] RGB -> ImageNet-normalised NCHW -> the backbone: the graph that
    onnxruntime runs (preprocessing inside it, so one call does everything)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", _MEAN.clone())
        self.register_buffer("std", _STD.clone())

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 255.0
        return self.model((x - self.mean) / self.std)


def ort_available() -> bool:
    """Whether the onnxruntime engine can be used here."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


ONNX_OPSET = 17
GRAPH_VERSION = 1  # bump when _Preprocessed or the export arguments change


def onnx_cache_dir() -> Path:
    """Where exported graphs are kept between runs (:func:`introdetect.fileio.user_cache_dir`)."""
    return user_cache_dir("onnx")


def _torchvision_version() -> str:
    try:
        return version("torchvision")
    except PackageNotFoundError:  # pragma: no cover - a source build without metadata
        import torchvision

        return torchvision.__version__


def graph_key(weights_id: str) -> str:
    """What an exported graph depends on: the weights (their ``weights_id`` names the
    content: a file's hash, torchvision's hash-checked ImageNet file, or the seeded random
    init of these torch and torchvision versions), the exporter (torch's version), the opset
    and :data:`GRAPH_VERSION`."""
    ident = (
        f"{weights_id}|torch {torch.__version__}|torchvision {_torchvision_version()}"
        f"|{ONNX_OPSET}|{GRAPH_VERSION}"
    )
    return hashlib.sha1(ident.encode()).hexdigest()[:16]


def _export(model: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    wrapper = _Preprocessed(model).to(memory_format=torch.contiguous_format).eval()
    example = torch.zeros((2, 224, 224, 3), dtype=torch.uint8)
    torch.onnx.export(
        wrapper,
        (example,),
        buf,
        input_names=["frames"],
        output_names=["embedding"],
        dynamic_axes={"frames": {0: "n", 1: "h", 2: "w"}},
        opset_version=ONNX_OPSET,
        dynamo=False,
    )
    return buf.getvalue()


def _session(graph: bytes, threads: int):  # -> onnxruntime.InferenceSession
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    return ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])


class OrtNetwork:
    """The frozen network exported to ONNX and run by onnxruntime on the CPU.

    The export (~3 s) happens once per weights: the graph is kept in memory for the process
    and on disk (:func:`onnx_cache_dir`, keyed by :func:`graph_key`) for the next ones; a
    cache that cannot be read or written only costs the export. Worker threads do not spin
    while idle: on a small machine the decoder's threads need those cores between batches."""

    _exported: dict[str, bytes] = {}  # graph_key -> ONNX bytes (this process)

    def __init__(self, session) -> None:  # onnxruntime.InferenceSession
        self.session = session

    @classmethod
    def cached(cls, weights_id: str, threads: int) -> OrtNetwork | None:
        """The network of ``weights_id`` from this process or the disk cache; None when it
        has not been exported yet (or its file is unusable: warned, to be exported again)."""
        key = graph_key(weights_id)
        graph = cls._exported.get(key)
        if graph is not None:
            return cls(_session(graph, threads))
        path = onnx_cache_dir() / f"resnet18-{key}.onnx"
        if not path.exists():
            return None
        try:
            graph = path.read_bytes()
            net = cls(_session(graph, threads))
        except Exception as e:  # noqa: BLE001 - a broken cache file costs one export
            log.warning("%s: unusable exported graph, exporting again (%s)", path, e)
            return None
        cls._exported[key] = graph
        return net

    @classmethod
    def export(cls, model: torch.nn.Module, weights_id: str, threads: int) -> OrtNetwork:
        """Export ``model`` (the weights ``weights_id``) and cache the graph."""
        log.debug("exporting %s to ONNX", weights_id)
        key = graph_key(weights_id)
        graph = _export(model)
        path = onnx_cache_dir() / f"resnet18-{key}.onnx"
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(graph)
        except OSError as e:
            log.info("%s: exported graph not cached (%s)", path.parent, e.strerror)
        cls._exported[key] = graph
        return cls(_session(graph, threads))

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {"frames": np.ascontiguousarray(frames, np.uint8)})[0]
        return np.asarray(out, np.float32)


@dataclass
class Backbone:
    """A frozen feature extractor plus the facts recorded as provenance."""

    model: torch.nn.Module | None  # None: onnxruntime runs a cached graph, no torch model
    weights_id: str
    device: torch.device
    dtype: torch.dtype  # autocast dtype, or float32
    ort: OrtNetwork | None = None  # set: onnxruntime runs the network (CPU, fp32)

    def __post_init__(self) -> None:
        self._mean, self._std = _MEAN.to(self.device), _STD.to(self.device)

    @property
    def precision(self) -> str:
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32")

    @property
    def engine(self) -> str:
        return "onnxruntime" if self.ort is not None else "torch"

    def embed(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """``frames`` uint8 [N, H, W, 3] (numpy, or a tensor on any device) -> float32
        [N, 512]."""
        if self.ort is not None:
            host = frames.cpu().numpy() if isinstance(frames, torch.Tensor) else frames
            return self.ort(host)
        x = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(frames)
        x = x.to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        x = ((x - self._mean) / self._std).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self.dtype == torch.float32:
                y = self.model(x)
            else:
                with torch.autocast(self.device.type, dtype=self.dtype):
                    y = self.model(x)
        return y.float().cpu().numpy()


def _imagenet_state_dict(allow_download: bool) -> dict[str, torch.Tensor]:
    """Torchvision's ImageNet weights through its own API (cache first, then download)."""
    import torchvision

    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
    if not cached.exists() and not allow_download:
        raise WeightsError(f"ImageNet weights not in the torch cache ({cached}) and offline")
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)  # a closed network must not hang the run
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as e:  # URLError, HTTPError, hash mismatch, ...
        raise WeightsError(
            f"cannot get ImageNet ResNet18 weights ({e.__class__.__name__}: {e})"
        ) from e
    finally:
        socket.setdefaulttimeout(old)


def _file_id(path: Path) -> str:
    h = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"file:{path.name}:{h}"


def resolve_weights(spec: str) -> tuple[dict[str, torch.Tensor] | None, str]:
    """Turn ``features.weights`` into (state dict or None for random init, weights_id)."""
    offline = os.environ.get("INTRODETECT_OFFLINE", "") not in ("", "0")
    if spec == "random":
        return None, "random-seed0"
    if spec == "imagenet":
        return _imagenet_state_dict(allow_download=not offline), "IMAGENET1K_V1"
    if spec == "auto":
        try:
            return _imagenet_state_dict(allow_download=not offline), "IMAGENET1K_V1"
        except WeightsError as e:
            log.warning("!" * 78)
            log.warning("NO IMAGENET WEIGHTS: %s", e)
            log.warning("Using a seeded RANDOM ResNet18 (weights_id=random-seed0). Features are")
            log.warning("much weaker; put resnet18-f37072fd.pth in $TORCH_HOME/hub/checkpoints or")
            log.warning("set features.weights to a file path to use real weights.")
            log.warning("!" * 78)
            return None, "random-seed0"
    path = Path(spec)
    if not path.is_file():
        raise WeightsError(f"features.weights={spec!r}: not auto|imagenet|random and no such file")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"{path}: not a loadable state dict ({e})") from e
    return sd, _file_id(path)


def pick_device(spec: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without a GPU is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise WeightsError(f"features.device={spec!r} but CUDA is not available")
    return dev


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_dtype(precision: str, device: torch.device) -> torch.dtype:
    """bf16 autocast where the hardware runs it natively (AMX/AVX512-BF16, CUDA), else fp32."""
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if _cpu_has_bf16() else torch.float32


def pick_engine(engine: str, device: torch.device, dtype: torch.dtype) -> str:
    """``features.engine`` resolved: ``auto`` is onnxruntime for fp32 on the CPU when it is
    installed, else torch; onnxruntime asked for where it cannot run is an error."""
    if engine == "torch":
        return "torch"
    usable = device.type == "cpu" and dtype == torch.float32
    if engine == "onnxruntime":
        if not usable:
            raise WeightsError(
                "features.engine='onnxruntime' runs fp32 on the CPU only "
                f"(device {device.type}, precision {dtype})"
            )
        if not ort_available():
            raise WeightsError("features.engine='onnxruntime' but onnxruntime is not installed")
        return "onnxruntime"
    return "onnxruntime" if usable and ort_available() else "torch"


def _known_weights_id(spec: str) -> str | None:
    """The ``weights_id`` that :func:`resolve_weights` would give, found without loading
    anything, or None when only loading can tell (ImageNet weights not in the cache: a
    download to try or the loud fallback to random; a path that is not a file)."""
    if spec == "random":
        return "random-seed0"
    if spec in ("imagenet", "auto"):
        cached = Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_CHECKPOINT
        return "IMAGENET1K_V1" if cached.is_file() else None
    path = Path(spec)
    return _file_id(path) if path.is_file() else None


def _build(state: dict[str, torch.Tensor] | None, weights_id: str) -> torch.nn.Module:
    import torchvision  # several seconds: only when the network itself is needed

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # "random-seed0": the same random backbone everywhere
        model = torchvision.models.resnet18(weights=None)
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise WeightsError(f"weights {weights_id} do not fit ResNet18 ({e})") from e
    model.fc = torch.nn.Identity()
    return model.eval().requires_grad_(False)


def load_backbone(
    weights: str = "auto", device: str = "auto", precision: str = "auto", engine: str = "auto"
) -> Backbone:
    """Build the frozen ResNet18 feature extractor (``fc`` replaced by identity), run by
    ``engine`` (see the module docstring). With onnxruntime and the weights' graph already
    cached, nothing is built: the graph is the network."""
    dev = pick_device(device)
    dtype = pick_dtype(precision, dev)
    use_ort = pick_engine(engine, dev, dtype) == "onnxruntime"
    threads = torch.get_num_threads()
    known = _known_weights_id(weights) if use_ort else None
    net = OrtNetwork.cached(known, threads) if known is not None else None
    if net is not None:
        return Backbone(None, known, dev, dtype, net)
    state, weights_id = resolve_weights(weights)
    model = _build(state, weights_id)
    if use_ort:
        net = OrtNetwork.cached(weights_id, threads) or OrtNetwork.export(
            model, weights_id, threads
        )
    model = model.to(dev, memory_format=torch.channels_last)
    return Backbone(model, weights_id, dev, dtype, net)
