"""The bf16 PReLU of the CPU ECBSR path as one vectorised pass, compiled once per process.

In the bf16 ``PlainSRRunner`` the PReLU is ``max(z, a*z)`` (exact on sign-folded channels, see
there). Eager PyTorch runs that as two elementwise passes over the tensor: on one core of the
Sapphire Rapids development VM a 16 x 240 x 640 bf16 activation took 2.6 ms, as long as the 3x3
conv before it on AMX, so the five PReLUs were about half of the network's time. Inductor fuses
the two into one loop (0.7 ms). Compiled with dynamic shapes, one compile serves every frame and
band size, so it is started once per process, in a background thread, by the first runner
allowed to compile; until it is done, or if it fails, the eager form runs. Either way the result
is ``z`` or ``a*z`` rounded once to bf16, so the two give the same values bit for bit (a test
checks).

It is compiled with inductor's C++ wrapper: the default Python wrapper calls the kernel with the
GIL held, so the band workers' PReLUs ran one at a time. ``python scripts/bench_prelu.py``
(ecbsr-m4c16-x2, bands on two cores, medians of six alternating rounds, the Sapphire Rapids VM,
two runs): against eager, GIL held 1.04x / 1.20x and C++ wrapper 1.52x / 1.40x at 640x480,
1.19x / 1.55x and 1.38x / 2.27x at 1920x1080. The C++ wrapper costs more to compile: 5.2 s of
one core there with inductor's on-disk cache warm, 22.1 s with an empty cache
(``TORCHINDUCTOR_CACHE_DIR=$(mktemp -d)``; the default compile: 1.2-1.3 s).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import torch

log = logging.getLogger(__name__)

_lock = threading.Lock()
_thread: threading.Thread | None = None
_compiled: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
_error: str | None = None


def _max_mul(y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return torch.maximum(y, y * a)


def compile_prelu(cpp_wrapper: bool = True) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``max(y, a*y)`` compiled by inductor with dynamic shapes and run once on a probe; raises
    what the compiler raises. ``cpp_wrapper=False`` gives inductor's default Python wrapper,
    which holds the GIL in the kernel (``scripts/bench_prelu.py`` compares the two)."""
    fn = torch.compile(_max_mul, dynamic=True,
                       options={"cpp_wrapper": True} if cpp_wrapper else None)
    # as the runner calls it: a conv output made under inference mode, a normal slope tensor,
    # sizes all different (a mixed-up dispatch key or two equal sizes, which dynamo assumes
    # stay equal, fail its guards on the first real call and recompile there)
    slope = torch.ones(1, 16, 1, 1, dtype=torch.bfloat16)
    with torch.inference_mode():
        probe = torch.zeros(1, 16, 6, 10, dtype=torch.bfloat16).contiguous(
            memory_format=torch.channels_last)
        fn(probe, slope)
    return fn


def _compile() -> None:
    global _compiled, _error
    try:
        _compiled = compile_prelu()
        log.info("bf16 PReLU compiled (one pass)")
    except Exception as exc:  # any compiler failure: the eager form stays
        _error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        log.info("bf16 PReLU compile failed (%s); staying on the eager form", _error)


def start_compile() -> None:
    """Start the process's one background compile, unless it has been started already."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_compile, name="vidsr-compile-prelu", daemon=True)
            _thread.start()


def settled() -> bool:
    """Whether the compile was started and has finished (compiled, or failed)."""
    return _thread is not None and not _thread.is_alive()


def wait() -> None:
    """Wait for a compile in progress, so no compiler thread outlives a run."""
    if _thread is not None:
        _thread.join()


def compiled() -> bool:
    """Whether the one-pass form is in use."""
    return _compiled is not None


def prelu_bf16(y: torch.Tensor, a: torch.Tensor, tmp: torch.Tensor,
               use_compiled: bool) -> torch.Tensor:
    """``max(y, a * y)`` (``a`` broadcast per channel): the compiled form where
    ``use_compiled`` and it is ready, else eager, in place in ``y``, with ``tmp`` (``y``'s
    shape and strides) for the product."""
    fn = _compiled if use_compiled else None
    if fn is not None:
        return fn(y, a)
    return torch.maximum(y, torch.mul(y, a, out=tmp), out=y)
