"""CPU runners: the fastest measured formulation of each deploy model, with eager fallback.

A runner maps ``N x 1 x H x W`` float32 in [0, 1] to ``N x 1 x sH x sW``; its result stays
valid until the runner's next call (runners reuse their output buffers).

What was measured (``vidsr bench``, see the README) and why these formulations:

- Plain ECBSR: the convolutions run at close to the core's FMA peak already, so the win is in
  everything around them: weights pre-packed once for oneDNN, channels-last activations (no
  layout reorders between layers), and the residual add fused with the pixel shuffle into a
  reused output buffer. This is the graph ``torch.compile`` (freezing) produces, without the
  tens of seconds of compilation.
- edge-SR: the reference shuffles a ``g*s*s*C``-channel tensor and then reduces over ``C``
  (softmax or max) on the shuffled, strided result. Here the filter bank runs as an im2col GEMM
  over strips of a few thousand pixels, the reduction over ``C`` happens per sub-pixel phase
  on the GEMM output while it is still in cache, and only the 1-channel result is shuffled.
- bf16 ECBSR (CPUs with native bf16 dot products): the convolutions take half the time of
  fp32 on AMX, and the eager PReLU between them then costs as much as a conv; a run allowed to
  compile fuses it into one pass (``cpu_prelu``): 0.75-0.80 of the bf16 time in ``vidsr bench``.
- Narrow ECBSR layers (16 channels in bf16, 8 in fp32 with AVX-512) leave most of oneDNN's
  kernel idle; grouping adjacent columns into blocks of ``auto_block`` columns gives it 32
  (bf16) or 16 (fp32) channels at 4/3 of the multiply-adds (``cpu_blocked``): 1.14-1.59x on
  the whole net. With AVX2 eight fp32 channels fill a register and fp32 stays unblocked.
- glibc returns large freed blocks to the kernel, so every fresh per-frame tensor costs page
  faults (up to 2.8x here); ``tune_malloc`` keeps them in the heap.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..imresize import BicubicUpsample, phase_kernels
from ..models.ecbsr import PlainSR
from ..models.edgesr import ESRCNN, ESRTM, ESRTR, ESRMax
from . import cpu_prelu
from .bands import BandedRunner
from .cpu_blocked import ColumnBlocked
from .tiling import receptive_radius

log = logging.getLogger(__name__)

_MALLOC_TUNED = False


def tune_malloc() -> bool:
    """Keep large freed blocks in glibc's heap (no per-frame mmap/munmap and page faults).

    Sets ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` to 1 GiB once per process, the same as
    exporting ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``. The cost: memory freed by
    the process stays mapped (resident size stays at its peak). Returns whether it applied.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(-3, 1 << 30) == 1 and libc.mallopt(-1, 1 << 30) == 1  # mmap, trim
    except (OSError, AttributeError):
        return False
    _MALLOC_TUNED = ok
    log.debug("glibc malloc thresholds raised to 1 GiB: %s", ok)
    return ok


class EagerRunner:
    """The reference module called as is."""

    backend = "eager"

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


# fp32 lanes of the widest vector unit ATen and oneDNN use, by torch's CPU capability
_FP32_LANES = {"AVX512": 16, "AVX2": 8}


def auto_block(c: int, dtype: torch.dtype, capability: str | None = None) -> int:
    """Columns per block for a ``c``-channel ECBSR: blocks of up to 32 channels in bf16, and in
    fp32 up to one vector register's lanes (16 with AVX-512, 8 with AVX2, no blocks on other
    CPUs), at most 4 columns. ``capability``: ``torch.backends.cpu.get_cpu_capability()`` by
    default. ``python scripts/bench_blocked.py`` on the Sapphire Rapids VM, the whole net on
    one band, two runs, against block 1: bf16 C=16 block 2 1.14-1.25x, block 4 0.80-0.84x; bf16
    C=8 block 2 1.31-1.47x, block 4 1.32-1.59x; fp32 C=16 block 2 0.79-0.87x; fp32 C=8 block 2
    1.25-1.28x, block 4 0.89x. With oneDNN held to AVX2 there (``ONEDNN_MAX_CPU_ISA=AVX2``,
    three runs, the last also with ``ATEN_CPU_CAPABILITY=avx2``), fp32 C=8 block 2 was 0.86x,
    0.97x and 1.03x, C=16 1.04x: eight fp32 channels already fill an AVX2 register, so the
    blocks' extra third of multiply-adds buys nothing there."""
    if dtype == torch.bfloat16:
        target = 32
    else:
        cap = torch.backends.cpu.get_cpu_capability() if capability is None else capability
        target = _FP32_LANES.get(cap, 0)
    block = 1
    while block < 4 and 2 * block * c <= target:
        block *= 2
    return block


class PlainSRRunner:
    """Plain ECBSR with pre-packed oneDNN weights, channels-last activations, and the residual
    add fused into the pixel shuffle (written into a reused buffer)."""

    def __init__(self, module: PlainSR, dtype: torch.dtype = torch.float32,
                 compile_after: int | None = None, block: int | None = None) -> None:
        self.scale = module.scale
        self.dtype = dtype
        self._backend = "cpu-packed"
        # bf16: after this many frames, compile the one-pass PReLU (vidsr.engine.cpu_prelu)
        self.compile_after = compile_after if dtype == torch.bfloat16 else None
        self.frames = 0
        weights = [c.weight.detach().float() for c in module.convs]
        biases = [c.bias.detach().float() for c in module.convs]
        alphas = [a.weight.detach().float() for a in module.acts]
        if dtype != torch.float32:
            # torch's low-precision PReLU is a scalar loop (measured 16 ms for one 16x640x480
            # bf16 layer here); max(z, a*z) is two vectorised passes (1.7 ms) and equals
            # prelu(z) where a <= 1. Channels with a > 1 are sign-flipped (conv output and the
            # next conv's input weights times -1), which turns max into the min those need:
            # -max(-y, -a*y) = min(y, a*y) = prelu(y) for a > 1. Exact, folded into weights.
            for i, a in enumerate(alphas):
                sign = torch.where(a > 1, -1.0, 1.0)
                weights[i] = weights[i] * sign.view(-1, 1, 1, 1)
                biases[i] = biases[i] * sign
                weights[i + 1] = weights[i + 1] * sign.view(1, -1, 1, 1)
        self.tmp: dict[tuple, torch.Tensor] = {}  # the PReLU's products, by layer shape
        self._tmp_input: tuple[int, ...] = ()
        if dtype != torch.float32:
            self._backend = f"cpu-packed-{str(dtype).removeprefix('torch.')}"
        self.packed: dict[tuple[int, ...], list[torch.Tensor]] = {}
        self.out: torch.Tensor | None = None
        self.use_mkldnn = torch.backends.mkldnn.is_available()
        if not self.use_mkldnn:
            self._backend = "cpu-channels-last"
            log.info("oneDNN is not available in this torch; ECBSR runs channels-last eager")
        # columns in blocks of `block` (vidsr.engine.cpu_blocked), else the plain stack
        self.block = block if block is not None else auto_block(module.c, dtype)
        self.blocked: ColumnBlocked | None = None
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor] = []
        self.alphas: list[torch.Tensor] = []
        if self.block > 1 and self.use_mkldnn:
            self.blocked = ColumnBlocked(weights, biases, alphas, self.scale, dtype, self.block)
            self._backend += f"-cols{self.block}"
        else:
            self.weights = [w.to(dtype).contiguous() for w in weights]
            self.biases = [b.to(dtype).contiguous() for b in biases]
            self.alphas = [a.to(dtype).contiguous() for a in alphas]

    @property
    def backend(self) -> str:
        return self._backend + ("+compiled-prelu" if self.compile_after is not None
                                and cpu_prelu.compiled() else "")

    def decided(self) -> bool:
        """Whether the PReLU compile this runner may start has settled (True without one)."""
        return self.compile_after is None or cpu_prelu.settled()

    def close(self) -> None:
        """Wait for a PReLU compile in progress."""
        if self.compile_after is not None:
            cpu_prelu.wait()

    def _conv_weights(self, shape: tuple[int, ...]) -> list[torch.Tensor]:
        if shape not in self.packed:
            n, _, h, w = shape
            packed = []
            for wt in self.weights:
                if self.use_mkldnn:
                    wt = torch.ops.mkldnn._reorder_convolution_weight(
                        wt, [1, 1], [1, 1], [1, 1], 1, [n, wt.shape[1], h, w])
                else:
                    wt = wt.contiguous(memory_format=torch.channels_last)
                packed.append(wt)
            self.packed = {shape: packed}  # one resolution at a time: video frames share it
        return self.packed[shape]

    def _conv(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.use_mkldnn:
            return torch.ops.mkldnn._convolution_pointwise(
                x, w, b, [1, 1], [1, 1], [1, 1], 1, "none", [None], "")
        return F.conv2d(x, w, b, padding=1)

    def _act(self, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        if y.dtype == torch.float32:
            return F.prelu(y, a.view(-1))
        # max(z, a*z) on sign-folded channels (see __init__)
        key = (tuple(y.shape), y.stride())
        tmp = self.tmp.get(key)
        if tmp is None:  # one per layer shape (the column-block form's shrink by a block)
            tmp = self.tmp[key] = torch.empty_like(y)
        return cpu_prelu.prelu_bf16(y, a.view(1, -1, 1, 1), tmp, self.compile_after is not None)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        s = self.scale
        if self.compile_after is not None and self.frames < self.compile_after:
            self.frames += 1
            if self.frames == self.compile_after:
                cpu_prelu.start_compile()
        if self.tmp and self._tmp_input != x.shape:
            self.tmp.clear()  # buffers for one input size at a time, like the packed weights
        self._tmp_input = x.shape
        if self.blocked is not None:
            return self.blocked(x, self._act)
        weights = self._conv_weights(tuple(x.shape))
        y = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        for wt, b, a in zip(weights[:-1], self.biases[:-1], self.alphas, strict=True):
            y = self._act(self._conv(y, wt, b), a)
        y = self._conv(y, weights[-1], self.biases[-1])
        y = y.contiguous(memory_format=torch.channels_last)  # a no-op for oneDNN's output
        if self.out is None or self.out.shape != (n, 1, h * s, w * s):
            self.out = torch.empty(n, 1, h * s, w * s)
        # out[h*s + i, w*s + j] = y[h, w, i*s + j] + x[h, w]  (in fp32: the residual is exact)
        phases = y.permute(0, 2, 3, 1).view(n, h, w, s, s).permute(0, 1, 3, 2, 4)
        torch.add(phases, x.reshape(n, h, 1, w, 1), out=self.out.view(n, h, s, w, s))
        return self.out


class StripEdgeSR:
    """edge-SR (and eSR-CNN's head) as a strip-wise im2col GEMM with the max/softmax reduction
    done per sub-pixel phase before the shuffle.

    The filter bank's output channel ``(grp*C + c)*s*s + phase`` (grp: value, key[, query]) is
    row ``grp, c, phase`` of the GEMM result, so each group is a ``C x (s*s*pixels)`` block and
    the reduction over ``C`` is an elementwise pass over its rows.
    """

    backend = "cpu-strip-gemm"

    def __init__(self, module: nn.Module, strip_pixels: int = 4096) -> None:
        if isinstance(module, ESRCNN):
            self.pre: nn.Module | None = module.cnn[:-1]
            conv: nn.Conv2d = module.cnn[-1]
            self.mode, self.groups = "tm", 2
        else:
            self.pre = None
            conv = module.filter
            self.mode = {ESRMax: "max", ESRTM: "tm", ESRTR: "tr"}[type(module)]
            self.groups = module.groups
        self.scale, self.c = module.scale, module.c
        self.n_out, self.cin, self.kh, self.kw = conv.weight.shape
        self.pad = self.kh // 2
        self.replicate = conv.padding_mode == "replicate"
        self.weight = conv.weight.detach().float().reshape(self.n_out, -1).contiguous()
        self.strip_pixels = strip_pixels
        self.bufs: dict[str, torch.Tensor] = {}
        self.key: tuple[int, ...] = ()

    def _buffers(self, h: int, w: int, rows: int) -> dict[str, torch.Tensor]:
        key = (h, w, rows)
        if key != self.key:
            s, p = self.scale, self.pad
            n = rows * w
            self.bufs = {
                "xp": torch.zeros(self.cin, h + 2 * p, w + 2 * p),  # zero borders stay zero
                "cols": torch.empty(self.cin * self.kh * self.kw * n),
                "y": torch.empty(self.n_out * n),
                "acc": torch.empty(s * s * n),
                "den": torch.empty(s * s * n),
                "out": torch.empty(1, 1, h * s, w * s),
            }
            self.key = key
        return self.bufs

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != 1:
            return torch.cat([self(x[i:i + 1]).clone() for i in range(x.shape[0])])
        if self.pre is not None:
            x = self.pre(x)
        _, cin, h, w = x.shape
        s, p, c, ss = self.scale, self.pad, self.c, self.scale * self.scale
        rows = max(1, min(h, self.strip_pixels // max(w, 1)))
        b = self._buffers(h, w, rows)
        xp = b["xp"]
        xp[:, p:p + h, p:p + w].copy_(x[0])
        if self.replicate and p:  # fill the ring from the edges, in the reused buffer
            xp[:, :p, p:p + w] = xp[:, p:p + 1, p:p + w]
            xp[:, p + h:, p:p + w] = xp[:, p + h - 1:p + h, p:p + w]
            xp[:, :, :p] = xp[:, :, p:p + 1]
            xp[:, :, p + w:] = xp[:, :, p + w - 1:p + w]
        out = b["out"].view(h, s, w, s)
        sc, sh, sw = xp.stride()
        for r0 in range(0, h, rows):
            rr = min(rows, h - r0)
            n = rr * w
            # im2col of the strip: (cin, kh, kw, rr, w) view of the padded input, copied flat
            window = xp.as_strided((cin, self.kh, self.kw, rr, w), (sc, sh, sw, sh, sw),
                                   xp.storage_offset() + r0 * sh)
            cols = b["cols"][:cin * self.kh * self.kw * n]
            cols.view(cin, self.kh, self.kw, rr, w).copy_(window)
            y = b["y"][:self.n_out * n].view(self.n_out, n)
            torch.mm(self.weight, cols.view(-1, n), out=y)
            grp = y.view(self.groups, c, ss * n)
            acc = b["acc"][:ss * n]
            if self.mode == "max":
                torch.amax(grp[0], 0, out=acc)
            else:
                key = grp[1] if self.mode == "tm" else grp[2].mul_(grp[1])  # query * key
                den = b["den"][:ss * n]
                torch.amax(key, 0, out=den)
                key.sub_(den).exp_()
                torch.sum(key, 0, out=den)
                torch.sum(grp[0].mul_(key), 0, out=acc)
                acc.div_(den)
            # acc is (phase_row, phase_col, row, col): shuffle this strip into the output
            out[r0:r0 + rr].copy_(acc.view(s, s, rr, w).permute(2, 0, 3, 1))
        return b["out"]


class OpenCVBicubic:
    """``bicubic-xS`` (the comparison baseline) as ``S*S`` separable 5-tap OpenCV filters, one
    per output phase, each written interleaved into a reused output buffer.

    The same taps and replicated edges as ``BicubicUpsample`` (outputs agree to float rounding);
    OpenCV's SIMD row/column filters avoid the conv form's 1-channel convolutions, which oneDNN
    runs poorly (`vidsr bench --models bicubic-x2 --sizes 640x480 --no-e2e --device cpu`, idle
    2-core machine: 3.0 ms against 7.5 ms eager; eager fell to about 100 ms under load).
    """

    backend = "cpu-opencv"

    def __init__(self, module: BicubicUpsample) -> None:
        self.scale = module.scale
        self.taps = phase_kernels(module.scale).astype("float32")  # (s, 5)
        self.out: torch.Tensor | None = None

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import cv2

        if x.shape[:2] != (1, 1):
            n, c, h, w = x.shape
            planes = x.reshape(n * c, 1, h, w)
            return torch.cat([self(p[None]).clone() for p in planes]).reshape(
                n, c, h * self.scale, w * self.scale)
        s = self.scale
        h, w = x.shape[-2:]
        if self.out is None or self.out.shape != (1, 1, h * s, w * s):
            self.out = torch.empty(1, 1, h * s, w * s)
        src = x[0, 0].float().contiguous().numpy()
        out = self.out.numpy().reshape(h, s, w, s)
        for r in range(s):
            for c in range(s):  # correlation, anchor at the centre tap: in[q-2 .. q+2]
                out[:, r, :, c] = cv2.sepFilter2D(src, cv2.CV_32F, self.taps[c], self.taps[r],
                                                  borderType=cv2.BORDER_REPLICATE)
        return self.out


def bf16_supported() -> bool:
    """Whether oneDNN has native bf16 dot products on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def fast_runner(module: nn.Module, bf16: bool = False,
                compile_after: int | None = None) -> Any | None:
    """The fast formulation for ``module``, or None where eager is the best there is.
    ``bf16``: ECBSR convolutions in bfloat16 (edge-SR's softmax stays fp32), compiling the
    one-pass PReLU after ``compile_after`` frames (None: never)."""
    if isinstance(module, PlainSR):
        return PlainSRRunner(module, torch.bfloat16 if bf16 else torch.float32, compile_after)
    if isinstance(module, (ESRMax, ESRTM, ESRTR, ESRCNN)):
        return StripEdgeSR(module)
    if isinstance(module, BicubicUpsample):
        return OpenCVBicubic(module)
    return None


def cpu_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def cpu_runner(module: nn.Module, *, fast: bool = True, workers: int | None = None,
               bf16: bool = False, compile_after: int | None = None) -> Any:
    """The runner for ``module`` on CPU: eager when ``fast`` is False or nothing faster fits.

    The fast runners work on ``workers`` bands in parallel (default: one per core) and set
    torch's intra-op threads to 1 for the process, which the bands replace. Each band also
    compiles the model with ``torch.compile`` in the background once ``compile_after`` frames
    of one size have gone through, and keeps it where it is faster (None: never compile); bf16
    ECBSR compiles only its PReLU (``cpu_prelu``), once for the process.
    """
    if not fast or fast_runner(module) is None:
        return EagerRunner(module)
    tune_malloc()
    bf16 = bf16 and isinstance(module, PlainSR)  # edge-SR's fast path is fp32 only
    if bf16 and not bf16_supported():
        log.info("this CPU has no native bf16 dot products; running fp32")
        bf16 = False
    workers = workers or cpu_workers()
    if torch.get_num_threads() != 1:
        log.info("CPU engine: %d band worker(s), torch intra-op threads set to 1", workers)
        torch.set_num_threads(1)
    make = lambda: fast_runner(module, bf16)  # noqa: E731
    if compile_after is not None:
        from .compiled import LazyCompiledRunner, compile_available

        reason = compile_available()
        if reason is not None:
            log.info("torch.compile not used: %s", reason)
        elif bf16:  # only the PReLU: inductor's bf16 network was slower than the packed convs
            make = lambda: fast_runner(module, bf16, compile_after)  # noqa: E731
        else:
            make = lambda: LazyCompiledRunner(module, fast_runner(module), compile_after)  # noqa: E731
    if workers == 1:
        return make()
    return BandedRunner(make, workers, receptive_radius(module),
                        module.scale)
