"""The public entry points: load a model by name or file, upscale an image."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .color import rgb_to_ycbcr, to_uint8, ycbcr_to_rgb
from .errors import InputError, ModelNotFoundError, OutputError, WeightsError
from .imresize import BicubicUpsample
from .registry import ModelSpec, parse_name
from .weights import load_into, manifest, read_weights, sha256_file

log = logging.getLogger(__name__)


def is_weights_path(name: str | Path) -> bool:
    """Whether ``name`` stands for a weights file: a ``Path``, a name ending ``.safetensors``,
    or an existing file not named like a model (a file called ``ecbsr-x2`` in the working
    folder does not hide the model)."""
    if isinstance(name, Path) or str(name).endswith(".safetensors"):
        return True
    if not Path(name).is_file():
        return False
    try:
        parse_name(str(name))
    except ModelNotFoundError:
        return True
    return False


def resolve_spec(name: str | Path) -> ModelSpec:
    """The ``ModelSpec`` a model name, alias or weights file stands for."""
    if is_weights_path(name):
        return read_weights(name)[0]
    return parse_name(str(name))


def load_model(name: str | Path, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32, *, pretrained: bool | None = None) -> nn.Module:
    """The deploy-form model for a name, alias or weights file, in eval mode.

    Maps ``N x 1 x H x W`` in [0, 1] to ``N x 1 x sH x sW``. Shipped weights are loaded (and their
    sha256 checked) when they exist; without them the model is randomly initialised with a
    warning, or ``WeightsError`` is raised when ``pretrained=True``. ``pretrained=False`` gives a
    fresh initialisation for a name (a weights file is always loaded). ``device``: ``"cpu"``,
    ``"cuda"`` or ``"auto"`` (CUDA when available), as for ``Engine``. The result carries its
    ``ModelSpec`` as ``model.spec``.
    """
    from .engine.core import pick_device

    device = pick_device(device)  # "cuda" without CUDA, "gpu": one clear InputError
    if is_weights_path(name):
        spec, tensors, _meta = read_weights(name)
        model = spec.build()
        load_into(model, tensors, str(name))
    else:
        spec = parse_name(str(name))
        model = spec.build()
        shipped = manifest().get(spec.name) if spec.trainable else None
        if spec.trainable and pretrained is not False:
            if shipped is not None and shipped.path.is_file():
                digest = sha256_file(shipped.path)
                if digest != shipped.sha256:
                    raise WeightsError(
                        f"{shipped.path} fails its sha256 check ({digest[:12]}... != "
                        f"{shipped.sha256[:12]}...); reinstall vidsr")
                _spec, tensors, _meta = read_weights(shipped.path)
                load_into(model, tensors, str(shipped.path))
            elif pretrained:
                raise WeightsError(f"no trained weights are shipped for {spec.name}")
            else:
                warnings.warn(f"no trained weights are shipped for {spec.name}; "
                              "using a random initialisation", stacklevel=2)
    model.spec = spec
    model.requires_grad_(False)
    return model.to(device=device, dtype=dtype).eval()


def _param_like(model: nn.Module) -> torch.Tensor:
    for t in model.parameters():
        return t
    for t in model.buffers():
        return t
    return torch.empty(0)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def check_memory(nbytes: int, what: str) -> None:
    """Refuse (``OutputError``) ``what``, ``nbytes`` large, when it and the bands' work (256 MiB)
    would not fit in the memory available."""
    need = nbytes + (256 << 20)
    free = available_memory()
    if free is not None and need > free:
        raise OutputError(f"{what} needs about {need / 2**30:.1f} GiB of memory and "
                          f"{free / 2**30:.1f} GiB are available")


@torch.inference_mode()
def upscale_plane(plane: np.ndarray, model: nn.Module) -> np.ndarray:
    """Upscale a float plane on the 0-255 scale with ``model``; returns float 0-255, unclipped."""
    if not isinstance(model, nn.Module):
        raise InputError(f"upscale_plane takes a torch module (vidsr.load_model's), got "
                         f"{type(model).__name__}")
    try:
        plane = np.asarray(plane, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"upscale_plane takes a numeric H x W array: {exc}") from None
    if plane.ndim != 2 or plane.size == 0:
        raise InputError(f"upscale_plane takes a non-empty H x W array, got shape {plane.shape}")
    ref = _param_like(model)
    x = torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32) / 255.0)
    x = x.to(device=ref.device, dtype=ref.dtype if ref.is_floating_point() else torch.float32)
    with torch.inference_mode():
        y = model(x[None, None])
    return y[0, 0].float().cpu().numpy().astype(np.float64) * 255.0


def upscale_image(image: np.ndarray, model: nn.Module, *,
                  band_pixels: int = 1 << 21) -> np.ndarray:
    """Upscale a uint8 or uint16 image (``H x W`` gray, ``H x W x 3`` RGB or ``H x W x 4``
    RGBA); the result has the input's dtype (16-bit work runs on the same 0-255 float scale,
    its codes divided by 257, so no precision is lost on the way).

    The model super-resolves BT.601 luma; chroma (and alpha) get the MATLAB-style bicubic upscale.
    The work runs in bands of rows of about ``band_pixels`` output pixels, each grown by the
    model's receptive field, so that memory beyond the output itself stays bounded (the float
    intermediates take about 128 bytes per output pixel); the bands join without seams.
    ``H x W x 1`` is gray (the result is ``sH x sW x 1``). An output larger than the memory
    available (Linux's MemAvailable) is refused before the work (``OutputError``).
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"upscale_image takes a numpy array, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"upscale_image takes uint8 or uint16 pixels, got {image.dtype} (scale "
                         "and convert first, e.g. np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)"
                         " for floats in [0, 1])")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InputError(f"upscale_image takes H x W, H x W x 3 or H x W x 4 pixels, got shape "
                         f"{image.shape}")
    if image.size == 0:
        raise InputError(f"upscale_image: the image is empty ({image.shape[0]}x{image.shape[1]})")
    spec = getattr(model, "spec", None)
    scale = getattr(spec, "scale", None) or getattr(model, "scale", None)
    if not isinstance(scale, int) or scale < 1:
        raise InputError("upscale_image needs a model from vidsr.load_model (it carries .spec) "
                         "or a module with an integer .scale")
    if image.ndim == 3 and image.shape[2] == 1:
        return upscale_image(image[..., 0], model, band_pixels=band_pixels)[..., None]
    from .engine.tiling import receptive_radius

    h, w = image.shape[:2]
    check_memory(h * scale * w * scale * (image.shape[2] if image.ndim == 3 else 1)
                 * image.itemsize, f"the {w * scale}x{h * scale} output")
    out = np.empty((h * scale, w * scale, *image.shape[2:]), image.dtype)
    rows = max(1, band_pixels // max(1, w * scale * scale))
    halo = receptive_radius(model) + 3  # the model's reach, and the bicubic's on chroma
    bicubic = BicubicUpsample(scale)
    for top in range(0, h, rows):
        bottom = min(top + rows, h)
        t0, b0 = max(top - halo, 0), min(bottom + halo, h)
        band = _upscale_band(image[t0:b0], model, bicubic)
        out[top * scale:bottom * scale] = band[(top - t0) * scale:(bottom - t0) * scale]
    return out


def _upscale_band(image: np.ndarray, model: nn.Module, bicubic: nn.Module) -> np.ndarray:
    wide = image.dtype == np.uint16  # 16-bit: worked on the 0-255 scale, codes / 257
    pixels = image.astype(np.float64) / 257.0 if wide else image

    def codes(x: np.ndarray) -> np.ndarray:
        if not wide:
            return to_uint8(x)
        return np.floor(np.clip(x * 257.0, 0.0, 65535.0) + 0.5).astype(np.uint16)

    def luma(plane: np.ndarray) -> np.ndarray:
        out = upscale_plane(plane, model)
        want = (plane.shape[0] * bicubic.scale, plane.shape[1] * bicubic.scale)
        if out.shape != want:  # a module whose .scale is not what it does
            raise InputError(f"the model turned a {plane.shape[1]}x{plane.shape[0]} plane into "
                             f"{out.shape[1]}x{out.shape[0]}, not the {want[1]}x{want[0]} its "
                             f"scale x{bicubic.scale} promises")
        return out

    if image.ndim == 2:
        return codes(luma(pixels))
    ycc = rgb_to_ycbcr(pixels[..., :3])
    y = luma(ycc[..., 0])
    rest = np.concatenate([ycc[..., 1:], pixels[..., 3:].astype(np.float64)], axis=2)
    with torch.inference_mode():
        t = torch.from_numpy(rest.transpose(2, 0, 1)[None].astype(np.float32))
        rest_up = bicubic(t)[0].numpy().transpose(1, 2, 0).astype(np.float64)
    rgb = ycbcr_to_rgb(np.concatenate([y[..., None], rest_up[..., :2]], axis=2))
    return codes(np.concatenate([rgb, rest_up[..., 2:]], axis=2))
