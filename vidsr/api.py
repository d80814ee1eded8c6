"""The public entry points: load a model by name or file, upscale an image."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .color import rgb_to_ycbcr, to_uint8, ycbcr_to_rgb
from .errors import WeightsError
from .imresize import BicubicUpsample
from .registry import ModelSpec, parse_name
from .weights import load_into, manifest, read_weights, sha256_file

log = logging.getLogger(__name__)


def is_weights_path(name: str | Path) -> bool:
    return isinstance(name, Path) or str(name).endswith(".safetensors") or Path(name).is_file()


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
    warning, or ``WeightsError`` is raised when ``pretrained=True``. ``pretrained=False`` always
    gives a fresh initialisation. The result carries its ``ModelSpec`` as ``model.spec``.
    """
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


@torch.inference_mode()
def upscale_plane(plane: np.ndarray, model: nn.Module) -> np.ndarray:
    """Upscale a float plane on the 0-255 scale with ``model``; returns float 0-255, unclipped."""
    ref = _param_like(model)
    x = torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32) / 255.0)
    x = x.to(device=ref.device, dtype=ref.dtype if ref.is_floating_point() else torch.float32)
    with torch.inference_mode():
        y = model(x[None, None])
    return y[0, 0].float().cpu().numpy().astype(np.float64) * 255.0


def upscale_image(image: np.ndarray, model: nn.Module, *,
                  band_pixels: int = 1 << 21) -> np.ndarray:
    """Upscale a uint8 image (``H x W`` gray, ``H x W x 3`` RGB or ``H x W x 4`` RGBA).

    The model super-resolves BT.601 luma; chroma (and alpha) get the MATLAB-style bicubic upscale.
    The work runs in bands of rows of about ``band_pixels`` output pixels, each grown by the
    model's receptive field, so that memory beyond the output itself stays bounded (the float
    intermediates take about 128 bytes per output pixel); the bands join without seams.
    """
    if image.dtype != np.uint8:
        raise TypeError(f"upscale_image expects uint8, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"expected H x W, H x W x 3 or H x W x 4, got shape {image.shape}")
    from .engine.tiling import receptive_radius

    scale = model.spec.scale if hasattr(model, "spec") else int(model.scale)
    h, w = image.shape[:2]
    out = np.empty((h * scale, w * scale, *image.shape[2:]), np.uint8)
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
    if image.ndim == 2:
        return to_uint8(upscale_plane(image, model))
    ycc = rgb_to_ycbcr(image[..., :3])
    y = upscale_plane(ycc[..., 0], model)
    rest = np.concatenate([ycc[..., 1:], image[..., 3:].astype(np.float64)], axis=2)
    with torch.inference_mode():
        t = torch.from_numpy(rest.transpose(2, 0, 1)[None].astype(np.float32))
        rest_up = bicubic(t)[0].numpy().transpose(1, 2, 0).astype(np.float64)
    rgb = ycbcr_to_rgb(np.concatenate([y[..., None], rest_up[..., :2]], axis=2))
    return to_uint8(np.concatenate([rgb, rest_up[..., 2:]], axis=2))
