"""The column-block form of CPU ECBSR (vidsr.engine.cpu_blocked) against the reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from nets import perturbed_model

import vidsr
from vidsr.engine.bands import BandedRunner
from vidsr.engine.cpu import PlainSRRunner, auto_block, bf16_supported
from vidsr.engine.cpu_blocked import block_weight
from vidsr.engine.tiling import receptive_radius


def test_block_weight_is_the_3x3_conv_on_grouped_columns() -> None:
    """One block conv (valid in the columns) equals the 3x3 conv one column to its right."""
    torch.manual_seed(1)
    w = torch.randn(5, 3, 3, 3)
    x = torch.randn(1, 3, 6, 12)
    ref = F.conv2d(x, w, padding=(1, 0))  # columns 1 .. 10
    for b in (2, 3, 4):
        cols = x.shape[3] // b * b
        xb = x[..., :cols].reshape(1, 3, 6, cols // b, b).permute(0, 4, 1, 2, 3).reshape(
            1, 3 * b, 6, cols // b)
        yb = F.conv2d(xb, block_weight(w, b), padding=(1, 0))  # blocks from column 1
        y = yb.reshape(1, b, 5, 6, -1).permute(0, 2, 3, 4, 1).reshape(1, 5, 6, -1)
        n = y.shape[3]
        assert n == cols - b
        assert torch.allclose(y, ref[..., :n], atol=1e-5), b


@pytest.mark.parametrize("name", ["ecbsr-m4c16-x2", "ecbsr-m2c8-x3", "ecbsr-m1c4-x4"])
@pytest.mark.parametrize("block", [2, 3, 4])
def test_blocked_runner_matches_reference_at_any_width(name: str, block: int) -> None:
    model = perturbed_model(name)
    runner = PlainSRRunner(model, torch.float32, block=block)
    assert runner.blocked is not None and runner.backend.endswith(f"-cols{block}")
    with torch.inference_mode():
        for shape in [(1, 1, 11, w) for w in (1, 2, 3, 5, 8, 13)] + [(2, 1, 7, 10),
                                                                    (1, 1, 1, 9)]:
            x = torch.rand(shape)
            ref = model(x)
            got = runner(x)
            assert got.shape == ref.shape
            assert (got - ref).abs().max().item() < 2e-5, shape


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="no oneDNN")
def test_blocked_runner_in_bands_matches_reference() -> None:
    model = perturbed_model("ecbsr-m2c8-x2", seed=3)
    runner = BandedRunner(lambda: PlainSRRunner(model, torch.float32, block=2), 2,
                          receptive_radius(model), model.scale)
    x = torch.rand(1, 1, 150, 37)
    with torch.inference_mode():
        assert runner.backend == "cpu-packed-cols2 (2 bands)"
        assert (runner(x) - model(x)).abs().max().item() < 2e-5


def test_auto_block_fills_the_channels_oneDNN_runs_best() -> None:
    for cap in ("AVX512", "AVX2", "DEFAULT"):  # bf16 blocks do not depend on the fp32 width
        assert auto_block(16, torch.bfloat16, cap) == 2
        assert auto_block(8, torch.bfloat16, cap) == 4
        assert auto_block(32, torch.bfloat16, cap) == 1
        assert auto_block(2, torch.bfloat16, cap) == 4  # capped
    assert auto_block(16, torch.float32, "AVX512") == 1
    assert auto_block(8, torch.float32, "AVX512") == 2
    assert auto_block(4, torch.float32, "AVX512") == 4
    # eight fp32 channels fill an AVX2 register; NEON and unknown CPUs keep the plain stack
    assert auto_block(8, torch.float32, "AVX2") == 1
    assert auto_block(4, torch.float32, "AVX2") == 2
    assert auto_block(8, torch.float32, "DEFAULT") == 1
    assert auto_block(8, torch.float32) == auto_block(
        8, torch.float32, torch.backends.cpu.get_cpu_capability())


@pytest.mark.skipif(not bf16_supported(), reason="no native bf16 on this CPU")
def test_bf16_blocked_stays_within_a_code_value_of_the_plain_stack() -> None:
    from vidsr.io.synthetic import synthetic_planes

    model = vidsr.load_model("ecbsr-m4c16-x2")  # shipped weights on a natural-looking frame
    x = torch.from_numpy(synthetic_planes(77, 48, 3)[0]).float().div(255)[None, None]
    with torch.inference_mode():
        plain = PlainSRRunner(model, torch.bfloat16, block=1)(x).clone()
        blocked = PlainSRRunner(model, torch.bfloat16, block=2)(x)
        ref = model(x)
    codes = lambda t: (t.clamp(0, 1) * 255).round()  # noqa: E731
    assert (codes(blocked) - codes(plain)).abs().max().item() <= 1
    assert ((codes(blocked) - codes(ref)).abs() <= 1).float().mean().item() >= 0.999


@pytest.mark.skipif(not bf16_supported(), reason="no native bf16 on this CPU")
def test_bf16_buffers_follow_one_input_size() -> None:
    """Frames of changing size (GUI resizes, edge tiles) keep one size's buffers, not all."""
    model = perturbed_model("ecbsr-m4c16-x2")
    runner = PlainSRRunner(model, torch.bfloat16)
    with torch.inference_mode():
        for w in range(20, 44):
            runner(torch.rand(1, 1, 30, w))
    assert len(runner.tmp) <= model.m + 1  # one product buffer per PReLU layer
