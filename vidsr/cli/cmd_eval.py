"""``vidsr eval --model NAME --data DIR``: the standard SR evaluation."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import InputError
from ..paths import write_json
from . import check_json_output, check_trained

if TYPE_CHECKING:
    from torch import nn

    from ..evaluation import EvalReport


def run(args: argparse.Namespace) -> int:
    from ..api import is_weights_path, load_model
    from ..evaluation import evaluate, image_files, load_pairs
    from ..models import SelfEnsemble

    # Load every model first: a bad name fails before any evaluation runs or anything is recorded.
    if args.record and args.self_ensemble:
        raise InputError("--record stores the shipped model's own numbers; drop --self-ensemble")
    if args.record and args.round_lr:
        raise InputError("--record stores the protocol's numbers; drop --round-lr")
    for name in args.model:
        if args.record:
            _recordable(name)
        check_trained(name)
    images = [f for data in args.data for f in image_files(data)]  # a bad folder fails here
    check_json_output(args.json, avoid=[m for m in args.model if is_weights_path(m)] + images)
    models = [load_model(name, pretrained=True if args.record else None) for name in args.model]
    if args.self_ensemble:
        models = [SelfEnsemble(m) for m in models]
    reports = []
    pairs: dict[tuple[str, int], list] = {}  # each folder read and degraded once per scale
    for name, model in zip(args.model, models, strict=True):
        own = []
        for data in args.data:
            scale = model.spec.scale
            if (data, scale) not in pairs:
                pairs[data, scale] = load_pairs(data, scale)
            report = evaluate(model, data, pairs=pairs[data, scale], round_lr=args.round_lr,
                              progress=_progress(name, data))
            if is_weights_path(name):  # a weights file: say which
                report.model += f" ({name})"
            if args.self_ensemble:
                report.model += " (self-ensemble)"
            if args.round_lr:
                report.model += " (8-bit LR)"
            own.append(report)
            print(f"{report.model} on {report.dataset} (x{report.scale}):")
            for image, p, s in report.images:
                print(f"  {image:<16} PSNR {p:7.3f} dB  SSIM {s:.4f}")
            print(f"  {'mean':<16} PSNR {report.psnr:7.3f} dB  SSIM {report.ssim:.4f}")
        reports += own
        if args.record:
            _record(name, model, own, args.data)
    if len(models) > 1:
        print("summary (mean PSNR dB / SSIM):")
        width = max(len(r.model) for r in reports)
        for r in reports:
            print(f"  {r.model:<{width}} {r.dataset:<12} {r.psnr:7.3f}  {r.ssim:.4f}")
    if args.json:  # a list of reports, one per model and folder, however many there are
        write_json(args.json, [r.as_dict() for r in reports], allow_nan=False)
    return 0


def _recordable(name: str) -> None:
    """Refuse ``--record`` for anything but a registry model with shipped weights."""
    from ..api import is_weights_path, resolve_spec
    from ..weights import manifest

    if is_weights_path(name):
        raise InputError(f"--record stores a shipped model's own numbers; {name} is a weights "
                         "file (ship it first: vidsr train --ship)")
    spec = resolve_spec(name)
    if not spec.trainable:
        raise InputError(f"--record: {spec.name} has no weights to record numbers for")
    if spec.name not in manifest():
        raise InputError(f"--record: {spec.name} has no shipped weights to record numbers for")


def _progress(name: str, data: str) -> Callable[[int, int, str], None] | None:
    """A progress bar on stderr for one model on one folder, when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    from ..evaluation import dataset_name

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int, image: str) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=f"{name} on {dataset_name(data)}",
                              unit="image", leave=False)
        bar["bar"].update(1)
        if done == total:
            bar["bar"].close()

    return update


def _record(name: str, model: nn.Module, reports: list[EvalReport], data: list[str]) -> None:
    """Store ``reports`` as the registry metrics of ``model``, with the command that made them."""
    from ..weights import manifest, write_manifest

    entries = manifest()
    entry = entries[model.spec.name]
    metrics = dict(entry.metrics)
    for r in reports:
        metrics[r.dataset] = {"psnr": round(r.psnr, 3), "ssim": round(r.ssim, 4)}
    argv = ["vidsr", "eval", "--model", name]
    for d in data:
        argv += ["--data", d]
    entries[model.spec.name] = type(entry)(**{**entry.__dict__, "metrics": metrics,
                                              "command": shlex.join(argv)})
    write_manifest(entries)
    print(f"recorded in the registry for {model.spec.name}", file=sys.stderr)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="PSNR/SSIM on an image folder under the standard protocol")
    p.add_argument("-m", "--model", required=True, action="append",
                   help="model name, alias or weights file (repeat to compare several)")
    p.add_argument("--data", required=True, action="append",
                   help="folder of HR images (repeat for several sets)")
    p.add_argument("--json", help="also write the results as JSON to this file (- for stdout, "
                   "the table then on stderr)")
    p.add_argument("--self-ensemble", action="store_true",
                   help="average each model over the 8 flips and 90-degree rotations of the "
                        "input (8x the time; what a teacher_ensemble recipe distils from)")
    p.add_argument("--round-lr", action="store_true",
                   help="round the LR luma to whole grey levels first, as an 8-bit video frame "
                        "holds it (the protocol keeps the fraction BT.601 Y gives)")
    p.add_argument("--record", action="store_true",
                   help="store the measured metrics in the shipped-weights registry")
    p.set_defaults(func=run)
