"""``vidsr bench --kernels``: fused kernels against fp16 channels-last eager and torch.compile.

Per model, one 1920x1080 uint8 luma frame -> x2 uint8 (conversion and quantisation included in
every column), plus both 960x540 chroma planes of a 1080p frame through the bicubic upscale.
Times are per frame, from CUDA events, the best of a few repeats of ``iters`` calls; ratios are
baseline time / fused time from the same run. Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ..errors import VidsrError
from ..paths import is_stdout, write_json
from ..sizes import parse_size

log = logging.getLogger(__name__)

MODELS = ("ecbsr-m4c16-x2", "ecbsr-m4c8-x2", "esr-tm-k7c16-x2", "esr-tr-k7c16-x2",
          "esr-max-k7c4-x2")
CHROMA = "chroma-bicubic-x2"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``run`` reads (``vidsr bench`` may add them to its own parser)."""
    parser.add_argument("--models", nargs="+", default=None,
                        help=f"models to time (default: {' '.join(MODELS)} {CHROMA})")
    parser.add_argument("--iters", type=int, default=50, help="calls per timing repeat")
    parser.add_argument("--size", default="1920x1080", help="luma input WxH (default 1920x1080)")
    parser.add_argument("--no-compile", action="store_true",
                        help="skip the torch.compile column (its autotuning takes minutes)")
    parser.add_argument("--compile-mode", default="max-autotune", help="torch.compile mode")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--sweep", action="store_true",
                        help="instead: time the fused kernels over a grid of tile settings")
    parser.add_argument("--tuning", default=None, metavar="JSON|FILE",
                        help="kernel settings per model instead of the defaults, as a JSON "
                        "object (or a file holding one) of model name -> fused_for keywords, "
                        'e.g. \'{"ecbsr-m4c16-x2": {"num_warps": 4, "per_sm": 2}}\'')


def _time_ms(fn: Callable[[], object], iters: int, repeats: int = 3) -> float:
    """Milliseconds per call: best over ``repeats`` of the mean of ``iters`` back-to-back calls."""
    from .autotune import time_ms

    return time_ms(fn, iters, repeats=repeats, warmup=3)


def _torch_path(module: torch.nn.Module, top: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """uint8 ``N x H x W`` -> fp16 channels-last model -> rounded, clipped uint8."""
    module = module.half().to(memory_format=torch.channels_last)

    def forward(x: torch.Tensor) -> torch.Tensor:
        inp = (x.to(torch.float16) / top).unsqueeze(1).contiguous(memory_format=torch.channels_last)
        y = module(inp)[:, 0]
        return (y * top + 0.5).floor().clamp(0, top).to(torch.uint8)

    return forward


def _device() -> torch.device:
    return torch.device("cuda")


# the keywords each fused kernel's wrapper takes (FusedPlainSR, FusedEdgeSR; a test holds these
# to their signatures), named here so that a bad --tuning is refused before any timing and
# without importing Triton
TUNING_KEYWORDS = {
    "ecbsr": ("dtype", "tile_h", "tile_w", "rows", "num_warps", "per_sm", "num_stages", "unroll",
              "cache", "variant"),
    "edgesr": ("dtype", "block_h", "block_w", "num_warps"),
}
_KERNEL_OF = {"ecbsr": "ecbsr", "esr-max": "edgesr", "esr-tm": "edgesr", "esr-tr": "edgesr"}


def load_tuning(text: str | None) -> dict[str, dict]:
    """``--tuning``: model name -> ``fused_for`` keywords, from JSON text or a JSON file."""
    if not text:
        return {}
    path = Path(text)
    try:
        data = json.loads(path.read_text() if path.is_file() else text)
    except (OSError, json.JSONDecodeError) as exc:
        raise VidsrError(f"--tuning: not a JSON object or a file holding one: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise VidsrError("--tuning: expected an object of model name -> {keyword: value}")
    from ..registry import ModelNotFoundError, parse_name

    tunings: dict[str, dict] = {}
    for key, value in data.items():  # keyed as the rows are: an alias names its model
        if key == CHROMA:
            raise VidsrError(f"--tuning: {CHROMA} takes no tuning (it has one kernel setting)")
        try:
            spec = parse_name(key)
        except ModelNotFoundError as exc:
            raise VidsrError(f"--tuning: {exc}") from None
        name = spec.name
        kernel = _KERNEL_OF.get(spec.family)
        if kernel is None:
            raise VidsrError(f"--tuning: no fused kernel runs {name}, so it takes no tuning")
        unknown = sorted(set(value) - set(TUNING_KEYWORDS[kernel]))
        if unknown:  # a TypeError out of the kernel's constructor, after other models' timing
            raise VidsrError(f"--tuning: {name}'s kernel takes {', '.join(TUNING_KEYWORDS[kernel])}"
                             f"; not {', '.join(unknown)}")
        if name in tunings:
            raise VidsrError(f"--tuning: {key!r} names {name}, which is tuned twice")
        tunings[name] = value
    return tunings


def _bench_one(name: str, h: int, w: int, args: argparse.Namespace,
               tunings: dict[str, dict]) -> dict:
    from .. import load_model
    from ..imresize import BicubicUpsample, phase_kernels
    from ..registry import macs_per_pixel
    from . import chroma_upscale, fused_for
    from .graphs import GraphedCall

    dev = _device()
    gen = torch.Generator(device=dev).manual_seed(0)
    row: dict = {"model": name}
    tuning: dict = {}
    if name == CHROMA:
        x = torch.randint(0, 256, (2, h // 2, w // 2), device=dev, dtype=torch.uint8,
                          generator=gen)
        taps = phase_kernels(2)
        out = torch.empty(2, h, w, dtype=torch.uint8, device=dev)
        fused = lambda: chroma_upscale(x, 2, taps, taps, out=out)  # noqa: E731
        module, fn, macs = BicubicUpsample(2).to(dev), None, None
        row["input"] = f"2 x {w // 2}x{h // 2} uint8"
    else:
        model = load_model(name, device=dev, pretrained=False)
        tuning = tunings.get(name, {})
        fn = fused_for(model, **tuning)
        if tuning:
            row["tuning"] = tuning
        if fn is None:
            raise VidsrError(f"no fused kernel for {name} (see the log line above)")
        x = torch.randint(0, 256, (1, h, w), device=dev, dtype=torch.uint8, generator=gen)
        s = model.spec.scale
        out = torch.empty(1, h * s, w * s, dtype=torch.uint8, device=dev)
        fused = lambda: fn(x, out=out)  # noqa: E731
        module, macs = model, macs_per_pixel(model.float().cpu(), s)
        module.to(dev)
        row["input"] = f"{w}x{h} uint8"
    row["fused_ms"] = _time_ms(fused, args.iters)
    if fn is not None and name.startswith("ecbsr") and not tuning:
        from .autotune import AutoTuned

        auto = fused_for(model, autotune=True)
        if isinstance(auto, AutoTuned):  # what the engine runs: the fastest setting here
            auto(x, out=out)  # times the candidates (or reads the cached choice)
            row["fused_auto_ms"] = _time_ms(lambda: auto(x, out=out), args.iters)
            row["auto_settings"] = next(iter(auto.chosen.values()))
    if fn is not None:
        x4 = x.expand(4, h, w).contiguous()
        out4 = torch.empty(4, *out.shape[1:], dtype=torch.uint8, device=dev)
        row["fused_batch4_ms"] = _time_ms(lambda: fn(x4, out=out4), args.iters) / 4
        graphed = GraphedCall(fn, reuse_output=True)
        try:
            row["fused_graph_ms"] = _time_ms(lambda: graphed(x), args.iters)
        except Exception as exc:  # noqa: BLE001 (reported in the row, the bench goes on)
            row["fused_graph_error"] = repr(exc)
        row["tflops"] = 2 * macs * h * w / (row["fused_ms"] * 1e-3) / 1e12
        row["gflop_per_frame"] = 2 * macs * h * w / 1e9
    reference = fused()
    eager = _torch_path(module, 255.0)
    with torch.no_grad():
        row["eager_fp16_cl_ms"] = _time_ms(lambda: eager(x), args.iters)
        row["max_abs_diff_vs_fp16_eager"] = int(
            (eager(x).int() - reference.int()).abs().max().item())
        if not args.no_compile:
            t0 = time.perf_counter()
            try:
                compiled = torch.compile(eager, mode=args.compile_mode)
                compiled(x)
                row["compile_s"] = time.perf_counter() - t0
                row["compile_ms"] = _time_ms(lambda: compiled(x), args.iters)
            except Exception as exc:  # noqa: BLE001 (reported in the row, the bench goes on)
                row["compile_error"] = repr(exc)
    best_fused = min(v for k, v in row.items() if k.startswith("fused_") and k.endswith("_ms"))
    row["eager_over_fused"] = row["eager_fp16_cl_ms"] / row["fused_ms"]
    if "compile_ms" in row:
        row["compile_over_fused"] = row["compile_ms"] / row["fused_ms"]
        row["compile_over_best_fused"] = row["compile_ms"] / best_fused
    return row


# Tile settings the sweep tries, per kernel wrapper (keyword arguments of fused_for).
SWEEP = {
    # ECBSR: tile geometry x warps x programs per SM, then, on the best geometries, Triton's
    # pipelining depth, unrolled taps and the cache modifier of the scratch reads.
    "ecbsr": [dict(tile_h=th, tile_w=tw, rows=r, num_warps=nw, per_sm=ps)
              for th, tw, r, nw, ps in [
                  (32, 64, 4, 4, 2), (32, 64, 4, 4, 3), (16, 64, 4, 4, 4), (32, 64, 2, 4, 3),
                  (16, 64, 2, 2, 6), (16, 64, 2, 2, 8), (32, 64, 4, 8, 1), (32, 128, 2, 4, 2)]]
    + [dict(tile_h=th, tile_w=64, rows=r, num_warps=nw, per_sm=ps, **extra)
       for th, r, nw, ps in [(32, 4, 4, 2), (32, 2, 4, 3), (16, 2, 2, 6), (16, 4, 4, 4)]
       for extra in [dict(num_stages=1), dict(num_stages=1, cache=".ca"), dict(num_stages=2),
                     dict(unroll=True), dict(unroll=True, num_stages=1, cache=".ca"),
                     dict(cache=".ca")]]
    # the line-buffer kernel (variant="stream"): no rows; taller tiles cost it no recompute
    + [dict(variant="stream", tile_h=th, tile_w=tw, num_warps=nw, per_sm=ps, **extra)
       for th, tw, nw, ps, extra in [
           (32, 64, 4, 2, {}), (32, 64, 4, 4, {}), (64, 64, 4, 2, {}), (16, 64, 4, 4, {}),
           (32, 128, 4, 2, {}), (32, 128, 8, 1, {}), (32, 64, 2, 6, {}),
           (32, 64, 4, 4, dict(cache=".ca")), (32, 64, 4, 4, dict(num_stages=2))]]
    # the wavefront kernel (variant="wave"): three-row rings, so tall and wide tiles are cheap
    + [dict(variant="wave", tile_h=th, tile_w=tw, num_warps=nw, per_sm=ps)
       for th, tw, nw, ps in [(32, 128, 4, 2), (64, 128, 4, 2), (128, 128, 4, 2),
                              (64, 128, 8, 1), (64, 128, 4, 3)]],
    "esr": [dict(block_h=bh, block_w=bw, num_warps=nw)
            for bh, bw, nw in [(4, 32, 4), (2, 32, 4), (8, 32, 4), (8, 32, 8), (4, 64, 4),
                               (4, 64, 8), (2, 64, 4), (16, 16, 8), (1, 64, 4), (8, 64, 8)]],
}


def sweep(args: argparse.Namespace, write: Callable[[str], object]) -> list[dict]:
    """Time each model's fused kernel over ``SWEEP``'s tile settings; fastest first per model."""
    from .. import load_model
    from . import fused_for

    w, h = parse_size(args.size)
    dev = _device()
    x = torch.randint(0, 256, (1, h, w), device=dev, dtype=torch.uint8)
    results = []
    for name in args.models or MODELS:
        model = load_model(name, device=dev, pretrained=False)
        out = torch.empty(1, h * model.spec.scale, w * model.spec.scale, dtype=torch.uint8,
                          device=dev)
        ref = fused_for(model)(x)
        rows = []
        for tuning in SWEEP["ecbsr" if name.startswith("ecbsr") else "esr"]:
            fn = fused_for(model, **tuning)
            try:  # a setting may not compile on this GPU (registers, shared memory)
                diff = int((fn(x, out=out).int() - ref.int()).abs().max().item())
                ms = _time_ms(lambda fn=fn, out=out: fn(x, out=out), args.iters)
            except Exception as exc:  # noqa: BLE001 (reported in the row, the sweep goes on)
                rows.append({"model": name, **tuning, "ms": float("inf"), "error": repr(exc)})
                continue
            rows.append({"model": name, **tuning, "ms": ms, "max_abs_diff_vs_default": diff})
        rows.sort(key=lambda r: r["ms"])
        for r in rows:
            write(json.dumps(r) + "\n")
        results += rows
    return results


def _table(rows: list[dict]) -> str:
    cols = [("model", "model", "{}"), ("fused_ms", "fused ms", "{:.3f}"),
            ("fused_auto_ms", "autotuned ms", "{:.3f}"),
            ("fused_batch4_ms", "fused b4 ms/f", "{:.3f}"),
            ("fused_graph_ms", "fused graph ms", "{:.3f}"),
            ("eager_fp16_cl_ms", "fp16 CL eager ms", "{:.3f}"),
            ("compile_ms", "compile ms", "{:.3f}"),
            ("eager_over_fused", "eager/fused", "{:.2f}x"),
            ("compile_over_fused", "compile/fused", "{:.2f}x"), ("tflops", "TFLOP/s", "{:.1f}"),
            ("max_abs_diff_vs_fp16_eager", "max|d|", "{}")]
    cells = [[head for _k, head, _f in cols]]
    for r in rows:
        cells.append([fmt.format(r[k]) if k in r else "-" for k, _h, fmt in cols])
    widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    lines = ["  ".join(c[i].rjust(widths[i]) if i else c[i].ljust(widths[i])
                       for i in range(len(cols))) for c in cells]
    lines.insert(1, "  ".join("-" * wd for wd in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace, write: Callable[[str], object] | None = None) -> int:
    """Time every model; print the table and the JSON. Needs CUDA and Triton."""
    from . import unavailable_reason

    if write is None:  # sys.stdout as it is now (--json - points it at stderr)
        def write(text: str) -> object:
            return sys.stdout.write(text)

    if not torch.cuda.is_available():
        raise VidsrError("vidsr bench --kernels needs a CUDA GPU (the fused kernels are "
                         "Triton GPU kernels; on CPU they only run under the test interpreter)")
    reason = unavailable_reason()
    if reason is not None:
        raise VidsrError(f"vidsr bench --kernels cannot run: {reason}")
    for key, default in (("models", None), ("iters", 50), ("size", "1920x1080"),
                         ("no_compile", False), ("compile_mode", "max-autotune"), ("json", None),
                         ("tuning", None)):
        if not hasattr(args, key):
            setattr(args, key, default)
    if getattr(args, "sweep", False):
        results = sweep(args, write)
        if args.json is not None:
            write_json(args.json, results)
        return 0
    w, h = parse_size(args.size)
    names = args.models or [*MODELS, CHROMA]
    tunings = load_tuning(args.tuning)  # before any timing: a bad --tuning fails at once
    import triton

    rows: list[dict] = []
    report = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
              "triton": triton.__version__, "luma": f"{w}x{h} -> x2, uint8 in and out",
              "unit": "ms per frame (batch4: per frame of a 4-frame launch)", "rows": rows}
    for name in names:
        log.info("timing %s", name)
        rows.append(_bench_one(name, h, w, args, tunings))
        write(f"{name}: {json.dumps(rows[-1])}\n")
        if args.json is not None and not is_stdout(args.json):
            # after every model, so a run cut short still leaves data
            write_json(args.json, report)
    write(f"\nvidsr bench --kernels on {report['device']} (torch {torch.__version__}, "
          f"triton {triton.__version__}), {report['luma']}\n")
    write(_table(rows) + "\n\n")
    if not is_stdout(args.json):  # "-" prints it once, below
        write(json.dumps(report, indent=2) + "\n")
    if args.json is not None:
        write_json(args.json, report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vidsr.kernels.bench``: the same as ``vidsr bench --kernels``."""
    parser = argparse.ArgumentParser(prog="python -m vidsr.kernels.bench", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        return run(args)
    except VidsrError as exc:
        sys.stderr.write(f"vidsr: error: {exc}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
