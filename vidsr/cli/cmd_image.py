"""``vidsr image IN -o OUT --model NAME``: upscale one image file."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from ..api import load_model, upscale_image
from ..errors import InputError, OutputError
from ..evaluation import read_rgb


def run(args: argparse.Namespace) -> int:
    src = Path(args.input)
    if not src.is_file():
        raise InputError(f"no such file: {src}")
    model = load_model(args.model)
    try:
        img = read_rgb(src)
    except Exception as exc:
        raise InputError(f"{src} is not a readable 8-bit image") from exc
    out = Path(args.output) if args.output else src.with_name(
        f"{src.stem}_{model.spec.name}{src.suffix if src.suffix.lower() != '.jpg' else '.png'}")
    if out.exists() and not args.overwrite:
        raise OutputError(f"{out} exists (use --overwrite to replace it)")
    if not out.parent.is_dir():
        raise OutputError(f"output folder does not exist: {out.parent}")
    up = upscale_image(img, model)
    bgr = up if up.ndim == 2 else cv2.cvtColor(up, cv2.COLOR_RGB2BGR)
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    try:
        if not cv2.imwrite(str(tmp), bgr):
            raise OutputError(f"cannot write {out} (unknown image extension?)")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"{src} ({img.shape[1]}x{img.shape[0]}) -> {out} ({up.shape[1]}x{up.shape[0]}) "
          f"with {model.spec.name}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("image", help="upscale an image file")
    p.add_argument("input", help="image file (PNG, BMP, JPEG, ...)")
    p.add_argument("-o", "--output", help="output image (default: INPUT_<model>.png beside it)")
    p.add_argument("-m", "--model", default="ecbsr-x2", help="model name, alias or weights file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=run)
