"""The GUI's per-frame work without Qt: several models on the same frame, then RGB for display.

``vidsr bench --panes`` uses this to measure whether N comparison panes keep up (e.g. four panes
at 720p -> 1440p on a GPU) on machines where PyQt6 cannot be installed. Per frame, each pane
runs ``Engine.upscale_frame`` and its Y'CbCr -> RGB conversion overlaps the next panes' SR on a
pool of ``RGB_WORKERS`` threads, as the GUI's render worker does.
"""

from __future__ import annotations

import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..color import yuv_to_rgb
from .core import Engine

GUI_MODELS = ("bicubic-x2", "esr-max-x2", "esr-tm-x2", "ecbsr-x2")
# Worker threads converting finished panes to RGB (cv2 releases the GIL), in the GUI and here.
RGB_WORKERS = 4


def _frame(w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured 4:2:0 test frame (moving content does not change the cost). Not
    ``vidsr.io.synthetic``: importing ``vidsr.io`` needs PyAV, which the GPU machine lacks."""
    yy, xx = np.mgrid[0:h, 0:w]
    y = (128 + 60 * np.sin(xx * 0.21) * np.cos(yy * 0.17)).astype(np.uint8)
    u = np.full(((h + 1) // 2, (w + 1) // 2), 110, np.uint8)  # odd sizes round up, as decoders
    v = np.full(((h + 1) // 2, (w + 1) // 2), 150, np.uint8)
    return y, u, v


def panes_bench(models: tuple[str, ...] = GUI_MODELS, size: tuple[int, int] = (1280, 720),
                frames: int = 30, device: str = "auto") -> dict[str, Any]:
    """Per-pane SR ms and the display rate with every pane computed and converted each frame."""
    w, h = size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an untrained model still costs the same
        engines = [Engine(m, device=device) for m in models]
    y, u, v = _frame(w, h)
    sr_ms: list[list[float]] = [[] for _ in engines]
    with ThreadPoolExecutor(RGB_WORKERS, thread_name_prefix="vidsr-rgb") as pool:
        def one_frame(record: bool) -> None:
            pending = []
            for i, engine in enumerate(engines):
                t0 = time.perf_counter()
                planes = engine.upscale_frame(y, u, v)
                if record:
                    sr_ms[i].append((time.perf_counter() - t0) * 1e3)
                pending.append(pool.submit(yuv_to_rgb, *planes, "bt709", False))
            for job in pending:
                job.result()

        one_frame(record=False)  # warm-up: weights packed, buffers allocated
        t0 = time.perf_counter()
        for _ in range(frames):
            one_frame(record=True)
        total = time.perf_counter() - t0
    for engine in engines:
        engine.close()
    scales = {e.scale for e in engines}
    return {
        "device": str(engines[0].device), "input": f"{w}x{h}",
        "scale": scales.pop() if len(scales) == 1 else None,  # None: the panes' scales differ
        "frames": frames,
        "panes": [{"model": e.name, "backend": e.backend, "scale": e.scale,
                   "sr_ms": float(np.median(ms)), "fps": 1e3 / float(np.median(ms))}
                  for e, ms in zip(engines, sr_ms, strict=True)],
        "display_fps": frames / total,
    }


def format_panes(report: dict[str, Any]) -> str:
    panes = report["panes"]
    scale = f"x{report['scale']}" if report["scale"] else "mixed scales"
    # columns as wide as their longest entry (a weights path or a long backend name)
    mw = max(20, *(len(p["model"]) for p in panes))
    bw = max(24, *(len(p["backend"]) for p in panes))
    lines = [f"{len(panes)} panes, {report['input']} -> {scale} "
             f"on {report['device']}, {report['frames']} "
             f"frame{'' if report['frames'] == 1 else 's'} "
             "(SR per pane, then RGB conversion overlapped, as the GUI does)",
             f"{'model':<{mw}} {'backend':<{bw}} {'scale':>5} {'SR ms':>8} {'fps':>8}"]
    for p in panes:
        lines.append(f"{p['model']:<{mw}} {p['backend']:<{bw}} {'x' + str(p['scale']):>5} "
                     f"{p['sr_ms']:>8.1f} {p['fps']:>8.1f}")
    lines.append(f"display rate with every pane computed each frame: "
                 f"{report['display_fps']:.1f} fps")
    return "\n".join(lines)
