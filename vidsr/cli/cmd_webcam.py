"""``vidsr webcam``: upscale a camera live, show it with an fps/latency overlay, optionally
record it. ``--camera`` takes an index, a device path, a stream URL or a video file (played as a
fake camera)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..signals import on_stop_signals
from ..webcam import (
    LiveFrame,
    LiveStats,
    LiveUpscaler,
    camera_file,
    camera_label,
    cpu_threads,
    is_camera,
    is_stream,
    list_cameras,
    live_threads,
    open_source,
    parse_size,
    quiet_opencv,
    run_live,
)
from . import check_trained

log = logging.getLogger(__name__)


def _cv2_window() -> bool:
    """True when this OpenCV build can open windows (the headless wheel cannot)."""
    import cv2

    try:
        cv2.namedWindow("vidsr-probe", cv2.WINDOW_AUTOSIZE)
        cv2.destroyWindow("vidsr-probe")
        return True
    except cv2.error:
        return False


def _has_display() -> bool:
    return not sys.platform.startswith("linux") or any(
        os.environ.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def run(args: argparse.Namespace) -> int:
    if args.list:
        found = list_cameras()
        print("cameras: " + (", ".join(map(str, found)) if found else "none found (indices 0-9)"))
        return 0
    # a camera (index or device) is asked for 640x480 by default; a stream or a file plays at
    # its own size unless --size says otherwise
    for flag, value in (("--frames", args.frames), ("--compile-after", args.compile_after),
                        ("--threads", args.threads)):
        if value is not None and value < 1:  # --compile-after 0 meant never, silently
            raise InputError(f"{flag} must be at least 1, got {value}")
    check_trained(args.model)
    read_file = camera_file(args.camera)
    if args.output:  # before the model loads and the camera opens
        from ..pipeline import check_video_output

        check_video_output(read_file, args.output, args.overwrite)
    local_camera = is_camera(args.camera) and not is_stream(args.camera)
    size = parse_size(args.size) if args.size else ((640, 480) if local_camera else None)
    if not args.no_display and not _has_display():
        raise InputError("no display to show the video on (DISPLAY is not set); "
                         "use --no-display (with -o to record)")
    from ..engine import Engine
    from ..io import EncodeOptions
    from ..webcam_record import Recorder

    # No background torch.compile by default: it takes 10-50 s of CPU while the camera runs
    # (measured here: 8.4 fps with it during a 300-frame run, 27 fps without).
    # On CPU the model runs on all cores but one (--threads), the last left to capture, colour
    # conversion and display, which run beside it (2-core VM, 640x480 esr-max-x2 from
    # samples/sample.mp4: one band 31.3 / 30.7 fps, two bands 26.4 / 28.8, alternating runs).
    engine = Engine(args.model, device=args.device,
                    compile_after=args.compile_after, threads=live_threads(args.threads))
    if engine.device.type == "cpu" or args.threads:
        cpu_threads(args.threads)
    upscaler = LiveUpscaler(engine, matrix=args.matrix, full_range=args.full_range)
    # a file:// URL is a file, played as one (its own pace, --loop, --realtime): opened as a
    # stream, it was timed by capture and had late frames dropped, as a live camera is
    live_camera = read_file is None
    camera = str(read_file) if read_file is not None and is_stream(args.camera) else args.camera
    source = open_source(camera, size, loop=args.loop, realtime=args.realtime)
    recorder = None
    # OpenCV's own "[ WARN:0@12.3] ... Stream timeout triggered" when a stream stops; the
    # run says so in its own words below
    restore_logging = quiet_opencv() if live_camera else None
    try:
        if args.output:
            if read_file is not None and _has_audio(read_file):
                log.warning("%s has audio; the recording is video only", read_file)
            options = EncodeOptions(codec=args.codec, crf=args.crf, preset=args.preset,
                                    realtime=True)
            recorder = Recorder(args.output, source.size, source.fps, engine.scale,
                                matrix=args.matrix, full_range=args.full_range,
                                options=options, overwrite=args.overwrite, src=read_file,
                                clock=live_camera)
        label = f"{engine.name} ({engine.device.type})"

        def loop(show: Callable[[np.ndarray], None] | None,
                 cancel: threading.Event | None) -> LiveStats:
            def on_frame(frame: LiveFrame) -> bool:
                if recorder is not None:
                    recorder.write(frame)
                if show is not None:
                    show(frame.bgr)
                return True

            return run_live(source, upscaler, on_frame=on_frame, max_frames=args.frames,
                            cancel=cancel, drop_late=live_camera,
                            overlay=show is not None, label=label)

        stats = _run_displayed(loop, label, args.no_display)
        if live_camera and stats.ended:  # a file ends; a camera or stream that stops is news
            log.warning("%s stopped delivering frames after %d frames", camera_label(args.camera),
                        stats.frames)
        if recorder is not None:
            print(f"recorded {recorder.close()}")
            recorder = None
    finally:
        if recorder is not None:
            recorder.abort()
        source.close()
        if restore_logging is not None:
            restore_logging()
    w, h = source.size
    print(f"{engine.name} on {engine.device.type}: {w}x{h} -> {w * engine.scale}x"
          f"{h * engine.scale}, {stats.frames} frames in {stats.seconds:.2f} s = "
          f"{stats.fps:.1f} fps end to end; latency {stats.mean_latency_ms:.0f} ms mean; "
          f"SR {stats.mean_sr_ms:.1f} ms/frame mean"
          + (f"; {stats.dropped} late frames dropped" if stats.dropped else "")
          + (f"; the window skipped {stats.display_skipped} frames"
             if stats.display_skipped else ""))
    return 0


def _has_audio(path: Path) -> bool:
    """Whether the video file read as the camera has an audio stream (not recorded)."""
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.FFmpegError, OSError):
        return False


def _run_displayed(loop: Callable, label: str, no_display: bool) -> LiveStats:
    """Run ``loop`` with a window (OpenCV's if it has one, else Qt's) or headless; Ctrl-C,
    SIGTERM, SIGHUP, closing the window, q or Esc end the run normally (the recording is
    kept)."""
    if not no_display and not _cv2_window():
        from vidsr_gui.viewer import run_with_window

        stats, skipped = run_with_window(f"vidsr webcam — {label}", loop)
        stats.display_skipped = skipped
        return stats
    cancel = threading.Event()
    with on_stop_signals(lambda *_: cancel.set()):
        if no_display:
            return loop(None, cancel)
        import cv2

        def show(bgr: np.ndarray) -> None:
            cv2.imshow(label, bgr)
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                cancel.set()

        try:
            return loop(show, cancel)
        finally:
            cv2.destroyAllWindows()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("webcam", help="upscale a camera live (or a video file as a camera)",
                       description="Upscale a camera live with an fps/latency overlay; "
                       "optionally record the upscaled video.")
    p.add_argument("--camera", default="0",
                   help="camera index (default 0), device path (/dev/video2), stream URL "
                   "(rtsp://...), or a video file to play as a camera")
    p.add_argument("-m", "--model", default="esr-max-x2",
                   help="model name, alias or weights file (default esr-max-x2)")
    p.add_argument("--size", default=None, help="capture size WxH (default 640x480 for a "
                   "camera; a stream or file plays at its own size, or resized to WxH)")
    p.add_argument("-o", "--output", help="record the upscaled video to this file (.mp4, "
                   ".mkv, .mov, .m4v, .webm)")
    p.add_argument("--no-display", action="store_true",
                   help="no window (headless; combine with -o or --frames)")
    p.add_argument("--frames", type=int, help="stop after this many frames")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--matrix", default="bt601", choices=("bt601", "bt709", "bt2020"),
                   help="Y'CbCr matrix for the camera's RGB (default bt601, SD webcams)")
    p.add_argument("--full-range", action="store_true", help="full-range (0-255) Y'CbCr")
    p.add_argument("--loop", action="store_true", help="loop a video file source")
    p.add_argument("--realtime", action="store_true",
                   help="pace a video file source at its frame rate, like a camera")
    p.add_argument("--threads", type=int, help="PyTorch CPU threads (default: all cores but one, "
                   "left to capture, conversion and display)")
    p.add_argument("--compile-after", type=int, metavar="N",
                   help="on CPU, torch.compile the model in the background after N frames and "
                   "switch to it if faster (default: never; compiling takes 10-50 s of CPU "
                   "while the video runs)")
    p.add_argument("--list", action="store_true", help="list the cameras that work and exit")
    p.add_argument("--codec", help="encoder for -o (default by container)")
    p.add_argument("--crf", type=float, help="quality for -o")
    p.add_argument("--preset", default=None, help="encoder preset for -o (default: the "
                   "encoder's fastest, ultrafast for x264/x265: recording must keep up with the "
                   "camera; measured on 2 cores at 1280x960: 36.9 fps recording with ultrafast, "
                   "23.1 with veryfast)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing -o file")
    p.set_defaults(func=run)
