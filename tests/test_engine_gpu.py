"""CUDA engine: fused/fp16 output against the CPU engine, the stream pipeline's ordering,
10-bit planes, chroma, tiling and the fp32 path. Skipped without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vidsr
from vidsr.engine import Engine

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

NAMES = ["ecbsr-m4c16-x2", "ecbsr-m4c8-x3", "esr-max-k7c4-x2", "esr-tm-k7c16-x2",
         "esr-tr-k7c12-x4", "esr-cnn-c6d3s15-x2", "bicubic-x2"]


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return vidsr.load_model(name, pretrained=False)


def _close(a: np.ndarray, b: np.ndarray, frac: float = 0.999, tol: int = 1) -> None:
    d = np.abs(a.astype(np.int64) - b.astype(np.int64))
    assert np.mean(d <= tol) >= frac, (d.max(), np.mean(d <= tol))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fp16", [True, False])
def test_cuda_luma_matches_cpu(name: str, fp16: bool) -> None:
    model = _model(name)
    y = np.random.default_rng(0).integers(0, 256, (135, 241), dtype=np.uint8)
    ref = Engine(model, device="cpu", fast=False).upscale_luma(y)
    gpu = Engine(model, device="cuda", fp16=fp16)
    _close(gpu.upscale_luma(y), ref, 0.995 if fp16 else 0.9999)
    eager = Engine(model, device="cuda", fp16=fp16, fast=False)
    _close(eager.upscale_luma(y), ref, 0.995 if fp16 else 0.9999)


@pytest.mark.parametrize("bit_depth", [10, 12])
def test_cuda_high_bit_depth(bit_depth: int) -> None:
    model = _model("ecbsr-m4c16-x2")
    maxv = (1 << bit_depth) - 1
    y = np.random.default_rng(1).integers(0, maxv + 1, (64, 96)).astype(np.uint16)
    ref = Engine(model, device="cpu", fast=False).upscale_luma(y, bit_depth)
    got = Engine(model, device="cuda").upscale_luma(y, bit_depth)
    assert got.dtype == np.uint16 and got.max() <= maxv
    _close(got, ref, 0.99, tol=4 if bit_depth == 12 else 2)


@pytest.mark.parametrize("siting", ["left", "center", "topleft"])
def test_cuda_chroma_matches_cpu(siting: str) -> None:
    c = np.random.default_rng(2).integers(0, 256, (68, 121), dtype=np.uint8)
    cpu = Engine("bicubic-x2", device="cpu").upscale_chroma(c, siting)
    gpu = Engine("bicubic-x2", device="cuda").upscale_chroma(c, siting)
    _close(gpu, cpu, 0.999)
    # 4:2:2 moved to left siting (the pipeline's choice for a centred 4:2:2 source)
    cpu = Engine("bicubic-x2", device="cpu").upscale_chroma(c, siting, subsampling=(1, 2),
                                                            out_siting="left")
    gpu = Engine("bicubic-x2", device="cuda").upscale_chroma(c, siting, subsampling=(1, 2),
                                                             out_siting="left")
    _close(gpu, cpu, 0.999)


def test_submit_collect_pipeline_order_and_values() -> None:
    model = _model("esr-tm-k7c16-x2")
    cpu = Engine(model, device="cpu", fast=False)
    gpu = Engine(model, device="cuda")
    rng = np.random.default_rng(3)
    frames = [(rng.integers(0, 256, (90, 160), dtype=np.uint8),
               rng.integers(0, 256, (45, 80), dtype=np.uint8),
               rng.integers(0, 256, (45, 80), dtype=np.uint8)) for _ in range(8)]
    got = []
    for i, (y, u, v) in enumerate(frames):
        while gpu.pending() >= 3:
            got.append(gpu.collect())
        assert gpu.submit(y, u, v) == i
    while gpu.pending():
        got.append(gpu.collect())
    assert [t for t, _ in got] == list(range(8))
    for (_, (yo, uo, vo)), (y, u, v) in zip(got, frames, strict=True):
        _close(yo, cpu.upscale_luma(y), 0.995)
        _close(uo, cpu.upscale_chroma(u), 0.999)
        _close(vo, cpu.upscale_chroma(v), 0.999)


def test_cuda_tiled_equals_untiled() -> None:
    model = _model("ecbsr-m4c8-x2")
    y = np.random.default_rng(4).integers(0, 256, (200, 300), dtype=np.uint8)
    whole = Engine(model, device="cuda", fp16=False, fast=False).upscale_luma(y)
    tiled = Engine(model, device="cuda", fp16=False, fast=False, tile=64).upscale_luma(y)
    _close(tiled, whole, 0.9999)
