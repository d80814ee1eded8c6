"""edge-SR (Navarrete Michelini, Lu, Jiang, WACV 2022): one-layer upscalers read as attention.

Each model is a KxK (or small CNN) filter bank producing ``k*s*s*C`` channels, a pixel shuffle,
and a reduction over the ``C`` channels of every output pixel: a max (eSR-MAX), a softmax-weighted
sum with a key (eSR-TM), with a query-key product (eSR-TR), or eSR-TM fed by a tiny tanh CNN
(eSR-CNN). After the shuffle, channel ``i`` of group ``g`` comes from conv channel
``(g*C + i)*s*s + phase``, so value/key/query are contiguous blocks of ``C*s*s`` conv channels.
"""

from __future__ import annotations

import torch
from torch import nn


def _init_centre_one(conv: nn.Conv2d) -> None:
    """The authors' initialisation: Xavier-normal, then every filter's centre tap set to 1."""
    nn.init.xavier_normal_(conv.weight, gain=1.0)
    kh, kw = conv.kernel_size
    with torch.no_grad():
        conv.weight[:, :, kh // 2, kw // 2] = 1.0


class _EdgeSR(nn.Module):
    groups = 1  # value (+ key) (+ query): how many C-channel groups the filter bank produces
    padding_mode = "zeros"

    def __init__(self, scale: int, k: int, c: int) -> None:
        super().__init__()
        self.scale, self.k, self.c = scale, k, c
        self.filter = nn.Conv2d(1, self.groups * scale * scale * c, k, padding=k // 2, bias=False,
                                padding_mode=self.padding_mode)
        _init_centre_one(self.filter)
        self.shuffle = nn.PixelShuffle(scale)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(self.shuffle(self.filter(x)), self.c, dim=1)


class ESRMax(_EdgeSR):
    """eSR-MAX: ``max_c`` of the shuffled filter bank.

    The input is padded by replicating its edge pixels (the authors zero-pad): a max over
    filters picks whichever one reacts most to the artificial step at a zero border, which
    draws bright lines along the frame edges. Training leaves the patch borders out of the loss
    (recipe ``margin`` >= K//2), so the learned filters never see padding either way.
    """

    padding_mode = "replicate"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.filter(x)).amax(dim=1, keepdim=True)


class ESRTM(_EdgeSR):
    """eSR-TM (template matching): ``sum_c V_c * softmax_c(K_c)``."""

    groups = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, key = self._split(x)
        return (value * torch.softmax(key, dim=1)).sum(dim=1, keepdim=True)


class ESRTR(_EdgeSR):
    """eSR-TR (transformer-like): ``sum_c V_c * softmax_c(Q_c * K_c)``."""

    groups = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, query, key = self._split(x)
        return (value * torch.softmax(query * key, dim=1)).sum(dim=1, keepdim=True)


class ESRCNN(nn.Module):
    """eSR-CNN: 5x5 conv 1->D, tanh, 3x3 conv D->S, tanh, 3x3 conv S->2*s*s*C, then eSR-TM."""

    def __init__(self, scale: int, c: int, d: int, s: int) -> None:
        super().__init__()
        self.scale, self.c, self.d, self.s = scale, c, d, s
        self.cnn = nn.Sequential(
            nn.Conv2d(1, d, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(d, s, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(s, 2 * scale * scale * c, 3, padding=1, bias=False),
        )
        for layer in self.cnn:
            if isinstance(layer, nn.Conv2d):
                nn.init.xavier_normal_(layer.weight, gain=1.0)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, key = torch.split(self.shuffle(self.cnn(x)), self.c, dim=1)
        return (value * torch.softmax(key, dim=1)).sum(dim=1, keepdim=True)
