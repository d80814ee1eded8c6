"""Recipe ``whiten``: train the first filter bank of an edge-SR net in a whitened basis.

An edge-SR filter sees raw K x K patches of a [0, 1] image. Neighbouring pixels are strongly
correlated, so the patches' second-moment matrix ``E[p p^T]`` (the Hessian of an MSE fit of a
linear filter) spans several orders of magnitude: the patch mean (DC) direction dominates and
the edge directions that separate one template from another are tiny. Adam rescales each tap,
not each direction, so it cannot undo that.

With ``whiten = eps`` the filter weights ``W`` (one row of ``K*K`` taps per output channel) are
trained as ``W = theta @ B`` with ``B = (Lambda + eps * lambda_max)^(-1/2) U^T`` from the
eigen-decomposition ``E[p p^T] = U Lambda U^T`` of the training patches (averaged over the eight
flips/rotations the sampler applies). The net's function is unchanged (``theta`` starts at
``W B^-1``); only the geometry the optimizer walks in changes. The saved weights are the plain
``W``. ``eps`` caps the conditioning at about ``1 / eps``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ..errors import WeightsError
from .data import plane_peak


def patch_moment(lrs: Sequence[np.ndarray], k: int, stride: int = 4) -> np.ndarray:
    """``E[p p^T]`` of the K x K patches of the LR planes (scaled to [0, 1]), every ``stride``-th
    position, symmetrised over the eight flips and 90-degree rotations."""
    total = np.zeros((k * k, k * k))
    count = 0
    for lr in lrs:
        if min(lr.shape) < k:
            continue
        win = np.lib.stride_tricks.sliding_window_view(lr, (k, k))[::stride, ::stride]
        p = win.reshape(-1, k * k).astype(np.float64) / plane_peak(lr)
        total += p.T @ p
        count += p.shape[0]
    if count == 0:
        raise WeightsError(f"no training plane is large enough for {k}x{k} patches")
    moment = total / count
    idx = np.arange(k * k).reshape(k, k)
    perms = []
    for t in range(8):
        m = np.rot90(idx, t % 4)
        perms.append((m.T if t >= 4 else m).reshape(-1))
    return sum(moment[np.ix_(q, q)] for q in perms) / len(perms)


def whitening_basis(moment: np.ndarray, eps: float) -> torch.Tensor:
    """``B`` with ``W = theta @ B``: ``(Lambda + eps * lambda_max)^(-1/2) U^T``."""
    lam, u = np.linalg.eigh(moment)
    lam = np.clip(lam, 0.0, None)
    scale = 1.0 / np.sqrt(lam + eps * lam.max())
    return torch.tensor(scale[:, None] * u.T, dtype=torch.float32)


class _InBasis(nn.Module):
    """Parametrization ``theta (O, 1, K, K) -> W = theta @ B`` (rows of K*K taps)."""

    def __init__(self, basis: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("basis", basis)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        o = theta.shape[0]
        return (theta.reshape(o, -1) @ self.basis).reshape(theta.shape)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        o = weight.shape[0]
        theta = torch.linalg.solve(self.basis.T, weight.reshape(o, -1).T).T
        return theta.reshape(weight.shape)


def first_filter(model: nn.Module) -> nn.Conv2d:
    """The conv that sees the image: an edge-SR filter bank or eSR-CNN's first layer."""
    from ..models.edgesr import ESRCNN, _EdgeSR

    if isinstance(model, _EdgeSR):
        return model.filter
    if isinstance(model, ESRCNN):
        return model.cnn[0]
    raise WeightsError("whiten needs an edge-SR model (eSR-MAX/TM/TR/CNN)")


def apply_whitening(model: nn.Module, lrs: Sequence[np.ndarray], eps: float) -> None:
    """Re-parametrize the model's first filter bank in the whitened basis, in place."""
    conv = first_filter(model)
    k = conv.kernel_size[0]
    basis = whitening_basis(patch_moment(lrs, k), eps).to(conv.weight.device)
    parametrize.register_parametrization(conv, "weight", _InBasis(basis))


def trained_weight(model: nn.Module) -> torch.Tensor:
    """The tensor the optimizer updates for the first filter bank (``theta`` when whitened)."""
    conv = first_filter(model)
    if parametrize.is_parametrized(conv, "weight"):
        return conv.parametrizations.weight.original
    return conv.weight


def plain(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose first filter bank (if whitened) holds the plain ``W``."""
    import copy

    from ..models.edgesr import _EdgeSR

    out = copy.deepcopy(model)
    try:
        conv = first_filter(model)
    except WeightsError:
        return out
    if not parametrize.is_parametrized(conv, "weight"):
        return out
    # A fresh Conv2d rather than remove_parametrizations(): a deep copy shares the parametrized
    # class with the model, and removing the parametrization from one strips it from both.
    fresh = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, padding=conv.padding,
                      bias=conv.bias is not None, padding_mode=conv.padding_mode)
    with torch.no_grad():
        fresh.weight.copy_(conv.weight)
        if conv.bias is not None:
            fresh.bias.copy_(conv.bias)
    fresh = fresh.to(conv.weight.device)
    if isinstance(out, _EdgeSR):
        out.filter = fresh
    else:
        out.cnn[0] = fresh
    return out
