"""Separable polyphase upscaling of integer planes by an integer factor (the chroma bicubic).

Output sample ``q*s + p`` along an axis is ``sum_t taps[p, t] * in[clip(q + first + t)]``: the
caller passes one row of taps per output phase, so any chroma siting works (centred taps from
``vidsr.imresize.phase_kernels`` with ``first = -2``, or the engine's sited taps). Edges are
replicated by clamping the indices. A program gathers, for a block of input pixels, each of the
vertical taps' rows of horizontal taps once, filters horizontally for every column phase, then
accumulates the vertical taps for every row phase, and writes all ``s x s`` outputs rounded and
clipped to the bit depth. The arithmetic runs in fp32 on code values.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from .runtime import PlannedKernel, next_pow2, record_build
from .tiles import tile_pixels

record_build()


@triton.jit
def _polyphase_kernel(
    x_ptr, o_ptr, th_ptr, tv_ptr, H, W, sxn, sxh, son, soh, tiles_w, tiles_per_frame,
    first_h, first_v, max_val,
    S: tl.constexpr, SP: tl.constexpr, THP: tl.constexpr, TV: tl.constexpr,
    BH: tl.constexpr, BW: tl.constexpr,
):
    P: tl.constexpr = BH * BW
    n, y, x = tile_pixels(tiles_w, tiles_per_frame, BH, BW)
    j = tl.arange(0, THP)
    ph = tl.arange(0, SP)
    xs = tl.minimum(tl.maximum(x[:, None] + first_h + j[None, :], 0), W - 1)
    taps_h = tl.load(th_ptr + ph[None, :] * THP + j[:, None])  # (THP, SP), zero padded
    xf = x_ptr + n.to(tl.int64) * sxn
    acc = tl.zeros((P, SP, SP), tl.float32)
    for i in tl.static_range(TV):
        ys = tl.minimum(tl.maximum(y + first_v + i, 0), H - 1)
        row = tl.load(xf + ys[:, None] * sxh + xs).to(tl.float32)  # (P, THP)
        hsum = tl.sum(row[:, :, None] * taps_h[None, :, :], axis=1)  # (P, SP): column phases
        tv = tl.load(tv_ptr + ph * TV + i)  # (SP,): this tap for each row phase
        acc += tv[None, :, None] * hsum[:, None, :]
    q = tl.floor(tl.minimum(tl.maximum(acc, 0.0), max_val) + 0.5).to(tl.int32)
    oy = y[:, None, None] * S + ph[None, :, None]
    ox = x[:, None, None] * S + ph[None, None, :]
    keep = ((y < H) & (x < W))[:, None, None] & (ph < S)[None, :, None] & (ph < S)[None, None, :]
    of = o_ptr + n.to(tl.int64) * son
    tl.store(of + oy * soh + ox, q.to(o_ptr.dtype.element_ty), mask=keep)


def _as_taps(taps: np.ndarray | torch.Tensor, scale: int) -> np.ndarray:
    arr = np.asarray(taps.detach().cpu() if isinstance(taps, torch.Tensor) else taps,
                     dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != scale:
        raise ValueError(f"taps must be scale x T = {scale} x T, got shape {arr.shape}")
    return arr


class PolyphaseUpscaler(PlannedKernel):
    """Prepacked taps for the polyphase kernel; keeps one copy of them per device.

    ``dtype`` is accepted for the same keywords as the model kernels and ignored: the arithmetic
    is fp32 on code values (exact enough for 16-bit planes).
    """

    def __init__(self, scale: int, taps_h: np.ndarray | torch.Tensor,
                 taps_v: np.ndarray | torch.Tensor, *, first_h: int | None = None,
                 first_v: int | None = None, block_h: int = 8, block_w: int = 32,
                 num_warps: int = 4, dtype: torch.dtype | None = None) -> None:
        th, tv = _as_taps(taps_h, scale), _as_taps(taps_v, scale)
        self.scale = scale
        self.sp = next_pow2(scale)
        self.thp = next_pow2(th.shape[1])
        self.tv_len = tv.shape[1]
        self.first_h = -(th.shape[1] // 2) if first_h is None else int(first_h)
        self.first_v = -(tv.shape[1] // 2) if first_v is None else int(first_v)
        host_h = np.zeros((self.sp, self.thp), np.float32)
        host_h[:scale, : th.shape[1]] = th
        host_v = np.zeros((self.sp, self.tv_len), np.float32)
        host_v[:scale] = tv
        self._host = (torch.from_numpy(host_h), torch.from_numpy(host_v))
        self._dev: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        if (block_h * block_w) & (block_h * block_w - 1):
            raise ValueError("block_h * block_w must be a power of two")
        self.block_h, self.block_w, self.num_warps = block_h, block_w, num_warps

    def plan(self, frames: torch.Tensor, result: torch.Tensor, depth: int) -> tuple:
        """``(kernel, grid, args, constexprs)`` of the launch for checked ``N x H x W`` frames."""
        n, h, w = frames.shape
        key = str(frames.device)
        if key not in self._dev:
            self._dev[key] = tuple(t.to(frames.device) for t in self._host)
        th, tv = self._dev[key]
        tiles_w = -(-w // self.block_w)
        per_frame = -(-h // self.block_h) * tiles_w
        args = (frames, result, th, tv, h, w, frames.stride(0), frames.stride(1),
                result.stride(0), result.stride(1), tiles_w, per_frame, self.first_h,
                self.first_v, float((1 << depth) - 1))
        consts = dict(S=self.scale, SP=self.sp, THP=self.thp, TV=self.tv_len, BH=self.block_h,
                      BW=self.block_w, num_warps=self.num_warps)
        return _polyphase_kernel, (n * per_frame,), args, consts

