"""PSNR and SSIM on 0-255 planes, as the SR literature computes them."""

from __future__ import annotations

import cv2
import numpy as np


def _shave(x: np.ndarray, border: int) -> np.ndarray:
    return x[border:-border, border:-border] if border > 0 else x


def mse(a: np.ndarray, b: np.ndarray, shave: int = 0) -> float:
    """Mean squared difference of two planes (in their own units), ``shave`` pixels cut from
    every border."""
    a, b = _shave(a.astype(np.float64), shave), _shave(b.astype(np.float64), shave)
    return float(np.mean((a - b) ** 2))


def psnr(a: np.ndarray, b: np.ndarray, shave: int = 0) -> float:
    """PSNR in dB between two planes on the 0-255 scale, ``shave`` pixels cut from every border."""
    err = mse(a, b, shave)
    return float("inf") if err == 0 else 10.0 * np.log10(255.0 ** 2 / err)


def ssim(a: np.ndarray, b: np.ndarray, shave: int = 0) -> float:
    """SSIM (11x11 Gaussian window, sigma 1.5, data range 255, valid region) of two planes."""
    a, b = _shave(a.astype(np.float64), shave), _shave(b.astype(np.float64), shave)
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
