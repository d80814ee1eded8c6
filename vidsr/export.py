"""Export a deploy model for other runtimes, checked against PyTorch before it is kept.

Two formats, chosen by the output's extension:

- ``.onnx``: an ONNX graph (PyTorch's exporter, which needs the ``onnx`` and ``onnxscript``
  packages: ``INSTALL_HINT``) for onnxruntime, TensorRT, OpenVINO and the like;
  the model's facts are in the graph's metadata (``vidsr.*`` keys).
- ``.pt2``: a ``torch.export`` program, which plain PyTorch loads and runs without vidsr
  (``torch.export.load(path).module()``); the facts are in its ``vidsr.json`` extra file.

Both take ``N x 1 x H x W`` luma and give ``N x 1 x sH x sW``, with the batch, height and width
dynamic. With ``io="float"`` the planes are float32 in [0, 1], as ``load_model`` gives; with
``io="uint8"`` (or ``"uint10"``, ``"uint12"``, in uint16 containers) the graph takes and returns
integer code values, rounded half up and clipped to the bit depth, as vidsr's engines write them,
so a caller needs no conversion around it. Edge-SR models are written in the form that reduces
over their channels before the pixel shuffle (``ReduceFirstEdgeSR``, the same function).

Before the file is moved into place, the exported graph is run (onnxruntime where installed,
else only ONNX's checker; ``torch.export.load`` for ``.pt2``) on two input sizes it was not
traced with, against the PyTorch model.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import logging
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .api import is_weights_path, load_model, resolve_spec
from .engine.formulations import reduce_first
from .errors import InputError, OutputError, VidsrError, WeightsError
from .paths import check_output, extension, partial_path
from .weights import chmod_usual, is_untrained, manifest, sha256_file

log = logging.getLogger(__name__)

FORMATS = {".onnx": "onnx", ".pt2": "pt2"}
INSTALL_HINT = "pip install onnx onnxscript onnxruntime (in a clone: pip install -e \".[export]\")"
IO_BITS = {"float": None, "uint8": 8, "uint10": 10, "uint12": 12}
DEFAULT_OPSET = 18
MIN_OPSET = 18   # older ones are silently written as 18 by the exporter's version converter
#: The largest difference from PyTorch a check accepts: float outputs, integer code values.
FLOAT_TOLERANCE = 1e-4
CODE_TOLERANCE = 1
#: ... and the largest fraction of codes that may differ at all (float rounding moves a code
#: that lies within ~1e-6 of a rounding boundary; a wrong rounding mode moves a third of them)
CODE_DIFFERING = 1e-3
_TRACE_SHAPE = (2, 1, 64, 48)                    # batch 2: a batch of 1 would be fixed as 1
_CHECK_SHAPES = ((1, 1, 37, 53), (3, 1, 20, 90))  # odd and non-square, neither traced


class ExportError(VidsrError, RuntimeError):
    """The model cannot be exported, or the exported graph does not reproduce it."""


class PlaneIO(nn.Module):
    """``net`` between integer planes of ``bits`` bits: codes / peak in, round half up and clip
    to the codes out (uint8, or uint16 above 8 bits)."""

    def __init__(self, net: nn.Module, bits: int) -> None:
        super().__init__()
        self.net = net
        self.peak = float((1 << bits) - 1)
        self.out_dtype = torch.uint8 if bits <= 8 else torch.uint16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x.to(torch.float32) * (1.0 / self.peak))
        # float bounds: integer ones do not lower to ONNX's Clip
        return torch.floor(y * self.peak + 0.5).clamp(0.0, self.peak).to(self.out_dtype)


@dataclass
class ExportReport:
    """What ``export_model`` wrote and how the check went."""

    path: str
    format: str
    model: str
    scale: int
    io: str
    bytes: int
    opset: int | None
    checked_with: str | None          # the runtime that ran the file, None when not run
    max_diff: float | None            # largest |exported - PyTorch| over the check inputs
    differing: float | None           # fraction of output values that differ at all
    check_shapes: list[list[int]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    unchecked: str | None = None      # why the file was not run, where it was not

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One line: what was written and how well it reproduces the model."""
        kind = f"ONNX opset {self.opset}" if self.format == "onnx" else "torch.export program"
        unit = "float in [0, 1]" if self.io == "float" else f"{self.io} codes"
        s = self.scale
        line = (f"{self.model} -> {self.path} ({kind}, {_kib(self.bytes)}): N x 1 x H x W "
                f"{unit} -> N x 1 x {s}H x {s}W")
        if self.checked_with is None:
            why = {"--no-check": "--no-check"}.get(self.unchecked or "", f"{self.unchecked}: "
                                                   "pip install onnxruntime to check it")
            return line + f"; not run ({why})"
        sizes = ", ".join(f"{c[3]}x{c[2]}" for c in self.check_shapes)
        if self.io == "float":
            diff = f"max |diff| {self.max_diff:.2g}"
        else:
            diff = (f"max |diff| {self.max_diff:.0f} code, {self.differing:.3%} of the codes "
                    "differ")
        return line + f"; {self.checked_with} matches PyTorch on {sizes} inputs ({diff})"


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MiB"


def format_of(path: str | Path) -> str:
    """The export format an output path asks for, by its extension."""
    ext = extension(path)  # "d/.onnx" too
    fmt = FORMATS.get(ext)
    if fmt is None:
        raise OutputError(f"cannot export to {ext or 'a file without an extension'}"
                          f": give {' or '.join(FORMATS)}")
    return fmt


def _metadata(name: str | Path | nn.Module, model: nn.Module, io: str) -> dict[str, str]:
    from . import __version__

    spec = model.spec
    meta = {"vidsr.version": __version__, "vidsr.model": spec.name, "vidsr.scale": str(spec.scale),
            "vidsr.io": io, "vidsr.layout": "N x 1 x H x W luma (Y') -> N x 1 x sH x sW"}
    if isinstance(name, nn.Module):  # weights of unknown origin
        pass
    else:
        shipped = manifest().get(spec.name)
        digest = sha256_file(name) if is_weights_path(name) else \
            (shipped.sha256 if shipped is not None else None)
        if digest is not None:
            meta["vidsr.weights_sha256"] = digest
        if shipped is not None and shipped.sha256 == digest:  # the shipped weights, by name
            for data, m in shipped.metrics.items():  # or as a file: their measured scores
                if "psnr" in m:
                    meta[f"vidsr.psnr.{data}"] = f"{m['psnr']:.3f}"
    return meta


def _example(shape: tuple[int, ...], bits: int | None, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    if bits is None:
        return torch.rand(shape, generator=gen)
    codes = torch.randint(0, 1 << bits, shape, generator=gen)
    return codes.to(torch.uint8 if bits <= 8 else torch.uint16)


def _dynamic_shapes() -> dict:
    dim = torch.export.Dim
    return {"x": {0: dim("batch", min=1), 2: dim("height", min=1), 3: dim("width", min=1)}}


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _interrupt_in(exc: BaseException) -> BaseException | None:
    """A Ctrl-C (or SIGTERM, which the CLI raises as one) that ``exc`` wraps: extension modules
    and exporters turn an interrupt in their own code into ImportError or their own errors."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _reason(exc: BaseException) -> str:
    """The innermost cause's first line, without terminal colours."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _failed(what: str, exc: Exception) -> BaseException:
    """What to raise for ``exc`` from ``what``: the interrupt inside it, or an ExportError."""
    interrupt = _interrupt_in(exc)
    return interrupt if interrupt is not None else ExportError(f"{what} failed: {_reason(exc)}")


def _import(name: str) -> Any:
    """Import an installed module; an interrupt during its start stays an interrupt."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        interrupt = _interrupt_in(exc)
        if interrupt is not None:
            raise interrupt from None
        raise


def installed(name: str) -> bool:
    """Whether ``name`` can be imported (without importing it; a ``None`` in ``sys.modules``
    blocks an import)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    return importlib.util.find_spec(name) is not None


def missing(*names: str) -> list[str]:
    """Those of ``names`` that cannot be imported."""
    return [n for n in names if not installed(n)]


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Hide the exporter's chatter (its torchvision-op lines, deprecation warnings); errors
    still raise."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [g.level for g in loggers]
    for g in loggers:
        g.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for g, level in zip(loggers, levels, strict=True):
            g.setLevel(level)


def _write_onnx(net: nn.Module, example: torch.Tensor, tmp: Path, opset: int,
                meta: dict[str, str]) -> None:
    onnx = _import("onnx")
    _import("onnxscript")
    with _quiet_exporter():
        try:
            program = torch.onnx.export(net, (example,), dynamo=True, opset_version=opset,
                                        input_names=["lr"], output_names=["sr"],
                                        dynamic_shapes=_dynamic_shapes(), verbose=False)
        except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds
            raise _failed("the ONNX exporter", exc) from exc
    proto = program.model_proto
    written = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if written != opset:
        raise ExportError(f"the ONNX exporter wrote opset {written}, not {opset}")
    onnx.helper.set_model_props(proto, meta)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported ONNX graph is invalid: "
                          f"{str(exc).strip().splitlines()[0]}") from exc
    onnx.save_model(proto, str(tmp))  # one file: a few thousand weights need no external data


def onnx_session(path: str | Path, threads: int = 0) -> Any:
    """An onnxruntime CPU session for ``path`` (``threads`` intra-op threads, 0: its default),
    quiet below errors."""
    ort = _import("onnxruntime")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    try:
        return onnx_session(path).run(None, {"lr": x.numpy()})[0]
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors have no common base
        version = _import("onnxruntime").__version__
        raise _failed(f"onnxruntime {version} running the exported file", exc) from exc


def _write_pt2(net: nn.Module, example: torch.Tensor, tmp: Path, meta: dict[str, str]) -> None:
    with _quiet_exporter():
        try:
            program = torch.export.export(net, (example,), dynamic_shapes=_dynamic_shapes())
        except Exception as exc:  # noqa: BLE001
            raise _failed("torch.export", exc) from exc
        try:
            # through a file object: the archive's root folder is then "archive", not the
            # temporary file's name
            with open(tmp, "wb") as f:
                torch.export.save(program, f, extra_files={"vidsr.json": json.dumps(meta)})
        except RuntimeError as exc:  # PyTorch's file writer raises RuntimeError, not OSError
            interrupt = _interrupt_in(exc)
            if interrupt is not None:
                raise interrupt from None
            reason = re.sub(r"^\[enforce fail[^\]]*\]\s*\.?\s*", "", _reason(exc))
            raise OSError(reason) from exc  # named after the output by export_model


def _run_pt2(path: Path, x: torch.Tensor) -> np.ndarray:
    with _quiet_exporter():
        program = torch.export.load(str(path))
    with torch.inference_mode():
        return program.module()(x).numpy()


def _check(net: nn.Module, path: Path, fmt: str, bits: int | None,
           ) -> tuple[str | None, float | None, float | None]:
    """Run the file at ``path`` on the check inputs against ``net``: (runtime, max |diff|,
    fraction of values differing), or Nones where no runtime is installed; raises when the
    difference is over the tolerance."""
    worst, differ, total = 0.0, 0, 0
    if fmt == "onnx" and not installed("onnxruntime"):
        return None, None, None
    for k, shape in enumerate(_CHECK_SHAPES):
        x = _example(shape, bits, seed=1 + k)
        got = _run_onnx(path, x) if fmt == "onnx" else _run_pt2(path, x)
        with torch.inference_mode():
            want = net(x).numpy()
        if got.shape != want.shape or got.dtype != want.dtype:
            raise ExportError(f"the exported graph gives {got.dtype} {got.shape} for "
                              f"{tuple(shape)}, PyTorch {want.dtype} {want.shape}")
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        worst = max(worst, float(diff.max()))
        differ += int(np.count_nonzero(diff))
        total += diff.size
    limit = FLOAT_TOLERANCE if bits is None else CODE_TOLERANCE
    if worst > limit:
        raise ExportError(f"the exported graph differs from PyTorch by {worst:.3g} (more than "
                          f"{limit:g}); nothing written")
    if bits is not None and differ / total > CODE_DIFFERING:
        raise ExportError(f"the exported graph differs from PyTorch in {differ / total:.2%} of "
                          f"the codes (more than {CODE_DIFFERING:.1%}); nothing written")
    return ("onnxruntime" if fmt == "onnx" else "torch.export.load"), worst, differ / total


def default_output(name: str | Path, io: str = "float", fmt: str = "onnx") -> Path:
    """Where ``vidsr export`` writes without ``-o``: the weights file's or model's name, with
    the io kind when not float, in the working folder (``ecbsr-m4c16-x2-uint8.onnx``)."""
    base = Path(name).stem if is_weights_path(name) else resolve_spec(name).name
    return Path(f"{base}{'' if io == 'float' else '-' + io}.{fmt}")


def export_model(name: str | Path | nn.Module, output: str | Path, *, io: str = "float",
                 opset: int | None = None, check: bool = True,
                 overwrite: bool = False) -> ExportReport:
    """Export model ``name`` (a name or alias with shipped weights, a weights file, or a model
    from ``load_model``) to ``output`` (``.onnx`` or ``.pt2``), checked against PyTorch (see
    the module's docstring); returns what was done. ``opset`` (ONNX only) defaults to 18.

    The file is written beside ``output`` under a temporary name and moved into place only
    when the export and its check succeeded.
    """
    out = Path(output)
    check_output(out, overwrite=overwrite)
    fmt = format_of(out)
    if io not in IO_BITS:
        raise InputError(f"io must be one of {', '.join(IO_BITS)}, not {io!r}")
    if fmt == "onnx":
        absent = missing("onnx", "onnxscript")
        if absent:
            raise ExportError(f"ONNX export needs {' and '.join(absent)}: {INSTALL_HINT}")
        opset = DEFAULT_OPSET if opset is None else opset
        newest = _import("onnx").defs.onnx_opset_version()
        if not MIN_OPSET <= opset <= newest:
            raise InputError(f"opset {opset} is outside {MIN_OPSET}-{newest}, the opsets "
                             f"PyTorch's exporter and this onnx can write")
    elif opset is not None:
        raise InputError("an opset is for .onnx files; a .pt2 has none")
    if isinstance(name, nn.Module):
        model = name
    else:
        if not is_weights_path(name) and is_untrained(spec := resolve_spec(name)):
            raise WeightsError(f"no trained weights are shipped for {spec.name}: a random "
                               "network is not worth exporting; export a weights file "
                               "from 'vidsr train' instead")
        model = load_model(name, pretrained=None if is_weights_path(name) else True)
    ref = next(iter(model.parameters()), None)
    if ref is not None and (ref.device.type != "cpu" or ref.dtype != torch.float32):
        raise InputError(f"export a float32 CPU model, not {ref.dtype} on {ref.device} "
                         "(load_model's defaults)")
    spec = model.spec
    if not spec.trainable:
        raise ExportError(f"{spec.name} is a fixed resize, not a network: use your runtime's "
                          "own bicubic resize")
    bits = IO_BITS[io]
    # edge-SR reduces over its C channels before the pixel shuffle (the same function, to the
    # bit), faster in onnxruntime than shuffling the wide tensor first
    deploy = reduce_first(model)
    net = (PlaneIO(deploy, bits) if bits else deploy).eval()
    reference = (PlaneIO(model, bits) if bits else model).eval()  # what the check compares
    meta = _metadata(name, model, io)
    tmp = partial_path(out)
    try:
        example = _example(_TRACE_SHAPE, bits, seed=0)
        if fmt == "onnx":
            _write_onnx(net, example, tmp, opset, meta)
        else:
            _write_pt2(net, example, tmp, meta)
        checked_with, worst, differing = None, None, None
        unchecked = None
        if check:
            checked_with, worst, differing = _check(reference, tmp, fmt, bits)
            if checked_with is None:
                unchecked = "onnxruntime is not installed"
        else:
            unchecked = "--no-check"
        chmod_usual(tmp)  # whatever mode the writer gave it
        tmp.replace(out)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(str(out), fmt, spec.name, spec.scale, io, out.stat().st_size,
                        opset if fmt == "onnx" else None, checked_with, worst, differing,
                        [list(s) for s in _CHECK_SHAPES] if checked_with else [], meta,
                        unchecked)


__all__ = ["ExportError", "ExportReport", "FORMATS", "IO_BITS", "PlaneIO", "default_output",
           "export_model", "format_of", "installed", "missing", "onnx_session"]
