"""Start the comparison window: ``vidsr gui [INPUT | --webcam N]`` and ``vidsr-gui``.

``--screenshot out.png [--at SECONDS]`` renders the window offscreen at that moment of the
video, saves it and exits (for the README and for checks).

On a machine without CUDA the preview is made lighter automatically: the source is scaled down
to ``CPU_PREVIEW_HEIGHT`` lines before the models see it (``--preview-height`` overrides; 0
keeps the full size). The panes' ms/frame and fps are measured on what actually runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from vidsr.errors import InputError, OutputError, VidsrError

log = logging.getLogger(__name__)

CPU_PREVIEW_HEIGHT = 270
SCREENSHOT_SIZE = (1280, 800)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The GUI's options (shared by ``vidsr gui`` and ``vidsr-gui``)."""
    p.add_argument("input", nargs="?", help="video file to open")
    p.add_argument("--webcam", type=int, metavar="N", help="open camera N instead of a file")
    p.add_argument("--models", help="comma-separated models for the panes (default: "
                   "bicubic, esr-max, esr-tm, ecbsr at the chosen scale)")
    p.add_argument("--panes", type=int, default=4, choices=(2, 3, 4), help="panes (default 4)")
    p.add_argument("--scale", type=int, default=2, choices=(2, 3, 4), help="x2, x3 or x4")
    p.add_argument("--wipe", action="store_true", help="start in wipe (split) mode")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--preview-height", type=int, metavar="LINES",
                   help=f"scale the source down to at most LINES before upscaling (default: "
                   f"{CPU_PREVIEW_HEIGHT} without CUDA, full size with it; 0: full size)")
    p.add_argument("--threads", type=int, help="PyTorch CPU threads (default: all cores but one, "
                   "left to decoding and the window)")
    p.add_argument("--screenshot", metavar="PNG", help="render offscreen, save PNG and exit")
    p.add_argument("--at", type=float, default=0.0, metavar="SECONDS",
                   help="time of the screenshot (default 0)")
    p.add_argument("--zoom", type=float, metavar="Z",
                   help="start zoomed: 1 = 1:1 pixels, 2 = each output pixel 2x2 (default fit)")
    p.add_argument("--bench", type=int, metavar="FRAMES",
                   help="play FRAMES frames offscreen as fast as possible from --at, print "
                   "each pane's ms/frame and fps and the display rate, and exit")
    p.add_argument("--window-size", default=f"{SCREENSHOT_SIZE[0]}x{SCREENSHOT_SIZE[1]}",
                   metavar="WxH", help="window size (default %(default)s)")


def preview_height(requested: int | None, device: str) -> int | None:
    """The preview height cap: the user's, else a lighter default without CUDA."""
    if requested is not None:
        return requested or None
    import torch

    on_gpu = device != "cpu" and torch.cuda.is_available()
    return None if on_gpu else CPU_PREVIEW_HEIGHT


def _window_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--window-size must look like 1280x800, got {text!r}") from None
    return w, h


def _need_display(screenshot: bool) -> None:
    if screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        return
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        raise InputError("no display to open a window on (DISPLAY is not set); use "
                         "--screenshot out.png to render offscreen")


def wait_until(app: object, done: Callable[[], bool], timeout: float) -> bool:
    """Run the Qt event loop until ``done()`` or ``timeout`` seconds; returns ``done()``."""
    end = time.monotonic() + timeout
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    return done()


def run(args: argparse.Namespace) -> int:
    """Open the window (or render the screenshot); returns the exit status."""
    if args.input and args.webcam is not None:
        raise InputError("give either INPUT or --webcam, not both")
    if args.input and not Path(args.input).is_file():
        raise InputError(f"no such file: {args.input}")
    if args.screenshot and not (args.input or args.webcam is not None):
        raise InputError("--screenshot needs INPUT or --webcam")
    if args.screenshot and not Path(args.screenshot).resolve().parent.is_dir():
        raise OutputError(f"output folder does not exist: {Path(args.screenshot).parent}")
    size = _window_size(args.window_size)
    if args.bench is not None and not args.input:
        raise InputError("--bench needs a video file INPUT")
    _need_display(bool(args.screenshot or args.bench))

    from PyQt6.QtWidgets import QApplication

    from vidsr.webcam import cpu_threads

    from .window import MainWindow

    cpu_threads(args.threads)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    window = MainWindow(models, scale=args.scale, panes=args.panes, device=args.device,
                        max_height=preview_height(args.preview_height, args.device))
    window.resize(*size)
    if args.wipe:
        window.set_mode("wipe")
    if args.zoom:
        window.state.set_zoom(args.zoom)
    window.show()
    if args.input:
        window.open_file(args.input)
    elif args.webcam is not None:
        window.open_camera(args.webcam)
    if not (args.screenshot or args.bench):
        return app.exec()
    try:
        if args.bench:
            bench(app, window, args.bench, args.at)
        if args.screenshot:
            screenshot(app, window, Path(args.screenshot), args.at)
        return 0
    finally:
        window.close()


def screenshot(app: object, window: object, out: Path, at: float, warmup: int = 3,
               timeout: float = 300.0) -> int:
    """Show the frame at ``at`` seconds (after ``warmup`` frames just before it, so the
    ms/frame figures are averages) and save the window as ``out``."""
    errors: list[str] = []
    window.worker.failed.connect(errors.append)
    shown: list[object] = []
    window.frame_shown.connect(shown.append)

    def wait_frame(n: int) -> None:
        if not wait_until(app, lambda: len(shown) >= n or bool(errors), timeout):
            raise VidsrError(f"no frame was rendered within {timeout:.0f} s")
        if errors:
            raise InputError(errors[0])

    wait_frame(1)
    source = window.source
    if source is not None and source.seekable:
        fps = source.fps or 30.0
        start = max(0.0, at - warmup / fps)
        window.seek(start)
        wait_frame(2)
        while shown[-1].time < at - 0.5 / fps:
            count = len(shown)
            window.worker.step(1)
            wait_frame(count + 1)
            if len(shown) > count and shown[-1].time <= shown[-2].time:
                break  # the end of the video
    else:
        wait_frame(1 + warmup)
    window.worker.pause()
    wait_until(app, lambda: False, 0.2)
    if not window.grab().save(str(out)):
        raise OutputError(f"cannot write {out}")
    log.info("saved %s", out)
    return 0


def bench(app: object, window: object, frames: int, at: float, warmup: int = 3,
          timeout: float = 600.0) -> dict:
    """Play ``frames`` frames flat out from ``at`` and print what each pane measured.

    Per pane: mean SR ms/frame (luma model + chroma bicubic, planes in and out, after
    ``warmup`` frames) and the fps that alone allows; overall: frames shown per second with
    every pane computed (decode, all models, colour conversion, painting).
    """
    import json
    import statistics

    errors: list[str] = []
    window.worker.failed.connect(errors.append)
    shown: list[object] = []
    window.frame_shown.connect(shown.append)
    if not wait_until(app, lambda: bool(shown or errors), timeout) or errors:
        raise InputError(errors[0] if errors else "no frame was rendered")
    window.worker.realtime = False
    window.seek(at)
    wait_until(app, lambda: len(shown) >= 2 or bool(errors), timeout)
    begin = len(shown)
    window.worker.play()
    wait_until(app, lambda: len(shown) >= begin + warmup + frames or not window.worker.playing
               or bool(errors), timeout)
    window.worker.pause()
    if errors:
        raise InputError(errors[0])
    run = shown[begin + warmup:]
    if len(run) < 2:
        raise InputError(f"only {len(shown) - begin} frames could be played from {at} s")
    seconds = max(run[-1].wall - run[0].wall, 1e-9)
    size = run[0].results[0].rgb.shape if run[0].results[0].rgb is not None else (0, 0)
    report = {"frames": len(run), "source": list(run[0].source_size),
              "output": [size[1], size[0]], "display_fps": (len(run) - 1) / seconds,
              "panes": []}
    for k, first in enumerate(run[0].results):
        ms = statistics.mean(r.results[k].ms for r in run)
        report["panes"].append({"model": first.name or first.model, "ms": ms,
                                "fps": 1000.0 / ms if ms else 0.0,
                                "backend": first.backend, "untrained": first.untrained})
    print(f"{len(run)} frames, {report['source'][0]}x{report['source'][1]} -> "
          f"{report['output'][0]}x{report['output'][1]}, device {window.device}")
    for pane in report["panes"]:
        print(f"  {pane['model']:<22} {pane['ms']:8.2f} ms/frame {pane['fps']:8.1f} fps"
              f"  ({pane['backend'] or '?'})")
    print(f"  display with all {len(report['panes'])} panes: {report['display_fps']:.1f} fps")
    print(json.dumps(report))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """The ``vidsr-gui`` entry point."""
    parser = argparse.ArgumentParser(prog="vidsr-gui",
                                     description="Compare super-resolution models live.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="vidsr-gui: %(levelname)s: %(message)s")
    try:
        return run(args)
    except VidsrError as exc:
        if args.debug:
            raise
        print(f"vidsr-gui: error: {exc}", file=sys.stderr)
        return 1
