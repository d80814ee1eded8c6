"""MATLAB-compatible bicubic resizing (cubic a = -0.5, edge pixels replicated).

``imresize`` reproduces MATLAB's ``imresize(img, scale, 'bicubic')`` on uint8 images: antialiased
(kernel widened by ``1/scale``) when shrinking, one axis at a time (rows first when the scales are
equal), with the result of each pass rounded to uint8. ``BicubicUpsample`` is the same kernel as a
fixed-weight torch module for integer upscaling of float planes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return ((1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2)))


def contributions(in_len: int, out_len: int, scale: float,
                  antialias: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample: the input indices (0-based, replicated at the edges) and their weights."""
    width = 4.0
    if scale < 1 and antialias:
        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * x)
        width = width / scale
    else:
        kernel = cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(axis=1, keepdims=True)
    keep = np.any(weights != 0, axis=0)
    idx, weights = idx[:, keep], weights[:, keep]
    idx = np.clip(idx, 1, in_len).astype(np.int64) - 1
    return idx, weights


def _resize_axis(img: np.ndarray, axis: int, out_len: int, scale: float,
                 antialias: bool) -> np.ndarray:
    idx, weights = contributions(img.shape[axis], out_len, scale, antialias)
    moved = np.moveaxis(img.astype(np.float64), axis, 0)
    out = np.einsum("ot,ot...->o...", weights, moved[idx])
    return np.moveaxis(out, 0, axis)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    # MATLAB rounds half away from zero; values are non-negative after clipping.
    return np.floor(np.clip(x, 0.0, 255.0) + 0.5).astype(np.uint8)


def imresize(img: np.ndarray, scale: float | None = None, *,
             size: tuple[int, int] | None = None, antialias: bool = True) -> np.ndarray:
    """Resize an ``H x W`` or ``H x W x C`` image like MATLAB's bicubic ``imresize``.

    Give ``scale`` (output = ``ceil(scale * size)``) or ``size=(out_h, out_w)``. uint8 input is
    rounded to uint8 after each axis, as MATLAB does; float input stays float.
    """
    h, w = img.shape[:2]
    if size is None:
        if scale is None:
            raise ValueError("give scale or size")
        size = (int(np.ceil(h * scale)), int(np.ceil(w * scale)))
        scales = (float(scale), float(scale))
    else:
        scales = (size[0] / h, size[1] / w)
    is_uint8 = img.dtype == np.uint8
    out = img
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    for axis in order:
        out = _resize_axis(out, axis, size[axis], scales[axis], antialias)
        if is_uint8:
            out = _to_uint8(out)
    return out


def phase_kernels(scale: int) -> np.ndarray:
    """``scale x 5`` taps over input offsets -2..+2 for each output phase of an integer upscale."""
    n = 16  # a line long enough that the middle sample sees no edge
    idx, weights = contributions(n, n * scale, float(scale))
    kernels = np.zeros((scale, 5))
    centre = n // 2
    for p in range(scale):
        row = centre * scale + p
        for i, wt in zip(idx[row], weights[row], strict=True):
            kernels[p, i - centre + 2] += wt
    return kernels


class BicubicUpsample(nn.Module):
    """MATLAB-style bicubic upscale of ``N x C x H x W`` float planes by an integer factor."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        k = torch.tensor(phase_kernels(scale), dtype=torch.float32)
        self.register_buffer("kv", k.view(scale, 1, 5, 1), persistent=False)
        self.register_buffer("kh", k.view(scale, 1, 1, 5), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        s = self.scale
        y = F.pad(x.reshape(n * c, 1, h, w), (2, 2, 2, 2), mode="replicate")
        y = F.conv2d(y, self.kv.to(y.dtype))                      # (n*c, s, h, w+4): row phases
        y = F.conv2d(y.reshape(n * c * s, 1, h, w + 4), self.kh.to(y.dtype))  # (n*c*s, s, h, w)
        y = y.reshape(n * c, s * s, h, w)  # channel = row_phase * s + col_phase
        return F.pixel_shuffle(y, s).reshape(n, c, h * s, w * s)
