"""``vidsr train --model NAME --data DIR --out DIR``: train a model with vidsr's own loop."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import signal
import sys
import threading
from collections.abc import Iterator

from ..errors import Cancelled, InputError


@contextlib.contextmanager
def _sigterm_sets(event: threading.Event) -> Iterator[None]:
    """While inside, SIGTERM (``kill``, a batch scheduler's stop, a closing terminal's job
    control) sets ``event`` instead of killing the process, so the loop can checkpoint first.
    Background jobs started by a non-interactive shell ignore SIGINT, so Ctrl-C alone would not
    cover them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda _sig, _frame: event.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..registry import parse_name
    from ..train.loop import train
    from ..train.recipe import Recipe, load_recipe
    from ..train.ship import ship

    logging.getLogger("vidsr").setLevel(logging.INFO)
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be at least 1, got {args.threads}")
    if args.time_limit is not None and not (math.isfinite(args.time_limit)
                                            and args.time_limit >= 0):
        raise InputError(f"--time-limit must be a number of seconds >= 0, got {args.time_limit}")
    if args.ship_recipe and not args.ship:
        raise InputError("--ship-recipe goes with --ship WEIGHTS")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.ship:
        entry = ship(args.ship, args.ship_recipe)
        print(f"shipped {entry.name}: {entry.file} sha256 {entry.sha256} params {entry.params}")
        print(f"measure it: vidsr eval --model {entry.name} --data ../shared/data/Set5 "
              "--data ../shared/data/Set14 --record")
        return 0
    if args.resume:
        _resume_defaults(args)
    if not args.data or not args.out:
        raise InputError("vidsr train needs --data and --out (or --ship WEIGHTS, or --resume "
                         "CHECKPOINT)")
    recipe = None
    if args.resume and args.recipe:
        recipe = load_recipe(args.recipe)  # must extend the checkpoint's run (train() checks)
    elif not args.resume:
        recipe = load_recipe(args.recipe) if args.recipe else Recipe()
        if args.model:
            name = parse_name(args.model).name
            if recipe.model and parse_name(recipe.model).name != name:
                raise InputError(f"--model {name} disagrees with the recipe's {recipe.model}")
            recipe = recipe.replace(model=name)
        if not recipe.model:
            raise InputError("give --model or a recipe that names one")
    terminated = threading.Event()
    try:
        with _sigterm_sets(terminated):
            result = train(recipe, args.data, args.out, val_dirs=args.val or (),
                           resume=args.resume, steps=args.steps, cache_dir=args.cache,
                           time_limit=args.time_limit, device=args.device,
                           show_progress=not args.no_progress, cancel=terminated,
                           model=args.model if args.resume else None)
    except Cancelled as exc:
        print(f"vidsr: terminated: {exc}; resume with --resume {args.out}/last.ckpt",
              file=sys.stderr)
        return 128 + signal.SIGTERM
    best = "-" if result.best_psnr is None else f"{result.best_psnr:.3f} dB at step " \
                                                f"{result.best_step}"
    # the best weights are what to ship; the final ones only without them
    weights = ("weights", result.best) if result.best.is_file() else \
        ("final weights", result.out_dir / "final.safetensors")
    written = [f"{what} {path}" for what, path in (weights, ("checkpoint", result.out_dir /
                                                              "last.ckpt")) if path.is_file()]
    done = f"step {result.step}" if result.total in (None, result.step) else \
        f"step {result.step} of {result.total} (stopped by --time-limit; resume with --resume " \
        f"{result.out_dir / 'last.ckpt'})"
    print(f"{done}: best validation {best}; " + "; ".join(written or ["nothing written"]))
    return 0


def _resume_defaults(args: argparse.Namespace) -> None:
    """``--resume runs/X/last.ckpt`` alone: the run goes on in the checkpoint's folder, on the
    training data it names."""
    from pathlib import Path

    from ..train.loop import load_checkpoint

    if not args.out:
        args.out = str(Path(args.resume).parent)
    if not args.data:
        named = load_checkpoint(args.resume).get("data") or []
        gone = [d for d in named if not Path(d).exists()]
        if not named or gone:
            raise InputError(f"{args.resume} " + (f"was trained on {', '.join(gone)}, no "
                             "longer there" if gone else "does not name its training data")
                             + "; give --data")
        args.data = list(named)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (writes checkpoints and weights to --out)")
    p.add_argument("-m", "--model", help="model name or alias (or take it from --recipe)")
    p.add_argument("--data", nargs="+", action="extend",
                   help="folders of HR training images, or .npz plane caches written by train")
    p.add_argument("--out", help="output folder for checkpoints, weights and the log")
    p.add_argument("--recipe", help="recipe TOML file (defaults in code otherwise)")
    p.add_argument("--resume", help="continue from a last.ckpt, in its folder on its data "
                   "unless --out/--data say otherwise (its recipe is used; with --recipe, a "
                   "recipe that makes the same run longer: more steps, restarts, a loss "
                   "switch or distillation from a step not yet taken)")
    p.add_argument("--val", nargs="+", action="extend",
                   help="held-out folders validated every val_every steps (a resume without it "
                        "validates on the run's own)")
    p.add_argument("--steps", type=int, help="override the recipe's number of steps")
    p.add_argument("--cache", help="folder for the cached training planes (default: --out)")
    p.add_argument("--time-limit", type=float, help="stop (with a checkpoint) after N seconds")
    p.add_argument("--threads", type=int, help="CPU threads for torch")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--ship", metavar="WEIGHTS",
                   help="instead of training: copy WEIGHTS into the package and register it")
    p.add_argument("--ship-recipe", help="with --ship: recipe path to record")
    p.set_defaults(func=run)
