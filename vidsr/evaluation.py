"""The standard SR evaluation protocol (see the README's "Evaluation")."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from .api import upscale_plane
from .color import rgb_to_y, to_uint8
from .errors import DataError, InputError
from .images import read_image
from .imresize import imresize
from .metrics import psnr, ssim

log = logging.getLogger(__name__)

IMAGE_EXTS = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


_WARNED: set[tuple[str, tuple[str, ...]]] = set()


def image_files(data_dir: str | Path) -> list[Path]:
    """The image files directly inside ``data_dir``, sorted by name. Hidden files (``.DS_Store``,
    macOS's ``._name.png``) are passed over; other files are named in a warning."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}")
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    for p in entries:   # it dropped out of the list unsaid: a set scored on fewer images
        if p.suffix.lower() in IMAGE_EXTS and p.is_symlink() and not p.exists():
            raise DataError(f"{p} is a broken link (to {os.readlink(p)})")
    files = [p for p in entries if p.suffix.lower() in IMAGE_EXTS and p.is_file()]
    others = [p.name for p in entries if p not in files and p.is_file()]
    subfolders = [p.name + "/" for p in entries if p.is_dir()]
    inside = f" (subfolders are not searched: {', '.join(subfolders[:3])}" \
             f"{' ...' if len(subfolders) > 3 else ''})" if subfolders else ""
    if not files:
        raise DataError(f"no images ({', '.join(IMAGE_EXTS)}) in {folder}{inside}")
    if subfolders and (str(folder.resolve()), tuple(subfolders)) not in _WARNED:
        _WARNED.add((str(folder.resolve()), tuple(subfolders)))
        log.warning("%s: reading only the images directly inside it%s", folder, inside)
    if others and (str(folder.resolve()), tuple(others)) not in _WARNED:
        _WARNED.add((str(folder.resolve()), tuple(others)))  # once a folder, not once a model
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        log.warning("%s: skipping %d file%s that %s not an image vidsr reads: %s", folder,
                    len(others), "s" if len(others) > 1 else "",
                    "are" if len(others) > 1 else "is", shown)
    return files


def _labels(files: list[Path]) -> list[str]:
    """What a report calls each image: its stem, or its whole name where two share a stem."""
    stems = [p.stem for p in files]
    return [p.name if stems.count(p.stem) > 1 else p.stem for p in files]


def dataset_name(data_dir: str | Path) -> str:
    """What a report calls the folder: its own name (``Set5``), also for ``.`` or ``dir/``."""
    return Path(data_dir).resolve().name or str(data_dir)


def read_rgb(path: str | Path) -> np.ndarray:
    """An 8-bit image file as uint8 RGB (``H x W x 3``, alpha dropped) or gray (``H x W``),
    upright by its EXIF orientation; ``DataError`` for a file that does not decode whole (a
    truncated JPEG is refused, not scored half-grey)."""
    try:
        img = read_image(Path(path))
    except InputError as exc:
        raise DataError(str(exc)) from None
    return np.ascontiguousarray(img[..., :3]) if img.ndim == 3 else img


@dataclass(frozen=True)
class EvalPair:
    """One test image under the protocol: LR and HR luma on the 0-255 scale."""

    name: str
    lr_y: np.ndarray
    hr_y: np.ndarray


def crop_to_scale(hr: np.ndarray, scale: int) -> np.ndarray:
    """The protocol's crop: ``hr`` (a view of it) cut to a multiple of ``scale`` on both axes."""
    h, w = hr.shape[:2]
    return hr[: h - h % scale, : w - w % scale]


# SSIM's 11 x 11 window must fit inside the shaved HR image
MIN_EVAL_SIDE = 11


def make_pair(hr: np.ndarray, scale: int, name: str = "") -> EvalPair:
    """Crop ``hr`` to a multiple of ``scale``, downscale it MATLAB-style, take BT.601 Y of both."""
    hr = crop_to_scale(hr, scale)
    need = MIN_EVAL_SIDE + 2 * scale  # the protocol shaves `scale` pixels off each border
    if min(hr.shape[:2]) < need:
        h, w = hr.shape[:2]
        raise DataError(f"{name or 'an image'} is {w}x{h} after the crop to a multiple of "
                        f"{scale}: too small to score at x{scale} (at least {need}x{need})")
    lr = imresize(hr, 1.0 / scale)
    return EvalPair(name, rgb_to_y(lr), rgb_to_y(hr))


def load_pairs(data_dir: str | Path, scale: int) -> list[EvalPair]:
    files = image_files(data_dir)
    return [make_pair(read_rgb(p), scale, name) for p, name in zip(files, _labels(files),
                                                                    strict=True)]


def _db(value: float, digits: int) -> float | str:
    return round(value, digits) if np.isfinite(value) else str(value)


@dataclass
class EvalReport:
    model: str
    dataset: str
    scale: int
    images: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def psnr(self) -> float:
        return float(np.mean([p for _, p, _ in self.images]))

    @property
    def ssim(self) -> float:
        return float(np.mean([s for _, _, s in self.images]))

    def as_dict(self) -> dict:
        """The report for JSON; an infinite PSNR (an exact match) is written as ``"inf"``."""
        return {
            "model": self.model, "dataset": self.dataset, "scale": self.scale,
            "psnr": _db(self.psnr, 4), "ssim": round(self.ssim, 6),
            "images": [{"name": n, "psnr": _db(p, 4), "ssim": round(s, 6)}
                       for n, p, s in self.images],
        }


def score_pair(model: nn.Module, pair: EvalPair, scale: int) -> tuple[float, float]:
    """PSNR and SSIM of ``model`` on one pair (output clamped and rounded to the 0-255 grid)."""
    sr = np.floor(np.clip(upscale_plane(pair.lr_y, model), 0.0, 255.0) + 0.5)
    return psnr(sr, pair.hr_y, shave=scale), ssim(sr, pair.hr_y, shave=scale)


def evaluate(model: nn.Module | str | Path, data_dir: str | Path, *,
             pairs: list[EvalPair] | None = None,
             progress: Callable[[int, int, str], None] | None = None,
             round_lr: bool = False) -> EvalReport:
    """Mean and per-image Y PSNR/SSIM of ``model`` on the images in ``data_dir``.

    ``pairs`` (from ``load_pairs``) skips re-reading and re-degrading the images. ``round_lr``
    rounds the LR Y to whole grey levels before upscaling, as an 8-bit video plane holds it (the
    protocol keeps its fractional part). ``model``: a module from ``load_model`` (it carries
    ``.spec``) or a name, alias or weights file, loaded as ``load_model`` does.
    """
    if isinstance(model, (str, Path)):
        from .api import load_model

        model = load_model(model)
    if not isinstance(model, nn.Module) or getattr(model, "spec", None) is None:
        raise InputError("evaluate takes a model name, alias or weights file, or a model from "
                         f"vidsr.load_model (it carries .spec), got {type(model).__name__}")
    scale = model.spec.scale
    pairs = load_pairs(data_dir, scale) if pairs is None else pairs
    if round_lr:
        pairs = [EvalPair(p.name, to_uint8(p.lr_y).astype(np.float64), p.hr_y) for p in pairs]
    report = EvalReport(model.spec.name, dataset_name(data_dir), scale)
    for i, pair in enumerate(pairs):
        p, s = score_pair(model, pair, scale)
        report.images.append((pair.name, p, s))
        if progress is not None:
            progress(i + 1, len(pairs), pair.name)
    return report
