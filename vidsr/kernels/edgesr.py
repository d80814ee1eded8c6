"""eSR-MAX / eSR-TM / eSR-TR as one Triton kernel each: the KxK filter bank, the pixel shuffle and
the per-pixel reduction over C channels, written straight out as integer output pixels.

A program takes a block of input pixels and gathers their KxK neighbourhoods once into a
``pixels x K*K`` patch matrix (zero padded to a power of two, integers scaled to [0, 1]). Every
filter group (value, key, query) for a chunk of output phases is then one ``tl.dot`` of that
patch matrix with prepacked weights laid out ``[group, tap, phase * CP + channel]``, so the
shuffle costs nothing: a phase is a column block. The reduction over the C channels (max, or a
softmax-weighted sum) runs in fp32 registers and each phase is stored at its shuffled position.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import nn

from ..models.edgesr import ESRTM, ESRTR, ESRMax
from .runtime import (
    PlannedKernel,
    dot_precision,
    next_pow2,
    record_build,
)
from .tiles import tile_pixels

record_build()

MODES = {ESRMax: 0, ESRTM: 1, ESRTR: 2}
GROUPS = {0: 1, 1: 2, 2: 3}


@triton.jit
def _group_dot(a, w_ptr, g, tap, cols, KKP: tl.constexpr, NCOL: tl.constexpr,
               PREC: tl.constexpr):
    w = tl.load(w_ptr + (g * KKP + tap[:, None]) * NCOL + cols[None, :])
    r = tl.dot(a, w, input_precision=PREC)
    return r


@triton.jit
def _edgesr_kernel(
    x_ptr, o_ptr, w_ptr, H, W, sxn, sxh, son, soh, tiles_w, tiles_per_frame, inv_max, max_val,
    K: tl.constexpr, KKP: tl.constexpr, S: tl.constexpr, SP: tl.constexpr, C: tl.constexpr,
    CP: tl.constexpr, PJ: tl.constexpr, MODE: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr,
    PREC: tl.constexpr, REPLICATE: tl.constexpr,
):
    P: tl.constexpr = BH * BW
    NC: tl.constexpr = PJ * CP
    NCOL: tl.constexpr = SP * CP
    cdt = w_ptr.dtype.element_ty
    n, y, x = tile_pixels(tiles_w, tiles_per_frame, BH, BW)
    tap = tl.arange(0, KKP)
    yy = y[:, None] + (tap // K - K // 2)[None, :]
    xx = x[:, None] + (tap % K - K // 2)[None, :]
    if REPLICATE:  # out-of-frame taps read the nearest edge pixel
        yy = tl.minimum(tl.maximum(yy, 0), H - 1)
        xx = tl.minimum(tl.maximum(xx, 0), W - 1)
    m = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W) & (tap < K * K)[None, :]
    xf = x_ptr + n.to(tl.int64) * sxn
    a = (tl.load(xf + yy * sxh + xx, mask=m, other=0).to(tl.float32) * inv_max).to(cdt)
    col = tl.arange(0, NC)
    real = ((col % CP) < C)[None, :]
    jj = tl.arange(0, PJ)
    keep = ((y < H) & (x < W))[:, None]
    of = o_ptr + n.to(tl.int64) * son
    for jc in tl.static_range(SP // PJ):
        cols = jc * NC + col
        v = _group_dot(a, w_ptr, 0, tap, cols, KKP, NCOL, PREC)
        if MODE == 0:
            v = tl.where(real, v, float("-inf"))
            res = tl.max(tl.reshape(v, (P, PJ, CP)), axis=2)
        else:
            if MODE == 1:
                logits = _group_dot(a, w_ptr, 1, tap, cols, KKP, NCOL, PREC)
            else:
                q = _group_dot(a, w_ptr, 1, tap, cols, KKP, NCOL, PREC)
                logits = q * _group_dot(a, w_ptr, 2, tap, cols, KKP, NCOL, PREC)
            logits = tl.reshape(tl.where(real, logits, float("-inf")), (P, PJ, CP))
            e = tl.exp(logits - tl.max(logits, axis=2)[:, :, None])
            v3 = tl.reshape(v, (P, PJ, CP))
            res = tl.sum(v3 * e, axis=2) / tl.sum(e, axis=2)
        j = jc * PJ + jj
        q8 = tl.floor(tl.minimum(tl.maximum(res, 0.0), 1.0) * max_val + 0.5).to(tl.int32)
        oy = y[:, None] * S + (j // S)[None, :]
        ox = x[:, None] * S + (j % S)[None, :]
        tl.store(of + oy * soh + ox, q8.to(o_ptr.dtype.element_ty),
                 mask=keep & (j < S * S)[None, :])


class FusedEdgeSR(PlannedKernel):
    """An eSR-MAX/TM/TR model prepacked for the fused kernel; call it on integer luma planes.

    ``block_h x block_w`` input pixels per program (their product a power of two >= 16),
    ``dtype`` the dot input type (default fp16 on CUDA for <= 10-bit, else fp32).
    """

    def __init__(self, model: nn.Module, *, dtype: torch.dtype | None = None, block_h: int = 4,
                 block_w: int = 32, num_warps: int = 4) -> None:
        self.mode = MODES[type(model)]
        self.groups = GROUPS[self.mode]
        self.replicate = model.filter.padding_mode == "replicate"
        self.scale, self.k, self.c = model.scale, model.k, model.c
        self.kkp = max(16, next_pow2(self.k * self.k))
        self.cp = next_pow2(self.c)
        # phases per dot: enough that a dot has >= 16 output columns (tl.dot's minimum)
        self.pj = max(1, 16 // self.cp)
        self.sp = -(-self.scale ** 2 // self.pj) * self.pj
        if (block_h * block_w) & (block_h * block_w - 1) or block_h * block_w < 16:
            raise ValueError("block_h * block_w must be a power of two >= 16")
        self.block_h, self.block_w = block_h, block_w
        self.dtype, self.num_warps = dtype, num_warps
        self._host = self._pack(model.filter.weight.detach().float().cpu())
        self._packed: dict[tuple, torch.Tensor] = {}

    def _pack(self, weight: torch.Tensor) -> torch.Tensor:
        g, s2, c, k = self.groups, self.scale ** 2, self.c, self.k
        # conv channel (g*C + i)*s*s + phase  ->  [g, tap, phase*CP + i]
        w = weight[:, 0].reshape(g, c, s2, k * k).permute(0, 3, 2, 1)
        packed = torch.zeros(g, self.kkp, self.sp, self.cp)
        packed[:, : k * k, :s2, :c] = w
        return packed.reshape(g, self.kkp, self.sp * self.cp).contiguous()

    def plan(self, frames: torch.Tensor, result: torch.Tensor, depth: int) -> tuple:
        """``(kernel, grid, args, constexprs)`` of the launch for checked ``N x H x W`` frames."""
        n, h, w = frames.shape
        cdt = self.dtype or (torch.float16 if frames.device.type == "cuda" and depth <= 10
                             else torch.float32)
        key = (str(frames.device), cdt)
        if key not in self._packed:
            self._packed[key] = self._host.to(frames.device, cdt)
        tiles_w = -(-w // self.block_w)
        per_frame = -(-h // self.block_h) * tiles_w
        max_val = float((1 << depth) - 1)
        args = (frames, result, self._packed[key], h, w, frames.stride(0), frames.stride(1),
                result.stride(0), result.stride(1), tiles_w, per_frame, 1.0 / max_val, max_val)
        consts = dict(K=self.k, KKP=self.kkp, S=self.scale, SP=self.sp, C=self.c, CP=self.cp,
                      PJ=self.pj, MODE=self.mode, BH=self.block_h, BW=self.block_w,
                      PREC=dot_precision(cdt), REPLICATE=self.replicate,
                      num_warps=self.num_warps)
        return _edgesr_kernel, (n * per_frame,), args, consts

