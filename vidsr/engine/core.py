"""``Engine``: one deploy model bound to one device, upscaling uint8/uint16 planes.

The engine hides how a model runs: eager PyTorch, a faster CPU formulation (``engine.cpu``), the
CUDA stream pipeline (``engine.cuda``) or a fused Triton kernel (``vidsr.kernels``), with tiling
for frames that do not fit. Callers only see planes in and planes out.
"""

from __future__ import annotations

import collections
import copy
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..api import load_model
from ..errors import InputError
from .chroma import check_plane, to_codes, upscale_plane_float
from .tiling import receptive_radius, run_tiled

log = logging.getLogger(__name__)

Frame = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` means CUDA when available, else CPU; ``"cuda"`` without CUDA is an error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:  # "tpu", "gpu", a typo: torch's message lists its every device type
        raise InputError(f"unsupported device {device!r} (auto, cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {str(device)!r} was asked for, but no CUDA device is available "
                         f"(this torch is {torch.__version__})")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"unsupported device {device!r} (auto, cpu or cuda)")
    return dev


def _as_tensor(plane: np.ndarray) -> torch.Tensor:
    """A CPU tensor over ``plane``: copied when it is not contiguous, or read-only (torch
    cannot promise not to write to one, and warns)."""
    if not plane.flags.writeable:
        return torch.from_numpy(np.array(plane))
    return torch.from_numpy(np.ascontiguousarray(plane))


def _subsampling(subsampling: object) -> tuple[int, int]:
    """``(vertical, horizontal)`` chroma factors as a tuple, or ``InputError``."""
    try:
        pair = tuple(int(f) for f in subsampling)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        pair = ()
    if pair not in ((2, 2), (1, 2), (1, 1)):
        raise InputError(f"chroma subsampling must be (2, 2), (1, 2) or (1, 1) "
                         f"(vertical, horizontal), got {subsampling!r}")
    return pair  # type: ignore[return-value]


def _check_chroma_sizes(y: np.ndarray, u: np.ndarray | None, v: np.ndarray | None,
                        subsampling: tuple[int, int]) -> None:
    """``InputError`` unless the chroma planes are the luma's size divided by ``subsampling``,
    rounded up (as decoders hand them over) or down. Planes that are not arrays are left to
    ``check_plane``."""
    if not isinstance(y, np.ndarray) or y.ndim != 2:
        return
    sv, sh = _subsampling(subsampling)
    h, w = y.shape
    sizes = {(-(-h // sv), -(-w // sh)), (h // sv, w // sh)}
    for what, c in (("U", u), ("V", v)):
        if isinstance(c, np.ndarray) and c.shape not in sizes:
            want = " or ".join(f"{b}x{a}" for a, b in sorted(sizes, reverse=True))
            raise InputError(f"the {what} plane of a {w}x{h} luma with subsampling "
                             f"{tuple(subsampling)} must be {want}, got {c.shape}")


class Engine:
    """Run a deploy model on luma planes and bicubic-upscale chroma planes.

    ``model``: a module from ``vidsr.load_model`` (carrying ``.spec``; it is moved to the
    engine's device), or a name/alias/weights path. ``device``: ``"auto"``, ``"cpu"`` or
    ``"cuda"``. ``fp16``: reduced precision, on by default (None) on both devices: fp16 on
    CUDA; on CPU, ECBSR's convolutions run in bfloat16 where the CPU has native bf16 dot
    products (AVX512-BF16 or AMX; elsewhere fp32), measured 1.6-1.7x faster per frame than fp32
    (``vidsr bench``, ecbsr-m4c16-x2 at 640x480) with Set5/Set14 PSNR within 0.006 dB of it and
    at least 98.9% of each image's pixels within one code value (``scripts/bf16_quality.py``).
    ``fp16=False`` is full fp32 everywhere. Edge-SR models always run fp32 on CPU. ``tile``: process
    the luma in tiles of at most ``tile x tile`` input pixels (overlapping by the network's
    receptive field, so tiles leave no seams). ``fast``: use the fastest formulation measured
    for the device (False: plain eager PyTorch).
    ``threads``: CPU parallelism. The fast CPU path splits frames into that many bands run on
    worker threads (default: one per core) and sets torch's intra-op threads to 1 (process-wide);
    eager CPU runs set torch's intra-op thread count to it (None leaves torch's default).
    ``compile_after``: on CPU, after this many frames of one size, ``torch.compile`` the model
    in the background and switch to it where it measures faster (None, the default: never).
    Compiling takes tens of seconds of CPU, so it pays off only on long inputs; ``close()``
    waits for a compile still running.

    Threads: ``upscale_luma``, ``upscale_chroma`` and ``upscale_frame`` may be called from
    several threads; the calls run one at a time (each already uses the engine's threads or
    its GPU). ``submit`` and ``collect`` belong to one thread.
    """

    def __init__(self, model: nn.Module | str | Path, device: str | torch.device = "auto",
                 fp16: bool | None = None, tile: int | None = None, *, fast: bool = True,
                 pretrained: bool | None = None, threads: int | None = None,
                 compile_after: int | None = None) -> None:
        self.device = pick_device(device)
        if threads is not None and threads < 1:
            raise InputError(f"threads must be at least 1, got {threads}")
        self.threads = threads
        self.compile_after = compile_after
        # A caller's module is copied, never moved: two engines on different devices may share it.
        module = copy.deepcopy(model) if isinstance(model, nn.Module) \
            else load_model(model, pretrained=pretrained)
        spec = getattr(module, "spec", None)
        if spec is None:
            raise InputError("Engine needs a model from vidsr.load_model (it carries .spec)")
        self.spec = spec
        self.name: str = spec.name
        self.scale: int = int(spec.scale)
        self.fp16 = bool(self.device.type == "cuda" if fp16 is None else fp16) \
            and self.device.type == "cuda"
        self.cpu_bf16 = fp16 is not False and fast and self.device.type == "cpu"
        self.dtype = torch.float16 if self.fp16 else torch.float32
        if tile is not None and tile < 8:
            raise InputError(f"tile must be at least 8 pixels, got {tile}")
        self.tile = tile
        self.halo = receptive_radius(module)
        self.module = module.to(device=self.device, dtype=torch.float32).eval()
        self.module.requires_grad_(False)
        self.fast = fast
        self._runner = self._build_runner(fast)
        self._runner_fp32: Any = None  # CPU, bf16 engines: built for 10/12-bit planes
        self._last_runner: Any = None  # the one the last luma plane ran on (see backend)
        self.cpu_bf16 = self.cpu_bf16 and "bfloat16" in self.backend_of(self._runner)
        self._cuda: Any = None
        self._pending: collections.deque[tuple[int, Frame]] = collections.deque()
        self._next_ticket = 0
        self._lock = threading.RLock()  # one call at a time: the runners reuse their buffers
        self._closed = False
        if self.device.type == "cuda":
            self._cuda_pipe()  # picks the fused kernels now (or logs why not)

    # -- construction -----------------------------------------------------------------------
    def _build_runner(self, fast: bool) -> Any:
        """The callable mapping ``1 x 1 x H x W`` float [0, 1] to ``1 x 1 x sH x sW``."""
        if self.device.type == "cpu":
            from .cpu import cpu_runner
            runner = cpu_runner(self.module, fast=fast, workers=self.threads,
                                bf16=self.cpu_bf16, compile_after=self.compile_after)
            if not fast and self.threads:
                torch.set_num_threads(self.threads)
        else:
            from .cuda import cuda_runner
            runner = cuda_runner(self.module, fp16=self.fp16, fast=fast)
        return runner

    def close(self) -> None:
        """Release worker threads and wait for a background compile (``with Engine(...) as
        engine:`` closes it at the block's end). A closed engine does no more work
        (``InputError``); make a new one."""
        with self._lock:
            self._closed = True
            for runner in (self._runner, self._runner_fp32):
                getattr(runner, "close", lambda: None)()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise InputError(f"the {self.name} engine is closed")

    @staticmethod
    def backend_of(runner: Any) -> str:
        return str(getattr(runner, "backend", "eager"))

    @property
    def backend(self) -> str:
        """What runs the luma: e.g. ``cpu-packed (2 bands)``, ``fused-triton``."""
        if getattr(self, "_cuda", None) is not None:
            return str(self._cuda.backend)
        # the runner of the last frame: 10/12-bit video takes the fp32 one beside a bf16 one
        return self.backend_of(self._last_runner or self._runner)

    def __repr__(self) -> str:
        return (f"Engine({self.name}, device={self.device}, backend={self.backend}, "
                f"fp16={self.fp16}, bf16={self.cpu_bf16}, tile={self.tile})")

    # -- synchronous API --------------------------------------------------------------------
    @torch.inference_mode()
    def upscale_luma(self, y: np.ndarray, bit_depth: int = 8) -> np.ndarray:
        """Super-resolve a luma plane: ``H x W`` uint8 (uint16 for 10/12-bit) -> ``sH x sW``,
        same dtype, rounded half up and clipped to the bit depth's range."""
        check_plane(y, bit_depth, "luma plane")
        with self._lock:
            self._check_open()
            return self._upscale_luma(y, bit_depth)

    def _upscale_luma(self, y: np.ndarray, bit_depth: int) -> np.ndarray:
        if self.device.type == "cuda":
            return self._cuda_pipe().run_luma(y, bit_depth)
        maxv = float((1 << bit_depth) - 1)
        x = _as_tensor(y).to(torch.float32).mul_(1.0 / maxv)
        runner = self._runner
        if bit_depth > 8 and self.cpu_bf16:
            # bf16 keeps 8 significant bits: one 8-bit code, but not one 10/12-bit code
            if self._runner_fp32 is None:
                log.info("%d-bit video: ECBSR runs in fp32 on CPU", bit_depth)
                from .cpu import cpu_runner
                self._runner_fp32 = cpu_runner(self.module, fast=self.fast, workers=self.threads,
                                               compile_after=self.compile_after)
            runner = self._runner_fp32
        self._last_runner = runner
        return to_codes(self.run_float(x[None, None], runner)[0, 0], bit_depth, gain=maxv)

    def run_float(self, x: torch.Tensor, runner: Any = None) -> torch.Tensor:
        """Run the model on ``1 x 1 x H x W`` floats in [0, 1] on the engine's device, tiled when
        ``tile`` is set; returns ``1 x 1 x sH x sW`` floats. The result may be a buffer the
        next call writes over: copy it to keep it."""
        runner = self._runner if runner is None else runner
        h, w = x.shape[-2:]
        if self.tile is not None and (h > self.tile or w > self.tile):
            return run_tiled(runner, x, self.scale, self.tile, self.halo)
        return runner(x)

    @torch.inference_mode()
    def upscale_chroma(self, c: np.ndarray, siting: str = "left", bit_depth: int = 8,
                       subsampling: tuple[int, int] = (2, 2),
                       out_siting: str | None = None) -> np.ndarray:
        """Bicubic-upscale a chroma plane by ``scale`` (MATLAB's cubic, a = -0.5, edges
        replicated) keeping its ``siting`` relative to the upscaled luma grid, or moving it to
        ``out_siting``.

        ``subsampling`` is the chroma ``(vertical, horizontal)`` factor: (2, 2) for 4:2:0,
        (1, 2) for 4:2:2, (1, 1) for 4:4:4.
        """
        check_plane(c, bit_depth, "chroma plane")
        subsampling = _subsampling(subsampling)
        with self._lock:
            self._check_open()
            if self.device.type == "cuda":
                return self._cuda_pipe().run_chroma(c, siting, bit_depth, subsampling,
                                                    out_siting)
            x = _as_tensor(c).to(torch.float32)
            out = upscale_plane_float(x[None, None], self.scale, siting, subsampling,
                                      out_siting)
            return to_codes(out[0, 0], bit_depth)

    def upscale_frame(self, y: np.ndarray, u: np.ndarray | None = None,
                      v: np.ndarray | None = None, *, bit_depth: int = 8,
                      siting: str = "left", subsampling: tuple[int, int] = (2, 2),
                      out_siting: str | None = None) -> Frame:
        """Upscale one frame's planes: SR on luma, siting-aware bicubic on both chroma planes."""
        _check_chroma_sizes(y, u, v, subsampling)
        yo = self.upscale_luma(y, bit_depth)
        uo = None if u is None else self.upscale_chroma(u, siting, bit_depth, subsampling,
                                                        out_siting)
        vo = None if v is None else self.upscale_chroma(v, siting, bit_depth, subsampling,
                                                        out_siting)
        return yo, uo, vo

    # -- asynchronous API -------------------------------------------------------------------
    def submit(self, y: np.ndarray, u: np.ndarray | None = None, v: np.ndarray | None = None,
               *, bit_depth: int = 8, siting: str = "left",
               subsampling: tuple[int, int] = (2, 2), out_siting: str | None = None) -> int:
        """Queue a frame; returns its ticket. On CUDA the work is enqueued on the upload /
        compute / download streams and this returns at once, so consecutive frames overlap;
        on CPU the frame is computed here. Results come back, in order, from ``collect``."""
        self._check_open()
        _check_chroma_sizes(y, u, v, subsampling)
        ticket = self._next_ticket
        self._next_ticket += 1
        if self.device.type == "cuda":
            self._cuda_pipe().submit(ticket, y, u, v, bit_depth, siting, subsampling,
                                     out_siting)
        else:
            frame = self.upscale_frame(y, u, v, bit_depth=bit_depth, siting=siting,
                                       subsampling=subsampling, out_siting=out_siting)
            self._pending.append((ticket, frame))
        return ticket

    def pending(self) -> int:
        """How many submitted frames have not been collected yet."""
        if self.device.type == "cuda" and self._cuda is not None:
            return self._cuda.pending()
        return len(self._pending)

    def collect(self) -> tuple[int, Frame]:
        """The oldest submitted frame's ``(ticket, (Y, U, V))``; blocks until it is done."""
        if self.device.type == "cuda" and self._cuda is not None:
            return self._cuda.collect()
        if not self._pending:
            raise InputError("collect() called with no submitted frame pending")
        return self._pending.popleft()

    def _cuda_pipe(self) -> Any:
        if self._cuda is None:
            from .cuda import CudaPipeline
            self._cuda = CudaPipeline(self)
        return self._cuda
