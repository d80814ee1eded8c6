"""Device-neutral reformulations of the deploy models (plain PyTorch ops, any dtype).

``ReduceFirstEdgeSR`` computes edge-SR's max/softmax reduction over the ``C`` channels per
sub-pixel phase *before* the pixel shuffle, so only the 1-channel result is shuffled: the
reference shuffles a ``g*s*s*C``-channel tensor and reduces over a strided view of it. The GPU
PyTorch path uses it (with half precision and channels-last); the CPU has its own strip-GEMM form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.edgesr import ESRCNN, ESRTM, ESRTR, ESRMax


class ReduceFirstEdgeSR(nn.Module):
    """The same function as an ``ESRMax``/``ESRTM``/``ESRTR``/``ESRCNN``, reduced before shuffle."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        if isinstance(module, ESRCNN):
            self.body: nn.Module = module.cnn
            self.mode, self.groups = "tm", 2
        elif type(module) in (ESRMax, ESRTM, ESRTR):
            self.body = module.filter
            self.mode = {ESRMax: "max", ESRTM: "tm", ESRTR: "tr"}[type(module)]
            self.groups = module.groups
        else:
            raise TypeError(f"not an edge-SR model: {type(module).__name__}")
        self.scale, self.c = module.scale, module.c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        n, _, h, w = y.shape
        s = self.scale
        # conv channel (grp*C + c)*s*s + phase  ->  (n, grp, c, phase, h, w)
        y = y.reshape(n, self.groups, self.c, s * s, h, w)
        if self.mode == "max":
            r = y[:, 0].amax(dim=1)
        else:
            key = y[:, 1] if self.mode == "tm" else y[:, 1] * y[:, 2]
            r = (y[:, 0] * torch.softmax(key, dim=1)).sum(dim=1)
        return F.pixel_shuffle(r, s)  # (n, s*s, h, w) -> (n, 1, sh, sw)
