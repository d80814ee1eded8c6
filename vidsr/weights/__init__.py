"""Weights as data: safetensors files with metadata, and the manifest of shipped weights.

A weights file holds the *deploy-form* state dict and string metadata: ``format``,
``name`` (canonical), ``arch`` (JSON), ``recipe`` (JSON), ``vidsr_version``. Loading reads
tensors and JSON only; it never executes code from the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from ..errors import ModelNotFoundError, OutputError, WeightsError
from ..registry import ModelSpec, parse_name

FORMAT = "vidsr-weights-1"
WEIGHTS_DIR = Path(__file__).parent
MANIFEST = WEIGHTS_DIR / "manifest.json"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_weights(module: nn.Module, spec: ModelSpec, path: str | Path, *,
                 recipe: dict[str, Any] | None = None,
                 extra: dict[str, Any] | None = None) -> Path:
    """Write ``module``'s deploy-form state dict and self-describing metadata to ``path``."""
    from .. import __version__

    state = {k: v.detach().to("cpu", torch.float32).contiguous()
             for k, v in module.state_dict().items()}
    meta = {
        "format": FORMAT,
        "name": spec.name,
        "family": spec.family,
        "scale": str(spec.scale),
        "arch": json.dumps(spec.arch, sort_keys=True),
        "recipe": json.dumps(recipe or {}, sort_keys=True),
        "vidsr_version": __version__,
    }
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(_canonical(save(state, metadata=meta)))
        chmod_usual(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _canonical(data: bytes) -> bytes:
    """A safetensors file with its JSON header's keys sorted. safetensors writes them in hash
    map order, which changes from save to save, so the same weights got a new sha256 each time
    and a retrained file could never match a pin. Same keys and values, so the same length;
    the padding after the JSON is spaces, as the format allows."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()
    if len(text) > size:  # cannot happen for the same content; keep the file as written
        return data
    return data[:8] + text.ljust(size) + data[8 + size:]


def chmod_usual(path: str | Path) -> None:
    """Give ``path`` the mode a plain ``open(path, "w")`` would have (0666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def read_weights(path: str | Path) -> tuple[ModelSpec, dict[str, torch.Tensor], dict[str, str]]:
    """Read a weights file: its spec, its tensors and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, ValueError) as exc:
        if path.suffix.lower() in (".onnx", ".pt2"):  # what vidsr export writes
            raise WeightsError(f"{path} is an exported model, which vidsr does not load: give "
                               "the model's name or its .safetensors weights") from None
        if path.suffix.lower() == ".ckpt":  # what vidsr train writes beside its weights
            raise WeightsError(f"{path} is a training checkpoint (vidsr train --resume takes "
                               "it): give its run's best.safetensors or final.safetensors") \
                from None
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc
    if meta.get("format") != FORMAT or "name" not in meta:
        raise WeightsError(f"{path} is not a vidsr weights file (no '{FORMAT}' metadata)")
    try:
        spec = parse_name(meta["name"])
    except ModelNotFoundError as exc:
        raise WeightsError(f"{path} names a model vidsr does not know: {exc}") from exc
    try:
        arch = json.loads(meta["arch"]) if "arch" in meta else spec.arch
    except json.JSONDecodeError:
        arch = None
    if arch != spec.arch:
        raise WeightsError(f"{path}: metadata arch {meta['arch']} disagrees with {spec.name}")
    return spec, tensors, meta


def load_into(module: nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load ``tensors`` into ``module`` strictly, turning mismatches into ``WeightsError``."""
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines()[1:] if ln.strip()]
        detail = lines[0] if lines else str(exc).strip()  # the first line is only a heading
        raise WeightsError(f"{source} does not fit the architecture: {detail}") from exc


@dataclass(frozen=True)
class ShippedWeights:
    """One manifest entry: a weights file in the package and what was measured with it."""

    name: str
    file: str
    sha256: str
    params: int
    recipe: str = ""
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    command: str = ""

    @property
    def path(self) -> Path:
        return WEIGHTS_DIR / self.file


def manifest() -> dict[str, ShippedWeights]:
    """The shipped weights, keyed by canonical model name."""
    if not MANIFEST.is_file():
        return {}
    raw = json.loads(MANIFEST.read_text())
    return {name: ShippedWeights(name=name, **entry) for name, entry in raw.items()}


def is_untrained(spec: ModelSpec) -> bool:
    """True when ``spec`` is a trainable model without shipped weights (``load_model`` gives
    it a random initialisation)."""
    shipped = manifest().get(spec.name)
    return bool(spec.trainable and (shipped is None or not shipped.path.is_file()))


def write_manifest(entries: dict[str, ShippedWeights]) -> None:
    """Replace the manifest with ``entries`` atomically (``OutputError`` if it cannot be)."""
    staged = stage_manifest(entries)
    try:
        os.replace(staged, MANIFEST)
    except OSError as exc:
        remove_quietly(staged)
        raise OutputError(f"cannot write {MANIFEST}: {exc.strerror or exc}") from None


def stage_manifest(entries: dict[str, ShippedWeights]) -> Path:
    """Write ``entries`` to a temporary file beside the manifest and return it; ``os.replace``
    puts it in place. A manifest written in place and cut short (a full disk, Ctrl-C) made
    every later command fail on its JSON."""
    raw = {}
    for name in sorted(entries):
        e = entries[name]
        raw[name] = {"file": e.file, "sha256": e.sha256, "params": e.params,
                     "recipe": e.recipe, "metrics": e.metrics, "command": e.command}
    staged = MANIFEST.with_name(MANIFEST.name + ".tmp")
    try:
        staged.write_text(json.dumps(raw, indent=2) + "\n")
        chmod_usual(staged)
    except OSError as exc:
        remove_quietly(staged)
        raise OutputError(f"cannot write {MANIFEST}: {exc.strerror or exc}") from None
    return staged


def remove_quietly(path: Path) -> None:
    """Remove ``path`` if it is there; on a read-only file system even a missing file's
    unlink fails (EROFS), which must not hide the error being reported."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
