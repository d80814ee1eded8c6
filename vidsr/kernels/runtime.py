"""Where the fused kernels can run, and the small helpers every kernel wrapper shares.

Triton kernels run on CUDA tensors, or on CPU tensors when ``TRITON_INTERPRET=1`` was set before
the kernel modules were imported (Triton decides at decoration time, so this module never imports
them itself).
"""

from __future__ import annotations

import importlib.util
import os

import torch

_INT_DTYPES = (torch.uint8, torch.uint16)
_BUILT: dict[str, bool] = {}


def interpreting() -> bool:
    """True when ``TRITON_INTERPRET`` asks Triton to run kernels on CPU with its interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def record_build() -> None:
    """Called by each kernel module at import: remember whether its kernels were decorated for
    the interpreter (Triton decides once, when ``@triton.jit`` runs)."""
    _BUILT.setdefault("interpreted", interpreting())


def kernels_interpreted() -> bool:
    """Whether the imported kernels run under the interpreter (CPU tensors) or compiled (CUDA)."""
    return _BUILT.get("interpreted", interpreting())


def unavailable_reason() -> str | None:
    """Why the fused kernels cannot run here, or None when they can."""
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    if interpreting():
        return None
    if not torch.cuda.is_available():
        return "CUDA is not available (and TRITON_INTERPRET is not set)"
    return None


def next_pow2(n: int) -> int:
    """The smallest power of two >= n (and >= 1)."""
    return 1 << max(int(n) - 1, 0).bit_length()


def dot_precision(dtype: torch.dtype, *, exact: bool = False) -> str:
    """``tl.dot``'s ``input_precision`` for dot inputs of ``dtype``.

    fp16/bf16 inputs ignore it. fp32 is ``ieee`` (exact, CUDA-core FMAs) where ``exact`` or under
    the interpreter, else ``tf32x3`` (three TF32 tensor-core products, close to fp32). The ECBSR
    kernel asks for ``exact``: with activations in the hundreds tf32x3 can cost several code
    values, and its tap loop keeps the FMA form small; eSR's ieee form spills on sm_90.
    """
    if dtype != torch.float32:
        return "tf32"
    return "ieee" if exact or kernels_interpreted() else "tf32x3"


def check_device(t: torch.Tensor) -> None:
    """Raise ValueError unless ``t`` lives where the kernels run."""
    if kernels_interpreted():
        if t.device.type != "cpu":
            raise ValueError("under TRITON_INTERPRET=1 the kernels take CPU tensors")
    elif t.device.type != "cuda":
        raise ValueError(f"the fused kernels take CUDA tensors, got a {t.device.type} tensor")


def as_frames(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """``x`` as an ``N x H x W`` view with unit column stride; and whether it was 2-D."""
    if x.dtype not in _INT_DTYPES:
        raise ValueError(f"expected a uint8 or uint16 plane, got {x.dtype}")
    if x.dim() not in (2, 3):
        raise ValueError(f"expected an H x W or N x H x W plane, got shape {tuple(x.shape)}")
    check_device(x)
    single = x.dim() == 2
    frames = x.unsqueeze(0) if single else x
    if frames.stride(2) != 1:
        frames = frames.contiguous()
    return frames, single


def resolve_bit_depth(dtype: torch.dtype, bit_depth: int | None) -> int:
    """The sample bit depth: 8 for uint8; uint16 needs it stated (9..16, LSB-aligned)."""
    if dtype == torch.uint8:
        if bit_depth not in (None, 8):
            raise ValueError(f"uint8 planes are 8-bit, got bit_depth={bit_depth}")
        return 8
    if bit_depth is None:
        raise ValueError("uint16 planes need bit_depth (e.g. 10 or 12)")
    if not 9 <= bit_depth <= 16:
        raise ValueError(f"uint16 planes take bit_depth 9..16, got {bit_depth}")
    return int(bit_depth)


def new_output(frames: torch.Tensor, scale: int, out: torch.Tensor | None) -> torch.Tensor:
    """An ``N x sH x sW`` output of the input's dtype, or ``out`` after checking it fits."""
    n, h, w = frames.shape
    shape = (n, h * scale, w * scale)
    if out is None:
        return torch.empty(shape, dtype=frames.dtype, device=frames.device)
    view = out.unsqueeze(0) if out.dim() == 2 else out
    if tuple(view.shape) != shape or view.dtype != frames.dtype or view.stride(2) != 1:
        raise ValueError(f"out must be {shape} {frames.dtype} with unit column stride")
    return view


def program_cap(device: torch.device, per_sm: int) -> int:
    """How many persistent programs to launch: ``per_sm`` per multiprocessor on CUDA."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return props.multi_processor_count * per_sm
    return 4  # the interpreter runs programs one after another; a few exercise the tile loop


class PlannedKernel:
    """Base of the kernel wrappers: a subclass's ``plan(frames, result, depth)`` returns
    ``(kernel, grid, args, constexprs)`` for one launch over a batch of frames."""

    scale: int

    def plan(self, frames: torch.Tensor, result: torch.Tensor, depth: int) -> tuple:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, *, bit_depth: int | None = None,
                 out: torch.Tensor | None = None) -> torch.Tensor:
        """Upscale ``(H, W)`` or ``(N, H, W)`` integer planes; returns the same rank and dtype."""
        frames, single = as_frames(x)
        depth = resolve_bit_depth(frames.dtype, bit_depth)
        result = new_output(frames, self.scale, out)
        kernel, grid, args, consts = self.plan(frames, result, depth)
        kernel[grid](*args, **consts)
        if out is not None:
            return out
        return result[0] if single else result
