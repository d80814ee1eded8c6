"""ECBSR (Zhang, Zeng, Zhang, ACM MM 2021): five-branch training form and plain deploy form.

The training form sums five branches per block (3x3 conv, 1x1->3x3 expand-squeeze, and 1x1
followed by scaled Sobel-x, Sobel-y and Laplacian masks). Each 1x1 output is padded with a ring
filled with the 1x1 conv's bias, so that the merged zero-padded 3x3 conv equals the training form
everywhere, borders included. ``ECBSR.reparameterize()`` returns the equivalent ``PlainSR``.

Training runs the five-branch parameterisation but, by default, not the five-branch arithmetic:
each block's forward merges its branches into one 3x3 kernel (a few small tensor ops, kept in
the autograd graph) and applies a single conv ("online re-parameterisation", as in OREPA, Hu et
al., CVPR 2022). The function and the gradient reaching every branch parameter are the same as
the branch-by-branch forward, up to float rounding, so the optimisation is the paper's; one conv
instead of about 3.5x its multiply-adds per block makes a training step 3.5-4x faster on a CPU
(`vidsr bench --train`). ``online_merge=False`` keeps the branch-by-branch forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_MASKS = {
    "sobelx": [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]],
    "sobely": [[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]],
    "laplacian": [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]],
}


def _pad_with_bias(y: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Pad one pixel on every side, filling the ring with the per-channel ``bias``."""
    ring = bias.view(1, -1, 1, 1).expand(y.shape[0], -1, y.shape[2] + 2, y.shape[3] + 2)
    out = ring.clone()
    out[:, :, 1:-1, 1:-1] = y
    return out


class SeqConv3x3(nn.Module):
    """A 1x1 conv followed by a 3x3 conv (learned, or a fixed mask with learned scale and bias)."""

    def __init__(self, kind: str, in_ch: int, out_ch: int, depth_multiplier: int = 2) -> None:
        super().__init__()
        self.kind = kind
        self.in_ch, self.out_ch = in_ch, out_ch
        if kind == "conv1x1-conv3x3":
            mid = out_ch * depth_multiplier
            self.conv0 = nn.Conv2d(in_ch, mid, 1)
            self.conv1 = nn.Conv2d(mid, out_ch, 3)
        elif kind in _MASKS:
            self.conv0 = nn.Conv2d(in_ch, out_ch, 1)
            self.scale = nn.Parameter(torch.randn(out_ch, 1, 1, 1) * 1e-3)
            self.bias = nn.Parameter(torch.randn(out_ch) * 1e-3)
            mask = torch.tensor(_MASKS[kind]).expand(out_ch, 1, 3, 3).clone()
            self.register_buffer("mask", mask, persistent=False)
        else:
            raise ValueError(f"unknown SeqConv3x3 kind {kind!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _pad_with_bias(self.conv0(x), self.conv0.bias)
        if self.kind == "conv1x1-conv3x3":
            return self.conv1(y)
        return F.conv2d(y, self.scale * self.mask, self.bias, groups=self.out_ch)

    def merged(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (kernel, bias) of the single zero-padded 3x3 conv equal to this branch."""
        k0, b0 = self.conv0.weight, self.conv0.bias
        if self.kind == "conv1x1-conv3x3":
            k1, b1 = self.conv1.weight, self.conv1.bias
        else:
            k1 = torch.zeros(self.out_ch, self.out_ch, 3, 3, dtype=k0.dtype, device=k0.device)
            idx = torch.arange(self.out_ch, device=k0.device)
            k1[idx, idx] = (self.scale * self.mask)[:, 0]
            b1 = self.bias
        # Compose the 3x3 kernel with the 1x1: out x mid x 3 x 3  *  mid x in  ->  out x in x 3 x 3
        kernel = F.conv2d(k1, k0.permute(1, 0, 2, 3))
        field = b0.view(1, -1, 1, 1).expand(1, -1, 3, 3)
        bias = F.conv2d(field, k1).view(-1) + b1
        return kernel, bias


class ECB(nn.Module):
    """Edge-oriented convolution block in training form (five parallel branches)."""

    def __init__(self, in_ch: int, out_ch: int, *, depth_multiplier: int = 2,
                 with_idt: bool = False, online_merge: bool = True) -> None:
        super().__init__()
        self.in_ch, self.out_ch = in_ch, out_ch
        self.with_idt = with_idt and in_ch == out_ch
        self.online_merge = online_merge
        self.conv3x3 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.conv1x1_3x3 = SeqConv3x3("conv1x1-conv3x3", in_ch, out_ch, depth_multiplier)
        self.conv1x1_sbx = SeqConv3x3("sobelx", in_ch, out_ch)
        self.conv1x1_sby = SeqConv3x3("sobely", in_ch, out_ch)
        self.conv1x1_lpl = SeqConv3x3("laplacian", in_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.online_merge:
            kernel, bias = self.merged()
            return F.conv2d(x, kernel, bias, padding=1)
        return self.forward_branches(x)

    def forward_branches(self, x: torch.Tensor) -> torch.Tensor:
        """The block computed branch by branch, as the paper draws it (the reference form)."""
        y = (self.conv3x3(x) + self.conv1x1_3x3(x) + self.conv1x1_sbx(x)
             + self.conv1x1_sby(x) + self.conv1x1_lpl(x))
        if self.with_idt:
            y = y + x
        return y

    def merged(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (kernel, bias) of one zero-padded 3x3 conv equal to the whole block."""
        kernel, bias = self.conv3x3.weight.clone(), self.conv3x3.bias.clone()
        for branch in (self.conv1x1_3x3, self.conv1x1_sbx, self.conv1x1_sby, self.conv1x1_lpl):
            k, b = branch.merged()
            kernel = kernel + k
            bias = bias + b
        if self.with_idt:
            idx = torch.arange(self.out_ch, device=kernel.device)
            kernel[idx, idx, 1, 1] += 1.0
        return kernel, bias


class PlainSR(nn.Module):
    """The deploy form: a plain 3x3 conv stack with PReLU, global residual and pixel shuffle.

    Layers: ``convs[0]`` 1->C, ``convs[1..M]`` C->C, ``convs[M+1]`` C->s*s (linear). A PReLU with
    one slope per channel follows every conv but the last.
    """

    def __init__(self, m: int, c: int, scale: int) -> None:
        super().__init__()
        self.m, self.c, self.scale = m, c, scale
        chans = [1] + [c] * (m + 1) + [scale * scale]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans[:-1], chans[1:], strict=True)
        )
        self.acts = nn.ModuleList(nn.PReLU(num_parameters=c) for _ in range(m + 1))
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for conv, act in zip(self.convs[:-1], self.acts, strict=True):
            y = act(conv(y))
        y = self.convs[-1](y) + x
        return self.shuffle(y)


class ECBSR(nn.Module):
    """ECBSR, training form: ECB(1->C), M x ECB(C->C), ECB(C->s*s), residual, shuffle.

    ``online_merge`` (default) runs each block as its merged 3x3 conv; ``False`` runs the five
    branches one by one. Both hold the same parameters and compute the same function.
    """

    def __init__(self, m: int, c: int, scale: int, *, with_idt: bool = False,
                 online_merge: bool = True) -> None:
        super().__init__()
        self.m, self.c, self.scale, self.with_idt = m, c, scale, with_idt
        chans = [1] + [c] * (m + 1) + [scale * scale]
        self.blocks = nn.ModuleList(
            ECB(a, b, with_idt=with_idt, online_merge=online_merge)
            for a, b in zip(chans[:-1], chans[1:], strict=True)
        )
        self.acts = nn.ModuleList(nn.PReLU(num_parameters=c) for _ in range(m + 1))
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for block, act in zip(self.blocks[:-1], self.acts, strict=True):
            y = act(block(y))
        y = self.blocks[-1](y) + x
        return self.shuffle(y)

    @torch.no_grad()
    def absorb(self, plain: PlainSR) -> None:
        """Make this training form compute ``plain``'s function, in place.

        The edge branches keep their values (a fresh initialisation keeps its random 1x1 convs
        and small mask scales, so every branch still receives gradient); each block's plain
        3x3 branch takes the difference between ``plain``'s kernel and the other branches'
        merged kernel. ``self.reparameterize()`` then returns ``plain``'s weights, up to float
        rounding. This is how a run starts from deploy-form weights (recipe ``init_weights``).
        """
        if (plain.m, plain.c, plain.scale) != (self.m, self.c, self.scale):
            raise ValueError(f"cannot absorb an M{plain.m}C{plain.c} x{plain.scale} net into "
                             f"M{self.m}C{self.c} x{self.scale}")
        for block, conv in zip(self.blocks, plain.convs, strict=True):
            kernel, bias = block.merged()
            block.conv3x3.weight.add_(conv.weight.to(kernel) - kernel)
            block.conv3x3.bias.add_(conv.bias.to(bias) - bias)
        for src, dst in zip(plain.acts, self.acts, strict=True):
            dst.weight.copy_(src.weight)

    @torch.no_grad()
    def reparameterize(self) -> PlainSR:
        """Return the deploy-form ``PlainSR`` computing the same function."""
        ref = self.blocks[0].conv3x3.weight
        plain = PlainSR(self.m, self.c, self.scale).to(device=ref.device, dtype=ref.dtype)
        for block, conv in zip(self.blocks, plain.convs, strict=True):
            kernel, bias = block.merged()
            conv.weight.copy_(kernel)
            conv.bias.copy_(bias)
        for src, dst in zip(self.acts, plain.acts, strict=True):
            dst.weight.copy_(src.weight)
        return plain.eval()
