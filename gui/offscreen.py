"""Offscreen runs of the window: a screenshot at a given moment, and a playback benchmark."""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PyQt6.QtGui import QImage, qRgb

from vidsr.errors import InputError, OutputError, VidsrError

log = logging.getLogger(__name__)


def wait_until(app: object, done: Callable[[], bool], timeout: float) -> bool:
    """Run the Qt event loop until ``done()`` or ``timeout`` seconds; returns ``done()``."""
    end = time.monotonic() + timeout
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    return done()


def save_palette_png(image: QImage, path: Path, colours: int = 256) -> bool:
    """Save ``image`` as an indexed PNG whose palette is a k-means fit to its pixels (Qt's own
    8-bit conversion posterizes gradients badly)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint8).reshape(h, image.bytesPerLine())[:, : 3 * w]
    px = rows.reshape(-1, 3).astype(np.float32)
    rng = np.random.default_rng(0)
    sample = px[rng.choice(len(px), min(len(px), 30_000), replace=False)]
    k = min(colours, len(sample))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, _, centres = cv2.kmeans(sample, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
    index = np.empty(len(px), np.uint8)
    norms = (centres ** 2).sum(axis=1)
    for i in range(0, len(px), 1 << 16):
        chunk = px[i:i + (1 << 16)]
        index[i:i + (1 << 16)] = (norms[None, :] - 2 * chunk @ centres.T).argmin(axis=1)
    index = np.ascontiguousarray(index.reshape(h, w))
    out = QImage(index.data, w, h, w, QImage.Format.Format_Indexed8)
    out.setColorTable([qRgb(*(int(round(v)) for v in c)) for c in np.clip(centres, 0, 255)])
    return out.save(str(path))


def screenshot(app: object, window: object, out: Path, at: float, warmup: int = 3,
               timeout: float = 300.0, palette: bool = False) -> int:
    """Show the frame at ``at`` seconds (after ``warmup`` frames just before it, so the
    ms/frame figures are averages) and save the window as ``out``."""
    errors = window.errors  # from the start: an open that failed before this call is in it
    shown: list[object] = []
    ended: list[bool] = []
    window.frame_shown.connect(shown.append)
    window.worker.ended.connect(lambda: ended.append(True))

    def wait_frame(n: int, fresh_end: bool = True) -> bool:
        """Wait for the ``n``-th frame; False when the source ended instead (with
        ``fresh_end``, an end before this call does not count)."""
        if fresh_end:
            ended.clear()
        if not wait_until(app, lambda: len(shown) >= n or bool(errors) or bool(ended),
                          timeout):
            raise VidsrError(f"no frame was rendered within {timeout:.0f} s")
        if errors:
            raise InputError(errors[0])
        return len(shown) >= n

    wait_frame(1)
    source = window.source
    if source is not None and source.seekable:
        if source.duration and at > source.duration:  # the seek found no frame: a 300 s wait
            raise InputError(f"--at {at:g} s is past the end of the video "
                             f"({source.duration:.2f} s long)")
        fps = source.fps or 30.0
        if source.duration:  # within the last frame's display time: that frame
            at = min(at, max(0.0, source.duration - 1.0 / fps))
        start = max(0.0, at - warmup / fps)
        window.seek(start)
        wait_frame(2)
        while shown[-1].time < at - 0.5 / fps:
            window.worker.step(1)
            if not wait_frame(len(shown) + 1):
                if not source.duration:  # a still image, a raw stream: no length to check first
                    raise InputError(f"--at {at:g} s is past the end of the video (its last "
                                     f"frame is at {shown[-1].time:.2f} s)")
                break  # the length in the file was longer than its frames: the last one
    else:  # a camera plays by itself: a still image or a short file may have ended already
        wait_frame(1 + warmup, fresh_end=False)
    window.worker.pause()
    window.setFocus()  # no blinking text cursor in a spin box on the picture
    wait_until(app, lambda: False, 0.2)
    grab = window.grab()
    saved = save_palette_png(grab.toImage(), out) if palette else grab.save(str(out))
    if not saved:
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
    errors = window.errors
    shown: list[object] = []
    window.frame_shown.connect(shown.append)
    if not wait_until(app, lambda: bool(shown or errors), timeout) or errors:
        raise InputError(errors[0] if errors else "no frame was rendered")
    window.worker.realtime = False
    source = window.source
    if source is not None and source.duration and at >= source.duration:
        raise InputError(f"--at {at:g} s is past the end of the video "
                         f"({source.duration:.2f} s long)")
    window.seek(at)
    wait_until(app, lambda: len(shown) >= 2 or bool(errors), timeout)
    begin = len(shown)
    window.worker.play(warmup + frames, restart=False)
    wait_until(app, lambda: len(shown) >= begin + warmup + frames or not window.worker.playing
               or bool(errors), timeout)
    window.worker.pause()
    app.processEvents()  # the worker's last frames and errors may still be queued for this thread
    if errors:
        raise InputError(errors[0])
    run = shown[begin + warmup:begin + warmup + frames]
    if len(run) < 2:
        raise InputError(f"only {len(shown) - begin} frames could be played from {at} s")
    seconds = max(run[-1].wall - run[0].wall, 1e-9)
    size = run[0].results[0].rgb.shape if run[0].results[0].rgb is not None else (0, 0)
    from vidsr.engine import pick_device

    report = {"frames": len(run), "device": str(pick_device(window.device)),
              "source": list(run[0].source_size),
              "output": [size[1], size[0]], "display_fps": (len(run) - 1) / seconds,
              "panes": []}
    for k, first in enumerate(run[0].results):
        ms = statistics.mean(r.results[k].ms for r in run)
        report["panes"].append({"model": first.name or first.model, "ms": ms,
                                "fps": 1000.0 / ms if ms else 0.0,
                                "backend": first.backend, "untrained": first.untrained})
    print(f"{len(run)} frames, {report['source'][0]}x{report['source'][1]} -> "
          f"{report['output'][0]}x{report['output'][1]}, device {report['device']}")
    for pane in report["panes"]:
        print(f"  {pane['model']:<22} {pane['ms']:8.2f} ms/frame {pane['fps']:8.1f} fps"
              f"  ({pane['backend'] or '?'})")
    print(f"  display with all {len(report['panes'])} panes: {report['display_fps']:.1f} fps")
    print(json.dumps(report))
    return report


