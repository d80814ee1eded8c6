"""Chroma upscaling with MATLAB's bicubic kernel (``vidsr.imresize.cubic``, a = -0.5) that keeps
the stream's chroma siting.

A subsampled chroma sample ``i`` sits at luma position ``f*i + off`` (``f`` the subsampling
factor, ``off`` 0 for co-sited, 0.5 for centred, 1 for bottom). The luma grid is upscaled with
pixel centres aligned (input luma position of output luma ``m`` is ``(m + 0.5)/s - 0.5``), so
output chroma ``j``, sitting at new luma position ``f*j + off``, is interpolated at input chroma
coordinate ``u = ((f*j + off + 0.5)/s - 0.5 - off)/f = j/s + c``. ``u`` advances by exactly one
input sample every ``s`` outputs, so each of the ``s`` output phases is one fixed set of taps.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..imresize import cubic

# siting name -> (horizontal offset, vertical offset) in luma samples, as FFmpeg names them.
SITINGS: dict[str, tuple[float, float]] = {
    "left": (0.0, 0.5),        # MPEG-2 / H.264 / HEVC default for 4:2:0
    "center": (0.5, 0.5),      # MPEG-1 / JPEG
    "topleft": (0.0, 0.0),     # BT.2020 / DV
    "top": (0.5, 0.0),
    "bottomleft": (0.0, 1.0),
    "bottom": (0.5, 1.0),
}
_ALIASES = {"unspecified": "left", "centre": "center", "mpeg2": "left", "mpeg1": "center",
            "jpeg": "center"}


def siting_offsets(siting: str) -> tuple[float, float]:
    """``(horizontal, vertical)`` chroma offsets in luma samples for a siting name."""
    key = _ALIASES.get(siting.lower(), siting.lower())
    if key not in SITINGS:
        raise InputError(f"unknown chroma siting {siting!r} (one of {', '.join(SITINGS)})")
    return SITINGS[key]


def sample_positions(n_out: int, scale: int, factor: int, offset: float,
                     out_offset: float | None = None) -> np.ndarray:
    """Input chroma coordinate of every output chroma sample along one axis: input chroma sits
    ``offset`` luma samples from its block's first luma sample, output chroma ``out_offset``
    (default: the same siting)."""
    out_offset = offset if out_offset is None else out_offset
    if factor == 1:
        offset = out_offset = 0.0  # not subsampled on this axis: chroma is co-sited with luma
    j = np.arange(n_out, dtype=np.float64)
    return ((factor * j + out_offset + 0.5) / scale - 0.5 - offset) / factor


@lru_cache(maxsize=64)
def phase_taps(scale: int, factor: int, offset: float,
               out_offset: float | None = None) -> tuple[np.ndarray, int]:
    """``(taps, first)``: ``scale x T`` cubic weights per output phase over input offsets
    ``first .. first+T-1`` relative to the phase's base sample."""
    u = sample_positions(scale, scale, factor, offset, out_offset)  # output block q = 0
    lo = int(np.floor(u.min())) - 1
    hi = int(np.floor(u.max())) + 2
    offs = np.arange(lo, hi + 1)
    w = cubic(u[:, None] - offs[None, :])
    w = w / w.sum(axis=1, keepdims=True)
    return w, lo


def _pad_crop(first: int, taps: int, n: int) -> tuple[int, int, int]:
    """Replicate padding ``(before, after)`` and the crop start so that tap ``t`` of output
    block ``q`` reads input sample ``clip(q + first + t)``."""
    before, after = max(-first, 0), max(first + taps - 1, 0)
    return before, after, before + first


def sited_taps(scale: int, siting: str, subsampling: tuple[int, int],
               out_siting: str | None = None) -> tuple[np.ndarray, int, np.ndarray, int]:
    """``(vertical taps, first, horizontal taps, first)`` (``phase_taps``) for chroma sited
    ``siting`` in and ``out_siting`` (default the same) out."""
    off_x, off_y = siting_offsets(siting)
    out_x, out_y = siting_offsets(out_siting or siting)
    fy, fx = subsampling
    wy, first_y = phase_taps(scale, fy, off_y if fy > 1 else 0.0, out_y if fy > 1 else 0.0)
    wx, first_x = phase_taps(scale, fx, off_x if fx > 1 else 0.0, out_x if fx > 1 else 0.0)
    return wy, first_y, wx, first_x


def upscale_plane_float(x: torch.Tensor, scale: int, siting: str = "left",
                        subsampling: tuple[int, int] = (2, 2),
                        out_siting: str | None = None) -> torch.Tensor:
    """Upscale ``N x C x H x W`` float planes by ``scale`` (float out), from chroma sited
    ``siting`` to ``out_siting`` (default: the same).

    ``subsampling`` is ``(vertical, horizontal)``: (2, 2) for 4:2:0, (1, 2) for 4:2:2.
    """
    wy, first_y, wx, first_x = sited_taps(scale, siting, subsampling, out_siting)
    n, c, h, w = x.shape
    s = scale
    ty, tx = wy.shape[1], wx.shape[1]
    by, ay, sy = _pad_crop(first_y, ty, h)
    bx, ax, sx = _pad_crop(first_x, tx, w)
    if x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad:
        return _polyphase_cv2(x, s, wy, wx, (by, ay, sy), (bx, ax, sx))
    y = F.pad(x.reshape(n * c, 1, h, w), (bx, ax, by, ay), mode="replicate")
    y = y[:, :, sy:sy + h + ty - 1, sx:sx + w + tx - 1]
    ky = torch.as_tensor(wy, dtype=x.dtype, device=x.device).view(s, 1, ty, 1)
    kx = torch.as_tensor(wx, dtype=x.dtype, device=x.device).view(s, 1, 1, tx)
    y = F.conv2d(y, ky)                                              # (nc, s, h, w + tx - 1)
    y = F.conv2d(y.reshape(n * c * s, 1, h, w + tx - 1), kx)         # (nc*s, s, h, w)
    y = y.reshape(n * c, s * s, h, w)  # channel = row_phase * s + col_phase
    return F.pixel_shuffle(y, s).reshape(n, c, h * s, w * s)


def _polyphase_cv2(x: torch.Tensor, s: int, wy: np.ndarray, wx: np.ndarray,
                   pad_y: tuple[int, int, int], pad_x: tuple[int, int, int]) -> torch.Tensor:
    """``upscale_plane_float`` on the CPU: each output phase one separable OpenCV filter over
    the replicate-padded plane (the same taps and sums as the two convolutions, several times
    faster than oneDNN's single-channel ones on small planes)."""
    import cv2

    n, c, h, w = x.shape
    (by, ay, sy), (bx, ax, sx) = pad_y, pad_x
    ty, tx = wy.shape[1], wx.shape[1]
    ky = [np.ascontiguousarray(k, dtype=np.float32) for k in wy]
    kx = [np.ascontiguousarray(k, dtype=np.float32) for k in wx]
    planes = x.reshape(n * c, h, w).numpy()
    out = np.empty((n * c, h * s, w * s), np.float32)
    for i, plane in enumerate(planes):
        p = cv2.copyMakeBorder(plane, by, ay, bx, ax, cv2.BORDER_REPLICATE)
        p = np.ascontiguousarray(p[sy:sy + h + ty - 1, sx:sx + w + tx - 1])
        for py in range(s):
            for px in range(s):
                # anchor (0, 0): output (q, r) = sum over taps of p[q + t, r + u] (no flip)
                phase = cv2.sepFilter2D(p, cv2.CV_32F, kx[px], ky[py], anchor=(0, 0),
                                        borderType=cv2.BORDER_CONSTANT)
                out[i, py::s, px::s] = phase[:h, :w]
    return torch.from_numpy(out).reshape(n, c, h * s, w * s)


def quantize(x: torch.Tensor, bit_depth: int) -> torch.Tensor:
    """Round half up and clip a float tensor on the code-value scale, in place; returns it."""
    return x.add_(0.5).floor_().clamp_(0.0, float((1 << bit_depth) - 1))


def to_codes(x: torch.Tensor, bit_depth: int, gain: float = 1.0) -> np.ndarray:
    """``round_half_up(clip(x * gain))`` as a uint8/uint16 numpy array; modifies ``x`` (CPU).

    Three passes: ``x*gain + 0.5`` in one, the clip, then the integer conversion, whose
    truncation is the floor for the non-negative values left after the clip.
    """
    maxv = float((1 << bit_depth) - 1)
    torch.add(torch.tensor(0.5, dtype=x.dtype), x, alpha=gain, out=x)
    x.clamp_(0.0, maxv)
    return x.to(torch.uint8 if bit_depth == 8 else torch.uint16).numpy()


def code_dtype(bit_depth: int) -> np.dtype:
    """The numpy dtype planes of this bit depth are stored in."""
    if bit_depth == 8:
        return np.dtype(np.uint8)
    if 8 < bit_depth <= 16:
        return np.dtype(np.uint16)
    raise InputError(f"unsupported bit depth {bit_depth} (8 to 16)")


def check_plane(p: np.ndarray, bit_depth: int, what: str) -> None:
    """Raise ``InputError`` unless ``p`` is a 2-D plane of the dtype ``bit_depth`` implies."""
    if not isinstance(p, np.ndarray):
        raise InputError(f"{what} must be a numpy array, got {type(p).__name__}")
    if p.ndim != 2:
        raise InputError(f"{what} must be a 2-D plane, got shape {p.shape}")
    if p.size == 0:
        raise InputError(f"{what} is empty ({p.shape[0]}x{p.shape[1]})")
    if p.dtype != code_dtype(bit_depth):
        raise InputError(f"{what} for bit depth {bit_depth} must be {code_dtype(bit_depth)}, "
                         f"got {p.dtype}")
