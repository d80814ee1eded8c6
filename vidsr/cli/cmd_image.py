"""``vidsr image IN -o OUT --model NAME``: upscale one image file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from ..api import load_model, resolve_spec, upscale_image
from ..errors import InputError, OutputError
from ..paths import check_output

log = logging.getLogger(__name__)


_ALPHA_FORMATS = {".png", ".webp", ".tif", ".tiff"}


def read_image(path: Path) -> np.ndarray:
    """An 8-bit image as gray, RGB or RGBA, turned upright by its EXIF orientation."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(f"{path} is not a readable image")
    if raw.dtype != np.uint8:
        raise InputError(f"{path}: only 8-bit images are supported, got {raw.dtype}")
    # IMREAD_UNCHANGED ignores EXIF orientation; ANYCOLOR applies it and keeps gray as gray
    img = cv2.imread(str(path), cv2.IMREAD_ANYCOLOR)
    if raw.ndim == 3 and raw.shape[2] == 4:  # turn the alpha image as OpenCV turned the colour
        raw = next((t for t in _dihedral(raw) if np.array_equal(t[..., :3], img)), raw)
        return cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _dihedral(a: np.ndarray) -> list[np.ndarray]:
    """``a`` under the eight EXIF orientations (rotations by 90 degrees, with and without a
    mirror), the identity first."""
    return [np.rot90(m, k) for m in (a, a[:, ::-1]) for k in range(4)]


def run(args: argparse.Namespace) -> int:
    src = Path(args.input)
    if src.is_dir():
        raise InputError(f"{src} is a directory, not an image file")
    if not src.is_file():
        raise InputError(f"no such file: {src}")
    # lossless by default, whatever the input was
    out = Path(args.output) if args.output else \
        src.with_name(f"{src.stem}_{resolve_spec(args.model).name}.png")
    check_output(out, overwrite=args.overwrite, src=src)
    if not cv2.haveImageWriter(str(out)):
        raise OutputError(f"cannot write {out.suffix or 'files without an extension'}: "
                          "give an image extension (.png, .jpg, .webp, .tif, .bmp)")
    model = load_model(args.model)
    img = read_image(src)
    up = upscale_image(img, model)
    if up.ndim == 3 and up.shape[2] == 4 and out.suffix.lower() not in _ALPHA_FORMATS:
        log.warning("%s has no alpha channel: the image's alpha is dropped (PNG, WebP and TIFF "
                    "keep it)", out.suffix)
        up = up[..., :3]
    code = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}
    bgr = up if up.ndim == 2 else cv2.cvtColor(up, code[up.shape[2]])
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    try:
        if not cv2.imwrite(str(tmp), bgr):
            raise OutputError(f"cannot write {out}")
        tmp.replace(out)
    except (cv2.error, OSError) as exc:
        raise OutputError(f"cannot write {out}: {str(exc).strip().splitlines()[-1]}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    print(f"{src} ({img.shape[1]}x{img.shape[0]}) -> {out} ({up.shape[1]}x{up.shape[0]}) "
          f"with {model.spec.name}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("image", help="upscale an image file")
    p.add_argument("input", help="image file (PNG, BMP, JPEG, ...)")
    p.add_argument("-o", "--output", help="output image (default: INPUT_<model>.png beside it)")
    p.add_argument("-m", "--model", default="ecbsr-x2",
                   help="model name, alias or weights file (default ecbsr-x2)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=run)
