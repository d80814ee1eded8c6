"""Make ``samples/photos.mp4``: slow pans across four photographs, 6 seconds, with sound.

Natural detail (hair, fabric, foam, fur, a launch plume) shows what the SR models do far better
than a drawn test pattern; ``samples/sample.mp4`` stays the procedural one. The photographs are
scikit-image's bundled sample data, each free of copyright restrictions by scikit-image's own
notes (``skimage.data``): astronaut.png (NASA, public domain), coffee.png (Rachel Michetti,
CC0), chelsea.png (Stefan van der Walt, CC0), rocket.jpg (SpaceX, public domain). They are read
straight from scikit-image's wheel, so nothing needs installing:

    pip download --no-deps -d /tmp/wheel scikit-image==0.26.0
    python samples/make_photos.py --wheel /tmp/wheel/scikit_image-0.26.0-*.whl [OUTPUT]

(without ``--wheel``, from an installed scikit-image). Each shot is 1.5 s: a 16:9 window that
pans and slowly zooms, resampled with sub-pixel accuracy (bicubic after a Gaussian prefilter
against aliasing) to 320x180, then H.264 like sample.mp4, with its chord as the sound.
"""

from __future__ import annotations

import argparse
import importlib.util
import zipfile
from pathlib import Path

import cv2
import numpy as np
from make_sample import FPS, H, W, write_clip

SHOT = 36  # frames per photograph (1.5 s)
# photograph, then the window's centre (fractions of the image) and width (pixels) at the
# start and at the end of its shot
SHOTS = [
    ("astronaut.png", (0.50, 0.30, 470), (0.45, 0.22, 340)),
    ("coffee.png", (0.50, 0.45, 560), (0.58, 0.50, 420)),
    ("chelsea.png", (0.50, 0.45, 440), (0.42, 0.45, 340)),
    ("rocket.jpg", (0.50, 0.50, 600), (0.55, 0.45, 420)),
]


def load_photos(wheel: Path | None) -> dict[str, np.ndarray]:
    """The photographs as RGB uint8 arrays, from the wheel or the installed package."""
    names = [name for name, *_ in SHOTS]
    if wheel is not None:
        with zipfile.ZipFile(wheel) as z:
            blobs = {n: z.read(f"skimage/data/{n}") for n in names}
    else:
        spec = importlib.util.find_spec("skimage")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("scikit-image is not installed; give --wheel (see the docstring)")
        data = Path(next(iter(spec.submodule_search_locations))) / "data"
        blobs = {n: (data / n).read_bytes() for n in names}
    photos = {}
    for name, blob in blobs.items():
        bgr = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
        photos[name] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return photos


def frame(photo: np.ndarray, start: tuple[float, float, float], end: tuple[float, float, float],
          t: float) -> np.ndarray:
    """The window at ``t`` in [0, 1] of the shot (smoothstep eased), as a W x H RGB image."""
    e = t * t * (3 - 2 * t)
    cx, cy, width = (a + (b - a) * e for a, b in zip(start, end, strict=True))
    h, w = photo.shape[:2]
    scale = W / width  # output pixels per photo pixel (< 1: a downscale)
    sigma = 0.5 * np.sqrt(max(1 / scale**2 - 1, 0.0))
    src = cv2.GaussianBlur(photo, (0, 0), sigma) if sigma > 0.05 else photo
    # photo (x, y) -> output (scale * (x - x0), scale * (y - y0)), window centred on (cx, cy)
    x0, y0 = cx * w - 0.5 * W / scale, cy * h - 0.5 * H / scale
    if x0 < 0 or y0 < 0 or x0 + W / scale > w or y0 + H / scale > h:
        raise ValueError(f"the window {width:.0f} px wide at ({cx:.2f}, {cy:.2f}) leaves the "
                         f"{w}x{h} photograph")
    m = np.array([[scale, 0, -scale * x0], [0, scale, -scale * y0]], np.float64)
    return cv2.warpAffine(src, m, (W, H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def make(path: Path, wheel: Path | None) -> Path:
    photos = load_photos(wheel)

    def draw(i: int) -> np.ndarray:
        name, start, end = SHOTS[i // SHOT]
        return frame(photos[name], start, end, (i % SHOT) / (SHOT - 1))

    # Unlike sample.mp4, not the same bytes on every run: libx264 (every preset tried) encodes
    # the first shot slightly differently run to run, from the same input frames.
    return write_clip(path, SHOT * len(SHOTS), draw, "vidsr sample: photographs")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="Make samples/photos.mp4 (see the docstring).")
    p.add_argument("output", nargs="?", type=Path, default=Path(__file__).with_name("photos.mp4"))
    p.add_argument("--wheel", type=Path, help="a scikit-image wheel to read the photographs from")
    args = p.parse_args()
    make(args.output, args.wheel)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.2f} MB, "
          f"{SHOT * len(SHOTS) / FPS:.1f} s at {FPS} fps)")
