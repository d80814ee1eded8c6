"""Make ``samples/sample.mp4``: a 4-second procedural clip with a stereo AAC track.

Everything is drawn here (no external images): a slowly panning landscape of gradients, a
checkerboard, fine stripes and lettering, plus coloured discs orbiting the centre, so upscaling
has edges, text and texture to work on. H.264 4:2:0 at 320x180, 24 fps, BT.709 limited range
tags; audio is a two-note chord with a soft attack. Deterministic: the same bytes on every run
with the same FFmpeg build.

    python samples/make_sample.py [OUTPUT]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

W, H, FPS, SECONDS = 320, 180, 24, 4
RATE = 48000


def draw(i: int) -> np.ndarray:
    """Frame ``i`` as an RGB uint8 image."""
    t = i / FPS
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    sky = np.stack([60 + 80 * yy / H, 90 + 60 * yy / H, 170 - 40 * yy / H], axis=-1)
    img = sky.astype(np.uint8).copy()
    # rolling hills drawn as a sine horizon that pans left
    horizon = (120 + 14 * np.sin((xx[0] + 40 * t) / 23.0) + 6 * np.sin((xx[0] + 25 * t) / 7.0))
    ground = yy >= horizon[None, :]
    img[ground] = np.stack([40 + 0 * yy, 110 + 30 * np.sin(xx / 3.0), 50 + 0 * yy],
                           axis=-1)[ground].astype(np.uint8)
    # checkerboard panel and fine stripes: aliasing-prone detail
    cb = (((xx // 6).astype(int) + (yy // 6).astype(int) + i // 6) % 2).astype(np.uint8)
    panel = (slice(14, 74), slice(14, 94))
    img[panel] = (cb[panel][..., None] * np.array([200, 200, 190]) + 30).astype(np.uint8)
    stripes = (128 + 110 * np.sin(xx / (1.6 + 0.4 * np.sin(yy / 17.0)))).astype(np.uint8)
    img[14:74, 226:306] = stripes[14:74, 226:306, None]
    # orbiting discs with anti-aliased edges
    for k, colour in enumerate([(235, 70, 60), (250, 210, 60), (80, 200, 240)]):
        a = 2 * np.pi * (t / 4.0 + k / 3.0)
        cx, cy = int(160 + 70 * np.cos(a)), int(100 + 35 * np.sin(a))
        cv2.circle(img, (cx, cy), 13 - 3 * k, colour, -1, lineType=cv2.LINE_AA)
        cv2.circle(img, (cx, cy), 13 - 3 * k, (20, 20, 20), 1, lineType=cv2.LINE_AA)
    cv2.putText(img, "vidsr", (118, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.1, (255, 255, 255), 2,
                lineType=cv2.LINE_AA)
    cv2.putText(img, f"frame {i:03d}  t={t:4.2f}s", (96, 172), cv2.FONT_HERSHEY_PLAIN, 0.9,
                (240, 240, 240), 1, lineType=cv2.LINE_AA)
    return img


def chord(n: int, start: int) -> np.ndarray:
    """``n`` stereo float samples of an A-major chord starting at sample ``start``."""
    t = (start + np.arange(n)) / RATE
    env = np.minimum(t / 0.3, 1.0) * np.exp(-0.25 * t)
    left = 0.2 * env * (np.sin(2 * np.pi * 220.0 * t) + 0.6 * np.sin(2 * np.pi * 277.18 * t))
    right = 0.2 * env * (np.sin(2 * np.pi * 220.0 * t) + 0.6 * np.sin(2 * np.pi * 329.63 * t))
    return np.stack([left, right]).astype(np.float32)


def write_clip(path: Path, frames: int, draw: Callable[[int], np.ndarray], title: str,
               preset: str = "slow") -> Path:
    """Write ``frames`` frames of ``draw(i)`` (RGB uint8, W x H) at FPS, H.264 CRF 20 with
    BT.709 limited-range tags, plus the chord as a stereo AAC track of the same length."""
    seconds = frames / FPS
    with av.open(str(path), "w") as out:
        out.metadata["title"] = title
        vs = out.add_stream("libx264", rate=FPS, options={"crf": "20", "preset": preset})
        vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
        vs.codec_context.time_base = Fraction(1, FPS * 512)
        cc = vs.codec_context
        cc.color_range, cc.colorspace, cc.color_primaries, cc.color_trc = 1, 1, 1, 1
        a = out.add_stream("aac", rate=RATE)
        a.layout = "stereo"
        a.metadata["language"] = "eng"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(draw(i), format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace="itu709",
                                   dst_color_range="MPEG")
            frame.pts, frame.time_base = i * 512, cc.time_base
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        n = a.codec_context.frame_size or 1024
        for start in range(0, round(RATE * seconds), n):
            af = av.AudioFrame.from_ndarray(chord(n, start), format="fltp", layout="stereo")
            af.sample_rate, af.pts = RATE, start
            for packet in a.encode(af):
                out.mux(packet)
        for packet in a.encode():
            out.mux(packet)
    return path


def make(path: Path, seconds: int = SECONDS, preset: str = "slow") -> Path:
    """Write the sample clip (``seconds`` long; longer ones for memory checks) to ``path``
    and return it."""
    return write_clip(path, FPS * seconds, draw, "vidsr sample: orbits", preset)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Make samples/sample.mp4 (see the docstring).")
    p.add_argument("output", nargs="?", type=Path, default=Path(__file__).with_name("sample.mp4"))
    target = p.parse_args().output
    make(target)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB)")
