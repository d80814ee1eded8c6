"""Model names, aliases and the table of models vidsr knows.

Grammar (one concrete name per architecture):

- ``ecbsr-m{M}c{C}-x{s}``
- ``esr-{max|tm|tr}-k{K}c{C}-x{s}``
- ``esr-cnn-c{C}d{D}s{S}-x{s}``
- ``bicubic-x{s}``

Short aliases (``ecbsr-x2``, ``esr-max-x2``, ...) resolve to each family's shipped default.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import ModelNotFoundError
from .imresize import BicubicUpsample
from .models.ecbsr import ECBSR, PlainSR
from .models.edgesr import ESRCNN, ESRTM, ESRTR, ESRMax

SCALES = (2, 3, 4)
FAMILIES = ("bicubic", "ecbsr", "esr-max", "esr-tm", "esr-tr", "esr-cnn")

# Each family's shipped default architecture (see README "Choosing the defaults").
DEFAULTS: dict[str, dict[str, int]] = {
    "ecbsr": {"m": 4, "c": 16},
    "esr-max": {"k": 7, "c": 4},
    "esr-tm": {"k": 7, "c": 16},
    "esr-tr": {"k": 7, "c": 12},
    "esr-cnn": {"c": 6, "d": 3, "s": 15},
    "bicubic": {},
}

_PATTERNS = {
    "ecbsr": re.compile(r"^ecbsr-m(?P<m>\d+)c(?P<c>\d+)-x(?P<scale>\d+)$"),
    "esr-max": re.compile(r"^esr-max-k(?P<k>\d+)c(?P<c>\d+)-x(?P<scale>\d+)$"),
    "esr-tm": re.compile(r"^esr-tm-k(?P<k>\d+)c(?P<c>\d+)-x(?P<scale>\d+)$"),
    "esr-tr": re.compile(r"^esr-tr-k(?P<k>\d+)c(?P<c>\d+)-x(?P<scale>\d+)$"),
    "esr-cnn": re.compile(r"^esr-cnn-c(?P<c>\d+)d(?P<d>\d+)s(?P<s>\d+)-x(?P<scale>\d+)$"),
    "bicubic": re.compile(r"^bicubic-x(?P<scale>\d+)$"),
}
# Largest architecture arguments accepted (the papers' grids stop at M 4, C 64 and K 7, C 16)
_LIMITS = {"m": 64, "c": 256, "k": 15, "d": 64, "s": 64}
_ALIAS = re.compile(r"^(?P<family>ecbsr|esr-max|esr-tm|esr-tr|esr-cnn)-x(?P<scale>\d+)$")


@dataclass(frozen=True)
class ModelSpec:
    """One concrete architecture: a family, a scale and the family's size arguments."""

    family: str
    scale: int
    arch: dict[str, int] = field(default_factory=dict)

    def __hash__(self) -> int:  # frozen, but arch is a dict: hash what names the model
        return hash((self.family, self.scale, tuple(sorted(self.arch.items()))))

    def __post_init__(self) -> None:
        object.__setattr__(self, "arch", dict(self.arch))  # the caller's dict stays theirs
        if self.family not in FAMILIES:
            raise ModelNotFoundError(f"unknown model family {self.family!r}")
        if self.scale not in SCALES:
            raise ModelNotFoundError(f"scale x{self.scale} is not supported (use x2, x3 or x4)")
        expected = set(DEFAULTS[self.family])
        if set(self.arch) != expected:
            raise ModelNotFoundError(
                f"{self.family} takes arguments {sorted(expected)}, got {sorted(self.arch)}")
        if any(v < 1 for v in self.arch.values()):
            raise ModelNotFoundError(f"architecture arguments must be positive: {self.arch}")
        for key, value in self.arch.items():  # far past any useful size, short of a huge alloc
            if value > _LIMITS[key]:
                raise ModelNotFoundError(f"{key.upper()} = {value} is too large for "
                                         f"{self.family} (at most {_LIMITS[key]})")
        if self.family.startswith("esr-") and self.family != "esr-cnn" and self.arch["k"] % 2 == 0:
            raise ModelNotFoundError(f"kernel size K must be odd, got {self.arch['k']}")

    @property
    def name(self) -> str:
        a, s = self.arch, self.scale
        if self.family == "ecbsr":
            return f"ecbsr-m{a['m']}c{a['c']}-x{s}"
        if self.family == "esr-cnn":
            return f"esr-cnn-c{a['c']}d{a['d']}s{a['s']}-x{s}"
        if self.family == "bicubic":
            return f"bicubic-x{s}"
        return f"{self.family}-k{a['k']}c{a['c']}-x{s}"

    @property
    def alias(self) -> str | None:
        """The short alias naming this spec, if it is its family's default."""
        if self.family != "bicubic" and self.arch == DEFAULTS[self.family]:
            return f"{self.family}-x{self.scale}"
        return None

    def build(self, *, training: bool = False) -> nn.Module:
        """A freshly initialised module: the deploy form, or for ECBSR with ``training`` the
        five-branch training form."""
        a, s = self.arch, self.scale
        if self.family == "ecbsr":
            return ECBSR(a["m"], a["c"], s) if training else PlainSR(a["m"], a["c"], s)
        if self.family == "esr-max":
            return ESRMax(s, a["k"], a["c"])
        if self.family == "esr-tm":
            return ESRTM(s, a["k"], a["c"])
        if self.family == "esr-tr":
            return ESRTR(s, a["k"], a["c"])
        if self.family == "esr-cnn":
            return ESRCNN(s, a["c"], a["d"], a["s"])
        return BicubicUpsample(s)

    @property
    def trainable(self) -> bool:
        return self.family != "bicubic"


def parse_name(name: str) -> ModelSpec:
    """Resolve a canonical name or an alias to its ``ModelSpec``; unknown names raise
    ``ModelNotFoundError`` listing the closest valid names."""
    if not isinstance(name, str):
        raise ModelNotFoundError(f"a model name is a string, got {type(name).__name__}")
    key = name.strip().lower()
    try:
        alias = _ALIAS.match(key)
        if alias:
            family, scale = alias["family"], int(alias["scale"])
            return ModelSpec(family, scale, dict(DEFAULTS[family]))
        for family, pattern in _PATTERNS.items():
            match = pattern.match(key)
            if match:
                groups = {k: int(v) for k, v in match.groupdict().items()}
                scale = groups.pop("scale")
                return ModelSpec(family, scale, groups)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"invalid model {name!r}: {exc}") from None
    if "/" in name or "\\" in name or key.endswith((".pt", ".pth", ".ckpt", ".bin", ".onnx",
                                                   ".pt2")):
        # a path, not a name: what is wrong is the file (a name has no folder or suffix)
        raise ModelNotFoundError(f"no such weights file: {name} (a model is a name or alias from "
                                 "'vidsr models', or a .safetensors file vidsr train wrote)")
    close = difflib.get_close_matches(key, known_names(), n=4, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ModelNotFoundError(
        f"unknown model {name!r}{hint} (run 'vidsr models' for the list)")


def known_names() -> list[str]:
    """Every name in the table, canonical and alias."""
    names = []
    for spec in table():
        names.append(spec.name)
        if spec.alias:
            names.append(spec.alias)
    return names


# Non-default sizes listed in the table because they are shipped or worth comparing.
_EXTRA = ("ecbsr-m4c8-x2",)


def table() -> list[ModelSpec]:
    """The models `vidsr models` lists: every family's default at x2, x3, x4, plus extras."""
    specs = [ModelSpec(f, s, dict(DEFAULTS[f])) for s in SCALES for f in FAMILIES]
    specs += [parse_name(n) for n in _EXTRA]
    return sorted(specs, key=lambda sp: (FAMILIES.index(sp.family), sp.scale, sp.name))


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def macs_per_pixel(module: nn.Module, scale: int) -> float:
    """Multiply-accumulates of every conv per *input* pixel, counted on a probe frame."""
    total = 0
    size = 32

    def hook(conv: nn.Conv2d, _inp: tuple[torch.Tensor], out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = conv.kernel_size
        total += out.numel() * (conv.in_channels // conv.groups) * kh * kw

    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    handles = [c.register_forward_hook(hook) for c in convs]
    try:
        with torch.no_grad():
            module(torch.zeros(1, 1, size, size))
    finally:
        for h in handles:
            h.remove()
    if isinstance(module, BicubicUpsample):  # separable 5-tap passes: s rows, then s*s columns
        return 5.0 * scale * (1 + scale)
    return total / (size * size)
