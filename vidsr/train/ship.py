"""Ship a trained weights file: copy it into the package and add its manifest entry.

The entry gets the file's sha256, the deploy form's parameter count and the recipe path, but no
metrics: those only ever come from ``vidsr eval --model NAME --data ... --record``.

Usage: ``python -m vidsr.train.ship WEIGHTS [--recipe recipes/NAME.toml]`` (or
``vidsr train --ship WEIGHTS``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from pathlib import Path

from .. import weights as weights_mod
from ..errors import OutputError
from ..registry import count_params
from ..weights import (
    ShippedWeights,
    load_into,
    manifest,
    read_weights,
    remove_quietly,
    sha256_file,
    stage_manifest,
)

log = logging.getLogger(__name__)


def ship(weights: str | Path, recipe: str | None = None) -> ShippedWeights:
    """Copy ``weights`` to ``vidsr/weights/<canonical name>.safetensors`` and register it.

    Any earlier entry for the model is replaced, its metrics dropped: run
    ``vidsr eval --record`` afterwards to measure the new file.
    """
    spec, tensors, meta = read_weights(weights)
    module = spec.build()
    load_into(module, tensors, str(weights))
    recipe = recipe if recipe is not None else f"recipes/{spec.name}.toml"
    _check_recipe(recipe, meta)
    dest = weights_mod.WEIGHTS_DIR / f"{spec.name}.safetensors"
    same = Path(weights).resolve() == dest.resolve()
    # Both files are written beside their places first and only then renamed in: a copy over
    # the shipped file followed by a manifest that could not be written left the model
    # failing its sha256 check ("reinstall vidsr") and a traceback.
    incoming = dest.with_name(dest.name + ".tmp")
    kept = dest.with_name(dest.name + ".old")
    staged = None
    try:
        try:
            if not same:
                shutil.copyfile(weights, incoming)
            entry = ShippedWeights(name=spec.name, file=dest.name,
                                   sha256=sha256_file(dest if same else incoming),
                                   params=count_params(module), recipe=recipe)
            entries = manifest()
            entries[spec.name] = entry
            staged = stage_manifest(entries)
            if not same:
                had = dest.exists()
                if had:
                    os.replace(dest, kept)
                os.replace(incoming, dest)
                try:
                    os.replace(staged, weights_mod.MANIFEST)
                except OSError:
                    if had:
                        os.replace(kept, dest)   # the shipped file goes back with its entry
                    raise
            else:
                os.replace(staged, weights_mod.MANIFEST)
        except OSError as exc:
            raise OutputError(f"cannot ship {spec.name} into {weights_mod.WEIGHTS_DIR}: "
                              f"{exc.strerror or exc}") from None
    finally:
        for leftover in (incoming, kept, staged):
            if leftover is not None:
                remove_quietly(leftover)
    log.info("shipped %s as %s (sha256 %s...)", spec.name, dest, entry.sha256[:12])
    return entry


# fields a recipe file spells otherwise than the run wrote them (paths, the pins it filled in)
_SPELLED = {"init_weights", "init_sha256", "teacher", "teacher_sha256"}


def _check_recipe(path: str, meta: dict[str, str]) -> None:
    """Warn when the recipe the registry will name is not there, or is not the recipe the
    weights were trained with: the registry said ``recipes/<name>.toml`` for a file trained
    from any other recipe, or for a model that has none."""
    import json

    from ..errors import VidsrError
    from .recipe import load_recipe

    found = Path(path) if Path(path).is_file() else weights_mod.WEIGHTS_DIR.parents[1] / path
    if not found.is_file():
        log.warning("the registry will name the recipe %s, which does not exist; give the "
                    "run's recipe with --ship-recipe", path)
        return
    try:
        theirs = load_recipe(found).as_dict()
        ran = json.loads(meta.get("recipe", "{}"))
    except (VidsrError, ValueError):
        return
    differ = sorted(k for k in ran if k not in _SPELLED and k in theirs and ran[k] != theirs[k])
    if differ:
        log.warning("%s is not the recipe these weights were trained with: %s; give the run's "
                    "recipe with --ship-recipe", path, ", ".join(
                        f"{k} {theirs[k]!r} there, {ran[k]!r} in the run" for k in differ[:4])
                    + (f" and {len(differ) - 4} more" if len(differ) > 4 else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vidsr.train.ship", description=__doc__)
    parser.add_argument("weights", help="a weights file written by 'vidsr train'")
    parser.add_argument("--recipe", help="recipe path to record (default recipes/<name>.toml)")
    args = parser.parse_args(argv)
    entry = ship(args.weights, args.recipe)
    print(f"shipped {entry.name}: {entry.file} sha256 {entry.sha256} params {entry.params}; "
          f"now run: vidsr eval --model {entry.name} --data ../shared/data/Set5 "
          "--data ../shared/data/Set14 --record")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
