"""Tile indexing shared by the one-tile-per-program kernels (chroma polyphase, edge-SR)."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def tile_pixels(tiles_w, tiles_per_frame, BH: tl.constexpr, BW: tl.constexpr):
    """This program's frame index and the row / column of each of its ``BH * BW`` pixels."""
    t = tl.program_id(0)
    n = t // tiles_per_frame
    r = t % tiles_per_frame
    pix = tl.arange(0, BH * BW)
    y = (r // tiles_w) * BH + pix // BW
    x = (r % tiles_w) * BW + pix % BW
    return n, y, x
