"""Every fast CPU formulation against the reference module, for every family and scale."""

from __future__ import annotations

import pytest
import torch
from nets import perturbed_model

import vidsr
from vidsr.engine import Engine
from vidsr.engine.bands import BandedRunner
from vidsr.engine.cpu import (
    EagerRunner,
    PlainSRRunner,
    StripEdgeSR,
    cpu_runner,
    fast_runner,
)

NAMES = [f"{arch}-x{s}" for s in (2, 3, 4) for arch in (
    "ecbsr-m4c16", "ecbsr-m2c8", "esr-max-k7c4", "esr-max-k3c1", "esr-tm-k7c16", "esr-tm-k5c3",
    "esr-tr-k7c12", "esr-tr-k3c2", "esr-cnn-c6d3s15", "esr-cnn-c2d1s3")]


@pytest.mark.parametrize("name", NAMES)
def test_fast_runner_matches_reference(name: str) -> None:
    model = perturbed_model(name)
    runner = fast_runner(model)
    assert runner is not None
    with torch.inference_mode():
        for shape in [(1, 1, 19, 33), (1, 1, 40, 7), (2, 1, 9, 12)]:
            x = torch.rand(shape)
            ref = model(x)
            got = runner(x)
            assert got.shape == ref.shape
            assert (got - ref).abs().max().item() < 2e-5, shape


def test_runner_kinds_and_buffer_reuse() -> None:
    ecb = perturbed_model("ecbsr-m2c8-x2")
    assert isinstance(cpu_runner(ecb, workers=1, compile_after=None), PlainSRRunner)
    assert isinstance(cpu_runner(ecb, workers=2), BandedRunner)
    assert isinstance(cpu_runner(ecb, fast=False), EagerRunner)
    tm = cpu_runner(perturbed_model("esr-tm-k3c2-x2"), workers=1, compile_after=None)
    assert isinstance(tm, StripEdgeSR)
    lazy = cpu_runner(perturbed_model("esr-tm-k3c2-x2"), workers=1, compile_after=5)
    assert isinstance(getattr(lazy, "fallback", None), StripEdgeSR)
    assert cpu_runner(vidsr.load_model("bicubic-x2"), workers=1).backend == "cpu-opencv"
    runner = cpu_runner(perturbed_model("esr-max-k3c2-x2"))
    with torch.inference_mode():
        a = runner(torch.zeros(1, 1, 8, 8)).clone()
        b = runner(torch.ones(1, 1, 8, 8))
    assert not torch.equal(a, b)  # a buffer reused across calls still holds the new result


@pytest.mark.parametrize("name", ["ecbsr-m4c8-x2", "esr-tm-k7c4-x2", "esr-cnn-c2d2s3-x3"])
def test_engine_fast_equals_eager_on_planes(name: str) -> None:
    import numpy as np

    model = perturbed_model(name)
    y = np.random.default_rng(0).integers(0, 256, (37, 53), dtype=np.uint8)
    fast = Engine(model, device="cpu", fp16=False).upscale_luma(y)  # fp32 fast path
    eager = Engine(model, device="cpu", fast=False).upscale_luma(y)
    assert np.abs(fast.astype(int) - eager.astype(int)).max() <= 1
    assert np.mean(fast == eager) > 0.999


@pytest.mark.parametrize("name", ["esr-max-k7c4-x2", "esr-tm-k7c16-x3", "esr-tr-k5c4-x4",
                                  "esr-cnn-c6d3s15-x2"])
def test_reduce_first_formulation_matches_reference(name: str) -> None:
    from vidsr.engine.formulations import ReduceFirstEdgeSR

    model = perturbed_model(name)
    fast = ReduceFirstEdgeSR(model)
    with torch.inference_mode():
        x = torch.rand(2, 1, 13, 17)
        assert (fast(x) - model(x)).abs().max().item() < 2e-5
        # the channels-last branch (the GPU fp16 path's layout)
        cl = ReduceFirstEdgeSR(model).to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        assert not cl.body(xc).is_contiguous()
        assert (cl(xc) - model(x)).abs().max().item() < 2e-5


@pytest.mark.parametrize("name", ["ecbsr-m4c8-x2", "esr-tm-k7c4-x3", "esr-cnn-c2d2s3-x2"])
def test_banded_runner_matches_reference(name: str) -> None:
    model = perturbed_model(name)
    runner = cpu_runner(model, workers=3)
    assert runner.backend.endswith(" (3 bands)")
    with torch.inference_mode():
        for shape in [(1, 1, 200, 37), (1, 1, 20, 30)]:  # three bands; one band
            x = torch.rand(shape)
            assert (runner(x) - model(x)).abs().max().item() < 2e-5


needs_bf16 = pytest.mark.skipif(
    not __import__("vidsr.engine.cpu", fromlist=["x"]).bf16_supported(),
    reason="no native bf16 on this CPU (the engine then runs fp32)")


@needs_bf16
@pytest.mark.parametrize("name", ["ecbsr-m4c16-x2", "ecbsr-m4c8-x3"])
def test_cpu_bf16_within_one_code_value(name: str) -> None:
    import numpy as np

    from vidsr.io.synthetic import synthetic_planes
    from vidsr.metrics import psnr

    model = perturbed_model(name)
    y = synthetic_planes(160, 96, 3)[0]
    ref = Engine(model, device="cpu", fast=False).upscale_luma(y)
    eng = Engine(model, device="cpu")  # bf16 is the CPU default where it is native
    assert eng.cpu_bf16 and "bfloat16" in eng.backend
    assert not Engine(model, device="cpu", fp16=False).cpu_bf16
    got = eng.upscale_luma(y)
    d = np.abs(got.astype(int) - ref.astype(int))
    assert np.mean(d <= 1) >= 0.999
    assert psnr(got.astype(np.float64), ref.astype(np.float64), 0) >= 50.0


@needs_bf16
def test_the_backend_named_is_the_one_that_ran() -> None:
    # 10-bit frames run the fp32 form; the summary still named the bf16 one
    import numpy as np

    eng = Engine(perturbed_model("ecbsr-m4c8-x2"), device="cpu")
    eng.upscale_luma(np.full((16, 24), 500, np.uint16), bit_depth=10)
    assert "bfloat16" not in eng.backend
    eng.upscale_luma(np.full((16, 24), 50, np.uint8))
    assert "bfloat16" in eng.backend


@needs_bf16
def test_bf16_prelu_folding_handles_any_slope() -> None:
    """The bf16 runner's max(z, a*z) PReLU with sign-folded channels for slopes > 1."""
    model = vidsr.load_model("ecbsr-m2c8-x2", pretrained=False)
    with torch.no_grad():
        for act in model.acts:  # slopes below 0, in [0, 1] and above 1
            act.weight.copy_(torch.linspace(-0.5, 1.8, act.weight.numel()))
    x = torch.rand(1, 1, 24, 31)
    runner = PlainSRRunner(model, torch.bfloat16)
    with torch.inference_mode():
        ref = model(x)
        err = (runner(x) - ref).abs().max().item()
    assert err < 0.02 * ref.abs().max().item()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_opencv_bicubic_matches_module(scale: int) -> None:
    from vidsr.engine.cpu import OpenCVBicubic

    model = vidsr.load_model(f"bicubic-x{scale}")
    assert isinstance(fast_runner(model), OpenCVBicubic)
    banded = cpu_runner(model, workers=2)
    with torch.inference_mode():
        for shape in [(1, 1, 150, 37), (1, 1, 9, 13), (2, 1, 7, 6)]:
            x = torch.rand(shape)
            ref = model(x)
            assert (OpenCVBicubic(model)(x) - ref).abs().max().item() < 1e-5
            if shape[0] == 1:
                assert (banded(x) - ref).abs().max().item() < 1e-5
