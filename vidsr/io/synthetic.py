"""Synthetic clips and encoder-only timing, for benchmarks (``vidsr bench``) and demos.

``write_synthetic_clip`` makes a procedural clip of any size (moving gradients, a texture and a
square) without external media; ``encoder_seconds`` times the output encoder alone on such
frames, the ceiling a full decode -> SR -> encode run can approach.
"""

from __future__ import annotations

import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .encoders import EncodeOptions
from .reader import VideoInfo
from .writer import VideoWriter


def synthetic_planes(width: int, height: int, i: int) -> tuple[np.ndarray, ...]:
    """Frame ``i`` of the procedural pattern as 8-bit 4:2:0 planes (Y, Cb, Cr)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    y = 60 + 100 * xx / max(width - 1, 1) + 40 * np.sin(xx * 0.3 + yy * 0.11 + i * 0.2)
    s = max(min(width, height) // 8, 4)
    x0, y0 = (7 * i) % max(width - s, 1), (3 * i) % max(height - s, 1)
    y[y0:y0 + s, x0:x0 + s] = 230
    cw, ch = (width + 1) // 2, (height + 1) // 2
    cy, cx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    u = 128 + 30 * np.sin(cx * 0.05 + i * 0.1)
    v = 128 + 30 * np.cos(cy * 0.07 - i * 0.1)
    return tuple(np.clip(p, 0, 255).astype(np.uint8) for p in (y, u, v))


def synthetic_info(width: int, height: int, fps: int = 30, label: str = "synthetic") -> VideoInfo:
    """A ``VideoInfo`` for 8-bit 4:2:0 BT.709 frames at ``fps`` (time base ``1/fps``)."""
    return VideoInfo(path=label, width=width, height=height, fps=Fraction(fps),
                     time_base=Fraction(1, fps), frames=None, duration=None, pix_fmt="yuv420p",
                     bit_depth=8, chroma="420", color_range="tv", color_space="bt709",
                     color_primaries="bt709", color_trc="bt709", chroma_location="left",
                     rotation=0, codec="rawvideo", container="synthetic")


def write_synthetic_clip(path: str | Path, width: int, height: int, frames: int,
                         fps: int = 30, options: EncodeOptions | None = None) -> Path:
    """Write a procedural clip (default libx264 ultrafast CRF 18) and return its path."""
    path = Path(path)
    opts = options or EncodeOptions(codec="libx264", crf=18, preset="ultrafast")
    with VideoWriter(path, synthetic_info(width, height, fps), 1, opts) as writer:
        for i in range(frames):
            writer.write(*synthetic_planes(width, height, i), pts=i)
    return path


def encoder_seconds(width: int, height: int, frames: int, options: EncodeOptions,
                    fps: int = 30, suffix: str = ".mp4", distinct: int = 8,
                    planes: list[tuple[np.ndarray, ...]] | None = None) -> float:
    """Seconds ``VideoWriter`` takes to encode and mux ``frames`` frames of this size.

    Cycles through ``planes`` (8-bit 4:2:0 Y, Cb, Cr; default ``distinct`` frames of the
    procedural pattern), made beforehand so that making them is not timed.
    """
    if planes is None:
        planes = [synthetic_planes(width, height, i) for i in range(distinct)]
    distinct = len(planes)
    with tempfile.TemporaryDirectory(prefix="vidsr-enc-") as tmp:
        target = Path(tmp) / f"encoder{suffix}"
        t0 = time.perf_counter()
        with VideoWriter(target, synthetic_info(width, height, fps), 1, options) as writer:
            for i in range(frames):
                writer.write(*planes[i % distinct], pts=i)
        return time.perf_counter() - t0


def frame_count(path: str | Path) -> int:
    """The number of video frames in a file, by decoding it (for checking benchmark output)."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in c.decode(stream))
