"""``vidsr bench``: SR time per frame for each model, fast path next to eager, and the end-to-end
file throughput of a 1080p -> 4K job next to the encoder alone.

SR rows: one luma plane (the procedural pattern of ``vidsr.io.synthetic``) through
``Engine.upscale_luma``, uint8 in and out, conversion and rounding included. The eager engine
(plain PyTorch, fp32) and the fast engine (the default: fastest CPU formulation, or on CUDA the
fused kernels / fp16 channels-last) are timed in the same process, alternating frame by frame so
that load from other processes hits both alike; each number is the median over ``frames``
frames after one warm-up call. Peak host memory is the process's resident peak (``VmHWM``, reset
before each measurement where Linux allows), device memory ``torch.cuda.max_memory_allocated``.

End to end: a procedural 1920x1080 clip is written to a temporary folder, upscaled x2 with
``vidsr.pipeline.upscale_video`` (decode, SR and encode threads; the model's shipped weights,
as the encoder's cost depends on the pictures) and, separately, the same number
of 3840x2160 frames are encoded alone with the same encoder settings: the job's own output
frames (up to 30, decoded into memory beforehand and cycled), since upscaled pictures cost the
encoder more than a procedural pattern of the output size does (that one is reported too). The
ratio of the pipeline's throughput to the encoder's on the same frames is how much of the
encoder's speed the pipeline keeps.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import sizes
from ..api import load_model, resolve_spec
from ..errors import InputError
from ..models.ecbsr import PlainSR
from .bench_defaults import DEFAULT_MODELS, DEFAULT_SIZES
from .core import Engine, pick_device
from .cpu import bf16_supported, cpu_workers

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class BenchConfig:
    """What ``vidsr bench`` measures. ``devices``: ``cpu`` and/or ``cuda`` (default: both where
    present). ``e2e_frames`` 0 skips the end-to-end job."""

    models: tuple[str, ...] = DEFAULT_MODELS
    sizes: tuple[str, ...] = DEFAULT_SIZES
    frames: int = 5
    devices: tuple[str, ...] = ()
    threads: int | None = None
    compile: bool = False
    e2e_frames: int = 30
    onnx: bool = False
    e2e_model: str = "ecbsr-m4c16-x2"
    e2e_size: str = "1920x1080"
    codec: str = "libx264"
    preset: str = "ultrafast"
    crf: float = 18.0


def parse_size(text: str) -> tuple[int, int]:
    """A benchmark frame size (``1280x720`` or ``720p``), at least 8x8 and at most 16384 a side
    (past 8K; a typo's 99999x99999 would be a 150 GiB allocation)."""
    return sizes.parse_size(text, minimum=8, maximum=16384)


# -- memory -------------------------------------------------------------------------------
def reset_host_peak() -> bool:
    """Reset the process's resident-memory peak (Linux ``clear_refs``); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def host_peak_mib() -> float | None:
    """The process's resident-memory peak in MiB (``VmHWM``), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


# -- SR timing ----------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    """Wait for the device's queued work (no-op off CUDA), so a wall-clock time is honest."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return (time.perf_counter() - t0) * 1000.0


def _pipelined_ms(engine: Engine, plane: np.ndarray, frames: int) -> float:
    """Milliseconds per frame through ``submit``/``collect`` with two frames in flight."""
    engine.submit(plane)
    engine.collect()
    t0 = time.perf_counter()
    for _ in range(frames):
        engine.submit(plane)
        if engine.pending() >= 2:
            engine.collect()
    while engine.pending():
        engine.collect()
    return (time.perf_counter() - t0) * 1000.0 / frames


def _settle(engine: Engine, plane: np.ndarray, timeout: float = 600.0) -> None:
    """Feed frames until the engine's background compile has been decided (or timed out)."""
    decided = getattr(engine._runner, "decided", None)
    deadline = time.time() + timeout
    engine.upscale_luma(plane)
    while decided is not None and not decided() and time.time() < deadline:
        engine.upscale_luma(plane)
        time.sleep(0.2)


class _OnnxRuntime:
    """The model exported to ONNX with uint8 planes in and out (``vidsr export --io uint8``),
    in an onnxruntime CPU session with ``threads`` intra-op threads: the stock alternative to
    vidsr's CPU path, with the same work per call as ``Engine.upscale_luma``."""

    def __init__(self, module: torch.nn.Module, threads: int, folder: Path) -> None:
        from ..export import export_model, onnx_session

        path = folder / f"{module.spec.name}.onnx"
        if not path.exists():
            export_model(module, path, io="uint8", check=False)
        self.threads = threads
        self._session = onnx_session(path, threads)

    def upscale_luma(self, plane: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"lr": plane[None, None]})[0][0, 0]


def sr_row(name: str, size: str, device: torch.device, frames: int,
           compile: bool = False, eager_threads: int | None = None,
           onnx_dir: Path | None = None, bands: int | None = None) -> dict[str, Any]:
    """Time one model at one size on one device: eager and fast (and, with ``compile``, the
    engine after its background ``torch.compile`` has settled; with ``onnx_dir``, on CPU, the
    model exported there to ONNX in onnxruntime with ``eager_threads`` threads), alternating.
    CPU eager runs with ``eager_threads`` intra-op threads (torch's default) and again with 1
    thread, the setting the fast CPU path puts the process in. ``bands``: the fast CPU
    engines' band workers (default one per core; ``--threads`` sets it, so that onnxruntime's
    and eager's threads and the fast path's bands use the same cores)."""
    w, h = parse_size(size)
    module = load_model(name, pretrained=False)
    plane = _pattern(w, h)
    cpu = device.type == "cpu"
    # on CPU the "fast" column is the fp32 fast path; bf16 (the CPU default for ECBSR where
    # the CPU has native bf16) gets its own column
    engines = {"eager": Engine(module, device=device, fp16=False, fast=False),
               "fast": Engine(module, device=device, fp16=False if cpu else None,
                              threads=bands if cpu else None)}
    if cpu and isinstance(module, PlainSR) and bf16_supported():
        engines["bf16"] = Engine(module, device=device, fp16=True, threads=bands)
    if compile and cpu:  # what a long input settles on: on bf16 CPUs, bf16 ECBSR with the
        # compiled PReLU; elsewhere the fp32 fast path or inductor, whichever timed faster
        engines["compiled"] = Engine(module, device=device, compile_after=1,
                                     fp16=None if "bf16" in engines else False, threads=bands)
    if onnx_dir is not None and cpu and module.spec.trainable:  # bicubic is no network
        engines["onnxruntime"] = _OnnxRuntime(module, eager_threads or torch.get_num_threads(),
                                              onnx_dir)
    times: dict[str, list[float]] = {k: [] for k in engines}
    for key, engine in engines.items():  # warm-up: buffers, packed weights, kernels
        if key == "compiled":
            _settle(engine, plane)
        else:
            engine.upscale_luma(plane)
    threads = {key: 1 for key in engines}
    if device.type == "cpu":
        threads["eager"] = eager_threads or torch.get_num_threads()
        engines["eager_1t"] = engines["eager"]
        threads["eager_1t"] = 1
        times["eager_1t"] = []
    for _ in range(frames):
        for key, engine in engines.items():
            if device.type == "cpu":
                torch.set_num_threads(threads[key])
            times[key].append(_timed(lambda e=engine: e.upscale_luma(plane), device))
    if device.type == "cpu":
        torch.set_num_threads(1)
    fast = engines["fast"]
    eager_ms, fast_ms = statistics.median(times["eager"]), statistics.median(times["fast"])
    row: dict[str, Any] = {
        "device": device.type, "model": name, "input": f"{w}x{h}", "scale": fast.scale,
        "frames": frames, "eager_ms": round(eager_ms, 2), "fast_ms": round(fast_ms, 2),
        "speedup": round(eager_ms / fast_ms, 2),
        "eager_threads": threads.get("eager", 1) if device.type == "cpu" else None,
        "eager_1t_ms": (round(statistics.median(times["eager_1t"]), 2)
                        if "eager_1t" in times else None),
        "fast_backend": fast.backend,
        "fast_fp16": fast.fp16,
        "cpu_bf16_ms": round(statistics.median(times["bf16"]), 2) if "bf16" in times else None,
    }
    if "onnxruntime" in times:
        ort_ms = statistics.median(times["onnxruntime"])
        row["onnxruntime_ms"] = round(ort_ms, 2)
        row["onnxruntime_threads"] = engines["onnxruntime"].threads
        row["onnxruntime_vs_fast"] = round(ort_ms / fast_ms, 2)
    if "compiled" in times:
        row["compiled_ms"] = round(statistics.median(times["compiled"]), 2)
        row["compiled_backend"] = engines["compiled"].backend
    if device.type == "cuda":
        row["fast_pipelined_ms"] = round(_pipelined_ms(fast, plane, frames), 3)
        torch.cuda.reset_peak_memory_stats()
        fast.upscale_luma(plane)
        row["peak_device_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    reset_host_peak()
    fast.upscale_luma(plane)
    peak = host_peak_mib()
    row["peak_host_mib"] = None if peak is None else round(peak, 1)
    return row


def _pattern(w: int, h: int) -> np.ndarray:
    from ..io.synthetic import synthetic_planes

    return synthetic_planes(w, h, 0)[0]


# -- end to end ---------------------------------------------------------------------------
E2E_DISTINCT = 30  # output frames kept in memory for the encoder-alone baseline (4K: 12 MB each)


def _decoded_planes(path: Path, count: int) -> list[tuple[np.ndarray, ...]]:
    from ..io import VideoReader

    planes: list[tuple[np.ndarray, ...]] = []
    with VideoReader(path) as reader:
        for frame in reader:
            planes.append((frame.y, frame.u, frame.v))
            if len(planes) == count:
                break
    return planes


def _e2e_module(name: str) -> tuple[torch.nn.Module, str]:
    """The end-to-end job's model with its shipped weights where there are any: the encoder's
    cost depends on the pictures, and a randomly initialised network's output is noise, which
    libx264 encodes markedly more slowly than a trained network's pictures. A model without
    shipped weights runs randomly initialised. Returns the module and where its weights came
    from: ``"shipped"``, ``"random"``, ``"file"`` (a weights file) or ``"none"`` (bicubic)."""
    from ..api import is_weights_path
    from ..weights import is_untrained

    if is_weights_path(name):
        return load_model(name), "file"
    spec = resolve_spec(name)
    if not spec.trainable:
        return load_model(name), "none"
    if is_untrained(spec):
        return load_model(name, pretrained=False), "random"
    return load_model(name, pretrained=True), "shipped"


def e2e_row(config: BenchConfig, device: torch.device) -> dict[str, Any]:
    """Upscale a procedural clip with the full pipeline and time the encoder alone."""
    from ..io import EncodeOptions
    from ..io.synthetic import encoder_seconds, synthetic_planes, write_synthetic_clip
    from ..pipeline import upscale_video

    w, h = parse_size(config.e2e_size)
    n = config.e2e_frames
    opts = EncodeOptions(codec=config.codec, crf=config.crf, preset=config.preset)
    module, weights = _e2e_module(config.e2e_model)
    engine = Engine(module, device=device, threads=config.threads)  # as --threads would
    with tempfile.TemporaryDirectory(prefix="vidsr-bench-") as tmp:
        src = write_synthetic_clip(Path(tmp) / "source.mp4", w, h, n, options=opts)
        # warm-up outside the timed run, of the path the job takes: on CUDA submit/collect
        # with both chroma planes (the chroma kernel compiles on its first call), on CPU the
        # frame call
        y, u, v = synthetic_planes(w, h, 0)
        if device.type == "cuda":
            engine.submit(y, u, v)
            engine.collect()
        else:
            engine.upscale_frame(y, u, v)
        reset_host_peak()
        summary = upscale_video(src, Path(tmp) / "upscaled.mp4", model=engine, options=opts,
                                overwrite=True)
        peak = host_peak_mib()
        # The encoder alone on the same pictures: upscaled frames cost the encoder more than
        # the procedural pattern does, so the baseline encodes (up to 30 of) the job's output.
        same = _decoded_planes(Path(tmp) / "upscaled.mp4", min(n, E2E_DISTINCT))
    enc_s = encoder_seconds(w * engine.scale, h * engine.scale, n, opts, planes=same)
    pattern_s = encoder_seconds(w * engine.scale, h * engine.scale, n, opts)
    pipe_fps = summary.frames / summary.seconds
    enc_fps = n / enc_s
    return {
        "device": device.type, "model": config.e2e_model, "backend": engine.backend,
        "weights": weights,
        "input": f"{w}x{h}", "output": f"{w * engine.scale}x{h * engine.scale}", "frames": n,
        "codec": config.codec, "preset": config.preset, "crf": config.crf,
        "pipeline_fps": round(pipe_fps, 2), "encoder_only_fps": round(enc_fps, 2),
        "encoder_pattern_fps": round(n / pattern_s, 2),
        "ratio": round(pipe_fps / enc_fps, 3),
        "stage_ms_per_frame": {k: round(1000 * v / max(summary.frames, 1), 1) for k, v in
                               (("decode", summary.decode_s), ("sr", summary.sr_s),
                                ("encode", summary.encode_s))},
        "bound_by": summary.bound,
        "peak_host_mib": None if peak is None else round(peak, 1),
    }


# -- the whole run ------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """Facts about where the numbers come from."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "torch": torch.__version__, "cpu_count": os.cpu_count(),
                            "usable_cores": cpu_workers(),  # the fast path's default bands
                            "torch_threads": torch.get_num_threads()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if hasattr(os, "getloadavg"):
        info["load_average_start"] = [round(v, 2) for v in os.getloadavg()]
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _check_e2e(config: BenchConfig) -> None:
    """``InputError``/``OutputError`` for end-to-end settings ``e2e_row`` would refuse, before
    any timing (found there, a bad one threw away every SR row timed before it)."""
    if config.e2e_frames < 0:
        raise InputError(f"--e2e-frames must be >= 0 (0 skips the job), got {config.e2e_frames}")
    if config.e2e_frames == 0:
        return
    from ..io import EncodeOptions
    from ..io.encoders import codec_options, encoder

    parse_size(config.e2e_size)
    resolve_spec(config.e2e_model)
    encoder(config.codec)
    codec_options(config.codec, EncodeOptions(codec=config.codec, crf=config.crf,
                                              preset=config.preset), ".mp4")


def run(config: BenchConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every measurement ``config`` asks for; returns the report (see ``format_report``).
    PyTorch's thread count is the caller's again afterwards."""
    callers = torch.get_num_threads()
    try:
        return _run(config, progress)
    finally:
        torch.set_num_threads(callers)  # the SR rows leave it at 1


def _run(config: BenchConfig, progress: Callable[[str], None] | None) -> dict[str, Any]:
    if config.threads:
        torch.set_num_threads(config.threads)
    default_threads = torch.get_num_threads()
    devices = [pick_device(d) for d in (config.devices or
                                        (("cpu", "cuda") if torch.cuda.is_available()
                                         else ("cpu",)))]
    for s in config.sizes:
        parse_size(s)
    _check_e2e(config)
    report: dict[str, Any] = {"machine": machine(), "config": asdict(config), "sr": [],
                              "e2e": []}
    onnx_dir = tempfile.TemporaryDirectory(prefix="vidsr-bench-onnx-") if config.onnx else None
    for device in devices:
        for name in config.models:
            for size in config.sizes:
                if progress:
                    progress(f"{device.type} {name} {size}")
                report["sr"].append(sr_row(name, size, device, config.frames,
                                           config.compile, default_threads,
                                           Path(onnx_dir.name) if onnx_dir else None,
                                           bands=config.threads))
        if config.e2e_frames > 0:
            torch.set_num_threads(default_threads)  # the job runs as the command would
            if progress:
                progress(f"{device.type} end to end {config.e2e_model} {config.e2e_size} x "
                         f"{config.e2e_frames} frames")
            report["e2e"].append(e2e_row(config, device))
    if onnx_dir is not None:
        onnx_dir.cleanup()
    if hasattr(os, "getloadavg"):
        report["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    return report


def text_table(head: list[str], rows: list[list[str]]) -> str:
    """Left-aligned plain-text columns under a dashed rule."""
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=False)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [head, ["-" * w for w in widths], *rows]]
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    """The human-readable tables for a report from ``run``."""
    m = report["machine"]
    usable = m.get("usable_cores", m["cpu_count"])
    cores = f"{m['cpu_count']} cores" + (f" ({usable} usable)" if usable != m["cpu_count"]
                                         else "")
    out = [f"vidsr bench: {m.get('cpu', platform.processor())}, {cores}, "
           f"torch {m['torch']} ({m['torch_threads']} "
           f"thread{'' if m['torch_threads'] == 1 else 's'})"
           + (f", GPU {m['gpu']}" if "gpu" in m else "")
           + (f"; load average {m['load_average_start'][0]} at start"
              if "load_average_start" in m else "")]
    if m.get("load_average_start") and m["load_average_start"][0] >= m["cpu_count"]:
        out.append(f"note: the load average ({m['load_average_start'][0]}) is at or above the "
                   f"{m['cpu_count']} cores: other work shares the CPU, and the multi-threaded "
                   "eager column suffers most (compare eager 1t, or rerun on an idle machine)")

    def num(v: Any, fmt: str = "{:.1f}") -> str:
        return "-" if v is None else fmt.format(v)

    if report["sr"]:
        threads = sorted({r["eager_threads"] for r in report["sr"] if r["eager_threads"]})
        bands = report["config"].get("threads")
        bands_text = (f"{bands} band{'' if bands == 1 else 's'}" if bands else
                      f"{usable} band{'' if usable == 1 else 's'}, one per usable core")
        out.append("\nSR per frame, ms (uint8 luma in and out, median of alternating runs; "
                   "eager = fp32 PyTorch with "
                   f"{'/'.join(map(str, threads)) or 'default'} intra-op "
                   f"thread{'' if threads == [1] else 's'}, eager 1t with 1; fast: "
                   f"{bands_text})")
        out.append(text_table(
            ["device", "model", "input", "eager", "eager 1t", "fast", "eager/fast",
             "fast backend", "cpu bf16", "compiled", "onnxruntime", "ort/fast", "pipelined",
             "process peak host MiB", "process peak dev MiB"],
            [[r["device"], r["model"], r["input"], num(r["eager_ms"]), num(r.get("eager_1t_ms")),
              num(r["fast_ms"]), num(r["speedup"], "{:.2f}x"), r["fast_backend"],
              num(r.get("cpu_bf16_ms")),
              num(r.get("compiled_ms")) + (f" ({r['compiled_backend']})"
                                           if r.get("compiled_backend") else ""),
              num(r.get("onnxruntime_ms")), num(r.get("onnxruntime_vs_fast"), "{:.2f}x"),
              num(r.get("fast_pipelined_ms"), "{:.2f}"), num(r["peak_host_mib"], "{:.0f}"),
              num(r.get("peak_device_mib"), "{:.0f}")] for r in report["sr"]]))
    if report["e2e"]:
        out.append("\nEnd to end (decode -> SR -> encode) vs the encoder alone")
        out.append(text_table(
            ["device", "model", "job", "frames", "codec", "pipeline fps", "encoder fps",
             "ratio", "encoder fps (pattern)", "decode/sr/encode ms per frame", "bound by",
             "peak host MiB"],
            [[r["device"], r["model"] + (" (random weights)" if r.get("weights") == "random"
                                         else ""),
              f"{r['input']} -> {r['output']}", str(r["frames"]),
              f"{r['codec']} {r['preset']}", num(r["pipeline_fps"], "{:.2f}"),
              num(r["encoder_only_fps"], "{:.2f}"), num(r["ratio"], "{:.2f}"),
              num(r.get("encoder_pattern_fps"), "{:.2f}"),
              "/".join(f"{v:.0f}" for v in r["stage_ms_per_frame"].values()),
              r["bound_by"], num(r["peak_host_mib"], "{:.0f}")] for r in report["e2e"]]))
    return "\n".join(out)
