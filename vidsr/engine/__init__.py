"""Inference engines: run a deploy model on planes as fast as the device allows.

``Engine(model_or_name, device="auto", fp16=None, tile=None)`` is the whole public surface:
``upscale_luma``, ``upscale_chroma``, ``upscale_frame`` and the ``submit``/``collect`` pair.
``Engine`` and ``pick_device`` are imported on first use, so that a module reading only the
package's light constants (``vidsr.engine.bench_defaults``, for the command line's help) does
not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core import Engine, pick_device

__all__ = ["Engine", "pick_device"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import core

        return getattr(core, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
