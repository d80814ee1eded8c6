"""Overlapping tiles: run a network on a frame piece by piece with no seams.

Each tile's input is its core region grown by the network's receptive-field radius (the
``halo``), clipped at the frame edge. Every output pixel of the core then sees exactly the input
it sees in a whole-frame run; where a tile touches the frame edge the network's own padding
applies as it would on the whole frame. Tiled output therefore equals untiled output up to
floating-point summation order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from ..imresize import BicubicUpsample


def receptive_radius(module: nn.Module) -> int:
    """How many input pixels beyond a pixel can influence its output (sum of conv radii)."""
    if isinstance(module, BicubicUpsample):
        return 3
    radius = 0
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            dh, dw = m.dilation
            radius += max(dh * (kh // 2), dw * (kw // 2))
    return radius


def tiles(h: int, w: int, tile: int, halo: int) -> Iterator[tuple[slice, slice, slice, slice]]:
    """``(in_rows, in_cols, core_rows, core_cols)`` per tile: the input window (core plus halo,
    clipped) and the core's position inside that window, both in input pixels."""
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            t0, l0 = max(top - halo, 0), max(left - halo, 0)
            b0, r0 = min(bottom + halo, h), min(right + halo, w)
            yield (slice(t0, b0), slice(l0, r0),
                   slice(top - t0, bottom - t0), slice(left - l0, right - l0))


def run_tiled(runner: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, scale: int,
              tile: int, halo: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """Run ``runner`` (``N x 1 x h x w -> N x 1 x sh x sw``) over ``x`` in overlapping tiles of
    at most ``tile`` core pixels a side; writes into ``out`` when given."""
    n, c, h, w = x.shape
    s = scale
    if out is None:
        out = torch.empty(n, c, h * s, w * s, dtype=x.dtype, device=x.device)
    for rows, cols, core_r, core_c in tiles(h, w, tile, halo):
        y = runner(x[:, :, rows, cols].contiguous())
        top, left = rows.start + core_r.start, cols.start + core_c.start
        out[:, :, top * s:(top + core_r.stop - core_r.start) * s,
            left * s:(left + core_c.stop - core_c.start) * s] = \
            y[:, :, core_r.start * s:core_r.stop * s, core_c.start * s:core_c.stop * s]
    return out
