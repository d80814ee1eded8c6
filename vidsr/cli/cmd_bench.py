"""``vidsr bench``: SR speed per model and size (fast path next to eager), peak memory, and the
end-to-end 1080p -> 4K throughput next to the encoder alone. ``--kernels`` times the fused GPU
kernels instead (``vidsr.kernels.bench``); ``--train`` times an ECBSR training step in its two
arithmetic forms (``vidsr.train.bench``)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

from ..engine.bench_defaults import DEFAULT_MODELS, DEFAULT_SIZES
from ..errors import InputError
from ..paths import is_stdout, write_json
from . import check_json_output, split_list

log = logging.getLogger(__name__)

QUICK = {"models": DEFAULT_MODELS, "sizes": ("960x540",), "frames": 3, "e2e_frames": 6}


def _kernels(args: argparse.Namespace) -> int:
    try:
        kbench = importlib.import_module("vidsr.kernels.bench")
    except ImportError as exc:
        raise InputError(f"vidsr bench --kernels needs vidsr.kernels.bench: {exc}") from exc
    kargs = argparse.Namespace(models=args.models, json=args.json, iters=args.iters,
                               size=(args.sizes or ["1920x1080"])[0],
                               no_compile=args.no_compile, compile_mode="max-autotune",
                               sweep=False, tuning=args.tuning)
    return int(kbench.run(kargs) or 0)


def _panes(args: argparse.Namespace) -> int:
    from ..engine.bench import parse_size
    from ..engine.panes import GUI_MODELS, format_panes, panes_bench

    size = parse_size((args.sizes or ["1280x720"])[0])
    report = panes_bench(tuple(args.models or GUI_MODELS), size, args.frames or 30,
                         (args.device or ["auto"])[0])
    print(format_panes(report))
    if args.json is not None:
        write_json(args.json, report)
    return 0


def _train(args: argparse.Namespace) -> int:
    import torch

    from ..engine.core import pick_device
    from ..train.bench import DEFAULT_TRAIN_MODELS, format_train_bench, train_step_bench

    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [pick_device(d) for d in (args.device or ["cpu"])]
    reports = []
    for device in devices:
        report = train_step_bench(
            tuple(args.models or DEFAULT_TRAIN_MODELS), device, args.batch, args.patch,
            steps=args.steps, progress=lambda what: print(f"vidsr bench: timing {what}",
                                                          file=sys.stderr, flush=True))
        print(format_train_bench(report))
        reports.append(report)
    if args.json is not None:
        write_json(args.json, reports)
    return 0


def run(args: argparse.Namespace) -> int:
    from ..api import is_weights_path, resolve_spec

    args.models, args.sizes = split_list(args.models), split_list(args.sizes)
    for model in args.models or ():  # a bad name fails before anything is timed
        resolve_spec(model)
    check_json_output(args.json, avoid=[m for m in args.models or () if is_weights_path(m)])
    if args.frames is not None and args.frames < 1:
        raise InputError("--frames must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads must be at least 1")
    if args.kernels:
        return _kernels(args)
    if args.panes:
        return _panes(args)
    if args.train:
        return _train(args)
    from ..engine.bench import BenchConfig, format_report
    from ..engine.bench import run as run_bench

    if args.e2e_frames is not None and args.e2e_frames < 0:  # also beside --no-e2e
        raise InputError(f"--e2e-frames must be >= 0 (0 skips the job), got {args.e2e_frames}")
    base = QUICK if args.quick else {}
    config = BenchConfig(
        models=tuple(args.models or base.get("models", DEFAULT_MODELS)),
        sizes=tuple(args.sizes or base.get("sizes", DEFAULT_SIZES)),
        frames=args.frames or base.get("frames", 5),
        devices=tuple(args.device),
        threads=args.threads, compile=args.compile, onnx=args.onnx,
        e2e_frames=0 if args.no_e2e else (args.e2e_frames if args.e2e_frames is not None
                                          else base.get("e2e_frames", 30)),
        e2e_model=args.e2e_model, e2e_size=args.e2e_size,
        codec=args.codec, preset=args.preset, crf=args.crf,
    )
    if config.onnx:
        from ..export import INSTALL_HINT, missing

        absent = missing("onnx", "onnxscript", "onnxruntime")
        if absent:
            raise InputError(f"--onnx needs {' and '.join(absent)}: {INSTALL_HINT}")

    def progress(what: str) -> None:
        print(f"vidsr bench: timing {what}", file=sys.stderr, flush=True)

    report = run_bench(config, progress=progress)
    print(format_report(report))
    if args.json is not None:
        write_json(args.json, report)
        if not is_stdout(args.json):
            print(f"\nJSON written to {args.json}")
    else:
        print("\n" + json.dumps(report, indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure SR speed, memory and end-to-end throughput",
                       description=__doc__)
    p.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help=f"models to time, space- or comma-separated (default: "
                   f"{' '.join(DEFAULT_MODELS)})")
    p.add_argument("--sizes", nargs="+", default=None, metavar="WxH",
                   help=f"luma input sizes, x2, space- or comma-separated (default: "
                   f"{' '.join(DEFAULT_SIZES)})")
    p.add_argument("--frames", type=int, default=None,
                   help="timed frames per measurement (default 5; --quick 3)")
    p.add_argument("--device", nargs="+", default=[], choices=["cpu", "cuda"],
                   help="devices to measure (default: cpu, and cuda when present)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--compile", action="store_true",
                   help="CPU: also time the engine after its background torch.compile settles "
                        "(compiling takes tens of seconds per model and size)")
    p.add_argument("--onnx", action="store_true",
                   help="CPU: also time each model exported to ONNX (uint8 in and out, as "
                        "'vidsr export --io uint8') in onnxruntime, with torch's thread count")
    p.add_argument("--quick", action="store_true",
                   help="a short run: 960x540 only, 3 frames, a 6-frame end-to-end job")
    p.add_argument("--e2e-frames", type=int, default=None,
                   help="frames in the end-to-end job (default 30; --quick 6)")
    p.add_argument("--e2e-model", default="ecbsr-m4c16-x2",
                   help="model for the end-to-end job (default ecbsr-m4c16-x2)")
    p.add_argument("--e2e-size", default="1920x1080", metavar="WxH",
                   help="source size of the end-to-end job (default 1920x1080, x2 -> 4K)")
    p.add_argument("--no-e2e", action="store_true", help="skip the end-to-end job")
    p.add_argument("--codec", default="libx264", help="encoder for the end-to-end job")
    p.add_argument("--preset", default="ultrafast", help="encoder preset (default ultrafast)")
    p.add_argument("--crf", type=float, default=18.0, help="encoder CRF (default 18)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="write the JSON report here (- for stdout alone, the table then "
                        "on stderr; default: print it after the table)")
    p.add_argument("--panes", action="store_true",
                   help="the GUI's work without Qt: --models (default bicubic, eSR-MAX, eSR-TM, "
                        "ECBSR x2) on the same --sizes frame (default 1280x720), plus RGB "
                        "conversion; per-pane ms and the display rate")
    p.add_argument("--kernels", action="store_true",
                   help="time the fused GPU kernels instead (vidsr.kernels.bench)")
    p.add_argument("--train", action="store_true",
                   help="time one ECBSR training step (forward, L1, backward, Adam), branch by "
                        "branch vs merged online, for --models (default the shipped ECBSRs)")
    p.add_argument("--batch", type=int, default=16, help="--train: patches per step (default 16)")
    p.add_argument("--patch", type=int, default=32,
                   help="--train: LR patch side (default 32; HR is patch x scale)")
    p.add_argument("--steps", type=int, default=10, help="--train: steps per timing round")
    p.add_argument("--iters", type=int, default=50, help="--kernels: calls per timing repeat")
    p.add_argument("--no-compile", action="store_true",
                   help="--kernels: skip the torch.compile column")
    p.add_argument("--tuning", default=None, metavar="JSON|FILE",
                   help="--kernels: fused-kernel settings per model instead of the defaults "
                        "(JSON object of model name -> keywords, or a file holding one)")
    p.set_defaults(func=run)
