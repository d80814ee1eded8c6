"""The ECBSR kernel's settings chosen per GPU by timing them on first use, and remembered.

The fastest setting of the fused ECBSR kernel depends on the chip and on the Triton version
(on an H200 with Triton 3.6 four rows a chunk at two programs per SM beat the defaults by 16%;
Triton 3.9 compiles that setting with register spills). ``AutoTuned`` holds one kernel per
candidate setting; the first call for a frame shape times each candidate that gives the same
integers as the defaults (within one code value) and keeps the fastest. The choice is written to
a JSON file keyed by GPU, Triton version, network shape, frame shape and bit depth
(``$VIDSR_CACHE_DIR/kernel-tuning.json``, default ``~/.cache/vidsr``), so later runs skip the
timing. ``VIDSR_KERNEL_AUTOTUNE=0`` turns it off (the defaults then run).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

# FusedPlainSR keywords; the first is the defaults and the reference the others must match.
CANDIDATES: tuple[dict[str, Any], ...] = (
    {},
    {"rows": 4, "per_sm": 2},
    {"variant": "stream", "per_sm": 4},
    {"variant": "stream", "per_sm": 2},
    {"variant": "stream", "tile_w": 128, "per_sm": 2},
    {"variant": "wave", "tile_h": 64, "per_sm": 2},
)

Timer = Callable[[Callable[[], object]], float]


def enabled() -> bool:
    return os.environ.get("VIDSR_KERNEL_AUTOTUNE", "1") != "0"


def cache_path() -> Path:
    root = os.environ.get("VIDSR_CACHE_DIR") or Path.home() / ".cache" / "vidsr"
    return Path(root) / "kernel-tuning.json"


def time_ms(fn: Callable[[], object], iters: int = 10, *, repeats: int = 1,
            warmup: int = 1) -> float:
    """Milliseconds per call of ``fn``: the best over ``repeats`` of the mean of ``iters``
    back-to-back calls, after ``warmup`` untimed ones (CUDA events on a GPU)."""
    for _ in range(warmup):
        fn()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        if cuda:
            start, end = (torch.cuda.Event(enable_timing=True),
                          torch.cuda.Event(enable_timing=True))
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            end.synchronize()
            best = min(best, start.elapsed_time(end) / iters)
        else:
            t0 = time.perf_counter()
            for _ in range(iters):
                fn()
            best = min(best, (time.perf_counter() - t0) * 1e3 / iters)
    return best


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path, key: str, entry: dict[str, Any]) -> None:
    """Merge one entry into the cache file (written whole to a temporary file, then renamed)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _load(path)
        data[key] = entry
        fd, tmp = tempfile.mkstemp(prefix=".kernel-tuning-", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home: the choice still holds for this process
        log.info("kernel tuning not saved to %s: %s", path, exc)


class AutoTuned:
    """A fused ECBSR callable (``fn(x, bit_depth=None, out=None)``) that runs, per input shape,
    the fastest of ``candidates`` (keyword sets for ``build``) that matches the first.

    ``signature`` names the network in the cache key; ``timer`` (default ``time_ms``) and
    ``path`` (default ``cache_path()``) are there for tests.
    """

    def __init__(self, build: Callable[..., Any], signature: str,
                 candidates: Sequence[dict[str, Any]] = CANDIDATES, *,
                 timer: Timer | None = None, path: Path | None = None) -> None:
        self._build_fn = build
        self.signature = signature
        self.candidates = [dict(c) for c in candidates]
        self._timer = timer or time_ms
        self._path = path
        self._fns: dict[int, Any] = {}
        self._choice: dict[tuple, int] = {}
        self.default = self._get(0)
        self.scale: int = self.default.scale

    @property
    def chosen(self) -> dict[tuple, dict[str, Any]]:
        """Input key -> the settings chosen for it (for reports)."""
        return {k: self.candidates[i] for k, i in self._choice.items()}

    def __getattr__(self, name: str) -> Any:
        if name == "default":  # not built yet: no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.default, name)  # peak, dtype, ... of the default kernel

    def _get(self, i: int) -> Any:
        if i not in self._fns:
            self._fns[i] = self._build_fn(**self.candidates[i])
        return self._fns[i]

    def _key(self, x: torch.Tensor, depth: int | None) -> str:
        dev = x.device
        gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type
        try:
            import triton
            version = triton.__version__
        except ImportError:  # pragma: no cover - the kernels import triton anyway
            version = "?"
        shape = "x".join(str(d) for d in x.shape)
        return f"{gpu}|triton {version}|{self.signature}|{shape} {x.dtype}|{depth}"

    def _tune(self, x: torch.Tensor, depth: int | None) -> int:
        path = self._path or cache_path()
        key = self._key(x, depth)
        stored = _load(path).get(key)
        if isinstance(stored, dict) and stored.get("settings") in self.candidates:
            return self.candidates.index(stored["settings"])
        reference = self._get(0)(x, bit_depth=depth).to(torch.int32)
        times: dict[int, float] = {}
        for i in range(len(self.candidates)):
            try:
                fn = self._get(i)
                got = fn(x, bit_depth=depth)
                if int((got.to(torch.int32) - reference).abs().max()) > 1:
                    log.info("kernel setting %s differs from the defaults; not used",
                             self.candidates[i])
                    continue
                times[i] = self._timer(lambda fn=fn: fn(x, bit_depth=depth))
            except Exception as exc:  # noqa: BLE001 - a setting that fails to build or run is skipped
                log.info("kernel setting %s not usable here: %s", self.candidates[i], exc)
        best = min(times, key=times.__getitem__) if times else 0
        log.info("fused %s kernel for %s: %s (%.3f ms; defaults %.3f ms); cached in %s",
                 self.signature, tuple(x.shape), self.candidates[best] or "defaults",
                 times.get(best, float("nan")), times.get(0, float("nan")), path)
        _save(path, key, {"settings": self.candidates[best],
                          "ms": {json.dumps(self.candidates[i], sort_keys=True): round(t, 4)
                                 for i, t in times.items()}})
        self._release(keep=best)
        return best

    def _release(self, keep: int) -> None:
        """Drop the losing candidates' kernels and scratch (rebuilt if another shape wants
        them); the defaults stay for their attributes, without their scratch unless chosen."""
        for i in list(self._fns):
            if i not in (0, keep):
                del self._fns[i]
        if keep != 0:
            getattr(self._fns[0], "_scratch", {}).clear()

    def __call__(self, x: torch.Tensor, *, bit_depth: int | None = None,
                 out: torch.Tensor | None = None) -> torch.Tensor:
        k = (tuple(x.shape), x.dtype, bit_depth, x.device.type)
        i = self._choice.get(k)
        if i is None:
            i = self._choice[k] = self._tune(x, bit_depth)
        return self._get(i)(x, bit_depth=bit_depth, out=out)
