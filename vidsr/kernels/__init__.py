"""Fused GPU kernels for the deploy models (Triton): integer planes in, integer planes out.

``fused_for(model)`` gives a callable running a whole deploy model as one kernel launch per batch
of frames, or None (with the reason logged) where no kernel covers the model or Triton/CUDA is
unavailable. ``chroma_upscale`` runs the polyphase (bicubic) chroma upscale with caller-given
taps. On CPU the kernels run under Triton's interpreter when ``TRITON_INTERPRET=1`` is set before
the first call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .runtime import interpreting, unavailable_reason

log = logging.getLogger(__name__)

FusedFn = Callable[..., torch.Tensor]

__all__ = ["chroma_upscale", "fused_for", "interpreting", "unavailable_reason"]


def _build(model: nn.Module, tuning: dict) -> FusedFn | str:
    """The fused callable for ``model``, or why there is none (kernel modules import triton)."""
    from ..imresize import BicubicUpsample, phase_kernels
    from ..models.ecbsr import PlainSR
    from ..models.edgesr import ESRTM, ESRTR, ESRMax

    if isinstance(model, PlainSR):
        from .ecbsr import FusedPlainSR

        if model.c > 64:
            return f"ECBSR with C={model.c} > 64 channels is not covered by the fused kernel"
        return FusedPlainSR(model, **tuning)
    if type(model) in (ESRMax, ESRTM, ESRTR):
        from .edgesr import FusedEdgeSR

        return FusedEdgeSR(model, **tuning)
    if isinstance(model, BicubicUpsample):
        from .bicubic import PolyphaseUpscaler

        taps = phase_kernels(model.scale)
        return PolyphaseUpscaler(model.scale, taps, taps, **tuning)
    name = getattr(getattr(model, "spec", None), "name", type(model).__name__)
    return f"no fused kernel covers {name} (training-form or eSR-CNN models run in PyTorch)"


def _autotuned(model: nn.Module, tuning: dict) -> FusedFn | None:
    """``AutoTuned`` over the ECBSR kernel's candidate settings, where that applies."""
    from ..models.ecbsr import PlainSR
    from .autotune import AutoTuned, enabled
    from .runtime import kernels_interpreted

    if not isinstance(model, PlainSR) or set(tuning) - {"dtype"} or not enabled() \
            or kernels_interpreted():
        return None
    from .ecbsr import FP16_PEAK, FusedPlainSR

    def build(**settings) -> FusedFn:
        return FusedPlainSR(model, **tuning, **settings)

    tuned = AutoTuned(build, f"ecbsr m{model.m} c{model.c} x{model.scale}")
    tuned.signature += " fp16-safe" if tuned.default.peak <= FP16_PEAK else " fp32"
    return tuned


def fused_for(model: nn.Module, *, cuda_graph: bool = False, autotune: bool = False,
              **tuning) -> FusedFn | None:
    """A fused callable ``fn(y, bit_depth=None, out=None)`` for a deploy-form model, or None.

    ``y`` is an ``(H, W)`` or ``(N, H, W)`` uint8 or uint16 (``bit_depth`` 9..16, LSB-aligned)
    CUDA tensor (CPU under ``TRITON_INTERPRET=1``); the result is the upscaled plane of the same
    dtype. Weights are prepacked once, on the returned callable. ``tuning`` goes to the kernel
    wrapper (tile sizes, ``dtype``, ``num_warps``); ``cuda_graph`` replays a captured CUDA graph
    per input shape; ``autotune`` (ECBSR, no tile keywords) times the kernel's candidate
    settings on the first frame of each shape and keeps the fastest (``vidsr.kernels.autotune``;
    off under the interpreter and with ``VIDSR_KERNEL_AUTOTUNE=0``). Returns None, logging why,
    when not covered or Triton/CUDA is unavailable.
    """
    reason = unavailable_reason()
    if reason is None:
        try:
            built = (_autotuned(model, tuning) if autotune else None) or _build(model, tuning)
        except ImportError as exc:  # a triton that fails to import (e.g. a broken install)
            built = f"triton failed to import: {exc}"
        if not isinstance(built, str):
            if cuda_graph:
                from .graphs import GraphedCall

                return GraphedCall(built)
            return built
        reason = built
    log.info("fused kernels not used: %s", reason)
    return None


_CHROMA: dict[tuple, FusedFn] = {}


def chroma_upscale(c: torch.Tensor, scale: int, taps_h: np.ndarray | torch.Tensor,
                   taps_v: np.ndarray | torch.Tensor, bit_depth: int | None = None, *,
                   first_h: int | None = None, first_v: int | None = None,
                   out: torch.Tensor | None = None) -> torch.Tensor:
    """Upscale integer chroma ``(H, W)`` or ``(N, H, W)`` by ``scale`` with per-phase taps.

    ``taps_h``/``taps_v`` are ``scale x T`` arrays: output ``q*scale + p`` along the axis is
    ``sum_t taps[p, t] * in[clip(q + first + t)]``; ``first`` defaults to ``-(T // 2)`` (centred
    taps such as ``vidsr.imresize.phase_kernels(scale)``). Rounded and clipped to ``bit_depth``
    (8 for uint8; required for uint16). Raises RuntimeError where the kernels cannot run.
    """
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"chroma_upscale needs the fused kernels: {reason}")
    from .bicubic import PolyphaseUpscaler

    th = np.asarray(taps_h.detach().cpu() if isinstance(taps_h, torch.Tensor) else taps_h,
                    dtype=np.float32)
    tv = np.asarray(taps_v.detach().cpu() if isinstance(taps_v, torch.Tensor) else taps_v,
                    dtype=np.float32)
    key = (scale, th.shape, th.tobytes(), tv.shape, tv.tobytes(), first_h, first_v)
    fn = _CHROMA.get(key)
    if fn is None:
        if len(_CHROMA) > 32:
            _CHROMA.clear()
        fn = _CHROMA[key] = PolyphaseUpscaler(scale, th, tv, first_h=first_h, first_v=first_v)
    return fn(c, bit_depth=bit_depth, out=out)
