"""The CUDA path: pinned host buffers, and separate upload / compute / download streams so that
frame N+1's upload and frame N-1's download overlap frame N's compute.

Each submitted frame takes one of ``depth`` slots. A slot owns pinned host buffers for the input
and output planes and device buffers for both, all allocated once per frame geometry and reused.
Per frame: the host copies the numpy planes into the slot's pinned input, the upload stream
copies them to the device, the compute stream runs SR on luma and the bicubic on chroma (the
fused Triton kernels from ``vidsr.kernels`` where they cover the model, else half-precision
channels-last PyTorch), and the download stream copies the results to the slot's pinned output.
Events order the three streams; ``collect`` waits for a slot's download and copies its planes
out, freeing the slot.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from .chroma import code_dtype, quantize, sited_taps, upscale_plane_float
from .cpu import tune_malloc
from .formulations import reduce_first
from .tiling import receptive_radius, run_tiled

log = logging.getLogger(__name__)

# Tile size (input pixels) used when a whole frame does not fit in device memory.
OOM_TILE = 512


class CudaTorchRunner:
    """The PyTorch model on CUDA: fp16 (unless disabled), channels-last, edge-SR reduced before
    the shuffle. Maps ``N x 1 x H x W`` floats in [0, 1] to ``N x 1 x sH x sW`` floats."""

    def __init__(self, module: nn.Module, *, fp16: bool, fast: bool = True,
                 device: torch.device | str = "cuda") -> None:
        dtype = torch.float16 if fp16 else torch.float32
        self.device = torch.device(device)
        net = copy.deepcopy(module)
        if fast:
            net = reduce_first(net)
        self.net = net.to(device=self.device, dtype=dtype).eval()
        self.channels_last = fast
        if fast:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.dtype = dtype
        self.backend = f"cuda-torch-{'fp16' if fp16 else 'fp32'}" + ("-cl" if fast else "")

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(device=self.device, dtype=self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net(x)


def cuda_runner(module: nn.Module, *, fp16: bool, fast: bool = True) -> CudaTorchRunner:
    """The float runner ``Engine.run_float`` and tiling use on CUDA."""
    return CudaTorchRunner(module, fp16=fp16, fast=fast)


class _HostStream:
    """Stands in for a CUDA stream where there is none (the pipeline then runs in order on the
    host: how its slot logic is tested on CPU)."""

    def wait_event(self, event: Any) -> None:
        pass


class _HostEvent:
    def record(self, stream: Any = None) -> None:
        pass

    def synchronize(self) -> None:
        pass


@dataclass
class _Slot:
    """One frame in flight: pinned host and device buffers, and the events ordering them."""

    # buffers per unit that moves and computes as one: [Y, (U, V) stacked 2 x H x W] when both
    # chroma planes are present (one copy each way, one chroma launch), else one per plane;
    # ``_planes`` gives the per-plane views
    host_in: list[torch.Tensor]
    dev_in: list[torch.Tensor]
    dev_out: list[torch.Tensor]
    host_out: list[torch.Tensor]
    uploaded: Any  # torch.cuda.Event
    computed: Any
    downloaded: Any
    ticket: int = -1
    layout: tuple[bool, bool, bool] = (True, False, False)  # which of Y, U, V it carries


def _planes(bufs: list[torch.Tensor]) -> list[torch.Tensor]:
    """The per-plane views of unit buffers (a stacked ``2 x H x W`` pair gives two planes)."""
    return [p for b in bufs for p in (b.unbind(0) if b.dim() == 3 else (b,))]


def _torch_dtype(bit_depth: int) -> torch.dtype:
    # int16 carries 9..15-bit samples exactly and every CUDA op supports it; uint16 does not
    return torch.uint8 if bit_depth == 8 else torch.int16


def _as_numpy_dtype(t: torch.Tensor, bit_depth: int) -> np.ndarray:
    return t.numpy().view(code_dtype(bit_depth)) if bit_depth > 8 else t.numpy()


class CudaPipeline:
    """Asynchronous frame processing on one CUDA device for an ``Engine``."""

    def __init__(self, engine: Any, depth: int = 3) -> None:
        self.engine = engine
        self.scale: int = engine.scale
        self.fp16: bool = engine.fp16
        self.tile: int | None = engine.tile
        self.halo = receptive_radius(engine.module)
        self.runner: CudaTorchRunner = engine._runner
        self.runner_fp32: CudaTorchRunner | None = None
        self.device: torch.device = engine.device
        self.on_gpu = self.device.type == "cuda"
        if self.on_gpu:
            tune_malloc()  # collect() hands out fresh output planes: no page faults for each
        self.upload = torch.cuda.Stream() if self.on_gpu else _HostStream()
        self.compute = torch.cuda.Stream() if self.on_gpu else _HostStream()
        self.download = torch.cuda.Stream() if self.on_gpu else _HostStream()
        self.depth = depth
        self.slots: list[_Slot] = []
        self.geometry: tuple | None = None
        self.order: collections.deque[_Slot] = collections.deque()
        self.next_slot = 0
        self.fused = self._fused(engine) if engine.fast and self.on_gpu else None
        self.fused_chroma = (self._fused_chroma_available() if engine.fast and self.on_gpu
                             else False)
        self.backend = "fused-triton" if self.fused is not None else self.runner.backend

    # -- kernel selection -------------------------------------------------------------------
    def _fused(self, engine: Any) -> Any:
        try:
            from ..kernels import fused_for
        except ImportError as exc:
            log.info("fused kernels not used: vidsr.kernels failed to import (%s); "
                     "running PyTorch", exc)
            return None
        tuning = {} if self.fp16 else {"dtype": torch.float32}
        try:
            fn = fused_for(engine.module, autotune=True, **tuning)
        except Exception as exc:  # a kernel that fails to build must not stop the video
            log.info("fused kernels not used: building them failed (%s); running PyTorch", exc)
            return None
        if fn is None:
            log.info("fused kernels do not cover %s; running PyTorch", engine.name)
        return fn

    @staticmethod
    def _fused_chroma_available() -> bool:
        try:
            from ..kernels import unavailable_reason
        except ImportError:
            return False
        return unavailable_reason() is None

    # -- buffers ----------------------------------------------------------------------------
    def _ensure_slots(self, shapes: list[tuple[int, int]], bit_depth: int) -> None:
        geometry = (tuple(shapes), bit_depth)
        if geometry == self.geometry:
            return
        if self.order:  # frames of the old geometry still in flight own these buffers
            raise InputError("collect() every frame before changing the frame size")
        dt = _torch_dtype(bit_depth)
        s = self.scale
        dev = self.device

        def host(shape: tuple[int, int]) -> torch.Tensor:
            t = torch.empty(shape, dtype=dt)
            return t.pin_memory() if self.on_gpu else t

        def event() -> Any:
            # blocking: a host thread waiting on one sleeps rather than spins, leaving the core
            # to the encoder's threads
            return torch.cuda.Event(blocking=True) if self.on_gpu else _HostEvent()

        def dev_buf(shape: tuple[int, ...]) -> torch.Tensor:
            return torch.empty(shape, dtype=dt, device=dev)

        # U and V share one N=2 buffer at every stage when both are there (same size)
        units = ([shapes[0], (2, *shapes[1])] if len(shapes) == 3 and shapes[1] == shapes[2]
                 else list(shapes))
        self.slots = []
        for _ in range(self.depth):
            ins = [host(u) for u in units]
            d_in = [dev_buf(u) for u in units]
            d_out = [dev_buf((*u[:-2], u[-2] * s, u[-1] * s)) for u in units]
            outs = [host((*u[:-2], u[-2] * s, u[-1] * s)) for u in units]
            self.slots.append(_Slot(host_in=ins, dev_in=d_in, dev_out=d_out, host_out=outs,
                                    uploaded=event(), computed=event(), downloaded=event()))
        self.geometry = geometry
        self.next_slot = 0

    # -- compute ----------------------------------------------------------------------------
    def _luma(self, src: torch.Tensor, dst: torch.Tensor, bit_depth: int) -> None:
        """SR of one device luma plane into ``dst`` (integer), on the current stream."""
        if self.fused is not None:
            view = src if bit_depth == 8 else src.view(torch.uint16)
            out = dst if bit_depth == 8 else dst.view(torch.uint16)
            self.fused(view, bit_depth=bit_depth, out=out)
            return
        maxv = float((1 << bit_depth) - 1)
        runner = self._runner_for(bit_depth)
        x = src.float().mul_(1.0 / maxv).to(runner.dtype)[None, None]
        h, w = src.shape
        if self.tile is not None and (h > self.tile or w > self.tile):
            y = run_tiled(runner, x, self.scale, self.tile, self.halo)
        else:
            try:
                y = runner(x)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                log.warning("a %dx%d frame does not fit in GPU memory; processing it in "
                            "%d-pixel tiles from now on", w, h, OOM_TILE)
                self.tile = OOM_TILE
                y = run_tiled(runner, x, self.scale, self.tile, self.halo)
        dst.copy_(quantize(y[0, 0].float().mul_(maxv), bit_depth))

    def _runner_for(self, bit_depth: int) -> CudaTorchRunner:
        # fp16 holds 11 significant bits: fine for 8- and 10-bit samples, not for 12-bit
        if bit_depth <= 10 or self.runner.dtype == torch.float32:
            return self.runner
        if self.runner_fp32 is None:
            log.info("%d-bit video: running the PyTorch path in fp32", bit_depth)
            self.runner_fp32 = CudaTorchRunner(self.engine.module, fp16=False,
                                               fast=self.engine.fast, device=self.device)
        return self.runner_fp32

    def _chroma(self, src: torch.Tensor, dst: torch.Tensor, bit_depth: int, siting: str,
                subsampling: tuple[int, int], out_siting: str | None = None) -> None:
        s = self.scale
        if self.fused_chroma:
            from ..kernels import chroma_upscale

            tv, first_v, th, first_h = sited_taps(s, siting, subsampling, out_siting)
            view = src if bit_depth == 8 else src.view(torch.uint16)
            out = dst if bit_depth == 8 else dst.view(torch.uint16)
            chroma_upscale(view, s, th, tv, bit_depth, first_h=first_h, first_v=first_v,
                           out=out)
            return
        planes = src.float().reshape(1, -1, *src.shape[-2:])  # (H, W) or (2, H, W) -> 1xCxHxW
        y = upscale_plane_float(planes, s, siting, subsampling, out_siting)
        dst.copy_(quantize(y[0], bit_depth).view(dst.shape))

    # -- asynchronous API -------------------------------------------------------------------
    def _on(self, stream: Any) -> Any:
        return torch.cuda.stream(stream) if self.on_gpu else contextlib.nullcontext()

    def pending(self) -> int:
        return len(self.order)

    @torch.inference_mode()
    def submit(self, ticket: int, y: np.ndarray, u: np.ndarray | None, v: np.ndarray | None,
               bit_depth: int, siting: str, subsampling: tuple[int, int],
               out_siting: str | None = None) -> None:
        planes = [p for p in (y, u, v) if p is not None]
        if len(self.order) >= self.depth:
            raise InputError(f"{self.depth} frames are already in flight: collect() first")
        self._ensure_slots([p.shape for p in planes], bit_depth)
        slot = self.slots[self.next_slot]
        self.next_slot = (self.next_slot + 1) % self.depth
        # the slot's pinned input may still be read by its previous upload
        slot.uploaded.synchronize()
        for host, plane in zip(_planes(slot.host_in), planes, strict=True):
            host.numpy()[...] = plane.view(host.numpy().dtype)
        with self._on(self.upload):
            self.upload.wait_event(slot.computed)  # its previous compute has read dev_in
            for dev, host in zip(slot.dev_in, slot.host_in, strict=True):
                dev.copy_(host, non_blocking=True)
            slot.uploaded.record(self.upload)
        with self._on(self.compute):
            self.compute.wait_event(slot.uploaded)
            self.compute.wait_event(slot.downloaded)  # its previous download has read dev_out
            self._luma(slot.dev_in[0], slot.dev_out[0], bit_depth)
            for src, dst in zip(slot.dev_in[1:], slot.dev_out[1:], strict=True):
                self._chroma(src, dst, bit_depth, siting, subsampling, out_siting)
            slot.computed.record(self.compute)
        with self._on(self.download):
            self.download.wait_event(slot.computed)
            for host, dev in zip(slot.host_out, slot.dev_out, strict=True):
                host.copy_(dev, non_blocking=True)
            slot.downloaded.record(self.download)
        slot.ticket = ticket
        slot.layout = (True, u is not None, v is not None)
        self.order.append(slot)

    def collect(self) -> tuple[int, tuple[np.ndarray | None, ...]]:
        if not self.order:
            raise InputError("collect() called with no submitted frame pending")
        slot = self.order.popleft()
        slot.downloaded.synchronize()
        bit_depth = self.geometry[1] if self.geometry else 8
        outs = iter([_as_numpy_dtype(h, bit_depth).copy() for h in _planes(slot.host_out)])
        frame = tuple(next(outs) if present else None for present in slot.layout)
        return slot.ticket, frame

    # -- synchronous helpers used by Engine --------------------------------------------------
    def run_luma(self, y: np.ndarray, bit_depth: int) -> np.ndarray:
        if self.order:
            raise InputError("upscale_luma() while frames are in flight: collect() them first")
        self.submit(-1, y, None, None, bit_depth, "left", (2, 2))
        return self.collect()[1][0]

    def run_chroma(self, c: np.ndarray, siting: str, bit_depth: int,
                   subsampling: tuple[int, int], out_siting: str | None = None) -> np.ndarray:
        dt = _torch_dtype(bit_depth)
        src = torch.from_numpy(np.ascontiguousarray(c).view(
            np.uint8 if bit_depth == 8 else np.int16)).to(self.device)
        dst = torch.empty((c.shape[0] * self.scale, c.shape[1] * self.scale), dtype=dt,
                          device=self.device)
        with torch.inference_mode():
            self._chroma(src, dst, bit_depth, siting, subsampling, out_siting)
        return _as_numpy_dtype(dst.cpu(), bit_depth)
