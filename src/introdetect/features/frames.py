"""Sampled frames as torch tensors on the network's device (the GPU path).

With ``features.device: cuda`` NVDEC decodes into GPU memory (PyAV hwaccel with
``is_hw_owned``) and frames are never copied to the host: a sampled frame's planes are
wrapped with DLPack, resized and converted to RGB by torch on the GPU, and handed to the
network there. Non-sampled frames are never touched. A frame in any other form (FFmpeg's
software fallback, a pixel format not handled here) is converted by swscale on the CPU and
moved to the device, with one log line.

The conversion reads NV12, P010/P016 (NVDEC's outputs) and planar 4:2:0 frames wherever
they live, so the same code is tested on the CPU against swscale.
"""

from __future__ import annotations

import logging

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.dlpack import from_dlpack

from introdetect.media import frame_to_rgb

log = logging.getLogger(__name__)

# Y'CbCr -> R'G'B' for the two colour matrices that matter: (Kr, Kb).
_BT601 = (0.299, 0.114)
_BT709 = (0.2126, 0.0722)
_AVCOL_SPC_BT709 = 1
_AVCOL_RANGE_JPEG = 2
_SEMI_PLANAR = {"nv12": 8, "p010le": 16, "p016le": 16}
_PLANAR = {"yuv420p": 8, "yuvj420p": 8}


def _plane(frame: av.VideoFrame, i: int) -> torch.Tensor:
    # PyAV refuses a stream argument (it cannot sync streams), so the capsule is taken here
    # and the caller synchronises; torch.from_dlpack(obj) would pass torch's stream.
    return from_dlpack(frame.planes[i].__dlpack__())


def _resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[C, H, W] float -> [C, height, width], antialiased bilinear (swscale's filter)."""
    return F.interpolate(
        x[None], size=(height, width), mode="bilinear", antialias=True, align_corners=False
    )[0]


def yuv_to_rgb(
    y: torch.Tensor,
    u: torch.Tensor,
    v: torch.Tensor,
    size: int,
    bt709: bool = False,
    full_range: bool = False,
    bits: int = 8,
) -> torch.Tensor:
    """Luma [H, W] and chroma [h, w] planes (any integer dtype, any device) -> uint8 RGB
    [size, size, 3] on the same device. Resizing before the (affine) colour conversion
    gives the same picture as converting first, at a fraction of the work. Chroma is
    resized to half the output width and repeated, as swscale does by default for RGB
    output, so these frames match the CPU path's (mean |diff| ~2 levels on demo frames)."""
    scale = 1.0 / (1 << (bits - 8))
    yy = _resize(y.float()[None] * scale, size, size)[0]
    uv = _resize(torch.stack([u.float(), v.float()]) * scale, size, (size + 1) // 2)
    uv = uv.repeat_interleave(2, dim=2)[:, :, :size]
    cb, cr = uv[0] - 128.0, uv[1] - 128.0
    if not full_range:
        yy = (yy - 16.0) * (255.0 / 219.0)
        cb, cr = cb * (255.0 / 224.0), cr * (255.0 / 224.0)
    kr, kb = _BT709 if bt709 else _BT601
    kg = 1.0 - kr - kb
    r = yy + 2.0 * (1.0 - kr) * cr
    b = yy + 2.0 * (1.0 - kb) * cb
    g = yy - (2.0 * kb * (1.0 - kb) / kg) * cb - (2.0 * kr * (1.0 - kr) / kg) * cr
    return torch.stack([r, g, b], dim=-1).round_().clamp_(0, 255).to(torch.uint8)


def sw_format(frame: av.VideoFrame) -> str:
    """The pixel layout of ``frame``'s data (the software format behind a CUDA frame)."""
    if frame.format.name == "cuda":
        return frame.sw_format.name
    return frame.format.name


def convertible(frame: av.VideoFrame) -> bool:
    """Whether :func:`frame_to_tensor` reads this frame's planes directly."""
    return sw_format(frame) in _SEMI_PLANAR or sw_format(frame) in _PLANAR


def frame_to_tensor(frame: av.VideoFrame, size: int) -> torch.Tensor:
    """A decoded frame (CUDA or host memory) -> uint8 RGB [size, size, 3] where its data
    lives, rotated as a player shows it (see :func:`introdetect.media.frame_to_rgb`)."""
    fmt = sw_format(frame)
    if fmt in _SEMI_PLANAR:
        y, uv = _plane(frame, 0), _plane(frame, 1)
        u, v, bits = uv[..., 0], uv[..., 1], _SEMI_PLANAR[fmt]
    elif fmt in _PLANAR:
        y, u, v, bits = _plane(frame, 0), _plane(frame, 1), _plane(frame, 2), 8
    else:
        raise ValueError(f"pixel format {fmt} is not read on the device")
    if y.dtype == torch.uint16:  # few kernels take uint16: go through int32
        y, u, v = (t.view(torch.int16).to(torch.int32) & 0xFFFF for t in (y, u, v))
    if y.is_cuda:
        torch.cuda.current_stream(y.device).synchronize()  # NVDEC's copy is done
    rgb = yuv_to_rgb(
        y,
        u,
        v,
        size,
        bt709=frame.colorspace == _AVCOL_SPC_BT709,
        full_range=frame.color_range == _AVCOL_RANGE_JPEG or fmt == "yuvj420p",
        bits=bits,
    )
    rot = int(getattr(frame, "rotation", 0) or 0) % 360
    return torch.rot90(rgb, k=rot // 90, dims=(0, 1)).contiguous() if rot else rgb


class DeviceFrames:
    """``convert(frame, size)`` for :class:`introdetect.media.EpisodeDecoder`: frames as
    tensors on ``device``, converted there when their planes can be read, else by swscale
    on the CPU (logged once per pixel format)."""

    reads_device_memory = True  # EpisodeDecoder then keeps NVDEC frames on the GPU

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.on_device = 0  # frames converted where they were decoded
        self.via_host = 0  # frames converted by swscale and copied over
        self._warned: set[str] = set()

    def __call__(self, frame: av.VideoFrame, size: int) -> torch.Tensor:
        fmt = sw_format(frame)
        if convertible(frame) and (frame.format.name == "cuda") == (self.device.type == "cuda"):
            try:
                out = frame_to_tensor(frame, size).to(self.device)
                self.on_device += 1
                return out
            except (RuntimeError, TypeError, ValueError, NotImplementedError) as e:
                fmt = f"{fmt} ({e})"
        if fmt not in self._warned:
            self._warned.add(fmt)
            where = "GPU" if frame.format.name == "cuda" else "host"
            # a warning, not info: on a GPU this is a slowdown someone should look at
            log.warning("%s frames in %s memory: resized by swscale on the CPU", fmt, where)
        self.via_host += 1
        rgb: np.ndarray = frame_to_rgb(frame, size)
        return torch.from_numpy(rgb).to(self.device, non_blocking=True)
