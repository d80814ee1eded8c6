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
from ..errors import InputError, UsageError
from ..paths import is_stdout, write_json
from . import check_json_output, split_list

log = logging.getLogger(__name__)

QUICK = {"models": DEFAULT_MODELS, "sizes": ("960x540",), "frames": 3, "e2e_frames": 6}

# The options each mode reads, beyond --models and --json; one given to a mode that does not
# read it is refused rather than ignored (`--kernels --batch 8` timed nothing differently).
MODE_OPTIONS: dict[str, tuple[str, ...]] = {
    "sr": ("sizes", "frames", "device", "threads", "compile", "onnx", "quick", "e2e_frames",
           "e2e_model", "e2e_size", "no_e2e", "codec", "preset", "crf"),
    "kernels": ("sizes", "device", "iters", "no_compile", "tuning"),
    "panes": ("sizes", "frames", "device"),
    "train": ("device", "threads", "batch", "patch", "steps"),
}
E2E_OPTIONS = ("e2e_model", "e2e_size", "codec", "preset", "crf")
MODE_FLAGS = {"sr": "", "kernels": "--kernels", "panes": "--panes", "train": "--train"}
TRAIN_DEFAULTS = {"batch": 16, "patch": 32, "steps": 10}


def _given(args: argparse.Namespace, dest: str) -> bool:
    value = getattr(args, dest)
    return value not in (None, False, [])


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _check_mode(args: argparse.Namespace) -> str:
    """The mode asked for, after refusing an option the mode would silently ignore."""
    mode = next((m for m in ("kernels", "panes", "train") if getattr(args, m)), "sr")
    every = {dest for dests in MODE_OPTIONS.values() for dest in dests}
    for dest in sorted(every - set(MODE_OPTIONS[mode])):
        if _given(args, dest):
            users = [MODE_FLAGS[m] or "the default SR run" for m, d in MODE_OPTIONS.items()
                     if dest in d]
            where = MODE_FLAGS[mode] or "the default SR run (without --kernels, --panes or "\
                "--train)"
            raise UsageError(f"{_flag(dest)} does not apply to {where}; it is read by "
                             f"{' and '.join(users)}")
    if mode == "sr" and args.no_e2e and args.e2e_frames is not None:
        raise UsageError("--no-e2e and --e2e-frames contradict each other (--e2e-frames 0 "
                         "also skips the job)")
    if mode == "sr" and (args.no_e2e or args.e2e_frames == 0):
        skip = "--no-e2e" if args.no_e2e else "--e2e-frames 0"
        for dest in E2E_OPTIONS:  # only the end-to-end job reads them
            if _given(args, dest):
                raise UsageError(f"{_flag(dest)} does not apply with {skip}: it sets the "
                                 "end-to-end job, which is skipped")
    if mode == "kernels":
        if len(args.sizes or ()) > 1:
            raise UsageError("--kernels times one --sizes size per run (the fused kernels' "
                             f"report is per size), got {len(args.sizes)}")
        if any(d != "cuda" for d in args.device):
            raise UsageError("--kernels runs on CUDA only (the fused kernels are Triton GPU "
                             "kernels); leave out --device cpu")
    for dest in ("batch", "patch", "steps", "iters"):
        value = getattr(args, dest)
        if value is not None and value < 1:
            raise InputError(f"{_flag(dest)} must be at least 1, got {value}")
    return mode


def _kernels(args: argparse.Namespace) -> int:
    try:
        kbench = importlib.import_module("vidsr.kernels.bench")
    except ImportError as exc:
        raise InputError(f"vidsr bench --kernels needs vidsr.kernels.bench: {exc}") from exc
    kargs = argparse.Namespace(models=args.models, json=args.json, iters=args.iters or 50,
                               size=(args.sizes or ["1920x1080"])[0],
                               no_compile=args.no_compile, compile_mode="max-autotune",
                               sweep=False, tuning=args.tuning)
    return int(kbench.run(kargs) or 0)


def _panes(args: argparse.Namespace) -> int:
    from ..engine.bench import parse_size
    from ..engine.core import pick_device
    from ..engine.panes import GUI_MODELS, format_panes, panes_bench

    sizes = [parse_size(s) for s in args.sizes or ["1280x720"]]  # every size before any work
    devices = [str(pick_device(d)) for d in args.device or ["auto"]]
    reports = []
    for device in devices:
        for size in sizes:
            report = panes_bench(tuple(args.models or GUI_MODELS), size, args.frames or 30,
                                 device)
            print(("\n" if reports else "") + format_panes(report), flush=True)
            reports.append(report)
    if args.json is not None:  # one report as an object (as before), several as a list
        write_json(args.json, reports[0] if len(reports) == 1 else reports)
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
            tuple(args.models or DEFAULT_TRAIN_MODELS), device,
            args.batch or TRAIN_DEFAULTS["batch"], args.patch or TRAIN_DEFAULTS["patch"],
            steps=args.steps or TRAIN_DEFAULTS["steps"],
            progress=lambda what: print(f"vidsr bench: timing {what}", file=sys.stderr,
                                        flush=True))
        print(format_train_bench(report))
        reports.append(report)
    if args.json is not None:
        write_json(args.json, reports)
    return 0


def run(args: argparse.Namespace) -> int:
    from ..api import is_weights_path, resolve_spec

    args.models, args.sizes = split_list(args.models), split_list(args.sizes)
    mode = _check_mode(args)
    kernel_only = {"chroma-bicubic-x2"} if mode == "kernels" else set()
    # a bad name fails before anything is timed; an alias is reported under the model it
    # names (esr-max-x2 -> esr-max-k7c4-x2), so reports from different releases compare
    if args.models:
        args.models = [m if m in kernel_only or is_weights_path(m) else resolve_spec(m).name
                       for m in args.models]
    if mode == "sr" and args.e2e_model is not None and not is_weights_path(args.e2e_model):
        args.e2e_model = resolve_spec(args.e2e_model).name
    check_json_output(args.json, avoid=[m for m in args.models or () if is_weights_path(m)])
    if args.frames is not None and args.frames < 1:
        raise InputError("--frames must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads must be at least 1")
    if mode == "kernels":
        return _kernels(args)
    if mode == "panes":
        return _panes(args)
    if mode == "train":
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
        **{k: getattr(args, k) for k in ("e2e_model", "e2e_size", "codec", "preset", "crf")
           if getattr(args, k) is not None},
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
                       description=__doc__.replace("``", "'"))
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
                   help="CPU threads for every column: eager's intra-op threads, "
                        "onnxruntime's, and the fast path's bands (default: torch's choice, "
                        "one band per core)")
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
    p.add_argument("--e2e-model", default=None,
                   help="model for the end-to-end job (default ecbsr-m4c16-x2)")
    p.add_argument("--e2e-size", default=None, metavar="WxH",
                   help="source size of the end-to-end job (default 1920x1080, x2 -> 4K)")
    p.add_argument("--no-e2e", action="store_true", help="skip the end-to-end job")
    p.add_argument("--codec", default=None,
                   help="encoder for the end-to-end job (default libx264)")
    p.add_argument("--preset", default=None, help="encoder preset (default ultrafast)")
    p.add_argument("--crf", type=float, default=None, help="encoder CRF (default 18)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="write the JSON report here (- for stdout alone, the table then "
                        "on stderr; default: print it after the table)")
    modes = p.add_mutually_exclusive_group()
    modes.add_argument("--panes", action="store_true",
                   help="the GUI's work without Qt: --models (default bicubic, eSR-MAX, eSR-TM, "
                        "ECBSR x2) on the same --sizes frame (default 1280x720), plus RGB "
                        "conversion; per-pane ms and the display rate")
    modes.add_argument("--kernels", action="store_true",
                   help="time the fused GPU kernels instead (vidsr.kernels.bench)")
    modes.add_argument("--train", action="store_true",
                   help="time one ECBSR training step (forward, L1, backward, Adam), branch by "
                        "branch vs merged online, for --models (default the shipped ECBSRs)")
    p.add_argument("--batch", type=int, default=None,
                   help="--train: patches per step (default 16)")
    p.add_argument("--patch", type=int, default=None,
                   help="--train: LR patch side (default 32; HR is patch x scale)")
    p.add_argument("--steps", type=int, default=None,
                   help="--train: steps per timing round (default 10)")
    p.add_argument("--iters", type=int, default=None,
                   help="--kernels: calls per timing repeat (default 50)")
    p.add_argument("--no-compile", action="store_true",
                   help="--kernels: skip the torch.compile column")
    p.add_argument("--tuning", default=None, metavar="JSON|FILE",
                   help="--kernels: fused-kernel settings per model instead of the defaults "
                        "(JSON object of model name -> keywords, or a file holding one)")
    p.set_defaults(func=run)
