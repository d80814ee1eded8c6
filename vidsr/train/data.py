"""Training pairs: HR/LR luma planes made once with the evaluation degradation, then cropped.

Every HR image is degraded exactly as the evaluation protocol does (crop to a multiple of the
scale, MATLAB-compatible bicubic downscale of the uint8 RGB image, BT.601 Y of both) once, and the
planes are cached as uint8 arrays in one ``.npz`` file, so training steps never decode or resize
an image. Rounding Y to uint8 costs at most half a grey level (a 59 dB noise floor, far below any
model's error) and keeps the whole training set small enough to carry to a GPU machine.

Crops are aligned: the LR crop at ``(i, j)`` pairs with the HR crop at ``(s*i, s*j)``.

``exact_lr`` (the recipe's) keeps the LR plane as the evaluation computes it: the protocol's LR Y
is not rounded (BT.601 Y of uint8 RGB has a fractional part), and a net trained on rounded
inputs meets inputs at test time that carry information it never learned to use (a paired
stage of ecbsr-m4c16-x2 gained 0.006-0.009 dB on Set5 from it,
recipes/teachers/ecbsr-m4c16-x2-fd484f3f.toml).
Those planes are stored as uint16 fixed point with 8 fractional bits (``LR_Q8``: Y * 256, within
1/512 of a grey level of the float value); the HR plane stays uint8 (rounding the target adds
zero-mean noise to the loss, no bias).

``rescale`` (the recipe's) adds a copy of every image downscaled by each factor before the
degradation, the scale augmentation FSRCNN (Dong et al., ECCV 2016) used on its 91 + 100 images:
the same scenes with more detail per pixel, as a larger training set would have.

``channels`` (the recipe's) adds, before the images themselves, each image's (and each rescaled
copy's) red, green and blue planes as gray images: the RGB image ``(c, c, c)`` of one channel
``c``, degraded by the same protocol (its Y is ``16 + 219 c / 255``; the antialiased bicubic works
per channel, so its LR is that channel of the colour image's LR). Each channel holds the scene's
edges with a different contrast than the luma, so the luma net sees three more renderings of every
structure (paired runs with and without it: about 0.01-0.03 dB on Set5 and Set14 for
ecbsr-m4c16-x2/x3/x4 and esr-cnn-c6d3s15-x2; README, "Channel images").
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from ..color import rgb_to_y
from ..errors import DataError
from ..evaluation import crop_to_scale, image_files, read_rgb
from ..imresize import imresize

log = logging.getLogger(__name__)

CACHE_VERSION = "2"
LR_Q8 = 256     # exact_lr planes: uint16 Y * LR_Q8


def _y_plane(rgb: np.ndarray, exact: bool = False) -> np.ndarray:
    """BT.601 Y of ``rgb`` rounded to uint8, or (``exact``) to uint16 ``Y * LR_Q8``."""
    unit, dtype = (LR_Q8, np.uint16) if exact else (1, np.uint8)
    return np.floor(np.clip(rgb_to_y(rgb), 0.0, 255.0) * unit + 0.5).astype(dtype)


def degrade(hr: np.ndarray, scale: int,
            exact_lr: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """HR and LR Y planes of one uint8 image under the evaluation protocol: HR as uint8, LR as
    uint8 or (``exact_lr``) as uint16 ``Y * LR_Q8``."""
    return _y_plane(crop_to_scale(hr, scale)), _y_plane(_lr_rgb(hr, scale), exact_lr)


def _lr_rgb(hr: np.ndarray, scale: int) -> np.ndarray:
    """The protocol's LR RGB image: ``hr`` cropped to a multiple of ``scale``, then downscaled."""
    return imresize(crop_to_scale(hr, scale), 1.0 / scale)


def plane_peak(plane: np.ndarray) -> float:
    """The code value of white (255 grey levels) in a training plane: 255 for uint8, 255 * LR_Q8
    for the uint16 planes of ``exact_lr``."""
    if plane.dtype == np.uint8:
        return 255.0
    if plane.dtype == np.uint16:
        return 255.0 * LR_Q8
    raise DataError(f"a training plane is {plane.dtype}, not uint8 or uint16")


def _images(files: Sequence[Path], rescale: Sequence[float]) -> Iterator[np.ndarray]:
    """Each file's uint8 RGB image, followed by its copies downscaled by each ``rescale`` factor
    (MATLAB-compatible bicubic, rounded to uint8)."""
    for p in files:
        rgb = read_rgb(p)
        yield rgb
        for f in rescale:
            yield imresize(rgb, f)


def _gray(rgb: np.ndarray, c: int) -> np.ndarray:
    """The RGB image ``(c, c, c)`` of channel ``c``; a grayscale file's R, G and B planes are all
    its one plane (it has no last axis to take a channel from)."""
    if rgb.ndim == 2:
        return np.repeat(rgb[..., None], 3, axis=2)
    return np.repeat(rgb[..., c:c + 1], 3, axis=2)


def _planes(files: Sequence[Path], rescale: Sequence[float], scales: Sequence[int],
            exact_lr: bool = False, channels: bool = False, crop: int = 1,
            ) -> Iterator[tuple[int, np.ndarray, dict[int, np.ndarray]]]:
    """``(position, HR Y, {scale: LR Y})`` of every image and ``rescale`` copy (``_images``):
    the HR plane cropped to a multiple of ``crop``, the LR planes as ``degrade`` makes them.
    With ``channels`` the planes of each copy's R, G and B gray images ``(c, c, c)`` come too,
    at the positions before all the colour images' (in the same order): the bicubic works per
    channel, so a gray image's LR is that channel of the colour image's LR, taken from the one
    resize of each copy. Planes come out as they are made, so a caller can store them at once."""
    first = 3 * len(files) * (1 + len(rescale)) if channels else 0
    for k, rgb in enumerate(_images(files, rescale)):
        lr_rgb = {s: _lr_rgb(rgb, s) for s in scales}
        hr_rgb = crop_to_scale(rgb, crop)
        yield first + k, _y_plane(hr_rgb), {s: _y_plane(lr, exact_lr) for s, lr in lr_rgb.items()}
        if channels:
            for c in range(3):
                yield (3 * k + c, _y_plane(_gray(hr_rgb, c)),
                       {s: _y_plane(_gray(lr, c), exact_lr) for s, lr in lr_rgb.items()})


def _rescale_of(z: np.lib.npyio.NpzFile) -> tuple[float, ...]:
    return tuple(z["rescale"].tolist()) if "rescale" in z.files else ()


# A cache's or pack's on/off kinds: the recipe field and how a message names each side.
_FLAGS = {"exact_lr": ("unrounded (exact_lr) LR planes", "uint8-rounded LR planes"),
          "channels": ("planes with the R/G/B gray images (channels)",
                       "planes without the R/G/B gray images")}


def _check_kind(z: np.lib.npyio.NpzFile, path: Path, rescale: Sequence[float],
                exact_lr: bool = False, channels: bool = False) -> None:
    held = _rescale_of(z)
    if held != tuple(rescale):
        def say(r: Sequence[float]) -> str:
            return f"rescaled copies {list(r)}" if r else "no rescaled copies"
        raise DataError(f"{path} holds {say(held)}, the recipe asks for {say(rescale)}")
    wanted = {"exact_lr": exact_lr, "channels": channels}
    for key, (yes, no) in _FLAGS.items():
        has = key in z.files and bool(z[key])
        if has != wanted[key]:
            raise DataError(f"{path} holds {yes if has else no}, the recipe asks for "
                            f"{yes if wanted[key] else no}")


def _cache_key(files: Sequence[Path], scale: int, rescale: Sequence[float] = (),
               exact_lr: bool = False, channels: bool = False) -> str:
    digest = hashlib.sha1(f"{CACHE_VERSION}|x{scale}".encode())
    if rescale:
        digest.update(f"|rescale{list(rescale)}".encode())
    if exact_lr:
        digest.update(b"|exact_lr")
    if channels:
        digest.update(b"|channels")
    for p in files:
        st = p.stat()
        digest.update(f"|{p.resolve()}|{st.st_size}|{int(st.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def _load_npz(path: Path, scale: int, rescale: Sequence[float] = (), exact_lr: bool = False,
              channels: bool = False) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if not path.is_file():
        raise DataError(f"no such plane file: {path}")
    try:
        with np.load(path) as z:
            _check_kind(z, path, rescale, exact_lr, channels)
            if "pack" in z.files:
                return _unpack(z, path, scale)
            if int(z["scale"]) != scale:
                raise DataError(f"{path} holds x{int(z['scale'])} planes, not x{scale}")
            n = int(z["count"])
            log.info("training planes from %s (%d images)", path, n)
            return [z[f"hr{i}"] for i in range(n)], [z[f"lr{i}"] for i in range(n)]
    except DataError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path} is not a plane file written by vidsr train "
                        f"({type(exc).__name__}: {exc})") from exc


def save_planes(path: Path, hrs: Sequence[np.ndarray], lrs: Sequence[np.ndarray],
                scale: int, rescale: Sequence[float] = (), exact_lr: bool = False,
                channels: bool = False) -> None:
    """Write planes as one compressed ``.npz`` (atomically) that ``build_planes`` accepts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"hr{i}": a for i, a in enumerate(hrs)} | {f"lr{i}": a for i, a in enumerate(lrs)}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")  # concurrent runs may race
    try:
        np.savez_compressed(tmp, count=np.int64(len(hrs)), scale=np.int64(scale),
                            rescale=np.array(list(rescale), np.float64),
                            exact_lr=np.bool_(exact_lr), channels=np.bool_(channels), **arrays)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # an interrupt or a full disk leaves no half-written cache


def _png(plane: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".png", plane, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise DataError("cannot encode a training plane as PNG")
    return buf.reshape(-1)


def _unpng(buf: np.ndarray, path: Path) -> np.ndarray:
    plane = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if plane is None or plane.ndim != 2:
        raise DataError(f"{path}: a packed plane does not decode")
    return plane


def pack_planes(data: Sequence[str | Path], scales: Sequence[int], path: str | Path,
                rescale: Sequence[float] = (), exact_lr: bool = False,
                channels: bool = False) -> Path:
    """Write the training planes of ``data`` for several scales into one small ``.npz`` pack.

    The HR Y plane of each image is stored once, uncropped (the HR plane at scale ``s`` is its
    top-left crop to a multiple of ``s``: Y is computed per pixel), with the LR Y plane of each
    scale, all as lossless PNG bytes -- about half the size of the per-scale caches together,
    so the whole training set travels to a GPU machine in a few tens of MB. ``build_planes``
    takes the pack wherever it takes a cache file. With ``rescale`` the pack holds each image's
    downscaled copies too (and only recipes with the same ``rescale`` read it); with
    ``exact_lr`` the LR planes are 16-bit PNG (and only ``exact_lr`` recipes read it); with
    ``channels`` it holds the R/G/B gray images too (and only ``channels`` recipes read it).
    """
    files = [p for d in data for p in image_files(Path(d))]
    if not files:
        raise DataError("no training images to pack")
    arrays: dict[str, np.ndarray] = {}
    count = 0
    for i, hr, lr in _planes(files, rescale, scales, exact_lr, channels):
        count += 1
        arrays[f"hr{i}"] = _png(hr)
        for s in scales:
            arrays[f"lr{i}x{s}"] = _png(lr[s])
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, pack=np.int64(1), count=np.int64(count),
             scales=np.array(sorted(scales), np.int64),
             rescale=np.array(list(rescale), np.float64), exact_lr=np.bool_(exact_lr),
             channels=np.bool_(channels), **arrays)
    tmp.replace(out)
    return out


def _unpack(z: np.lib.npyio.NpzFile, path: Path,
            scale: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    if scale not in z["scales"].tolist():
        raise DataError(f"{path} packs x{', x'.join(map(str, z['scales'].tolist()))} planes, "
                        f"not x{scale}")
    hrs, lrs = [], []
    for i in range(int(z["count"])):
        hr = _unpng(z[f"hr{i}"], path)
        lr = _unpng(z[f"lr{i}x{scale}"], path)
        hrs.append(np.ascontiguousarray(hr[: lr.shape[0] * scale, : lr.shape[1] * scale]))
        lrs.append(lr)
    log.info("training planes from the pack %s (%d images, x%d)", path, len(hrs), scale)
    return hrs, lrs


def build_planes(data: Sequence[str | Path], scale: int, cache_dir: str | Path | None = None,
                 rescale: Sequence[float] = (), exact_lr: bool = False,
                 channels: bool = False, lr_patch: int | None = None,
                 ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The (HR Y, LR Y) planes of every image in ``data`` (and of its ``rescale`` copies, and with
    ``channels`` of their R/G/B gray images first); the LR planes are uint16 ``Y * LR_Q8`` with
    ``exact_lr`` (see ``degrade``).

    Each entry is a folder of images (degraded once, then cached in ``cache_dir``) or a ``.npz``
    of planes written earlier (a cache file, or a pack from ``pack_planes``), which needs no
    image files at all: that is how a machine without the image folders trains.

    With ``lr_patch``, folders whose images are all too small for that LR patch are refused
    before the (minutes long) degradation, not after it.
    """
    hrs: list[np.ndarray] = []
    lrs: list[np.ndarray] = []
    folders = [Path(d) for d in data if not str(d).endswith(".npz")]
    for d in data:
        if str(d).endswith(".npz"):
            h, lr = _load_npz(Path(d), scale, rescale, exact_lr, channels)
            hrs += h
            lrs += lr
    if not folders:
        return hrs, lrs
    files = [p for d in folders for p in image_files(d)]
    cache = None
    if cache_dir is not None:
        key = _cache_key(files, scale, rescale, exact_lr, channels)
        cache = Path(cache_dir) / f"train-{key}-x{scale}.npz"
        if cache.is_file():
            h, lr = _load_npz(cache, scale, rescale, exact_lr, channels)
            return hrs + h, lrs + lr
    if lr_patch is not None and not any(min(lr.shape) >= lr_patch for lr in lrs):
        _check_patch_fits(files, scale, lr_patch)
    planes = {i: (hr, lr[scale])
              for i, hr, lr in _planes(files, rescale, [scale], exact_lr, channels, crop=scale)}
    new_h = [planes[i][0] for i in range(len(planes))]
    new_l = [planes[i][1] for i in range(len(planes))]
    if cache is not None:
        save_planes(cache, new_h, new_l, scale, rescale, exact_lr, channels)
        log.info("cached training planes of %d images in %s", len(new_h), cache)
    return hrs + new_h, lrs + new_l


def _check_patch_fits(files: Sequence[Path], scale: int, lr_patch: int) -> None:
    """Raise unless some image in ``files`` is large enough for an ``lr_patch`` LR patch (its
    own size is the largest of its copies; the first large one ends the scan)."""
    for p in files:
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if img is not None and min(img.shape[:2]) // scale >= lr_patch:
            return
    raise _too_small(lr_patch, scale)


def _too_small(lr_patch: int, scale: int) -> DataError:
    return DataError(f"no training image is large enough for {lr_patch}x{lr_patch} "
                     f"LR patches at x{scale}")


class PatchSampler:
    """Random aligned LR/HR patches with flips and 90-degree rotations.

    All randomness comes from the ``torch.Generator`` passed to ``batch``, so a run that saves
    and restores that generator's state resumes with exactly the same patches.
    """

    def __init__(self, hrs: Sequence[np.ndarray], lrs: Sequence[np.ndarray], scale: int,
                 lr_patch: int, *, augment: bool = True) -> None:
        self.scale, self.lr_patch, self.augment = scale, lr_patch, augment
        keep = [i for i, lr in enumerate(lrs) if min(lr.shape) >= lr_patch]
        if not keep:
            raise _too_small(lr_patch, scale)
        if len(keep) < len(lrs):
            log.warning("skipping %d training images smaller than the patch",
                        len(lrs) - len(keep))
        self.hrs = [hrs[i] for i in keep]
        self.lrs = [lrs[i] for i in keep]
        if len({lr.dtype for lr in self.lrs}) != 1 or any(h.dtype != np.uint8 for h in self.hrs):
            raise DataError("training planes mix LR kinds (uint8 and exact_lr), or an HR plane "
                            "is not uint8")
        self.lr_peak = plane_peak(self.lrs[0])
        # Images are drawn in proportion to their number of crop positions, so every LR
        # pixel is about equally likely to be seen.
        counts = [(lr.shape[0] - lr_patch + 1) * (lr.shape[1] - lr_patch + 1) for lr in self.lrs]
        self.weights = torch.tensor(counts, dtype=torch.float64)

    def __len__(self) -> int:
        return len(self.lrs)

    def reweigh(self, factors: Sequence[float]) -> None:
        """Draw each image ``factors[i]`` times as often as by its crop positions alone."""
        if len(factors) != len(self.lrs):
            raise ValueError(f"{len(factors)} factors for {len(self.lrs)} images")
        self.weights = self.weights * torch.tensor(factors, dtype=torch.float64)

    def batch(self, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` pairs as float tensors in [0, 1]: LR ``N x 1 x p x p``, HR ``N x 1 x sp x sp``.
        """
        p, s = self.lr_patch, self.scale
        idx = torch.multinomial(self.weights, size, replacement=True, generator=gen).tolist()
        pos = torch.rand(size, 2, generator=gen, dtype=torch.float64).tolist()
        ops = torch.randint(0, 8, (size,), generator=gen).tolist()
        lr_out = np.empty((size, 1, p, p), self.lrs[0].dtype)
        hr_out = np.empty((size, 1, s * p, s * p), np.uint8)
        for n, (k, (u, v), op) in enumerate(zip(idx, pos, ops, strict=True)):
            lr, hr = self.lrs[k], self.hrs[k]
            i = int(u * (lr.shape[0] - p + 1))
            j = int(v * (lr.shape[1] - p + 1))
            a = lr[i:i + p, j:j + p]
            b = hr[s * i:s * (i + p), s * j:s * (j + p)]
            if self.augment:
                a, b = _dihedral(a, op), _dihedral(b, op)
            lr_out[n, 0], hr_out[n, 0] = a, b
        return (torch.from_numpy(lr_out.astype(np.float32)).div_(self.lr_peak),
                torch.from_numpy(hr_out).float().div_(255.0))


def _dihedral(a: np.ndarray, op: int) -> np.ndarray:
    """One of the 8 flips/rotations of a square patch."""
    if op & 4:
        a = a[:, ::-1]
    return np.rot90(a, op & 3)
