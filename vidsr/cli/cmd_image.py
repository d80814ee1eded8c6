"""``vidsr image IN -o OUT --model NAME``: upscale one image file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, OutputError
from ..images import CodecMessages, read_image
from ..paths import check_output, extension, partial_path
from ..webcam import quiet_opencv
from . import check_trained

log = logging.getLogger(__name__)


_ALPHA_FORMATS = {".png", ".webp", ".tif", ".tiff", ".avif", ".gif"}  # GIF: on or off
# OpenCV writes these with 16 bits a channel (AVIF with 12: _AVIF_DEEP)
_DEEP_FORMATS = {".png", ".tif", ".tiff", ".ppm", ".pgm", ".pnm", ".jp2"}
_AVIF_DEEP = 12


# What OpenCV's writers hold: largest side, and channel counts (None: any of 1, 3, 4)
_FORMAT_LIMITS: dict[str, tuple[int, set[int] | None]] = {
    ".jpg": (65535, None), ".jpeg": (65535, None), ".jpe": (65535, None),
    ".webp": (16383, None), ".gif": (65535, None), ".pgm": (1 << 31, {1}),
    ".ppm": (1 << 31, {3}),
}
# Extensions OpenCV writes that cannot hold the picture: refused before the work
_REFUSED = {".pbm": ".pbm is a 1-bit black-and-white format (OpenCV wrote a blank page); "
                    "use .pgm or .png for a gray image"}
_COLOUR_ONLY = {".ppm", ".gif"}  # a gray image is written as RGB (GIF's writer refuses gray)


def _check_size(src: Path, ext: str, width: int, height: int, channels: int,
                depth: int = 1) -> None:
    """Refuse, before the work, an output the format (by its extension ``ext``) or this
    machine's memory cannot hold."""
    side, allowed = _FORMAT_LIMITS.get(ext, (1 << 31, None))
    if max(width, height) > side:
        raise OutputError(f"a {width}x{height} image is too large for {ext} (at most {side} "
                          "pixels a side); use .png or .tif")
    if allowed == {1} and channels != 1:
        raise OutputError(f"{ext} holds gray images and {src.name} is in colour; use .ppm or .png")
    from ..api import check_memory

    check_memory(width * height * channels * depth, f"the {width}x{height} output")


def run(args: argparse.Namespace) -> int:
    from ..api import load_model, resolve_spec, upscale_image

    src = Path(args.input)
    if src.is_dir():
        raise InputError(f"{src} is a directory, not an image file")
    if not src.is_file():
        raise InputError(f"no such file: {src}")
    check_trained(args.model)
    # lossless by default, whatever the input was
    out = Path(args.output) if args.output else \
        src.with_name(f"{src.stem}_{resolve_spec(args.model).name}.png")
    check_output(out, overwrite=args.overwrite, src=src)
    ext = extension(out)  # "dir/.png" is a PNG
    if not cv2.haveImageWriter(str(out)):
        raise OutputError(f"cannot write {out.suffix or 'files without an extension'}: "
                          "give an image extension (.png, .jpg, .webp, .tif, .bmp)")
    if ext in _REFUSED:
        raise OutputError(_REFUSED[ext])
    model = load_model(args.model)
    img = read_image(src, bits16=True)
    scale = model.spec.scale
    alpha = img.ndim == 3 and img.shape[2] == 4
    losses = []  # said once the output is known to be writable: a refusal is one line
    params: list[int] = []
    if img.dtype == np.uint16 and ext == ".avif":
        losses.append(f".avif holds at most {_AVIF_DEEP} bits a channel: the 16-bit image is "
                      f"written with {_AVIF_DEEP} (PNG and TIFF keep 16)")
        params = [cv2.IMWRITE_AVIF_DEPTH, _AVIF_DEEP]
    elif img.dtype == np.uint16 and ext not in _DEEP_FORMATS:
        losses.append(f"{ext} holds 8 bits a channel: the 16-bit image is written with 8 "
                      "(PNG, TIFF, PPM/PGM and JPEG 2000 keep 16)")
        img = np.floor(img / 257.0 + 0.5).astype(np.uint8)
    if alpha and ext not in _ALPHA_FORMATS:
        losses.append(f"{ext} has no alpha channel: the image's alpha is dropped (PNG, WebP, "
                      "TIFF and AVIF keep it)")
        img, alpha = np.ascontiguousarray(img[..., :3]), False
    if ext == ".gif":
        losses.append(".gif holds 256 colours and on/off transparency: the picture is written "
                      "with a palette (PNG keeps it whole)")
    channels = 1 if img.ndim == 2 else img.shape[2]
    if channels == 1 and ext in _COLOUR_ONLY:
        img, channels = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB), 3
    _check_size(src, ext, img.shape[1] * scale, img.shape[0] * scale, channels, img.itemsize)
    for text in losses:
        log.warning("%s", text)
    up = upscale_image(img, model)
    if up.ndim == 3:  # to OpenCV's BGR(A) order, in place: no second copy of a large image
        cv2.cvtColor(up, cv2.COLOR_RGBA2BGRA if alpha else cv2.COLOR_RGB2BGR, dst=up)
    if params:  # 16-bit codes to the AVIF's 12, rounded, in place
        top = (1 << _AVIF_DEEP) - 1
        np.floor(up * (top / 65535.0) + 0.5, out=up, casting="unsafe")
    tmp = partial_path(out)
    restore = quiet_opencv()
    try:
        said = CodecMessages()
        try:
            with said:
                written = cv2.imwrite(str(tmp), up, params)
        except cv2.error as exc:
            raise OutputError(f"cannot write {out}: {str(exc).strip().splitlines()[-1]}") from exc
        if not written:  # the codec's own words (libpng's "Write Error") where it gave some
            raise OutputError(f"cannot write {out}{said.reason()}")
        said.replay()
        try:
            tmp.replace(out)
        except OSError as exc:
            raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        restore()
        tmp.unlink(missing_ok=True)
    deep = ", 16-bit" if up.dtype == np.uint16 else ""
    print(f"{src} ({img.shape[1]}x{img.shape[0]}{deep}) -> {out} ({up.shape[1]}x{up.shape[0]}) "
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
