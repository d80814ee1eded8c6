"""Starting points for training: edge-SR filter banks initialised to the bicubic upscaler, or
the weights of an earlier run.

The authors' initialisation (centre tap 1) starts edge-SR near a nearest-neighbour upscaler, and
with 291 training images eSR-MAX then spends many steps below bicubic. Setting every *value*
filter to the MATLAB bicubic phase kernel (plus a little noise, so the channels can differ)
starts the network at bicubic quality: the max of equal values, or any softmax-weighted mean of
them, is that value whatever the keys and queries are.

Measured here, it helps eSR-MAX (the max routes each pixel's gradient to one channel, so the
channels soon differ) but slows eSR-TM/TR: equal values get equal updates and the keys see almost
no gradient, so the TM/TR recipes keep the authors' initialisation.

``init = "weights"`` starts from deploy-form weights (a model's shipped file or one ``vidsr
train`` wrote): edge-SR nets load them as they are, ECBSR absorbs them into its training form
(``ECBSR.absorb``). A new run from weights takes a fresh optimizer state, like a warm restart.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..imresize import phase_kernels
from ..models.ecbsr import ECBSR
from ..models.edgesr import _EdgeSR
from ..registry import ModelSpec

INITS = ("default", "bicubic", "weights")


def bicubic_filters(scale: int, k: int) -> torch.Tensor:
    """``s*s x 1 x k x k``: for each pixel-shuffle phase ``r*s + c``, the bicubic 2-D kernel."""
    if k < 5:
        raise ValueError("the bicubic kernel needs K >= 5")
    taps = phase_kernels(scale)
    out = np.zeros((scale * scale, 1, k, k))
    lo = k // 2 - 2
    for r in range(scale):
        for c in range(scale):
            out[r * scale + c, 0, lo:lo + 5, lo:lo + 5] = np.outer(taps[r], taps[c])
    return torch.tensor(out, dtype=torch.float32)


def load_start(model: nn.Module, start: nn.Module) -> None:
    """Give the training ``model`` the function of the deploy-form ``start`` (same spec)."""
    with torch.no_grad():
        if isinstance(model, ECBSR):
            model.absorb(start)
        else:
            model.load_state_dict(start.state_dict(), strict=True)


def apply_init(model: nn.Module, spec: ModelSpec, init: str, noise: float,
               start: nn.Module | None = None) -> None:
    """Re-initialise ``model`` in place according to the recipe's ``init`` (uses torch's RNG);
    ``init = "weights"`` takes the deploy-form model ``start``."""
    if init == "default":
        return
    if init == "weights":
        if start is None:
            raise ValueError("init 'weights' needs the model to start from")
        load_start(model, start)
        return
    if not isinstance(model, _EdgeSR) or model.k < 5:
        raise ValueError(f"init {init!r} needs an eSR-MAX/TM/TR model with K >= 5, "
                         f"not {spec.name}")
    s, c = spec.scale, model.c
    base = bicubic_filters(s, model.k)  # (s*s, 1, k, k)
    with torch.no_grad():
        w = model.filter.weight  # (groups*C*s*s, 1, k, k); value block first
        value = base.repeat(c, 1, 1, 1)  # channel i*s*s + phase
        w[: c * s * s] = value + noise * torch.randn_like(value)
