"""Inference engines: run a deploy model on planes as fast as the device allows.

``Engine(model_or_name, device="auto", fp16=None, tile=None)`` is the whole public surface:
``upscale_luma``, ``upscale_chroma``, ``upscale_frame`` and the ``submit``/``collect`` pair.
"""

from .core import Engine, pick_device

__all__ = ["Engine", "pick_device"]
