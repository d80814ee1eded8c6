"""MATLAB-compatible bicubic resizing, checked against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidsr.imresize import BicubicUpsample, contributions, cubic, imresize, phase_kernels


def test_cubic_kernel_values() -> None:
    # a = -0.5: k(0) = 1, k(0.5) = 0.5625, k(1) = 0, k(1.5) = -0.0625, k(2) = 0
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, -0.5, 2.5])
    assert np.allclose(cubic(x), [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.5625, 0.0])


def test_x2_upscale_phase_taps() -> None:
    # Output pixels sit at input offsets -0.25 and +0.25 from their nearest input pixel x.
    # Phase 0 takes x-2..x+1 at distances 1.75, 0.75, 0.25, 1.25; phase 1 mirrors it.
    k = phase_kernels(2)
    a, b, c, d = cubic(np.array([1.25, 0.25, 0.75, 1.75]))
    assert np.allclose(k[0], [d, c, b, a, 0.0])
    assert np.allclose(k[1], [0.0, a, b, c, d])
    assert np.allclose(k.sum(axis=1), 1.0)


def test_upscale_a_line_by_hand() -> None:
    line = np.array([[10.0, 20.0, 60.0, 40.0]])
    out = imresize(line, size=(1, 8))
    a, b, c, d = cubic(np.array([1.25, 0.25, 0.75, 1.75]))
    # output 3 lies 0.25 right of input 1: inputs 0..3 at distances 1.25, 0.25, 0.75, 1.75
    assert out[0, 3] == pytest.approx(a * 10 + b * 20 + c * 60 + d * 40)
    # output 0 lies 0.25 left of input 0: inputs -2, -1 (both the edge, replicated), 0, 1
    assert out[0, 0] == pytest.approx(d * 10 + c * 10 + b * 10 + a * 20)


def test_antialiased_downscale_by_hand() -> None:
    # x1/2: the kernel widens to 8 taps, k(x/2)/2 at distances 0.5, 1.5, 2.5, 3.5 either side.
    idx, w = contributions(16, 8, 0.5)
    expect = cubic(np.array([3.5, 2.5, 1.5, 0.5, 0.5, 1.5, 2.5, 3.5]) / 2) / 2
    assert np.allclose(w[3], expect / expect.sum())
    assert list(idx[3]) == list(range(3, 11))
    assert list(idx[0]) == [0, 0, 0, 0, 1, 2, 3, 4]  # left edge replicated


def test_uint8_rounds_after_each_axis() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    out = imresize(img, 0.5)
    assert out.dtype == np.uint8 and out.shape == (6, 5, 3)
    rows = np.floor(np.clip(imresize(img.astype(np.float64), size=(6, 10)), 0, 255) + 0.5)
    both = np.floor(np.clip(imresize(rows, size=(6, 5)), 0, 255) + 0.5)
    assert np.array_equal(out, both.astype(np.uint8))


def test_constant_image_stays_constant() -> None:
    img = np.full((9, 7), 77, np.uint8)
    assert np.all(imresize(img, 1 / 3) == 77)
    assert np.all(imresize(img, 2) == 77)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_torch_upsample_matches_numpy(scale: int) -> None:
    rng = np.random.default_rng(scale)
    plane = rng.random((7, 9)) * 255
    ref = imresize(plane, scale)
    out = BicubicUpsample(scale)(torch.from_numpy(plane)[None, None].float())[0, 0].numpy()
    assert out.shape == ref.shape
    assert np.abs(out - ref).max() < 1e-3
