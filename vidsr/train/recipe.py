"""Training recipes: a frozen dataclass with defaults in code, loadable from TOML.

A recipe names the model and every hyper-parameter of a run, so that
``vidsr train --recipe recipes/<name>.toml --data ...`` reproduces a shipped model. Unknown keys
and wrongly typed values are errors, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..registry import parse_name

SCHEDULES = ("cosine", "multistep", "constant")
LOSSES = ("l1", "charbonnier", "mse", "logmse")


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a training run except the data folders."""

    model: str = ""                 # canonical model name or alias, e.g. "esr-max-k7c4-x2"
    steps: int = 100_000            # total optimizer steps (the schedule's length)
    batch: int = 16                 # patches per step
    lr_patch: int = 32              # LR patch side; the HR patch is lr_patch * scale
    lr: float = 1e-3                # peak learning rate (Adam)
    lr_min: float = 1e-6            # final learning rate of the cosine schedule
    schedule: str = "cosine"        # "cosine", "multistep" or "constant"
    warmup: int = 0                 # linear warm-up steps
    milestones: tuple[int, ...] = ()  # multistep: steps where the rate is multiplied by gamma
    gamma: float = 0.5
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    loss: str = "l1"                # "l1", "charbonnier", "mse" or "logmse"
    log_eps: float = 1e-4           # logmse: each patch's loss is log(its MSE + log_eps)
    psnr_sampling: bool = False     # draw images in proportion to their crop positions divided
    #                                 by init_weights' MSE on them (+ log_eps; needs init_weights)
    margin: int = 0                 # LR pixels at each patch side left out of the loss
    margin_weight: float = 0.0      # ... or kept in it at this weight per pixel (0: left out)
    augment: bool = True            # random flips and 90-degree rotations
    rescale: tuple[float, ...] = ()  # also train on each image downscaled by these factors
    exact_lr: bool = False          # LR Y unrounded, as the evaluation computes it (else uint8)
    channels: bool = False          # also train on each image's R, G and B planes as gray images
    seed: int = 0
    init: str = "default"           # "default" (the model's own), "bicubic" (edge-SR values)
                                    # or "weights" (start from init_weights)
    init_weights: str = ""          # init = "weights": a model name (its shipped weights) or a
                                    # weights file vidsr train wrote
    init_sha256: str = ""           # pins the init_weights file ("": not checked)
    init_noise: float = 1e-2        # std of the noise added to bicubic-initialised filters
    val_every: int = 2000           # validate (and checkpoint) every N steps
    key_gain: float = 1.0           # eSR-TM/TR/CNN: key (and query) rows learn key_gain x faster
    whiten: float = 0.0             # edge-SR: train the first filter bank whitened (0: off; eps)
    restarts: tuple[int, ...] = ()  # cosine: steps where a new cosine cycle starts (warm restarts)
    restart_lr: float = 0.0         # peak rate of the cycles after the first (0: lr)
    tune_loss: str = ""             # the loss from step tune_from on ("": ``loss`` throughout)
    tune_from: int = 0              # first step trained with tune_loss
    teacher: str = ""               # distillation teacher: a model name or a weights file
    teacher_sha256: str = ""        # pins the teacher's weights file ("": not checked)
    distill: float = 0.0            # weight of the teacher term in the loss, in [0, 1]
    distill_from: int = 0           # first step with the teacher term
    teacher_ensemble: bool = False  # teacher = its mean over the 8 flips/rotations of the patch
    ema: float = 0.0                # weight averaging: validate and save an exponential moving
    #                                 average of the weights with this decay (0: off; e.g. 0.999)
    ema_from: int = 0               # first step whose weights enter the average

    def __post_init__(self) -> None:
        spec = parse_name(self.model) if self.model else None  # ModelNotFoundError for a bad name
        for f in fields(self):  # inf and nan pass every "> 0" below; a run gave NaN weights
            value = getattr(self, f.name)
            numbers = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
                raise InputError(f"recipe: {f.name} must be a finite number, got {value!r}")
        if self.warmup < 0:
            raise InputError("recipe: warmup must be non-negative")
        if self.schedule == "cosine" and self.lr_min > self.lr:
            raise InputError("recipe: lr_min must not exceed lr (the cosine decays to it)")
        if self.gamma <= 0:
            raise InputError("recipe: gamma must be positive")
        if self.milestones and self.schedule != "multistep":
            raise InputError("recipe: milestones need schedule = \"multistep\"")
        if any(not 0.0 <= b < 1.0 for b in self.betas):
            raise InputError("recipe: betas must be in [0, 1)")
        if self.weight_decay < 0:
            raise InputError("recipe: weight_decay must be non-negative")
        if spec is not None and self.key_gain != 1.0 and spec.family not in (
                "esr-tm", "esr-tr", "esr-cnn"):
            raise InputError(f"recipe: key_gain needs an eSR-TM, eSR-TR or eSR-CNN model, "
                             f"not {spec.name}")
        if spec is not None and self.whiten and not spec.family.startswith("esr-"):
            raise InputError(f"recipe: whiten needs an edge-SR model (eSR-MAX/TM/TR/CNN), "
                             f"not {spec.name}")
        if self.init == "bicubic" and spec is not None and not (
                spec.family in ("esr-max", "esr-tm", "esr-tr") and spec.arch["k"] >= 5):
            raise InputError(f"recipe: init = \"bicubic\" needs an eSR-MAX/TM/TR model with "
                             f"K >= 5, not {spec.name}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"recipe: schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.init not in ("default", "bicubic", "weights"):
            raise InputError(f"recipe: init must be 'default', 'bicubic' or 'weights', "
                             f"got {self.init!r}")
        if (self.init == "weights") != bool(self.init_weights):
            raise InputError("recipe: init = \"weights\" and init_weights go together")
        if self.init_sha256 and (not self.init_weights or not _is_sha256(self.init_sha256)):
            raise InputError("recipe: init_sha256 is the 64 lower-case hex digits of the "
                             "init_weights file, and needs init_weights")
        if self.loss not in LOSSES:
            raise InputError(f"recipe: loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("steps", "batch", "lr_patch", "val_every"):
            if getattr(self, name) < 1:
                raise InputError(f"recipe: {name} must be positive")
        if self.key_gain <= 0:
            raise InputError("recipe: key_gain must be positive")
        if not 0 <= 2 * self.margin < self.lr_patch:
            raise InputError("recipe: need 0 <= 2 * margin < lr_patch")
        if not 0.0 <= self.margin_weight < 1.0:
            raise InputError("recipe: margin_weight must be in [0, 1)")
        if self.log_eps <= 0:
            raise InputError("recipe: log_eps must be positive")
        if self.psnr_sampling and self.init != "weights":
            raise InputError("recipe: psnr_sampling weighs images by init_weights' error on them; "
                             "it needs init = \"weights\"")
        if self.margin_weight and not self.margin:
            raise InputError("recipe: margin_weight needs a margin")
        if not (self.lr > 0 and self.lr_min >= 0):
            raise InputError("recipe: lr must be positive and lr_min non-negative")
        if len(self.betas) != 2:
            raise InputError("recipe: betas takes two numbers")
        if self.restarts:
            if self.schedule != "cosine":
                raise InputError("recipe: restarts needs schedule = \"cosine\"")
            bounds = (self.warmup, *self.restarts, self.steps)
            if any(a >= b for a, b in itertools.pairwise(bounds)):
                raise InputError("recipe: restarts must increase strictly, after warmup and "
                                 "before steps")
        if any(not 0.0 < f < 1.0 for f in self.rescale):
            raise InputError("recipe: rescale factors must be between 0 and 1")
        if self.whiten < 0:
            raise InputError("recipe: whiten must be non-negative (0 turns it off)")
        if self.restart_lr < 0:
            raise InputError("recipe: restart_lr must be non-negative")
        if self.tune_loss:
            if self.tune_loss not in LOSSES:
                raise InputError(f"recipe: tune_loss must be one of {LOSSES}, "
                                 f"got {self.tune_loss!r}")
            if not 0 < self.tune_from < self.steps:
                raise InputError("recipe: need 0 < tune_from < steps")
        elif self.tune_from:
            raise InputError("recipe: tune_from needs tune_loss")
        if not 0.0 <= self.distill <= 1.0:
            raise InputError("recipe: distill must be between 0 and 1")
        if self.distill and not self.teacher:
            raise InputError("recipe: distill needs a teacher")
        if self.teacher and not self.distill:
            raise InputError("recipe: a teacher needs distill > 0")
        if self.teacher_ensemble and not self.teacher:
            raise InputError("recipe: teacher_ensemble needs a teacher")
        if self.distill_from and not (self.distill and 0 < self.distill_from < self.steps):
            raise InputError("recipe: distill_from needs distill, and 0 < distill_from < steps")
        if self.teacher_sha256 and (not self.teacher or not _is_sha256(self.teacher_sha256)):
            raise InputError("recipe: teacher_sha256 is the 64 lower-case hex digits of the "
                             "teacher's weights file, and needs a teacher")
        if not 0.0 <= self.ema < 1.0:
            raise InputError("recipe: ema (the averaging decay) must be in [0, 1)")
        if self.ema_from and not (self.ema and 0 < self.ema_from < self.steps):
            raise InputError("recipe: ema_from needs ema, and 0 < ema_from < steps")

    def ema_at(self, step: int) -> float:
        """The averaging decay after optimizer step ``step`` (0: the step is not averaged)."""
        return self.ema if self.ema and step >= self.ema_from else 0.0

    def loss_at(self, step: int) -> str:
        """The loss minimised at optimizer step ``step`` (0-based)."""
        return self.tune_loss if self.tune_loss and step >= self.tune_from else self.loss

    def distill_at(self, step: int) -> float:
        """The weight of the teacher term at optimizer step ``step`` (0 before ``distill_from``)."""
        return self.distill if step >= self.distill_from else 0.0

    def lr_at(self, step: int) -> float:
        """The learning rate for optimizer step ``step`` (0-based)."""
        if self.warmup and step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "multistep":
            return self.lr * self.gamma ** sum(step >= m for m in self.milestones)
        start, end, peak = self.warmup, self.steps, self.lr
        for restart in self.restarts:   # the cycle that holds ``step``: [start, end)
            if step < restart:
                end = restart
                break
            start, peak = restart, self.restart_lr or self.lr
        span = max(1, end - start)
        t = min(1.0, (step - start) / span)
        return self.lr_min + 0.5 * (peak - self.lr_min) * (1.0 + math.cos(math.pi * t))

    def extends(self, earlier: Recipe, step: int) -> str | None:
        """Why this recipe cannot continue a run of ``earlier`` stopped at ``step`` (None: it can).

        It can when it is the same run made longer: every field equal except the schedule's
        length, its restarts, the loss switch (``tune_loss``/``tune_from``), distillation
        (``teacher``, ``distill``, ``distill_from``, ``teacher_ensemble``), weight averaging
        (``ema``, ``ema_from``) and how often it validates, and the same rate, loss, teacher and
        averaging at every step so far -- so the continued
        run is the one this recipe gives from scratch.
        """
        free = {"steps", "restarts", "restart_lr", "val_every", "tune_loss", "tune_from",
                "teacher", "teacher_sha256", "distill", "distill_from", "teacher_ensemble",
                "ema", "ema_from"}
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(earlier, f.name)
            if f.name == "init_weights" and _same_weights(a, b):
                continue  # one file, named from two folders (load_recipe's lookup)
            if f.name not in free and a != b:
                return f"{f.name} differs ({b!r} in the checkpoint, {a!r} in the recipe)"
        if self.steps < step:
            return f"the recipe has {self.steps} steps and the checkpoint is at step {step}"
        for s in range(step):
            if self.lr_at(s) != earlier.lr_at(s):
                return f"the learning rate at step {s} differs"
            if self.loss_at(s) != earlier.loss_at(s):
                return f"the loss at step {s} differs"
            if self.distill_at(s) != earlier.distill_at(s):
                return f"the distillation weight at step {s} differs"
            if self.ema_at(s) != earlier.ema_at(s):
                return f"the weight averaging at step {s} differs"
        if earlier.distill and earlier.distill_from < step and (
                not _same_weights(self.teacher, earlier.teacher)
                or (self.teacher_sha256, self.teacher_ensemble)
                != (earlier.teacher_sha256, earlier.teacher_ensemble)):
            return "the teacher differs"
        return None

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML-friendly values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)


_INT_LISTS = {"milestones", "restarts"}  # step numbers; the other lists hold numbers


def _is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def recipe_from_dict(raw: dict[str, Any], source: str = "recipe") -> Recipe:
    """Build a ``Recipe`` from plain values; unknown keys and wrong types raise ``InputError``."""
    known = {f.name: f for f in fields(Recipe)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InputError(f"{source}: unknown key(s) {', '.join(unknown)} "
                         f"(known: {', '.join(known)})")
    defaults = Recipe()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        default = getattr(defaults, key)
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)):
                raise InputError(f"{source}: {key} must be a list, got {value!r}")
            item = int if key in _INT_LISTS else float
            if any(isinstance(v, bool) or not isinstance(v, (int, float))
                   or (item is int and not isinstance(v, int)) for v in value):
                kind = "integers" if item is int else "numbers"
                raise InputError(f"{source}: {key} must be a list of {kind}, got {value!r}")
            value = tuple(item(v) for v in value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise InputError(f"{source}: {key} must be true or false, got {value!r}")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{source}: {key} must be a number, got {value!r}")
            value = float(value)
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InputError(f"{source}: {key} must be an integer, got {value!r}")
        elif not isinstance(value, type(default)):
            raise InputError(f"{source}: {key} must be a {type(default).__name__}, got {value!r}")
        values[key] = value
    return Recipe(**values)


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe TOML file (top-level keys are ``Recipe`` fields)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read recipe {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not a text (UTF-8) TOML file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from exc
    recipe = recipe_from_dict(raw, str(path))
    found = {f: _beside(path, getattr(recipe, f)) for f in ("init_weights", "teacher")}
    return recipe.replace(**{f: v for f, v in found.items() if v is not None})


def _same_weights(a: str, b: str) -> bool:
    """Whether two recipe weights fields name the same file: equal, one existing file, or one
    the other's relative spelling (``recipes/teachers/x`` and ``/repo/recipes/teachers/x``,
    as ``load_recipe`` names it from another folder; the sha256 pins are compared apart)."""
    if a == b:
        return True
    if a.endswith("/" + b.lstrip("./")) or b.endswith("/" + a.lstrip("./")):
        return Path(a).is_absolute() != Path(b).is_absolute()
    try:
        return Path(a).is_file() and Path(b).is_file() and os.path.samefile(a, b)
    except OSError:
        return False


def _beside(recipe_path: Path, name: str) -> str | None:
    """A relative weights path in a recipe that is not there from the current folder, found
    from the recipe's own folder or one above it (the shipped recipes name their teachers as
    ``recipes/teachers/...``, from the repository root); None to leave ``name`` as it is (a
    model name, an absolute path, or one that resolves from here)."""
    if not name.endswith(".safetensors") or Path(name).is_absolute() or Path(name).exists():
        return None
    for folder in recipe_path.resolve().parents:
        if (folder / name).is_file():
            return str(folder / name)
    return None
