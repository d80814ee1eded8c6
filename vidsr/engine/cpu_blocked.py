"""Plain ECBSR on the CPU with columns grouped in blocks: fewer, wider convolutions for oneDNN.

At 16 channels a 3x3 convolution uses little of a core: oneDNN's bf16 kernels (AMX or
AVX512-BF16) are built for channel counts in the tens and hundreds. Grouping every ``B`` adjacent
columns into one pixel of ``B*C`` channels ("space to depth" along the rows only) turns each
``C -> C`` 3x3 conv into a ``B*C -> B*C`` conv with a 3-row by 2-block kernel: output block ``j``
(image columns ``a+1+B*j .. a+B*j+B``) reads input blocks ``j`` and ``j+1`` (columns
``a+B*j .. a+B*j+2B-1``), which hold every column it touches. That costs ``2B/3`` times the
multiply-adds, and on a Sapphire Rapids core (``python scripts/bench_blocked.py``, two runs, a
252x640 band) one bf16 16-channel conv ran 1.66-1.70x faster at ``B = 2``, the whole
ecbsr-m4c16 net 1.14-1.25x (its PReLUs take as long as before), ecbsr-m4c8 at ``B = 4``
1.32-1.59x; in fp32 only 8 channels gain (m4c8 at ``B = 2``: 1.25-1.28x).

Each block conv is a *valid* convolution in the column direction (no column padding): the block
grid moves one column right per layer and loses one block. So the input is padded with ``L``
zero columns on the left (``L`` = the number of convs) and enough on the right, and after each
layer the columns that fall outside the image are set to zero, which is what ``Conv2d(padding=1)``
would have read there. Rows keep their ordinary zero padding. The result equals the plain stack
to the rounding of the dtype (exactly, in the fp32 tests).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# ``prelu(y, slope)``: the activation applied in place to a channels-last conv output
Activation = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def block_weight(w: torch.Tensor, block: int) -> torch.Tensor:
    """A ``(co, ci, 3, 3)`` conv weight as the ``(B*co, B*ci, 3, 2)`` weight of the column-block
    form: channel ``q*C + c`` is channel ``c`` of column ``q`` in a block; output block ``j``
    reads input blocks ``j`` (kx = 0) and ``j + 1`` (kx = 1), one column to the left of it."""
    co, ci = w.shape[:2]
    wb = torch.zeros(block, co, block, ci, 3, 2, dtype=w.dtype)
    for qo in range(block):
        for qi in range(block):
            for kx in range(2):
                # input column - output column = block*kx + qi - qo - 1, the 3x3 tap minus 1
                tap = block * kx + qi - qo
                if 0 <= tap <= 2:
                    wb[qo, :, qi, :, :, kx] = w[:, :, :, tap]
    return wb.reshape(block * co, block * ci, 3, 2)


class ColumnBlocked:
    """The conv stack of a ``PlainSR`` (weights, biases and slopes as fp32 lists, already
    sign-folded where the runner needs it) in the column-block form, for oneDNN.

    ``__call__(x, act)`` takes ``N x 1 x H x W`` float32 and writes ``convs(x) + x``, pixel-shuffled
    by ``scale``, into a reused ``N x 1 x sH x sW`` float32 buffer, which it returns.
    """

    def __init__(self, weights: list[torch.Tensor], biases: list[torch.Tensor],
                 slopes: list[torch.Tensor], scale: int, dtype: torch.dtype, block: int) -> None:
        if block < 2:
            raise ValueError("block must be 2 or more (1 is the plain stack)")
        self.block, self.scale, self.dtype = block, scale, dtype
        self.layers = len(weights)
        self.weights = [block_weight(w, block).to(dtype) for w in weights]
        self.biases = [b.repeat(block).to(dtype) for b in biases]
        self.slopes = [a.repeat(block).to(dtype).view(1, -1, 1, 1) for a in slopes]
        self.key: tuple[int, ...] = ()
        self.packed: list[torch.Tensor] = []
        self.xp: torch.Tensor | None = None
        self.out: torch.Tensor | None = None

    def _prepare(self, n: int, h: int, w: int) -> None:
        if self.key == (n, h, w):
            return
        b, layers = self.block, self.layers
        self.blocks_out = -(-w // b)  # blocks of the last layer (alignment 0)
        self.blocks_in = self.blocks_out + layers  # each layer loses one block
        # left pad: `layers` columns, so layer k's output starts at column k + 1 - layers
        self.xp = torch.zeros(n, h, b * self.blocks_in, dtype=self.dtype)
        self.packed = [
            torch.ops.mkldnn._reorder_convolution_weight(
                wt, [1, 0], [1, 1], [1, 1], 1, [n, wt.shape[1], h, self.blocks_in - k])
            for k, wt in enumerate(self.weights)]
        self.out = torch.empty(n, 1, h * self.scale, w * self.scale)
        self.key = (n, h, w)

    def __call__(self, x: torch.Tensor, act: Activation) -> torch.Tensor:
        n, _, h, w = x.shape
        self._prepare(n, h, w)
        assert self.xp is not None and self.out is not None
        b, layers, s = self.block, self.layers, self.scale
        self.xp[:, :, layers:layers + w] = x[:, 0]  # the zero columns around it stay zero
        # (n, h, blocks, B) memory read as (n, B, h, blocks) channels-last
        y = self.xp.view(n, h, self.blocks_in, b).permute(0, 3, 1, 2)
        for k in range(layers):
            y = torch.ops.mkldnn._convolution_pointwise(
                y, self.packed[k], self.biases[k], [1, 0], [1, 1], [1, 1], 1, "none", [None], "")
            if k == layers - 1:
                break
            y = act(y, self.slopes[k])
            # the output's columns, in image order: (n, h, column, C), starting at column `left`
            cols = y.permute(0, 2, 3, 1).view(n, h, -1, y.shape[1] // b)
            left = k + 1 - layers
            cols[:, :, :-left] = 0
            cols[:, :, w - left:] = 0
        # y: (n, h, block, column in block, phase row, phase column) in memory, from column 0
        phases = y.permute(0, 2, 3, 1).reshape(n, h, -1, s, s)[:, :, :w]
        # out[y*s + i, x*s + j] = phases[y, x, i, j] + x[y, x]  (fp32: the residual is exact)
        torch.add(phases.permute(0, 1, 3, 2, 4), x.reshape(n, h, 1, w, 1),
                  out=self.out.view(n, h, s, w, s))
        return self.out
