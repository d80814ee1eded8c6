"""``torch.compile`` on CPU without making short runs slower.

Inductor with weight freezing gives the fastest eSR-MAX found on CPU (and for ECBSR the same
graph as ``PlainSRRunner``), but compiling takes 10-50 s on a small machine. So compilation is
lazy: frames are served by the hand-written runner; once ``after`` frames of one input shape
have gone through, a background thread compiles for that shape; when it is done, one call of
each is timed on the next frame and the faster is kept for that shape. A compile that fails
leaves the hand-written runner in place, with a log line saying why.
"""

from __future__ import annotations

import copy
import logging
import shutil
import threading
import time
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)


def compile_available() -> str | None:
    """Why ``torch.compile`` cannot run on CPU here, or None when it can."""
    if not hasattr(torch, "compile"):
        return "this torch has no torch.compile"
    if not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")):
        return "no C++ compiler on PATH (inductor needs one on CPU)"
    return None


class _Shape:
    """Per input shape: frames seen, the compile thread, and what was chosen."""

    def __init__(self) -> None:
        self.frames = 0
        self.thread: threading.Thread | None = None
        self.compiled: Any = None
        self.error: str | None = None
        self.choice: str | None = None  # "compiled" or "fallback" once decided


class LazyCompiledRunner:
    """Serve with ``fallback``; compile ``module`` per input shape in the background after
    ``after`` frames; keep whichever is faster on a timed frame."""

    def __init__(self, module: nn.Module, fallback: Any, after: int = 30) -> None:
        self.module = copy.deepcopy(module).float().eval()
        self.fallback = fallback
        self.after = after
        self.shapes: dict[tuple[int, ...], _Shape] = {}

    @property
    def backend(self) -> str:
        chosen = [s.choice for s in self.shapes.values() if s.choice]
        if "compiled" in chosen:
            return "cpu-inductor"
        return f"{self.fallback.backend}+compile"

    def _compile(self, state: _Shape, x: torch.Tensor) -> None:
        try:
            import torch._inductor.config as inductor_config

            fn = torch.compile(self.module, dynamic=False)
            with torch.inference_mode(), inductor_config.patch(freezing=True):
                fn(x)
            state.compiled = fn
        except Exception as exc:  # any compiler failure: stay on the hand-written runner
            state.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            log.info("torch.compile failed for input %s (%s); staying on %s",
                     tuple(x.shape), state.error, self.fallback.backend)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape)
        state = self.shapes.setdefault(key, _Shape())
        if state.choice == "compiled":
            return state.compiled(x)
        if state.choice == "fallback":
            return self.fallback(x)
        state.frames += 1
        if state.thread is None and state.frames >= self.after:
            state.thread = threading.Thread(target=self._compile, args=(state, x.clone()),
                                            name="vidsr-compile", daemon=True)
            state.thread.start()
            log.info("compiling for input %s in the background", key)
        if state.thread is not None and not state.thread.is_alive():
            return self._decide(state, x)
        return self.fallback(x)

    def close(self) -> None:
        """Wait for any background compile to finish, so no compiler thread outlives the run."""
        for state in self.shapes.values():
            if state.thread is not None:
                state.thread.join()

    def decided(self) -> bool:
        """Whether every shape seen so far has settled on a runner."""
        return bool(self.shapes) and all(s.choice for s in self.shapes.values())

    def _decide(self, state: _Shape, x: torch.Tensor) -> torch.Tensor:
        if state.compiled is None:
            state.choice = "fallback"
            return self.fallback(x)
        t_fallback, t_compiled = [], []
        for _ in range(3):  # alternate, so load from other processes hits both alike
            t0 = time.perf_counter()
            self.fallback(x)
            t_fallback.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = state.compiled(x)
            t_compiled.append(time.perf_counter() - t0)
        t_fallback, t_compiled = sorted(t_fallback)[1], sorted(t_compiled)[1]
        state.choice = "compiled" if t_compiled < t_fallback else "fallback"
        log.info("input %s: compiled %.1f ms, %s %.1f ms: keeping %s", tuple(x.shape),
                 1000 * t_compiled, self.fallback.backend, 1000 * t_fallback, state.choice)
        return out if state.choice == "compiled" else self.fallback(x)
