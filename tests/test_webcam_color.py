"""Y'CbCr <-> RGB conversions with an explicit matrix and range (``vidsr.color``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vidsr.color import matrix_name, rgb_to_ycbcr, rgb_to_yuv, yuv_to_rgb


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_bt601_limited_matches_the_evaluation_convention(image: np.ndarray) -> None:
    y, u, v = rgb_to_yuv(image, "bt601", subsample=(1, 1))
    ref = rgb_to_ycbcr(image)
    for plane, k in ((y, 0), (u, 1), (v, 2)):
        assert plane.dtype == np.uint8 and plane.shape == (48, 64)
        assert np.abs(plane - ref[..., k]).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("matrix", ["bt601", "bt709", "bt2020"])
@pytest.mark.parametrize("full_range", [False, True])
def test_round_trip(image: np.ndarray, matrix: str, full_range: bool) -> None:
    y, u, v = rgb_to_yuv(image, matrix, full_range, subsample=(1, 1))
    if full_range:
        assert y.min() < 16 or y.max() > 235
    else:
        assert y.min() >= 16 and y.max() <= 235
    back = yuv_to_rgb(y, u, v, matrix, full_range)
    # Limited range has fewer codes, so a round trip can move a channel by up to 2.
    assert np.abs(back.astype(int) - image).max() <= (1 if full_range else 2)


def test_matrices_differ_on_saturated_colour() -> None:
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    ys = {m: int(rgb_to_yuv(red, m, subsample=(1, 1))[0][0, 0]) for m in ("bt601", "bt709")}
    assert ys == {"bt601": round(16 + 219 * 0.299), "bt709": round(16 + 219 * 0.2126)}


def test_matches_opencv_bt601_for_bgr(image: np.ndarray) -> None:
    bgr = image[..., ::-1].copy()
    y, _, _ = rgb_to_yuv(bgr, "bt601", bgr=True)
    ref = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)[:48]  # OpenCV: BT.601 studio swing
    assert np.abs(y.astype(int) - ref).max() <= 1
    planes = rgb_to_yuv(bgr, "bt601", subsample=(1, 1), bgr=True)
    assert np.abs(yuv_to_rgb(*planes, "bt601", bgr=True).astype(int) - bgr).max() <= 2


@pytest.mark.parametrize("siting", ["left", "center"])
def test_420_sizes_and_flat_colour(siting: str) -> None:
    flat = np.full((47, 65, 3), (200, 30, 90), np.uint8)
    y, u, v = rgb_to_yuv(flat, "bt709", siting=siting)
    assert y.shape == (47, 65) and u.shape == v.shape == (24, 33)
    assert np.ptp(u) == 0 and np.ptp(v) == 0
    assert np.abs(yuv_to_rgb(y, u, v, "bt709").astype(int) - flat).max() <= 2


def test_10bit_planes() -> None:
    img = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    y, u, v = rgb_to_yuv(img, "bt2020", subsample=(1, 1))
    rgb = yuv_to_rgb(*(p.astype(np.uint16) << 2 for p in (y, u, v)), "bt2020", bit_depth=10)
    assert rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - img).max() <= 2


def test_matrix_names() -> None:
    assert matrix_name("smpte170m") == "bt601"
    assert matrix_name("BT.709") == "bt709"
    assert matrix_name("bt2020nc") == "bt2020"
    assert matrix_name(None, height=480) == "bt601"
    assert matrix_name("unknown", height=1080) == "bt709"
