"""Geometric self-ensemble: the mean of a model's outputs over the 8 flips and 90-degree rotations.

An SR net is not exactly equivariant to the dihedral group; averaging its 8 transformed
predictions (each transformed back) cancels part of its error, at 8x the cost. Too slow for
video, it serves as a stronger distillation teacher (``teacher_ensemble`` in a recipe) and as
``vidsr eval --self-ensemble``.
"""

from __future__ import annotations

import torch
from torch import nn


class SelfEnsemble(nn.Module):
    """``model`` averaged over the dihedral group D4 (identity included), same output shape."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        if hasattr(model, "spec"):
            self.spec = model.spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for k in range(4):
            for flip in (False, True):
                y = torch.rot90(x, k, (2, 3))
                if flip:
                    y = torch.flip(y, (3,))
                out = self.model(y)
                if flip:
                    out = torch.flip(out, (3,))
                out = torch.rot90(out, -k, (2, 3))
                total = out if total is None else total + out
        assert total is not None
        return total / 8.0
