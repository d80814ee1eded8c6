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


# --- Video Y'CbCr <-> RGB with an explicit matrix and range (for webcam frames and display) ---

# (Kr, Kb) luma coefficients of each matrix: ITU-R BT.601, BT.709, BT.2020 (non-constant luminance).
MATRICES: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}
_MATRIX_ALIASES = {
    "601": "bt601", "smpte170m": "bt601", "bt470bg": "bt601", "bt470": "bt601", "fcc": "bt601",
    "709": "bt709", "bt2020nc": "bt2020", "bt2020ncl": "bt2020", "2020": "bt2020",
    "bt2020c": "bt2020",
}


def matrix_name(matrix: str | None, height: int | None = None) -> str:
    """Canonical matrix name (``bt601``/``bt709``/``bt2020``) for a tag such as ``smpte170m``.

    An unknown or missing tag falls back to the usual guess from the frame height: BT.601 below
    720 lines, BT.709 from 720 up (BT.709 when the height is unknown too).
    """
    key = (matrix or "").strip().lower().replace("-", "").replace("_", "").replace(".", "")
    key = _MATRIX_ALIASES.get(key, key)
    if key in MATRICES:
        return key
    return "bt601" if height is not None and height < 720 else "bt709"


def _rgb_from_ycbcr_matrix(matrix: str, full_range: bool, bit_depth: int) -> np.ndarray:
    """3 x 4 affine map from code values (Y, Cb, Cr, 1) to RGB on the 0-255 scale."""
    kr, kb = MATRICES[matrix_name(matrix)]
    kg = 1.0 - kr - kb
    # RGB from normalised Y' in [0, 1] and Pb, Pr in [-0.5, 0.5].
    m = np.array([
        [1.0, 0.0, 2.0 * (1.0 - kr)],
        [1.0, -2.0 * kb * (1.0 - kb) / kg, -2.0 * kr * (1.0 - kr) / kg],
        [1.0, 2.0 * (1.0 - kb), 0.0],
    ])
    unit = float(1 << (bit_depth - 8))
    if full_range:
        y_off, y_span, c_span = 0.0, 255.0 * unit, 255.0 * unit
    else:
        y_off, y_span, c_span = 16.0 * unit, 219.0 * unit, 224.0 * unit
    c_off = 128.0 * unit
    scale = np.diag([1.0 / y_span, 1.0 / c_span, 1.0 / c_span])
    lin = 255.0 * m @ scale
    offset = -lin @ np.array([y_off, c_off, c_off])
    return np.concatenate([lin, offset[:, None]], axis=1)


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, matrix: str = "bt709",
               full_range: bool = False, *, bit_depth: int = 8, bgr: bool = False) -> np.ndarray:
    """Y'CbCr planes to an ``H x W x 3`` uint8 RGB (or BGR) image.

    ``y`` is ``H x W``; ``u``/``v`` may be subsampled (4:2:0, 4:2:2) and are then resized to the
    luma size (bilinear: this is for display and recording previews, not for measurement).
    uint16 planes carry ``bit_depth``-bit codes (10/12-bit video). ``matrix`` is ``bt601``,
    ``bt709`` or ``bt2020`` (or a tag ``matrix_name`` understands); ``full_range`` selects
    0-255 codes instead of studio swing (16-235 luma, 16-240 chroma).
    """
    import cv2  # local: the rest of this module is pure numpy

    h, w = y.shape
    if u.shape != (h, w):
        u = cv2.resize(u, (w, h), interpolation=cv2.INTER_LINEAR)
        v = cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR)
    m = _rgb_from_ycbcr_matrix(matrix, full_range, bit_depth)
    if bgr:
        m = m[::-1].copy()
    planes = [y, u, v]
    if y.dtype != np.uint8:
        # cv2.transform keeps the input depth: run on float32 and round once.
        planes = [p.astype(np.float32) for p in planes]
        out = cv2.transform(cv2.merge(planes), m.astype(np.float32))
        return np.clip(out + 0.5, 0.0, 255.0).astype(np.uint8)
    # uint8 in, uint8 out with rounding and saturation in one SIMD pass.
    return cv2.transform(cv2.merge(planes), m)


def rgb_to_yuv(rgb: np.ndarray, matrix: str = "bt601", full_range: bool = False, *,
               subsample: tuple[int, int] = (2, 2), siting: str = "left", bgr: bool = False,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 ``H x W x 3`` RGB (or BGR) to uint8 Y, Cb, Cr planes.

    ``subsample`` = (horizontal, vertical) chroma factors: ``(2, 2)`` gives 4:2:0 with chroma
    planes ``ceil(H/2) x ceil(W/2)``, ``(2, 1)`` 4:2:2, ``(1, 1)`` 4:4:4. ``siting`` places the
    subsampled chroma: ``"left"`` (MPEG-2/H.264 default: co-sited with even luma columns,
    between rows) or ``"center"`` (MPEG-1/JPEG: the plain block average).
    """
    import cv2

    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 H x W x 3, got {rgb.dtype} {rgb.shape}")
    if siting not in ("left", "center"):
        raise ValueError(f"siting must be 'left' or 'center', got {siting!r}")
    fwd = np.linalg.inv(_rgb_from_ycbcr_matrix(matrix, full_range, 8)[:, :3])
    if bgr:
        fwd = fwd[:, ::-1]
    off = np.array([0.0 if full_range else 16.0, 128.0, 128.0])
    m = np.concatenate([fwd, off[:, None]], axis=1)
    y = cv2.transform(rgb, m[:1])
    sx, sy = subsample
    if (sx, sy) == (1, 1):
        c = cv2.transform(rgb, m[1:])
    else:
        # The transform is affine, so low-pass + decimate in RGB, then convert the small image.
        kx = np.array([0.25, 0.5, 0.25] if siting == "left" and sx == 2 else [1.0 / sx] * sx)
        ky = np.array([1.0 / sy] * sy)
        ax = 1 if siting == "left" and sx == 2 else 0
        low = cv2.sepFilter2D(rgb.astype(np.float32), -1, kx.astype(np.float32),
                              ky.astype(np.float32), anchor=(ax, 0),
                              borderType=cv2.BORDER_REPLICATE)
        # every sy-th row and sx-th column (nearest: source index = floor(dst * factor)),
        # then all three rows of the matrix: OpenCV's 3x4 float transform is some 20x faster
        # than its 2x4 one; both far faster than numpy on the strided view
        h, w = rgb.shape[:2]
        if h % sy or w % sx:  # the nearest-neighbour map is floor(dst * factor) only when even
            small = np.ascontiguousarray(low[::sy, ::sx])
        else:
            small = cv2.resize(low, (w // sx, h // sy), interpolation=cv2.INTER_NEAREST)
        c = cv2.transform(small, m.astype(np.float32))
        _, u, v = cv2.split(np.clip(c + 0.5, 0.0, 255.0).astype(np.uint8))
        return y, u, v
    return y, np.ascontiguousarray(c[..., 0]), np.ascontiguousarray(c[..., 1])
