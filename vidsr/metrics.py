"""PSNR and SSIM on 0-255 planes, as the SR literature computes them."""

from __future__ import annotations

import cv2
import numpy as np

from .errors import InputError


def _planes(a: np.ndarray, b: np.ndarray, border: int, least: int = 1,
            ) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` as float64, ``border`` pixels cut from every side; ``InputError`` unless
    they are planes (or H x W x C images) of one shape leaving at least ``least`` pixels a
    side."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim not in (2, 3):
        raise InputError(f"metrics compare two planes (H x W, or H x W x C) of one shape, got "
                         f"{a.shape} and {b.shape}")
    if min(a.shape[:2]) - 2 * max(border, 0) < least:
        raise InputError(f"a {a.shape[1]}x{a.shape[0]} plane less a {border}-pixel border "
                         f"leaves less than {least} pixel{'s' if least > 1 else ''} a side "
                         "to measure")
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a[border:-border, border:-border], b[border:-border, border:-border]) \
        if border > 0 else (a, b)


def mse(a: np.ndarray, b: np.ndarray, shave: int = 0) -> float:
    """Mean squared difference of two planes (in their own units), ``shave`` pixels cut from
    every border."""
    a, b = _planes(a, b, shave)
    return float(np.mean((a - b) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, shave: int = 0) -> float:
    """PSNR in dB between two planes on the 0-255 scale, ``shave`` pixels cut from every border."""
    err = mse(a, b, shave)
    return float("inf") if err == 0 else float(10.0 * np.log10(255.0 ** 2 / err))


def ssim(a: np.ndarray, b: np.ndarray, shave: int = 0) -> float:
    """SSIM (11x11 Gaussian window, sigma 1.5, data range 255, valid region) of two planes."""
    a, b = _planes(a, b, shave, least=11)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    window = g @ g.T

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))
