"""The device-side frame path (features/frames.py), exercised on the CPU.

NVDEC hands out NV12 / P010 planes in GPU memory; the same DLPack + torch code reads host
frames, so its geometry, colour and rotation handling are checked here against swscale.
"""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch
from conftest import decode
from test_media_edge import _rotate_mp4

from introdetect.features.frames import DeviceFrames, frame_to_tensor
from introdetect.features.visual import load_backbone
from introdetect.media import frame_to_rgb


def _picture(h: int = 180, w: int = 320) -> np.ndarray:
    """A natural-ish picture: colour gradients, a disc and some text-like bars."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 255, yy / h * 255, (1 - xx / w) * 200 + 30], -1)
    img[(yy - h / 2) ** 2 + (xx - w / 3) ** 2 < (h / 4) ** 2] = (250, 220, 40)
    img[h // 5 : h // 5 + 6, w // 2 : w - 20 : 1] = 255
    img[h // 5 + 12 : h // 5 + 18, w // 2 : w - 60] = 10
    return img.astype(np.uint8)


def _frame(fmt: str, colorspace: int | None = None) -> av.VideoFrame:
    f = av.VideoFrame.from_ndarray(_picture(), format="rgb24").reformat(format="yuv420p")
    if colorspace is not None:
        f.colorspace = colorspace
    return f if fmt == "yuv420p" else f.reformat(format=fmt)


@pytest.mark.parametrize("size", [64, 224, 97])
def test_nvdec_layouts_read_like_swscale(size):
    ref = frame_to_rgb(_frame("yuv420p"), size).astype(int)
    outs = {
        fmt: frame_to_tensor(_frame(fmt), size).numpy() for fmt in ("yuv420p", "nv12", "p010le")
    }
    for fmt, out in outs.items():
        assert out.shape == (size, size, 3) and out.dtype == np.uint8, fmt
        diff = np.abs(out.astype(int) - ref)
        assert diff.mean() < 3.0, (fmt, diff.mean())
        assert np.percentile(diff, 99) < 40, fmt
    # the three layouts hold the same picture: P010 only adds bits
    assert np.abs(outs["nv12"].astype(int) - outs["yuv420p"]).max() <= 1
    assert np.abs(outs["p010le"].astype(int) - outs["nv12"]).max() <= 2


def test_bt709_frames_use_the_bt709_matrix():
    f601, f709 = _frame("nv12"), _frame("nv12", colorspace=1)  # AVCOL_SPC_BT709
    a, b = frame_to_tensor(f601, 64).numpy(), frame_to_tensor(f709, 64).numpy()
    assert np.abs(a.astype(int) - b).mean() > 1.0  # the tag is honoured
    ref = frame_to_rgb(_frame("yuv420p", colorspace=1), 64)  # swscale reads it too
    assert np.abs(b.astype(int) - ref).mean() < 3.0


def test_device_frames_follow_the_cpu_path_through_the_network(tmp_path):
    """EpisodeDecoder with the device converter: tensors, rotation applied, and embeddings
    that agree with the swscale path's."""
    src = tmp_path / "src.mp4"
    with av.open(str(src), "w") as o:
        vs = o.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 320, 180, "yuv420p"
        vs.options = {"x264-params": "slices=1"}
        for i in range(50):
            img = np.roll(_picture(), 4 * i, axis=1)
            img[:90, :160] = 255  # top-left white marks the orientation
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                o.mux(p)
        for p in vs.encode(None):
            o.mux(p)
    rotated = _rotate_mp4(src, tmp_path / "r90.mp4")
    backbone = load_backbone("random", "cpu", "fp32")
    for clip in (src, rotated):
        conv = DeviceFrames(torch.device("cpu"))
        dev = dict(decode(clip, size=96, convert=conv)[0])
        host = dict(decode(clip, size=96)[0])
        assert dev.keys() == host.keys() and conv.on_device == len(dev) and conv.via_host == 0
        assert all(isinstance(t, torch.Tensor) for t in dev.values())
        for i in dev:
            assert np.abs(dev[i].numpy().astype(int) - host[i]).mean() < 3.0
        a = backbone.embed(torch.stack(list(dev.values())))
        b = backbone.embed(np.stack(list(host.values())))
        cos = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        assert cos.min() > 0.98
    assert dev[0][:48, 48:, 0].float().mean() > 200  # rotated 90 clockwise: white top-right


def test_device_frames_fall_back_to_swscale_for_other_formats():
    conv = DeviceFrames(torch.device("cpu"))
    f = _frame("yuv444p")
    out = conv(f, 32)
    assert conv.via_host == 1 and conv.on_device == 0
    assert np.array_equal(out.numpy(), frame_to_rgb(f, 32))
