"""The whole ECBSR deploy stack (``PlainSR``) as one Triton kernel.

Each program owns a tile of ``tile_h`` output rows by ``tile_w - 2*halo`` columns (``halo`` = the
number of 3x3 convs, ``M + 2``) and computes every layer over the tile plus its halo, so the frame
is read once as integers and the pixel-shuffled result written once as integers. Intermediate
activations live in a per-program scratch (two ping-pong buffers of ``(tile_h + 2*halo) x tile_w``
pixels by ``C`` channels, fp16 on the GPU) that stays in L1/L2: Triton cannot shift register
tensors, so a 3x3 conv re-reads its nine shifted neighbourhoods from that scratch. The C->C convs
are nine ``tl.dot`` calls per row chunk (pixels x C_in @ C_in x C_out, fp32 accumulation), the
1->C conv is nine outer products, the C->s*s conv a dot padded to 16 output columns. The grid is
persistent (a few programs per SM loop over the tiles of every frame), which bounds the scratch.
Zero padding is exact: each layer's output outside the image is forced to zero before the next
layer reads it, as ``Conv2d(padding=1)`` sees it.
"""

from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ..models.ecbsr import PlainSR
from .runtime import (
    PlannedKernel,
    dot_precision,
    kernels_interpreted,
    next_pow2,
    program_cap,
    record_build,
)

record_build()
log = logging.getLogger(__name__)


@triton.jit
def _w3x3(w_ptr, tap, ch, cout, CP: tl.constexpr, NOUT: tl.constexpr):
    """One tap's ``CP x NOUT`` weight tile of a ``[tap, CP, NOUT]`` pack."""
    return tl.load(w_ptr + (tap * CP + ch[:, None]) * NOUT + cout[None, :])


@triton.jit
def _tap_dot(src, w_ptr, acc, rows_off, ch, cout, tap, PW: tl.constexpr, CP: tl.constexpr,
             NOUT: tl.constexpr, PREC: tl.constexpr, CACHE: tl.constexpr):
    """``acc`` plus one tap of a 3x3 conv: the scratch rows at ``rows_off`` shifted by the tap,
    times its weight tile."""
    off = (tap // 3 - 1) * PW + (tap % 3 - 1)
    a = tl.load(src + (rows_off + off)[:, None] * CP + ch[None, :], cache_modifier=CACHE)
    return tl.dot(a, _w3x3(w_ptr, tap, ch, cout, CP, NOUT), acc, input_precision=PREC)


@triton.jit
def _conv_taps(src, w_ptr, acc, rows_off, ch, cout, PW: tl.constexpr, CP: tl.constexpr,
               NOUT: tl.constexpr, PREC: tl.constexpr, UNROLL: tl.constexpr,
               CACHE: tl.constexpr):
    """``acc`` plus the 3x3 conv of the scratch rows at ``rows_off``: nine shifted reads, nine
    dots (``w_ptr`` is ``[tap, CP, NOUT]``). ``UNROLL`` unrolls the taps (the loads are then
    plain, cacheable reads rather than a software-pipelined loop's asynchronous copies)."""
    if UNROLL:
        for tap in tl.static_range(9):
            acc = _tap_dot(src, w_ptr, acc, rows_off, ch, cout, tap, PW, CP, NOUT, PREC, CACHE)
    else:
        for tap in range(9):
            acc = _tap_dot(src, w_ptr, acc, rows_off, ch, cout, tap, PW, CP, NOUT, PREC, CACHE)
    return acc


@triton.jit
def _first_conv(acc, xf, gy, gx, H, W, sxh, inv_max, w0_ptr, ch, CP: tl.constexpr):
    """``acc`` plus the 1 -> C conv at pixels (``gy``, ``gx``), straight from the integer
    frame (zero outside it); ``w0_ptr`` is ``[tap, CP]``."""
    for tap in tl.static_range(9):
        yy = gy + (tap // 3 - 1)
        xx = gx + (tap % 3 - 1)
        m = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
        v = tl.load(xf + yy * sxh + xx, mask=m, other=0).to(tl.float32) * inv_max
        acc += v[:, None] * tl.load(w0_ptr + tap * CP + ch)[None, :]
    return acc


@triton.jit
def _tile(t, x_ptr, sxn, W, cols, tiles_per_frame, tiles_w, TH: tl.constexpr,
          TW: tl.constexpr, HALO: tl.constexpr):
    """Tile ``t``: its frame ``n``, padded top row ``y0``, the frame's base pointer, the image
    column of each of ``cols`` (tile columns) and whether it lies inside the image."""
    n = t // tiles_per_frame
    r = t % tiles_per_frame
    gx = (r % tiles_w) * TW - HALO + cols
    return n, (r // tiles_w) * TH - HALO, x_ptr + n.to(tl.int64) * sxn, gx, (gx >= 0) & (gx < W)


@triton.jit
def _emit(acc, ok, gy, gx, xf, sxh, inv_max, max_val, o_ptr, n, son, soh, ph,
          S: tl.constexpr):
    """The last conv's ``acc`` (pixels x s*s phases) plus the input pixel (the residual),
    clipped, rounded to codes and pixel-shuffled into the output frame where ``ok``."""
    xres = tl.load(xf + gy * sxh + gx, mask=ok, other=0).to(tl.float32) * inv_max
    v = tl.minimum(tl.maximum(acc + xres[:, None], 0.0), 1.0)
    q = tl.floor(v * max_val + 0.5).to(tl.int32)
    oy = gy[:, None] * S + (ph // S)[None, :]
    ox = gx[:, None] * S + (ph % S)[None, :]
    tl.store(o_ptr + n.to(tl.int64) * son + oy * soh + ox, q.to(o_ptr.dtype.element_ty),
             mask=ok[:, None] & (ph < S * S)[None, :])


@triton.jit
def _plainsr_kernel(
    x_ptr, o_ptr, w0_ptr, b_ptr, a_ptr, wm_ptr, wl_ptr, bl_ptr, scratch_ptr,
    H, W, sxn, sxh, son, soh, tiles_w, tiles_per_frame, n_tiles, inv_max, max_val,
    M: tl.constexpr, CP: tl.constexpr, NP: tl.constexpr, S: tl.constexpr,
    TH: tl.constexpr, PW: tl.constexpr, PH: tl.constexpr, ROWS: tl.constexpr,
    HALO: tl.constexpr, PREC: tl.constexpr, UNROLL: tl.constexpr, CACHE: tl.constexpr,
):
    TW: tl.constexpr = PW - 2 * HALO
    P: tl.constexpr = ROWS * PW
    PAD: tl.constexpr = PW + 1  # a guard row (+1) each side: shifted reads never leave the buffer
    BUF: tl.constexpr = (PH * PW + 2 * PAD) * CP
    cdt = scratch_ptr.dtype.element_ty
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    base = scratch_ptr + pid.to(tl.int64) * (2 * BUF)
    pix = tl.arange(0, P)
    prow = pix // PW
    pcol = pix % PW
    ch = tl.arange(0, CP)
    ph = tl.arange(0, NP)
    for t in range(pid, n_tiles, nprog):
        n, y0, xf, gx, col_in = _tile(t, x_ptr, sxn, W, pcol, tiles_per_frame, tiles_w, TH, TW,
                                      HALO)
        tl.debug_barrier()  # the previous tile's last layer may still read buffer 0
        # Layer 0 (1 -> C) straight from the integer frame.
        for r0 in range(0, PH, ROWS):
            gy = y0 + r0 + prow
            acc = tl.zeros((P, CP), tl.float32) + tl.load(b_ptr + ch)[None, :]
            acc = _first_conv(acc, xf, gy, gx, H, W, sxh, inv_max, w0_ptr, ch, CP)
            slope = tl.load(a_ptr + ch)
            acc = tl.where(acc >= 0, acc, acc * slope[None, :])
            inside = (gy >= 0) & (gy < H) & col_in
            acc = tl.where(inside[:, None], acc, 0.0)
            tl.store(base + (PAD + r0 * PW + pix)[:, None] * CP + ch[None, :], acc.to(cdt))
        tl.debug_barrier()
        # Layers 1..M (C -> C); layer l+1 is only needed at distance >= l+2 from the tile edge.
        for l in range(M):
            src = base + (l % 2) * BUF
            dst = base + ((l + 1) % 2) * BUF
            bias = tl.load(b_ptr + (l + 1) * CP + ch)
            slope = tl.load(a_ptr + (l + 1) * CP + ch)
            for r0 in range(((l + 2) // ROWS) * ROWS, PH - l - 2, ROWS):
                acc = tl.zeros((P, CP), tl.float32) + bias[None, :]
                acc = _conv_taps(src, wm_ptr + l * 9 * CP * CP, acc, PAD + r0 * PW + pix, ch, ch,
                                 PW, CP, CP, PREC, UNROLL, CACHE)
                acc = tl.where(acc >= 0, acc, acc * slope[None, :])
                gy = y0 + r0 + prow
                inside = (gy >= 0) & (gy < H) & col_in
                acc = tl.where(inside[:, None], acc, 0.0)
                tl.store(dst + (PAD + r0 * PW + pix)[:, None] * CP + ch[None, :], acc.to(cdt))
            tl.debug_barrier()
        # Last layer (C -> s*s), residual, shuffle and quantisation, on the tile's own rows.
        src = base + (M % 2) * BUF
        for r0 in range(HALO, HALO + TH, ROWS):
            acc = tl.zeros((P, NP), tl.float32) + tl.load(bl_ptr + ph)[None, :]
            acc = _conv_taps(src, wl_ptr, acc, PAD + r0 * PW + pix, ch, ph,
                             PW, CP, NP, PREC, UNROLL, CACHE)
            gy = y0 + r0 + prow
            ok = (gy >= 0) & (gy < H) & col_in & (pcol >= HALO) & (pcol < HALO + TW)
            _emit(acc, ok, gy, gx, xf, sxh, inv_max, max_val, o_ptr, n, son, soh, ph, S)


@triton.jit
def _w9(w_ptr, ch, cout, CP: tl.constexpr, NOUT: tl.constexpr):
    """The nine tap tiles of a ``[tap, CP, NOUT]`` pack, tap = (dy + 1) * 3 + (dx + 1)."""
    return (_w3x3(w_ptr, 0, ch, cout, CP, NOUT), _w3x3(w_ptr, 1, ch, cout, CP, NOUT),
            _w3x3(w_ptr, 2, ch, cout, CP, NOUT), _w3x3(w_ptr, 3, ch, cout, CP, NOUT),
            _w3x3(w_ptr, 4, ch, cout, CP, NOUT), _w3x3(w_ptr, 5, ch, cout, CP, NOUT),
            _w3x3(w_ptr, 6, ch, cout, CP, NOUT), _w3x3(w_ptr, 7, ch, cout, CP, NOUT),
            _w3x3(w_ptr, 8, ch, cout, CP, NOUT))


@triton.jit
def _stream_row(xm, x0, xp, acc_a, acc_b, bias, w0, w1, w2, w3, w4, w5, w6, w7, w8,
                PREC: tl.constexpr):
    """One input row (read at dx = -1, 0, +1) into the three output rows it touches: row
    i-1 (``acc_a``, taps dy=+1, now complete), row i (``acc_b``, dy=0) and row i+1 (a new
    accumulator from ``bias``, dy=-1). Returns the three."""
    acc_a = tl.dot(xm, w6, acc_a, input_precision=PREC)
    acc_a = tl.dot(x0, w7, acc_a, input_precision=PREC)
    acc_a = tl.dot(xp, w8, acc_a, input_precision=PREC)
    acc_b = tl.dot(xm, w3, acc_b, input_precision=PREC)
    acc_b = tl.dot(x0, w4, acc_b, input_precision=PREC)
    acc_b = tl.dot(xp, w5, acc_b, input_precision=PREC)
    acc_c = tl.zeros_like(acc_b) + bias[None, :]
    acc_c = tl.dot(xm, w0, acc_c, input_precision=PREC)
    acc_c = tl.dot(x0, w1, acc_c, input_precision=PREC)
    acc_c = tl.dot(xp, w2, acc_c, input_precision=PREC)
    return acc_a, acc_b, acc_c


@triton.jit
def _row3(src, i, pix, ch, PW: tl.constexpr, CP: tl.constexpr, CACHE: tl.constexpr):
    """Scratch row ``i`` read at column offsets -1, 0, +1 (one guard pixel before row 0)."""
    base = src + (1 + i * PW + pix)[:, None] * CP + ch[None, :]
    return (tl.load(base - CP, cache_modifier=CACHE), tl.load(base, cache_modifier=CACHE),
            tl.load(base + CP, cache_modifier=CACHE))


@triton.jit
def _plainsr_stream_kernel(
    x_ptr, o_ptr, w0_ptr, b_ptr, a_ptr, wm_ptr, wl_ptr, bl_ptr, scratch_ptr,
    H, W, sxn, sxh, son, soh, tiles_w, tiles_per_frame, n_tiles, inv_max, max_val,
    M: tl.constexpr, CP: tl.constexpr, NP: tl.constexpr, S: tl.constexpr,
    TH: tl.constexpr, PW: tl.constexpr, PH: tl.constexpr,
    HALO: tl.constexpr, PREC: tl.constexpr, CACHE: tl.constexpr,
):
    """The line-buffer form of ``_plainsr_kernel``: each 3x3 conv streams down the tile one
    image row at a time. An input row is read once per horizontal offset (three reads, not nine)
    and feeds the three output rows it touches, whose accumulators travel down the loop; the row
    above is then complete and stored. Dots are ``PW x C @ C x C``; no vertical chunking."""
    TW: tl.constexpr = PW - 2 * HALO
    BUF: tl.constexpr = (PH * PW + 2) * CP  # one guard pixel each end of the buffer
    cdt = scratch_ptr.dtype.element_ty
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    base = scratch_ptr + pid.to(tl.int64) * (2 * BUF)
    pix = tl.arange(0, PW)
    ch = tl.arange(0, CP)
    ph = tl.arange(0, NP)
    for t in range(pid, n_tiles, nprog):
        n, y0, xf, gx, col_in = _tile(t, x_ptr, sxn, W, pix, tiles_per_frame, tiles_w, TH, TW,
                                      HALO)
        tl.debug_barrier()  # the previous tile's last layer may still read buffer 0
        # Layer 0 (1 -> C), every row of the padded tile, straight from the integer frame.
        bias = tl.load(b_ptr + ch)
        slope = tl.load(a_ptr + ch)
        for i in range(0, PH):
            gy = y0 + i + pix * 0  # as a row vector: masks of one dtype
            acc = tl.zeros((PW, CP), tl.float32) + bias[None, :]
            acc = _first_conv(acc, xf, gy, gx, H, W, sxh, inv_max, w0_ptr, ch, CP)
            acc = tl.where(acc >= 0, acc, acc * slope[None, :])
            acc = tl.where(((gy >= 0) & (gy < H) & col_in)[:, None], acc, 0.0)
            tl.store(base + (1 + i * PW + pix)[:, None] * CP + ch[None, :], acc.to(cdt))
        tl.debug_barrier()
        # Layers 1..M (C -> C): layer k is valid on rows k .. PH-1-k of the tile.
        for l in range(M):
            src = base + (l % 2) * BUF
            dst = base + ((l + 1) % 2) * BUF
            w0, w1, w2, w3, w4, w5, w6, w7, w8 = _w9(wm_ptr + l * 9 * CP * CP, ch, ch, CP, CP)
            bias = tl.load(b_ptr + (l + 1) * CP + ch)
            slope = tl.load(a_ptr + (l + 1) * CP + ch)
            lo = l + 1
            # acc_a: output row i-1 (taps dy=+1), acc_b: row i (dy=0), acc_c: row i+1 (dy=-1)
            acc_a = tl.zeros((PW, CP), tl.float32) + bias[None, :]
            acc_b = tl.zeros((PW, CP), tl.float32) + bias[None, :]
            for i in range(lo - 1, PH - lo + 1):
                xm, x0_, xp = _row3(src, i, pix, ch, PW, CP, CACHE)
                acc_a, acc_b, acc_c = _stream_row(xm, x0_, xp, acc_a, acc_b, bias, w0, w1, w2,
                                                  w3, w4, w5, w6, w7, w8, PREC)
                gy = y0 + i - 1 + pix * 0
                out = tl.where(acc_a >= 0, acc_a, acc_a * slope[None, :])
                out = tl.where(((gy >= 0) & (gy < H) & col_in)[:, None], out, 0.0)
                tl.store(dst + (1 + (i - 1) * PW + pix)[:, None] * CP + ch[None, :],
                         out.to(cdt), mask=((gy - y0) >= lo)[:, None])
                acc_a = acc_b
                acc_b = acc_c
            tl.debug_barrier()
        # Last layer (C -> s*s), residual, shuffle and quantisation, on the tile's own rows.
        src = base + (M % 2) * BUF
        w0, w1, w2, w3, w4, w5, w6, w7, w8 = _w9(wl_ptr, ch, ph, CP, NP)
        bias = tl.load(bl_ptr + ph)
        col_ok = col_in & (pix >= HALO) & (pix < HALO + TW)
        acc_a = tl.zeros((PW, NP), tl.float32) + bias[None, :]
        acc_b = tl.zeros((PW, NP), tl.float32) + bias[None, :]
        for i in range(HALO - 1, HALO + TH + 1):
            xm, x0_, xp = _row3(src, i, pix, ch, PW, CP, CACHE)
            acc_a, acc_b, acc_c = _stream_row(xm, x0_, xp, acc_a, acc_b, bias, w0, w1, w2, w3,
                                              w4, w5, w6, w7, w8, PREC)
            gy = y0 + i - 1 + pix * 0
            ok = col_ok & (gy >= 0) & (gy < H) & ((gy - y0) >= HALO)
            _emit(acc_a, ok, gy, gx, xf, sxh, inv_max, max_val, o_ptr, n, son, soh, ph, S)
            acc_a = acc_b
            acc_b = acc_c


@triton.jit
def _plainsr_wave_kernel(
    x_ptr, o_ptr, w0_ptr, b_ptr, a_ptr, wm_ptr, wl_ptr, bl_ptr, scratch_ptr,
    H, W, sxn, sxh, son, soh, tiles_w, tiles_per_frame, n_tiles, inv_max, max_val,
    M: tl.constexpr, CP: tl.constexpr, NP: tl.constexpr, S: tl.constexpr,
    TH: tl.constexpr, PW: tl.constexpr, PH: tl.constexpr,
    HALO: tl.constexpr, PREC: tl.constexpr, CACHE: tl.constexpr,
):
    """The wavefront form: all layers advance down the tile together, layer k one row behind
    layer k-1, so each layer keeps only a ring of its last three rows (a few KB a program, which
    can stay in L1) instead of the whole tile, and a tile can be tall at no extra scratch."""
    TW: tl.constexpr = PW - 2 * HALO
    ROW: tl.constexpr = PW + 2  # a ring row: one guard pixel each side
    RING: tl.constexpr = 3 * ROW * CP
    cdt = scratch_ptr.dtype.element_ty
    pid = tl.program_id(0)
    nprog = tl.num_programs(0)
    base = scratch_ptr + pid.to(tl.int64) * ((M + 1) * RING)
    pix = tl.arange(0, PW)
    ch = tl.arange(0, CP)
    ph = tl.arange(0, NP)
    for t in range(pid, n_tiles, nprog):
        n, y0, xf, gx, col_in = _tile(t, x_ptr, sxn, W, pix, tiles_per_frame, tiles_w, TH, TW,
                                      HALO)
        col_ok = col_in & (pix >= HALO) & (pix < HALO + TW)
        tl.debug_barrier()  # the previous tile's last rows may still be read
        for step in range(0, PH + M + 1):
            # layer 0 at row `step`, straight from the integer frame
            if step < PH:
                gy = y0 + step + pix * 0
                acc = tl.zeros((PW, CP), tl.float32) + tl.load(b_ptr + ch)[None, :]
                acc = _first_conv(acc, xf, gy, gx, H, W, sxh, inv_max, w0_ptr, ch, CP)
                acc = tl.where(acc >= 0, acc, acc * tl.load(a_ptr + ch)[None, :])
                acc = tl.where(((gy >= 0) & (gy < H) & col_in)[:, None], acc, 0.0)
                tl.store(base + ((step % 3) * ROW + 1 + pix)[:, None] * CP + ch[None, :],
                         acc.to(cdt))
            tl.debug_barrier()
            # layer k at row step - k, from layer k-1's rows above, at and below it
            for k in tl.static_range(1, M + 1):
                j = step - k
                if (j >= k) & (j <= PH - 1 - k):
                    src = base + (k - 1) * RING
                    acc = tl.zeros((PW, CP), tl.float32) + tl.load(b_ptr + k * CP + ch)[None, :]
                    for tap in tl.static_range(9):
                        r = (j + (tap // 3 - 1)) % 3
                        a = tl.load(src + (r * ROW + 1 + (tap % 3 - 1) + pix)[:, None] * CP
                                    + ch[None, :], cache_modifier=CACHE)
                        acc = tl.dot(a, _w3x3(wm_ptr + (k - 1) * 9 * CP * CP, tap, ch, ch, CP, CP),
                                     acc, input_precision=PREC)
                    acc = tl.where(acc >= 0, acc, acc * tl.load(a_ptr + k * CP + ch)[None, :])
                    gy = y0 + j + pix * 0
                    acc = tl.where(((gy >= 0) & (gy < H) & col_in)[:, None], acc, 0.0)
                    tl.store(base + k * RING + ((j % 3) * ROW + 1 + pix)[:, None] * CP
                             + ch[None, :], acc.to(cdt))
                tl.debug_barrier()
            # last layer (C -> s*s) at row step - M - 1: residual, shuffle, quantisation
            j = step - (M + 1)
            if (j >= HALO) & (j < HALO + TH):
                src = base + M * RING
                acc = tl.zeros((PW, NP), tl.float32) + tl.load(bl_ptr + ph)[None, :]
                for tap in tl.static_range(9):
                    r = (j + (tap // 3 - 1)) % 3
                    a = tl.load(src + (r * ROW + 1 + (tap % 3 - 1) + pix)[:, None] * CP
                                + ch[None, :], cache_modifier=CACHE)
                    acc = tl.dot(a, _w3x3(wl_ptr, tap, ch, ph, CP, NP), acc,
                                 input_precision=PREC)
                gy = y0 + j + pix * 0
                ok = col_ok & (gy >= 0) & (gy < H)
                _emit(acc, ok, gy, gx, xf, sxh, inv_max, max_val, o_ptr, n, son, soh, ph, S)


# fp16 keeps ~11 significant bits, relative to each activation's size. Networks whose
# activations stay within this bound on a probe frame keep 8- and 10-bit output within one code
# value; a random high-gain net (activations in the thousands) does not, and runs in fp32.
FP16_PEAK = 8.0


@torch.no_grad()
def activation_peak(model: PlainSR, size: int = 64) -> float:
    """The largest |activation| (every layer, the last before the residual) on a probe frame."""
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, size)
    x = (0.5 * (ramp[None, :] + ramp[:, None]) + 0.2 * torch.randn(size, size, generator=g))
    h = x.clamp(0, 1)[None, None]
    peak = 0.0
    acts = copy.deepcopy(model.acts).float().cpu()  # the probe runs on the CPU, like the convs
    for conv, act in zip(model.convs[:-1], acts, strict=True):
        h = act(F.conv2d(h, conv.weight.float().cpu(), conv.bias.float().cpu(), padding=1))
        peak = max(peak, h.abs().max().item())
    last = F.conv2d(h, model.convs[-1].weight.float().cpu(), model.convs[-1].bias.float().cpu(),
                    padding=1)
    return max(peak, last.abs().max().item())


def _pick_dtype(device: torch.device, bit_depth: int, peak: float) -> torch.dtype:
    # 12-bit and deeper output needs fp32 (exact ieee dots) to stay within one code value.
    if device.type != "cuda" or bit_depth > 10 or peak > FP16_PEAK:
        return torch.float32
    return torch.float16


class FusedPlainSR(PlannedKernel):
    """A ``PlainSR`` prepacked for the fused kernel; call it on integer luma planes.

    ``tile_h`` output rows per tile (a multiple of ``rows``), ``tile_w`` the padded tile width
    including the halo (a power of two; default the smallest of 64, 128, ... at least 4x the
    halo), ``rows`` the image rows per dot chunk (default: 8 * num_warps / C rounded up to a
    power of two for fp16, a quarter of that for fp32, what compiles without register spills
    for sm_90), ``dtype`` the on-chip compute type (default fp16 on CUDA for <= 10-bit when the
    network's activations stay small on a probe frame, see ``FP16_PEAK``, else fp32),
    ``num_warps``, ``per_sm`` persistent programs per multiprocessor, ``num_stages`` Triton's
    software pipelining depth for the loops (None: Triton's default), ``unroll`` unrolls the
    nine taps of each conv, ``cache`` the cache modifier of the scratch reads (``""``,
    ``".ca"``, ``".cg"``, ``".cv"``), ``variant`` ``"chunks"`` (each conv over chunks of
    ``rows`` rows, nine shifted reads each), ``"stream"`` (``_plainsr_stream_kernel``: row by
    row, three reads a row) or ``"wave"`` (``_plainsr_wave_kernel``: all layers a row apart,
    three-row rings); the last two not yet timed on a GPU.

    Defaults (4 warps, 2 rows at C=16, 3 programs per SM) from the sweep on an H200 with Triton
    3.6 (``python -m vidsr.kernels.bench --sweep``; ecbsr-m4c16-x2, 1080p): 0.985 ms a frame,
    against 1.42 ms for the earlier 8 warps and one program per SM (ncu: one 8-warp block per SM
    at 136 registers a thread, 12.5% occupancy). 4 rows at 2 programs per SM measured 0.827 ms
    there, but spills under Triton 3.9 (255 registers and 192 bytes of stack for sm_90; see
    ``vidsr.kernels.aot``); pass ``rows=4, per_sm=2`` where it compiles clean. The scratch is
    kept per CUDA stream, so one instance may run on several streams, but not from two threads
    on the same stream.
    """

    def __init__(self, model: PlainSR, *, dtype: torch.dtype | None = None, tile_h: int = 32,
                 tile_w: int | None = None, rows: int | None = None, num_warps: int = 4,
                 per_sm: int = 3, num_stages: int | None = None, unroll: bool = False,
                 cache: str = "", variant: str = "chunks") -> None:
        self.m, self.c, self.scale = model.m, model.c, model.scale
        self.halo = self.m + 2
        self.cp = max(16, next_pow2(self.c))
        self.np = max(16, next_pow2(self.scale * self.scale))
        # the wavefront's scratch does not grow with the tile: wider tiles cost it nothing, and
        # at 64 columns it spills a little for sm_90 (Triton 3.9: 255 registers, 16 B of stack)
        self.tile_w = tile_w or max(128 if variant == "wave" else 64, next_pow2(4 * self.halo))
        if self.tile_w & (self.tile_w - 1) or self.tile_w - 2 * self.halo < 1:
            raise ValueError(f"tile_w must be a power of two above {2 * self.halo}")
        if rows is not None and (rows & (rows - 1) or tile_h % rows):
            raise ValueError("rows must be a power of two dividing tile_h")
        if tile_h & (tile_h - 1):
            raise ValueError("tile_h must be a power of two")
        self.tile_h, self.rows = tile_h, rows
        if variant not in ("chunks", "stream", "wave"):
            raise ValueError(f"variant must be 'chunks', 'stream' or 'wave', got {variant!r}")
        self.variant = variant
        if cache not in ("", ".ca", ".cg", ".cv"):
            raise ValueError(f"cache must be '', '.ca', '.cg' or '.cv', got {cache!r}")
        self.dtype, self.num_warps, self.per_sm = dtype, num_warps, per_sm
        self.num_stages, self.unroll, self.cache = num_stages, unroll, cache
        self._host = self._pack(model)
        self.peak = activation_peak(model)
        if dtype is None and self.peak > FP16_PEAK:
            log.info("ECBSR activations reach %.1f (> %.0f): the fused kernel computes in fp32",
                     self.peak, FP16_PEAK)
        self._packed: dict[tuple, tuple[torch.Tensor, ...]] = {}
        self._scratch: dict[tuple, torch.Tensor] = {}

    @torch.no_grad()
    def _pack(self, model: PlainSR) -> dict[str, torch.Tensor]:
        m, c, cp, np_, s2 = self.m, self.c, self.cp, self.np, self.scale ** 2
        convs = [conv.weight.detach().float().cpu() for conv in model.convs]
        biases = [conv.bias.detach().float().cpu() for conv in model.convs]
        w0 = torch.zeros(9, cp)
        w0[:, :c] = convs[0][:, 0].reshape(c, 9).t()
        b = torch.zeros(m + 1, cp)
        a = torch.zeros(m + 1, cp)
        for i in range(m + 1):
            b[i, :c] = biases[i]
            a[i, :c] = model.acts[i].weight.detach().float().cpu().expand(c)
        wm = torch.zeros(max(m, 1), 9, cp, cp)
        for i in range(m):  # [layer, tap, c_in, c_out]
            wm[i, :, :c, :c] = convs[i + 1].permute(2, 3, 1, 0).reshape(9, c, c)
        wl = torch.zeros(9, cp, np_)
        wl[:, :c, :s2] = convs[-1].permute(2, 3, 1, 0).reshape(9, c, s2)
        bl = torch.zeros(np_)
        bl[:s2] = biases[-1]
        return {"w0": w0, "b": b, "a": a, "wm": wm, "wl": wl, "bl": bl}

    def _weights(self, device: torch.device, cdt: torch.dtype) -> tuple[torch.Tensor, ...]:
        key = (str(device), cdt)
        if key not in self._packed:
            h = self._host
            self._packed[key] = (
                h["w0"].to(device), h["b"].to(device), h["a"].to(device),
                h["wm"].to(device, cdt), h["wl"].to(device, cdt), h["bl"].to(device))
        return self._packed[key]

    def rows_for(self, cdt: torch.dtype) -> int:
        """Image rows per dot chunk for compute type ``cdt``."""
        if self.rows is not None:
            return self.rows
        if kernels_interpreted():
            return min(self.tile_h, 8)  # no registers to spare there; fewer, larger numpy ops
        # rows x channels per chunk in proportion to the warps: the per-thread accumulator stays
        # the size that compiles without spills for sm_90 (Triton 3.9: 204-209 registers)
        budget = (64 if cdt.itemsize == 2 else 16) * self.num_warps // 8
        return min(self.tile_h, max(1, budget // self.cp))

    def geometry(self, h: int, w: int, rows: int) -> tuple[int, int, int]:
        """``(tile_h, tile_w, padded_h)`` for an ``h x w`` frame: the configured tile, shrunk
        to the frame where the frame is smaller (a tile mostly outside the image is waste)."""
        th = min(self.tile_h, -(-h // rows) * rows)
        pw = self.tile_w
        while pw // 2 > 2 * self.halo and pw // 2 >= w + 2 * self.halo:
            pw //= 2
        return th, pw, -(-(th + 2 * self.halo) // rows) * rows

    def _scratch_for(self, device: torch.device, cdt: torch.dtype, nprog: int,
                     pw: int, ph: int) -> torch.Tensor:
        if self.variant == "wave":  # a three-row ring per layer
            size = (self.m + 1) * 3 * (pw + 2) * self.cp
        else:  # two whole-tile buffers, guard rows included
            size = 2 * (ph * pw + 2 * (pw + 1)) * self.cp
        # one scratch per stream: launches on different streams may overlap
        stream = torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
        key = (str(device), cdt, stream)
        buf = self._scratch.get(key)
        if buf is None or buf.numel() < nprog * size:
            # zeros, not empty: guard rows are read (into results that are discarded) and must
            # not hold NaNs that a dot could spread along a row
            buf = torch.zeros(nprog * size, dtype=cdt, device=device)
            self._scratch[key] = buf
        return buf

    def plan(self, frames: torch.Tensor, result: torch.Tensor, depth: int) -> tuple:
        """``(kernel, grid, args, constexprs)`` of the launch for checked ``N x H x W`` frames."""
        n, h, w = frames.shape
        cdt = self.dtype or _pick_dtype(frames.device, depth, self.peak)
        w0, b, a, wm, wl, bl = self._weights(frames.device, cdt)
        by_row = self.variant in ("stream", "wave")  # no row chunks: one image row at a time
        rows = 1 if by_row else self.rows_for(cdt)
        th, pw, ph = self.geometry(h, w, rows)
        tiles_w = -(-w // (pw - 2 * self.halo))
        per_frame = -(-h // th) * tiles_w
        n_tiles = n * per_frame
        nprog = min(n_tiles, program_cap(frames.device, self.per_sm))
        scratch = self._scratch_for(frames.device, cdt, nprog, pw, ph)
        max_val = float((1 << depth) - 1)
        args = (frames, result, w0, b, a, wm, wl, bl, scratch,
                h, w, frames.stride(0), frames.stride(1), result.stride(0), result.stride(1),
                tiles_w, per_frame, n_tiles, 1.0 / max_val, max_val)
        consts = dict(M=self.m, CP=self.cp, NP=self.np, S=self.scale, TH=th, PW=pw, PH=ph,
                      HALO=self.halo, PREC=dot_precision(cdt, exact=True), CACHE=self.cache,
                      num_warps=self.num_warps)
        if not by_row:
            consts.update(ROWS=rows, UNROLL=self.unroll)
        if self.num_stages is not None:
            consts["num_stages"] = self.num_stages
        kernel = {"chunks": _plainsr_kernel, "stream": _plainsr_stream_kernel,
                  "wave": _plainsr_wave_kernel}[self.variant]
        return kernel, (nprog,), args, consts

