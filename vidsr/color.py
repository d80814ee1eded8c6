"""Colour conversions: BT.601 studio-swing Y'CbCr as used by the SR evaluation protocol."""

from __future__ import annotations

import numpy as np

# Rows give Y, Cb, Cr offsets' coefficients for R, G, B in [0, 1] (ITU-R BT.601, studio swing).
_RGB_TO_YCBCR = np.array([
    [65.481, 128.553, 24.966],
    [-37.797, -74.203, 112.0],
    [112.0, -93.786, -18.214],
]) / 255.0
_OFFSET = np.array([16.0, 128.0, 128.0])
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """uint8 (or float 0-255) ``H x W x 3`` RGB to float64 Y'CbCr on the 0-255 scale."""
    return rgb.astype(np.float64) @ _RGB_TO_YCBCR.T + _OFFSET


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """The Y of ``rgb_to_ycbcr``; a 2-D (grayscale) image is returned as float64 unchanged."""
    if rgb.ndim == 2:
        return rgb.astype(np.float64)
    return rgb.astype(np.float64) @ _RGB_TO_YCBCR[0] + _OFFSET[0]


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Float Y'CbCr (0-255 scale) to float64 RGB on the 0-255 scale (not clipped)."""
    return (ycbcr - _OFFSET) @ _YCBCR_TO_RGB.T


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Round half up and clip to uint8."""
    return np.floor(np.clip(x, 0.0, 255.0) + 0.5).astype(np.uint8)
