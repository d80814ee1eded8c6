"""vidsr: real-time video super-resolution with re-parameterized conv nets on the luma plane.

The public names below are imported on first use (PEP 562), so ``import vidsr`` (and the CLI's
start, before it knows what it will run) does not wait for torch: a Ctrl-C there reaches the
CLI's own handler instead of interrupting an import with a traceback.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    Cancelled,
    DataError,
    InputError,
    ModelNotFoundError,
    OutputError,
    VidsrError,
    WeightsError,
)

__version__ = "0.1.0"

_LAZY = {
    "load_model": "api", "resolve_spec": "api", "upscale_image": "api", "upscale_plane": "api",
    "EvalReport": "evaluation", "evaluate": "evaluation", "export_model": "export",
    "ModelSpec": "registry", "parse_name": "registry", "ExportError": "export",
    "upscale_video": "pipeline", "Engine": "engine",
    "VideoReader": "io", "VideoWriter": "io", "EncodeOptions": "io",
}

if TYPE_CHECKING:  # for type checkers and IDEs: the names as they resolve
    from .api import load_model, resolve_spec, upscale_image, upscale_plane
    from .engine import Engine
    from .evaluation import EvalReport, evaluate
    from .export import ExportError, export_model
    from .io import EncodeOptions, VideoReader, VideoWriter
    from .pipeline import upscale_video
    from .registry import ModelSpec, parse_name


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vidsr' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Cancelled", "DataError", "EncodeOptions", "Engine", "EvalReport", "ExportError",
    "InputError", "ModelNotFoundError", "ModelSpec", "OutputError", "VideoReader",
    "VideoWriter", "VidsrError", "WeightsError", "__version__", "evaluate", "export_model",
    "load_model", "parse_name", "resolve_spec", "upscale_image", "upscale_plane",
    "upscale_video",
]


def __dir__() -> list[str]:
    return sorted(__all__)
