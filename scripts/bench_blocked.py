"""Column blocks against the plain stack for CPU ECBSR, in one process, one core.

For each model and dtype, times ``PlainSRRunner`` with ``block`` 1 (the plain 16-channel
stack), 2 and 4 (``vidsr.engine.cpu_blocked``) on one band of a 640x480 frame (240 rows plus the
receptive field, what each of two band workers runs), and a single ``C -> C`` conv in each form.
The forms take turns, ``--rounds`` rounds of ``--frames`` calls each; a form's time is the
median of its rounds' means, and the ratio is against block 1 in the same run. This VM's speed
wanders between runs, so compare ratios, not the milliseconds of different runs. To see what an
AVX2-only CPU would get, hold oneDNN and ATen to AVX2:
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python scripts/bench_blocked.py``.

    python scripts/bench_blocked.py [--models ecbsr-m4c16-x2 ecbsr-m4c8-x2] [--rows 252]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import vidsr
from vidsr.engine.cpu import PlainSRRunner, bf16_supported, tune_malloc
from vidsr.engine.cpu_blocked import block_weight


def _timed(fn, frames: int) -> float:
    t0 = time.perf_counter()
    for _ in range(frames):
        fn()
    return (time.perf_counter() - t0) / frames * 1e3


def _conv_call(c: int, block: int, rows: int, width: int, dtype: torch.dtype):
    """One C -> C conv of a rows x width plane in the block form (block 1: the 3x3 conv)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(c, c, 3, 3, generator=g) * 0.1
    if block > 1:
        w, pad, cols = block_weight(w, block), [1, 0], -(-width // block)
    else:
        pad, cols = [1, 1], width
    w = w.to(dtype)
    b = torch.zeros(w.shape[0], dtype=dtype)
    packed = torch.ops.mkldnn._reorder_convolution_weight(
        w, pad, [1, 1], [1, 1], 1, [1, w.shape[1], rows, cols])
    x = torch.randn(1, w.shape[1], rows, cols, generator=g).to(dtype).contiguous(
        memory_format=torch.channels_last)
    return lambda: torch.ops.mkldnn._convolution_pointwise(
        x, packed, b, pad, [1, 1], [1, 1], 1, "none", [None], "")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["ecbsr-m4c16-x2", "ecbsr-m4c8-x2"])
    p.add_argument("--rows", type=int, default=252, help="band rows (default 240 + 2*6)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--blocks", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args()
    torch.set_num_threads(1)
    tune_malloc()
    dtypes = [torch.bfloat16, torch.float32] if bf16_supported() else [torch.float32]
    print(f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), one thread, "
          f"band {a.rows}x{a.width}, median of {a.rounds} rounds x {a.frames} calls")
    x = torch.rand(1, 1, a.rows, a.width)
    with torch.inference_mode():
        for name in a.models:
            model = vidsr.load_model(name).eval()
            for dtype in dtypes:
                calls = {}
                for blk in a.blocks:
                    runner = PlainSRRunner(model, dtype, block=blk)
                    calls[f"net  block {blk}"] = lambda r=runner: r(x)
                for blk in a.blocks:
                    calls[f"conv block {blk}"] = _conv_call(model.c, blk, a.rows, a.width, dtype)
                for fn in calls.values():
                    fn()  # weights packed, buffers allocated
                times: dict[str, list[float]] = {k: [] for k in calls}
                for _ in range(a.rounds):
                    for k, fn in calls.items():
                        times[k].append(_timed(fn, a.frames))
                dname = str(dtype).removeprefix("torch.")
                for kind in ("net ", "conv"):
                    base = statistics.median(times[f"{kind} block 1"])
                    for blk in a.blocks:
                        ms = statistics.median(times[f"{kind} block {blk}"])
                        spread = ", ".join(f"{t:.2f}" for t in times[f"{kind} block {blk}"])
                        print(f"{name:16s} {dname:8s} {kind} block {blk}: {ms:7.2f} ms  "
                              f"x{base / ms:4.2f}  ({spread})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
