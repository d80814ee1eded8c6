"""The training loop: read top to bottom, resumable bit for bit.

``train`` builds the model (ECBSR in its five-branch training form), samples aligned patches,
minimises the recipe's loss with Adam under the recipe's schedule, validates the deploy form on
held-out folders with the evaluation code, keeps the best weights, and writes self-describing
checkpoints atomically. Everything random is drawn from generators whose states are saved, so
``resume`` continues exactly where a run stopped.

Files written to ``out_dir``: ``last.ckpt`` (full state), ``best.safetensors`` (deploy-form
weights of the best validation), ``final.safetensors`` (the last step's weights) and
``log.jsonl`` (one line per validation). With the recipe's ``ema`` the validated and saved
weights are an exponential moving average of the trained ones (``WeightAverage``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from torch import nn
from tqdm import tqdm

from ..api import is_weights_path, load_model, upscale_plane
from ..errors import Cancelled, InputError, WeightsError
from ..evaluation import EvalPair, dataset_name, evaluate, load_pairs
from ..metrics import mse
from ..models import SelfEnsemble
from ..registry import ModelSpec, parse_name
from ..weights import manifest, save_weights, sha256_file
from .data import PatchSampler, build_planes, plane_peak
from .init import apply_init
from .recipe import Recipe, recipe_from_dict
from .whiten import apply_whitening, plain, trained_weight

log = logging.getLogger(__name__)

CKPT_FORMAT = "vidsr-train-ckpt-1"
# What a run writes beside its checkpoint: a new run refuses a folder holding any of them
RUN_FILES = ("best.safetensors", "final.safetensors", "log.jsonl")


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    out_dir: Path
    step: int
    best_psnr: float | None
    best_step: int | None
    history: list[dict[str, Any]] = field(default_factory=list)
    total: int | None = None  # the recipe's steps: more than ``step`` for a stopped run

    @property
    def best(self) -> Path:
        return self.out_dir / "best.safetensors"


def deploy_form(model: nn.Module, spec: ModelSpec) -> nn.Module:
    """A detached deploy-form copy of a training model (ECBSR re-parameterized), in eval mode."""
    with torch.no_grad():
        # edge-SR: a copy, with a whitened filter bank turned back into plain weights
        deploy = model.reparameterize() if spec.family == "ecbsr" else plain(model)
    deploy.spec = spec
    deploy.requires_grad_(False)
    return deploy.eval()


class KeyGain:
    """Recipe ``key_gain``: the key (and, for eSR-TR, query) rows of an edge-SR filter bank take
    ``gain`` times Adam's step, the value rows the plain step.

    The softmax's keys are linear filters of a [0, 1] input; telling templates apart needs key
    weights far larger than the value weights, which Adam (steps of about ``lr`` whatever the
    gradient's size) reaches slowly. Scaling the keys' updates is the same, up to Adam's
    epsilon, as training them as ``gain * W`` (W initialised to the weights / gain; the same
    function at step 0); the saved weights are the plain ones. eSR-TM x2, step 3000 of
    ``vidsr train`` with the L1, unwhitened eSR-TM x2 recipe this project shipped before
    ``whiten`` (Set5 / Set14): 34.55 / 30.95 dB at key_gain 16, 34.20 / 30.72 at key_gain 1.
    With whitening it still helps eSR-TR (see recipes/teachers/esr-tr-k7c12-x2-d6a52f74.toml).
    """

    def __init__(self, model: nn.Module, spec: ModelSpec, gain: float) -> None:
        from ..models.edgesr import ESRCNN, ESRTM, ESRTR

        if isinstance(model, (ESRTM, ESRTR)):
            self.weight = trained_weight(model)  # theta when the filter bank is whitened
        elif isinstance(model, ESRCNN):
            self.weight = model.cnn[-1].weight
        else:
            raise WeightsError(f"key_gain needs an eSR-TM, eSR-TR or eSR-CNN model, "
                               f"not {spec.name}")
        self.first = model.c * spec.scale * spec.scale  # rows before this are the values
        self.gain = gain
        self.before: torch.Tensor | None = None

    def remember(self) -> None:
        self.before = self.weight.detach()[self.first:].clone()

    @torch.no_grad()
    def scale_step(self) -> None:
        rows = self.weight[self.first:]
        rows.sub_(self.before).mul_(self.gain).add_(self.before)


class WeightAverage:
    """Recipe ``ema``: an exponential moving average of a training model's weights.

    Near the end of a schedule Adam's weights still jitter around the minimum with the noise of
    the mini-batches; their average sits closer to it. The average starts as a copy of the model
    at the first averaged step; with ``n`` steps averaged since, the decay is
    ``min(decay, (1 + n) / (10 + n))`` so the copy of the starting point fades fast. Buffers (the
    fixed ECB masks, the whitening basis) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, state: dict[str, Any] | None = None) -> None:
        self.model = copy.deepcopy(model).requires_grad_(False)
        self.count = 0
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.count = int(state["count"])

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        self.count += 1
        d = min(decay, (1.0 + self.count) / (10.0 + self.count))
        mine = list(self.model.parameters())
        theirs = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(mine, theirs, 1.0 - d)
        for a, b in zip(self.model.buffers(), model.buffers(), strict=True):
            a.copy_(b)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "count": self.count}


def _loss(pred: torch.Tensor, target: torch.Tensor, kind: str, border: int,
          border_weight: float = 0.0, log_eps: float = 1e-4) -> torch.Tensor:
    # Zero padding makes a patch's border unlike the inside of a full image, which is what the
    # evaluation scores; the border pixels still give the inside its context. They are left out
    # of the loss, or (border_weight > 0) kept in it at that weight per pixel, the inside's 1.
    err = _pixel_loss(pred, target, "mse" if kind == "logmse" else kind)
    if border and border_weight:
        weight = _ring(pred, border, border_weight)
        per_patch = (err * weight).sum(dim=(1, 2, 3)) / (weight.sum() * err.shape[1])
    else:
        if border:
            err = err[..., border:-border, border:-border]
        per_patch = err.mean(dim=(1, 2, 3))
    if kind == "logmse":
        # The evaluation averages PSNR over images, -10 log10(MSE) each: its gradient weighs an
        # image's squared error by 1 / its MSE, where a plain MSE weighs every pixel alike and
        # lets the textured images decide. Per patch, log(MSE + log_eps) does the same, the
        # floor keeping flat patches from taking over.
        return torch.log(per_patch + log_eps).mean()
    return per_patch.mean()


def _ring(pred: torch.Tensor, border: int, border_weight: float) -> torch.Tensor:
    """Per-pixel loss weights of a patch: ``border_weight`` on the outer ring, 1 inside."""
    weight = torch.full(pred.shape[-2:], border_weight, dtype=pred.dtype, device=pred.device)
    weight[border:-border, border:-border] = 1.0
    return weight


def _pixel_loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "l1":
        return (pred - target).abs()
    if kind == "mse":
        return (pred - target) ** 2
    return torch.sqrt((pred - target) ** 2 + 1e-6)


def load_pinned(name: str, pin: str, what: str) -> tuple[nn.Module, str]:
    """The deploy-form model ``name`` (a model name, for its shipped weights, or a weights file
    ``vidsr train`` wrote) on the CPU, and the sha256 of its weights file, which must equal
    ``pin`` when one is given. ``what`` names the role in errors ("teacher", "init_weights")."""
    model = load_model(name, "cpu", pretrained=True)
    if is_weights_path(name):
        digest = sha256_file(Path(name))
    else:
        entry = manifest().get(model.spec.name) if model.spec.trainable else None
        digest = entry.sha256 if entry is not None else ""
    if pin and digest != pin:
        raise InputError(f"{what} {name}: its weights have sha256 {digest[:12]}..., the recipe "
                         f"pins {pin[:12]}... (use the weights the recipe was run with)")
    return model, digest


def load_teacher(recipe: Recipe, spec: ModelSpec, device: str) -> tuple[nn.Module, str]:
    """The recipe's distillation teacher in eval mode, and the sha256 of its weights file.

    The teacher is a model name (its shipped weights) or a weights file ``vidsr train`` wrote; it
    must upscale by the student's factor. A pinned ``teacher_sha256`` must match the file.
    """
    teacher, digest = load_pinned(recipe.teacher, recipe.teacher_sha256, "teacher")
    if teacher.spec.scale != spec.scale:
        raise InputError(f"teacher {recipe.teacher} upscales x{teacher.spec.scale}, the student "
                         f"{spec.name} x{spec.scale}")
    return teacher.to(device), digest


def load_init(recipe: Recipe, spec: ModelSpec) -> tuple[nn.Module, str]:
    """The recipe's ``init_weights`` (deploy form, same architecture) and its file's sha256."""
    start, digest = load_pinned(recipe.init_weights, recipe.init_sha256, "init_weights")
    if start.spec.name != spec.name:
        raise InputError(f"init_weights {recipe.init_weights} is {start.spec.name}, the recipe "
                         f"trains {spec.name}")
    return start, digest


@torch.inference_mode()
def plane_errors(model: nn.Module, hrs: Sequence[np.ndarray], lrs: Sequence[np.ndarray],
                 scale: int) -> list[float]:
    """MSE (on [0, 1]) of a deploy-form ``model`` on each whole training plane, upscaled and
    shaved by ``scale`` pixels as the evaluation does."""
    model = model.cpu().eval()
    to_255 = 255.0 / plane_peak(lrs[0])
    return [mse(np.clip(upscale_plane(lr * to_255, model), 0.0, 255.0), hr, scale) / 255.0 ** 2
            for hr, lr in zip(hrs, lrs, strict=True)]


def _logged(out: Path) -> list[dict[str, Any]]:
    """The validation entries already in ``out/log.jsonl``."""
    try:
        return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()
                if line.strip()]
    except (OSError, json.JSONDecodeError):
        return []


def _resolved(paths: Sequence[str | Path]) -> list[str]:
    return [str(Path(p).resolve()) for p in paths]


def _digest(obj: Any) -> str:
    """SHA-256 of a checkpoint's contents, walked in order (dicts keep theirs through pickle):
    torch.load does not check the zip's CRCs, so a flipped bit in a tensor loaded silently."""
    h = hashlib.sha256()

    def walk(o: Any) -> None:
        if isinstance(o, torch.Tensor):
            t = o.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(o, dict):
            h.update(f"D{len(o)};".encode())
            for k, v in o.items():
                walk(k)
                walk(v)
        elif isinstance(o, (list, tuple)):
            h.update(f"L{len(o)};".encode())
            for v in o:
                walk(v)
        else:  # str, int, float (repr round-trips), bool, None, bytes
            h.update(f"{type(o).__name__}:{o!r};".encode())

    walk(obj)
    return h.hexdigest()


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _save_checkpoint(ckpt: dict[str, Any], path: Path) -> None:
    _save_atomic({**ckpt, "sha256": _digest(ckpt)}, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint (tensors and plain values only; no code is executed)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        if not Path(path).is_file() or isinstance(exc, PermissionError):
            raise WeightsError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
        raise WeightsError(f"{path} is truncated or not a vidsr training checkpoint "
                           f"({exc.strerror or exc})") from exc
    except Exception as exc:  # noqa: BLE001 - any unpickling failure: not a checkpoint
        raise WeightsError(f"{path} is not a vidsr training checkpoint "
                           f"({type(exc).__name__})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise WeightsError(f"{path} is not a vidsr training checkpoint")
    digest = ckpt.pop("sha256", None)  # absent from checkpoints written before it was added
    if digest is not None and digest != _digest(ckpt):
        raise WeightsError(f"{path} is damaged: its contents do not match the digest written "
                           "with them (resume from an earlier copy, or start again)")
    return ckpt


def validate(model: nn.Module, spec: ModelSpec,
             val: dict[str, list[EvalPair]]) -> dict[str, dict[str, float]]:
    """PSNR/SSIM of the deploy form on each validation folder (the evaluation code)."""
    deploy = deploy_form(model, spec)
    out = {}
    for folder, pairs in val.items():
        report = evaluate(deploy, folder, pairs=pairs)
        out[report.dataset] = {"psnr": report.psnr, "ssim": report.ssim}
    return out


def train(recipe: Recipe | None, data_dirs: Sequence[str | Path], out_dir: str | Path, *,
          val_dirs: Sequence[str | Path] = (), resume: str | Path | None = None,
          steps: int | None = None, cache_dir: str | Path | None = None,
          time_limit: float | None = None, device: str = "cpu", show_progress: bool = True,
          progress: Callable[[int, int, float], None] | None = None,
          cancel: threading.Event | None = None, model: str | None = None) -> TrainResult:
    """Train (or resume) one model; returns where the results are.

    ``model`` (a name or alias), with ``resume``: the model the checkpoint must hold (a
    mismatch is refused before anything is done). ``steps`` overrides the recipe's schedule
    length. ``time_limit`` (seconds) and ``cancel``
    stop the run early after writing a checkpoint (``cancel`` then raises ``Cancelled``).
    ``progress(step, total, loss)`` is called after every step.
    """
    from ..engine.core import pick_device

    device = str(pick_device(device))  # "cuda" without CUDA: one clear InputError
    out = Path(out_dir)
    if ".." in out.parts:  # "x/../run" with no x: the run's folder, not a stray x beside it
        out = out.resolve()
    made = _make_folder(out, "--out")
    cache = Path(cache_dir).resolve() if cache_dir else None
    made_cache = None
    try:
        if cache is not None:  # before the planes are built (minutes on a big set)
            made_cache = _make_folder(cache, "--cache")
            if not os.access(cache, os.W_OK):
                raise InputError(f"cannot write in --cache {cache}: permission denied")
        with _run_lock(out):
            return _train(recipe, data_dirs, out, val_dirs, resume, steps, cache_dir,
                          time_limit, device, show_progress, progress, cancel, model)
    except BaseException:
        if cache is not None:  # first: it may be inside --out
            _remove_empty(cache, made_cache)
        _remove_empty(out, made)  # a run refused (or stopped) before writing leaves no folders
        raise


def _remove_empty(path: Path, top: Path | None) -> None:
    """Remove ``path`` and its parents up to ``top`` (the first folder this run created), each
    only while it is empty; nothing when ``top`` is None (the folder was there before)."""
    if top is None:
        return
    while True:
        try:
            path.rmdir()
        except OSError:   # not empty (or already gone): what is left is not ours to remove
            return
        if path == top:
            return
        path = path.parent


def _make_folder(path: Path, what: str) -> Path | None:
    """Create the folder ``path`` (and its parents); returns the topmost folder it created,
    None if ``path`` existed already."""
    if path.is_dir():
        return None
    top = path
    while not top.parent.exists() and top.parent != top:
        top = top.parent
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        raise InputError(f"{what} {path} is a file, not a folder") from None
    except NotADirectoryError:
        raise InputError(f"{what} {path} is inside a file, not a folder") from None
    except OSError as exc:
        raise InputError(f"cannot create {what} {path}: {exc.strerror or exc}") from None
    return top


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` for the run: a second ``vidsr train`` on the same folder (a resume
    started while the first still runs) would interleave two runs' checkpoints and weights."""
    try:
        import fcntl
    except ImportError:  # no advisory locks (Windows): run unguarded
        yield
        return
    while True:
        try:
            handle = open(out / ".lock", "a+")  # noqa: SIM115 - closed below or by the with
        except OSError as exc:
            raise InputError(f"cannot write in --out {out}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise InputError(f"{out} is in use by another vidsr train (pid {holder}); stop it "
                             "first or give another --out") from None
        try:  # the lock counts only if the file is still the one at the path (a run that ended
            # between our open and our lock removed it, and a third may have made a new one)
            same = os.fstat(handle.fileno()).st_ino == os.stat(out / ".lock").st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    with handle:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            (out / ".lock").unlink(missing_ok=True)  # while held; a waiter sees it gone, retries
            fcntl.flock(handle, fcntl.LOCK_UN)


def _carry_run(src: Path, out: Path, step: int, best_step: int | None) -> None:
    """Copy a run's ``best.safetensors`` (when it is the checkpoint's best: a checkpoint copied
    from earlier may be older than it) and its ``log.jsonl`` up to the checkpoint's ``step``
    from ``src`` into ``out``."""
    if src.resolve() == out.resolve():  # a checkpoint kept under another name in --out
        return
    best = src / "best.safetensors"
    if best_step is not None and best.is_file():
        try:
            with safe_open(str(best), framework="pt") as f:
                saved = (f.metadata() or {}).get("step")
        except (OSError, SafetensorError):
            saved = None
        if saved == str(best_step):
            shutil.copy2(best, out / "best.safetensors")
        else:
            log.warning("%s is not the checkpoint's best (step %s): the best weights are "
                        "written to %s at the next validation that beats it", best, best_step,
                        out)
    entries = [e for e in _logged(src) if e.get("step", 0) <= step]
    if entries:
        (out / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))


def _train(recipe: Recipe | None, data_dirs: Sequence[str | Path], out: Path,
           val_dirs: Sequence[str | Path], resume: str | Path | None, steps: int | None,
           cache_dir: str | Path | None, time_limit: float | None, device: str,
           show_progress: bool, progress: Callable[[int, int, float], None] | None,
           cancel: threading.Event | None, model_name: str | None) -> TrainResult:
    ckpt = load_checkpoint(resume) if resume else None
    if ckpt is not None and model_name is not None \
            and parse_name(model_name).name != ckpt["model_name"]:
        raise InputError(f"--model {parse_name(model_name).name} disagrees with {resume}, a "
                         f"{ckpt['model_name']} checkpoint")
    if ckpt is not None:
        earlier = recipe_from_dict(ckpt["recipe"], f"{resume} recipe")
        changed = recipe is not None or (steps is not None and steps != earlier.steps)
        if recipe is not None:
            recipe = recipe.replace(model=parse_name(recipe.model or earlier.model).name)
            if recipe.teacher == earlier.teacher and not recipe.teacher_sha256:
                recipe = recipe.replace(teacher_sha256=earlier.teacher_sha256)
            if recipe.init_weights == earlier.init_weights and not recipe.init_sha256:
                recipe = recipe.replace(init_sha256=earlier.init_sha256)
        else:
            recipe = earlier
        if steps is not None:  # --steps is a recipe change like any other: checked the same
            recipe = recipe.replace(steps=steps)
        if changed:
            why = recipe.extends(earlier, ckpt["step"])
            if why:
                what = "the recipe" if steps is None else "--steps " + str(steps)
                raise InputError(f"{what} does not extend {resume}: {why}")
            log.info("extending the run in %s to %d steps", resume, recipe.steps)
    elif recipe is not None and steps is not None:
        recipe = recipe.replace(steps=steps)
    if recipe is None or not recipe.model:
        raise WeightsError("the recipe names no model (give --model or a recipe with 'model')")
    spec = parse_name(recipe.model)
    recipe = recipe.replace(model=spec.name)
    if not spec.trainable:
        raise InputError(f"{spec.name} has no weights to train")
    own = out / "last.ckpt"
    if ckpt is None and own.exists():
        raise InputError(f"{out} holds a training run already (last.ckpt): continue it with "
                         f"--resume {own}, or give another --out")
    earlier_files = [n for n in RUN_FILES if (out / n).exists()]
    if not own.exists() and earlier_files:  # a new run, or a resume into this folder
        raise InputError(f"{out} holds an earlier run's {', '.join(earlier_files)}: give another "
                         "--out, or remove them")
    if ckpt is not None and own.exists() and not own.samefile(resume):
        raise InputError(f"{out} holds a training run's last.ckpt already; resume that one, "
                         f"or resume {resume} into a new --out")
    given = _resolved(data_dirs)
    if ckpt is not None and ckpt.get("data") is not None and _resolved(ckpt["data"]) != given:
        log.warning("--data differs from the data %s began with (%s): the run goes on, but no "
                    "longer as the same run would have", resume, " ".join(ckpt["data"]))
    before = list(ckpt.get("val") or []) if ckpt is not None else []
    if ckpt is not None and not val_dirs and (before or ckpt.get("best_psnr") is not None):
        gone = [d for d in before if not Path(d).is_dir()]
        if gone or not before:
            where = f" ({' '.join(gone)} no longer there)" if gone else ""
            raise InputError(f"{resume} was validated{where}: give the --val folders it was "
                             "validated on to resume it")
        val_dirs = before
        log.info("validating on the folders the run was validated on: %s", " ".join(before))
    elif before and val_dirs and [dataset_name(d) for d in before] != \
            [dataset_name(d) for d in val_dirs]:
        log.warning("--val differs from the folders %s was validated on (%s): the best step is "
                    "picked on other images from here on", resume, " ".join(before))
    twice = sorted({d for d in given if given.count(d) > 1})
    if twice:  # its images would be drawn twice as often, unsaid
        raise InputError(f"--data names {', '.join(twice)} more than once")
    if str(out.resolve()) in given + _resolved(val_dirs):
        raise InputError(f"--out {out} is one of the image folders: the run would write its "
                         "checkpoint, weights and plane cache among them; give another --out")
    names = [dataset_name(d) for d in val_dirs]  # what validate() keys the scores by
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"two --val folders are named {', '.join(twice)}: the log keys scores "
                         "by folder name; give folders with different names")
    # the validation images before the training planes are built: minutes on a big set
    val = {str(d): load_pairs(d, spec.scale) for d in val_dirs}

    teacher = None
    if recipe.distill:
        teacher, digest = load_teacher(recipe, spec, device)
        recipe = recipe.replace(teacher_sha256=digest)   # the checkpoint pins the teacher
        if recipe.teacher_ensemble:
            teacher = SelfEnsemble(teacher).eval()
        log.info("distilling from %s%s (sha256 %s...), weight %g from step %d", recipe.teacher,
                 " (self-ensemble of 8)" if recipe.teacher_ensemble else "",
                 digest[:12] or "-", recipe.distill, recipe.distill_from)
        kinds = {recipe.loss_at(s) for s in (recipe.distill_from, recipe.steps - 1)}
        if recipe.distill < 1.0 and kinds & {"l1", "charbonnier"}:
            # |p - a| + |p - b| is flat between a and b: no gradient where HR and teacher disagree.
            log.warning("distilling with an L1-like loss: between HR and the teacher it gives no "
                        "gradient (equal weights) or follows one target only; use loss = \"mse\"")

    start = None
    if recipe.init == "weights" and ckpt is None:   # a resume takes the model from the checkpoint
        start, digest = load_init(recipe, spec)
        recipe = recipe.replace(init_sha256=digest)     # the checkpoint pins the start
        log.info("starting from %s (sha256 %s...)", recipe.init_weights, digest[:12] or "-")

    hrs, lrs = build_planes(data_dirs, spec.scale, cache_dir if cache_dir else out,
                            recipe.rescale, recipe.exact_lr, recipe.channels,
                            lr_patch=recipe.lr_patch)
    torch.manual_seed(recipe.seed)
    model = spec.build(training=True)
    if ckpt is None:    # a resume takes every weight (and the RNG states) from the checkpoint
        apply_init(model, spec, recipe.init, recipe.init_noise, start)
    if recipe.whiten:
        apply_whitening(model, lrs, recipe.whiten)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, betas=recipe.betas,
                           weight_decay=recipe.weight_decay)
    key_gain = KeyGain(model, spec, recipe.key_gain) if recipe.key_gain != 1.0 else None
    gen = torch.Generator().manual_seed(recipe.seed)
    step, best_psnr, best_step, history = 0, None, None, []
    if ckpt is not None:
        if ckpt["model_name"] != spec.name:
            raise WeightsError(f"{resume} is a {ckpt['model_name']} checkpoint")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["rng"]["data"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        step, best_psnr, best_step = ckpt["step"], ckpt["best_psnr"], ckpt["best_step"]
        history = list(ckpt.get("history", []))
        log.info("resuming %s at step %d of %d", spec.name, step, recipe.steps)

    average = None
    if ckpt is not None and ckpt.get("average") is not None:
        average = WeightAverage(model, ckpt["average"])

    sampler = PatchSampler(hrs, lrs, spec.scale, recipe.lr_patch, augment=recipe.augment)
    if recipe.psnr_sampling:
        reference = start if start is not None else load_init(recipe, spec)[0]
        errors = plane_errors(reference, sampler.hrs, sampler.lrs, spec.scale)
        sampler.reweigh([1.0 / (e + recipe.log_eps) for e in errors])
        log.info("psnr_sampling: init_weights' MSE on the %d training images spans %.1f-%.1f dB",
                 len(errors), -10 * math.log10(max(errors) + 1e-12),
                 -10 * math.log10(min(errors) + 1e-12))
    log.info("training %s on %d images for %d steps", spec.name, len(sampler), recipe.steps)

    def checkpoint() -> None:
        _save_checkpoint({
            "format": CKPT_FORMAT, "model_name": spec.name, "training_form": spec.family == "ecbsr",
            "step": step, "recipe": recipe.as_dict(), "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "rng": {"data": gen.get_state(), "torch": torch.get_rng_state()},
            "best_psnr": best_psnr, "best_step": best_step, "history": history,
            "data": _resolved(data_dirs),   # absolute: a resume from another folder compares right
            "val": _resolved(val_dirs),     # a resume without --val validates on these
            "average": average.state_dict() if average is not None else None,
        }, out / "last.ckpt")

    if ckpt is not None and resume is not None and not own.exists():
        # a resume into another folder: the run goes on there whole, its best weights and log
        # with it (they stayed behind, and the final line named a best that was not in --out)
        _carry_run(Path(resume).parent, out, step, best_step)
        checkpoint()

    def scored() -> nn.Module:
        """The weights validated and saved: the average once it runs, else the model's own."""
        return average.model if average is not None else model

    def run_validation() -> None:
        nonlocal best_psnr, best_step
        deploy = deploy_form(scored(), spec)
        meta = {"step": str(step), "data": json.dumps([str(d) for d in data_dirs])}
        if not val:
            save_weights(deploy, spec, out / "best.safetensors", recipe=recipe.as_dict(),
                         extra=meta)
            return
        scores = validate(scored(), spec, val)
        mean = sum(v["psnr"] for v in scores.values()) / len(scores)
        entry = {"step": step, "lr": recipe.lr_at(max(step - 1, 0)), "val": scores,
                 "mean_psnr": mean}
        # files first, the run's state last: an interrupt before the state is updated leaves
        # a validation that the resume runs again (it rewrites the same best file)
        better = best_psnr is None or mean > best_psnr
        if better:
            save_weights(deploy, spec, out / "best.safetensors", recipe=recipe.as_dict(),
                         extra=meta | {"val": scores})
        if not any(h["step"] == step for h in _logged(out)):
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")
        history.append(entry)
        if better:
            best_psnr, best_step = mean, step
        log.info("step %d: %s (best %.3f dB at step %d)", step,
                 ", ".join(f"{k} {v['psnr']:.3f} dB" for k, v in scores.items()),
                 best_psnr, best_step)

    if start is not None and val:
        run_validation()    # step 0 scores the starting weights: the best is never below them
        checkpoint()        # the files written are this run's: a rerun is told to resume it
    if ckpt is not None and step and (step % recipe.val_every == 0 or step == recipe.steps) \
            and val and not any(h["step"] == step for h in history):
        run_validation()    # an interrupt landed in this step's validation: it was not logged
        checkpoint()
    model.train()
    start_time = time.monotonic()
    bar = tqdm(total=recipe.steps, initial=step, desc=spec.name, unit="step",
               disable=not show_progress, dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 30.0)
    smooth = None
    stopped = None
    # An interrupt can land anywhere in a step. Until the update starts nothing but the data
    # RNGs has moved, and they are put back to where this step began; once the step is counted
    # the state is whole again. Only inside the update is the state torn: then the last
    # checkpoint stays, so that a resume always continues exactly as the run would have.
    at_start: tuple[torch.Tensor, torch.Tensor] | None = None
    updating = False
    try:
        while step < recipe.steps:
            at_start = (gen.get_state(), torch.get_rng_state())
            for group in opt.param_groups:
                group["lr"] = recipe.lr_at(step)
            lr_t, hr_t = sampler.batch(recipe.batch, gen)
            lr_t = lr_t.to(device)
            pred = model(lr_t)
            kind, border = recipe.loss_at(step), recipe.margin * spec.scale
            ring = recipe.margin_weight
            loss = _loss(pred, hr_t.to(device), kind, border, ring, recipe.log_eps)
            weight = recipe.distill_at(step)
            if weight:
                assert teacher is not None
                with torch.no_grad():
                    target = teacher(lr_t).clamp_(0.0, 1.0)
                loss = (1.0 - weight) * loss + weight * _loss(pred, target, kind, border, ring,
                                                               recipe.log_eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            updating = True
            if key_gain is not None:
                key_gain.remember()
            opt.step()
            if key_gain is not None:
                key_gain.scale_step()
            decay = recipe.ema_at(step)
            if decay:
                if average is None:
                    average = WeightAverage(model)
                else:
                    average.update(model, decay)
            step += 1
            updating, at_start = False, None
            value = float(loss.detach())
            smooth = value if smooth is None else 0.98 * smooth + 0.02 * value
            bar.update(1)
            if step % recipe.val_every == 0 or step == recipe.steps:
                run_validation()
                checkpoint()
                model.train()
            bar.set_postfix(loss=f"{smooth:.5f}", refresh=False,
                            psnr=f"{history[-1]['mean_psnr']:.2f}" if history else "-")
            if progress is not None:
                progress(step, recipe.steps, value)
            if cancel is not None and cancel.is_set():
                stopped = "cancelled"
                break
            if time_limit is not None and step < recipe.steps \
                    and time.monotonic() - start_time > time_limit:
                stopped = "time limit"
                break
    except KeyboardInterrupt:
        if updating:
            kept = load_checkpoint(out / "last.ckpt")["step"] if (out / "last.ckpt").exists() \
                else None
            log.warning("interrupted while step %d updated the weights: %s", step + 1,
                        f"resume from step {kept} with --resume {out / 'last.ckpt'}"
                        if kept is not None else "no checkpoint was written")
            raise
        if at_start is not None:  # this step had not started to count: back to its start
            gen.set_state(at_start[0])
            torch.set_rng_state(at_start[1])
        checkpoint()
        log.warning("interrupted at step %d; resume with --resume %s", step, out / "last.ckpt")
        raise
    finally:
        bar.close()
    if stopped:
        checkpoint()
        if stopped != "cancelled":  # the caller says it for a cancel (SIGTERM: the CLI's line)
            log.info("stopped at step %d (%s); resume with --resume %s", step, stopped,
                     out / "last.ckpt")
        if stopped == "cancelled":
            raise Cancelled(f"training stopped at step {step}")
    else:
        save_weights(deploy_form(scored(), spec), spec, out / "final.safetensors",
                     recipe=recipe.as_dict(), extra={"step": str(step)})
    return TrainResult(out, step, best_psnr, best_step, history, total=recipe.steps)
