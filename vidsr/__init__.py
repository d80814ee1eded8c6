"""vidsr: real-time video super-resolution with re-parameterized conv nets on the luma plane."""

__version__ = "0.1.0"

from .api import load_model, resolve_spec, upscale_image, upscale_plane  # noqa: E402
from .errors import (  # noqa: E402
    Cancelled,
    DataError,
    InputError,
    ModelNotFoundError,
    OutputError,
    VidsrError,
    WeightsError,
)
from .evaluate import EvalReport, evaluate  # noqa: E402
from .registry import ModelSpec, parse_name  # noqa: E402

__all__ = [
    "Cancelled", "DataError", "EvalReport", "InputError", "ModelNotFoundError", "ModelSpec",
    "OutputError", "VidsrError", "WeightsError", "__version__", "evaluate", "load_model",
    "parse_name", "resolve_spec", "upscale_image", "upscale_plane",
]
