"""Start the comparison window: ``vidsr gui [INPUT | --webcam CAMERA]`` and ``vidsr-gui``.

``--screenshot out.png [--at SECONDS]`` renders the window offscreen at that moment of the
video, saves it and exits (for the README and for checks).

On a machine without CUDA the preview is made lighter automatically: the source is scaled down
to ``CPU_PREVIEW_HEIGHT`` lines before the models see it (``--preview-height`` overrides; 0
keeps the full size). The panes' ms/frame and fps are measured on what actually runs.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidsr.cli import split_list
from vidsr.errors import InputError, VidsrError
from vidsr.paths import check_output
from vidsr.signals import on_stop_signals
from vidsr.sizes import parse_size

log = logging.getLogger(__name__)

CPU_PREVIEW_HEIGHT = 270
SCREENSHOT_SIZE = (1280, 800)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The GUI's options (shared by ``vidsr gui`` and ``vidsr-gui``)."""
    p.add_argument("input", nargs="?", help="video file to open")
    p.add_argument("--webcam", metavar="CAMERA", help="open a camera instead of a file: an "
                   "index (0), a device path (/dev/video2), a stream URL (rtsp://...) or a video "
                   "file played as a camera")
    p.add_argument("--models", help="comma-separated models for the panes (default: "
                   "bicubic, esr-max, esr-tm, ecbsr at the chosen scale)")
    p.add_argument("--panes", type=int, default=None, choices=(2, 3, 4),
                   help="panes (default 4, or one per --models entry)")
    p.add_argument("--scale", type=int, default=None, choices=(2, 3, 4),
                   help="x2, x3 or x4 (default 2, or the --models' scale)")
    p.add_argument("--wipe", action="store_true", help="start in wipe (split) mode")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--preview-height", type=int, metavar="LINES",
                   help=f"scale the source down to at most LINES before upscaling (default: "
                   f"{CPU_PREVIEW_HEIGHT} without CUDA, full size with it; 0: full size)")
    p.add_argument("--threads", type=int, help="PyTorch CPU threads (default: all cores but one, "
                   "left to decoding and the window)")
    p.add_argument("--screenshot", metavar="PNG", help="render offscreen, save PNG and exit")
    p.add_argument("--at", type=float, default=None, metavar="SECONDS",
                   help="time of the screenshot or the bench's start in INPUT (default 0)")
    p.add_argument("--palette", action="store_true",
                   help="save the screenshot as a 256-colour PNG (about 3x smaller, for docs)")
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


def _need_display(screenshot: bool) -> None:
    if screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        return
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        raise InputError("no display to open a window on (DISPLAY is not set); use "
                         "--screenshot out.png to render offscreen")


def pane_plan(models_arg: str | list[str] | None, scale: int | None,
              panes: int | None) -> tuple[list[str] | None, int, int]:
    """``(models, scale, panes)`` from ``--models``, ``--scale`` and ``--panes``: the scale
    defaults to the models' own (x3 models showed as their x2 siblings before), and the pane
    count to one per model given (two models gave four panes, two of them defaults)."""
    from vidsr.api import resolve_spec

    models = split_list(models_arg) or None
    if models:
        if len(models) > 4:
            raise InputError(f"--models takes at most 4 models, got {len(models)}")
        scales = {resolve_spec(m).scale for m in models}  # names, aliases or weights files
        if scale is None and len(scales) == 1:
            scale = scales.pop()
        elif scale is not None and scales != {scale}:
            raise InputError(f"--models are x{'/x'.join(map(str, sorted(scales)))}, "
                             f"--scale is x{scale}: the panes compare one scale")
        elif scale is None:
            raise InputError("--models mixes scales "
                             f"(x{'/x'.join(map(str, sorted(scales)))}); the panes compare one")
    return models, scale or 2, panes or (max(2, len(models)) if models else 4)


def _quiet_offscreen_warning() -> None:
    """Drop Qt's "This plugin does not support propagateSizeHints()" (printed two or three
    times by every offscreen run; it only says the headless plugin ignores size hints)."""
    from PyQt6.QtCore import qInstallMessageHandler

    previous: list[Any] = []

    def handler(kind: Any, context: Any, message: str) -> None:
        if "propagateSizeHints" in message:
            return
        if previous and previous[0] is not None:
            previous[0](kind, context, message)
        else:
            sys.stderr.write(message + "\n")

    previous.append(qInstallMessageHandler(handler))


def _exec_until_signalled(app: Any, window: Any) -> int:
    """``app.exec()``, with Ctrl-C, SIGTERM and SIGHUP closing the window as its close button
    does; returns 128 + the signal then. Qt's loop runs no Python signal handler by itself (and
    an exception raised in a slot aborts PyQt), so a timer gives the handler its turn."""
    from PyQt6.QtCore import QTimer

    got: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        got.append(signum)
        window.force_close = True  # a signal does not wait for an answer about an export
        window.close()

    tick = QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(200)
    try:
        with on_stop_signals(on_signal):
            status = app.exec()
    finally:
        tick.stop()
    return 128 + got[0] if got else int(status)


def run(args: argparse.Namespace) -> int:
    """Open the window (or render the screenshot); returns the exit status."""
    if args.input and args.webcam is not None:
        raise InputError("give either INPUT or --webcam, not both")
    if args.input and not Path(args.input).is_file():
        raise InputError(f"no such file: {args.input}")
    if args.screenshot and not (args.input or args.webcam is not None):
        raise InputError("--screenshot needs INPUT or --webcam")
    if args.screenshot:
        check_output(args.screenshot, overwrite=True, src=args.input, what="--screenshot")
    # options of one offscreen run, refused where nothing would read them (they were ignored:
    # --screenshot beside --bench waited 300 s after the bench for a frame, then failed)
    if args.screenshot and args.bench is not None:
        raise InputError("--screenshot and --bench are separate runs; give one of them")
    if args.palette and not args.screenshot:
        raise InputError("--palette needs --screenshot")
    if args.at is not None and not (args.screenshot or args.bench is not None):
        raise InputError("--at needs --screenshot or --bench")
    if args.at is not None and args.webcam is not None:
        raise InputError("--at needs a video file INPUT; a camera has no time to go to")
    args.at = 0.0 if args.at is None else args.at
    if not (math.isfinite(args.at) and args.at >= 0):
        raise InputError(f"--at must be a time >= 0 seconds, got {args.at:g}")
    if args.zoom is not None and not (math.isfinite(args.zoom) and args.zoom > 0):
        raise InputError(f"--zoom must be > 0, got {args.zoom:g}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be at least 1, got {args.threads}")
    if args.preview_height is not None and args.preview_height < 0:
        raise InputError(f"--preview-height must be a number of lines >= 0 (0: full size), "
                         f"got {args.preview_height}")
    if args.bench is not None and args.bench < 2:
        raise InputError(f"--bench needs at least 2 frames, got {args.bench}")
    size = parse_size(args.window_size, what="--window-size")
    if args.bench is not None and not args.input:
        raise InputError("--bench needs a video file INPUT")
    from vidsr.engine import pick_device

    # a device that cannot be used is one error here, as the command line's; it was four panes
    # each saying so (and a screenshot of them, exit status 0)
    pick_device(args.device)
    _need_display(bool(args.screenshot or args.bench))

    from PyQt6.QtWidgets import QApplication

    from vidsr.webcam import cpu_threads

    from .errors import ErrorRelay
    from .offscreen import bench, screenshot
    from .window import MainWindow

    threads = cpu_threads(args.threads)
    _quiet_offscreen_warning()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    models, scale, panes = pane_plan(args.models, args.scale, args.panes)
    window = MainWindow(models, scale=scale, panes=panes, device=args.device,
                        max_height=preview_height(args.preview_height, args.device),
                        threads=threads)
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
    with ErrorRelay(window.show_error):
        if not (args.screenshot or args.bench):
            return _exec_until_signalled(app, window)
        try:
            if args.bench:
                bench(app, window, args.bench, args.at)
            if args.screenshot:
                screenshot(app, window, Path(args.screenshot), args.at, palette=args.palette)
            return 0
        finally:
            window.close()


def main(argv: Sequence[str] | None = None) -> int:
    """The ``vidsr-gui`` entry point."""
    from vidsr.cli import OneLineParser

    parser = OneLineParser(prog="vidsr-gui", description="Compare super-resolution models live.")
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
