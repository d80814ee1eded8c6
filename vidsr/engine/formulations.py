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

    def _reduce(self, y: torch.Tensor, dim: int) -> torch.Tensor:
        """Reduce over the C axis ``dim`` of ``y`` whose axis 1 indexes the group."""
        pick = [slice(None)] * y.dim()

        def group(g: int) -> torch.Tensor:
            pick[1] = g
            return y[tuple(pick)]

        if self.mode == "max":
            return group(0).amax(dim=dim - 1)
        key = group(1) if self.mode == "tm" else group(1) * group(2)
        return (group(0) * torch.softmax(key, dim=dim - 1)).sum(dim=dim - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        n, _, h, w = y.shape
        s = self.scale
        if not y.is_contiguous() and y.is_contiguous(memory_format=torch.channels_last):
            # channels-last (GPU fp16 path): stay in NHWC, no layout copy of the big tensor;
            # conv channel (grp*C + c)*s*s + phase -> (n, h, w, grp, c, phase)
            nhwc = y.permute(0, 2, 3, 1).reshape(n, h, w, self.groups, self.c, s * s)
            r = self._reduce(nhwc.permute(0, 3, 1, 2, 4, 5), dim=4)  # (n, h, w, phase)
            return r.reshape(n, h, w, s, s).permute(0, 1, 3, 2, 4).reshape(n, 1, h * s, w * s)
        # conv channel (grp*C + c)*s*s + phase  ->  (n, grp, c, phase, h, w)
        r = self._reduce(y.reshape(n, self.groups, self.c, s * s, h, w), dim=2)
        return F.pixel_shuffle(r, s)  # (n, s*s, h, w) -> (n, 1, sh, sw)


def reduce_first(module: nn.Module) -> nn.Module:
    """``module`` in its reduce-before-shuffle form where it is an edge-SR model (the same
    function), else ``module`` itself."""
    return ReduceFirstEdgeSR(module) if type(module) in (ESRMax, ESRTM, ESRTR, ESRCNN) else module
