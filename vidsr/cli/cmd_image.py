"""``vidsr image IN -o OUT --model NAME``: upscale one image file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, OutputError
from ..paths import check_output, partial_path
from ..webcam import quiet_opencv

log = logging.getLogger(__name__)


_ALPHA_FORMATS = {".png", ".webp", ".tif", ".tiff"}


def read_image(path: Path) -> np.ndarray:
    """An 8-bit image as gray, RGB or RGBA, turned upright by its EXIF orientation."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    buf = np.frombuffer(data, np.uint8)
    restore = quiet_opencv()
    try:
        raw = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if data else None
        if raw is None:
            raise InputError(f"{path} is not a readable image")
        if raw.dtype != np.uint8:
            raise InputError(f"{path}: only 8-bit images are supported, got {raw.dtype}")
        # IMREAD_UNCHANGED ignores EXIF orientation; ANYCOLOR applies it and keeps gray as gray
        img = cv2.imdecode(buf, cv2.IMREAD_ANYCOLOR)
    finally:
        restore()
    if raw.ndim == 3 and raw.shape[2] == 4:  # turn the alpha image as OpenCV turned the colour
        upright = _orient(raw, exif_orientation(data))
        if not np.array_equal(upright[..., :3], img):  # OpenCV read the tag otherwise
            upright = next((t for t in _dihedral(raw) if np.array_equal(t[..., :3], img)), raw)
        return cv2.cvtColor(np.ascontiguousarray(upright), cv2.COLOR_BGRA2RGBA)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1-8) of a PNG (``eXIf``), WebP (``EXIF``), TIFF or JPEG
    (APP1) file's bytes; 1 when it has none or it cannot be read."""
    tiff = b""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        at = 8
        while at + 8 <= len(data):
            size = int.from_bytes(data[at:at + 4], "big")
            if data[at + 4:at + 8] == b"eXIf":
                tiff = data[at + 8:at + 8 + size]
                break
            if data[at + 4:at + 8] == b"IDAT":
                break
            at += 12 + size
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        at = 12
        while at + 8 <= len(data):
            size = int.from_bytes(data[at + 4:at + 8], "little")
            if data[at:at + 4] == b"EXIF":
                tiff = data[at + 8:at + 8 + size]
                break
            at += 8 + size + (size & 1)
    elif data[:4] in (b"II*\x00", b"MM\x00*"):
        tiff = data
    elif data[:2] == b"\xff\xd8":
        at = data.find(b"Exif\x00\x00")
        tiff = data[at + 6:] if at >= 0 else b""
    tiff = tiff.removeprefix(b"Exif\x00\x00")
    if tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return 1
    order = "little" if tiff[:2] == b"II" else "big"
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd:ifd + 2], order)
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i:ifd + 14 + 12 * i]
        if len(entry) == 12 and int.from_bytes(entry[:2], order) == 0x0112:
            value = int.from_bytes(entry[8:10], order)
            return value if 1 <= value <= 8 else 1
    return 1


def _orient(a: np.ndarray, orientation: int) -> np.ndarray:
    """``a`` (as stored) turned upright for an EXIF orientation tag."""
    return {1: lambda: a, 2: lambda: a[:, ::-1], 3: lambda: a[::-1, ::-1],
            4: lambda: a[::-1], 5: lambda: a.swapaxes(0, 1),
            6: lambda: np.rot90(a, -1), 7: lambda: np.rot90(a[:, ::-1], -1),
            8: lambda: np.rot90(a, 1)}[orientation]()


def _dihedral(a: np.ndarray) -> list[np.ndarray]:
    """``a`` under the eight EXIF orientations (rotations by 90 degrees, with and without a
    mirror), the identity first."""
    return [np.rot90(m, k) for m in (a, a[:, ::-1]) for k in range(4)]


# What OpenCV's writers hold: largest side, and channel counts (None: any of 1, 3, 4)
_FORMAT_LIMITS: dict[str, tuple[int, set[int] | None]] = {
    ".jpg": (65535, None), ".jpeg": (65535, None), ".jpe": (65535, None),
    ".webp": (16383, None), ".pgm": (1 << 31, {1}), ".pbm": (1 << 31, {1}),
    ".ppm": (1 << 31, {3}),
}


def _check_size(src: Path, ext: str, width: int, height: int, channels: int) -> None:
    """Refuse, before the work, an output the format (by its extension ``ext``) or this
    machine's memory cannot hold."""
    side, allowed = _FORMAT_LIMITS.get(ext, (1 << 31, None))
    if max(width, height) > side:
        raise OutputError(f"a {width}x{height} image is too large for {ext} (at most {side} "
                          "pixels a side); use .png or .tif")
    if allowed == {1} and channels != 1:
        raise OutputError(f"{ext} holds gray images and {src.name} is in colour; use .ppm or .png")
    from ..api import check_memory

    check_memory(width * height * channels, f"the {width}x{height} output")


def run(args: argparse.Namespace) -> int:
    from ..api import load_model, resolve_spec, upscale_image

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
    scale = model.spec.scale
    alpha = img.ndim == 3 and img.shape[2] == 4
    ext = out.suffix.lower() or out.name.lower()  # "dir/.png" is a PNG
    if alpha and ext not in _ALPHA_FORMATS:
        log.warning("%s has no alpha channel: the image's alpha is dropped (PNG, WebP and TIFF "
                    "keep it)", ext)
        img, alpha = np.ascontiguousarray(img[..., :3]), False
    channels = 1 if img.ndim == 2 else img.shape[2]
    if channels == 1 and ext == ".ppm":
        img, channels = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB), 3  # PPM holds colour only
    _check_size(src, ext, img.shape[1] * scale, img.shape[0] * scale, channels)
    up = upscale_image(img, model)
    if up.ndim == 3:  # to OpenCV's BGR(A) order, in place: no second copy of a large image
        cv2.cvtColor(up, cv2.COLOR_RGBA2BGRA if alpha else cv2.COLOR_RGB2BGR, dst=up)
    tmp = partial_path(out)
    restore = quiet_opencv()
    try:
        try:
            written = cv2.imwrite(str(tmp), up)
        except cv2.error as exc:
            raise OutputError(f"cannot write {out}: {str(exc).strip().splitlines()[-1]}") from exc
        if not written:
            raise OutputError(f"cannot write {out}")
        try:
            tmp.replace(out)
        except OSError as exc:
            raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        restore()
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
