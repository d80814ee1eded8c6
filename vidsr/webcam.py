"""Live upscaling of a camera, or of anything that behaves like one.

Frames come from a ``FrameSource`` (an OpenCV camera, or a video file played as a fake camera),
are converted BGR -> Y'CbCr 4:2:0 with an explicit matrix and range, the luma goes through the
model's ``Engine`` and the chroma through its bicubic upscaler, and the result is handed to a
sink (a window, a recorder, a test) as BGR for display plus the upscaled planes for encoding.
Capture runs in its own thread, joined to the processing loop by a bounded queue.
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from .color import rgb_to_yuv, yuv_to_rgb
from .errors import InputError
from .sizes import parse_size  # noqa: F401 - part of this module's API (vidsr webcam --size)

log = logging.getLogger(__name__)

MAX_CAMERA_INDEX = 10
# A stream URL that connects but sends nothing (a hung camera or server) gives up after this
# long, opening or reading, instead of OpenCV's FFmpeg default of 30 s: the GUI's worker
# thread sat in it, and closing the window waited for it.
STREAM_TIMEOUT_MS = 8000


@runtime_checkable
class FrameSource(Protocol):
    """Something that delivers BGR uint8 frames one at a time, like a camera."""

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of every frame ``read`` returns."""

    @property
    def fps(self) -> float:
        """Nominal frame rate."""

    def read(self) -> np.ndarray | None:
        """The next ``H x W x 3`` BGR uint8 frame, or ``None`` when the source has ended."""

    def close(self) -> None:
        """Release the device or file."""


class _OpenCVSource:
    """Shared plumbing of the OpenCV-backed sources: resize to the promised size, close."""

    def __init__(self, cap: cv2.VideoCapture, size: tuple[int, int] | None, label: str) -> None:
        self._cap = cap
        self._label = label
        native = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._size = size or native
        if size and native != size and native[0] > 0:
            log.info("%s delivers %dx%d; frames are resized to %dx%d",
                     label, native[0], native[1], size[0], size[1])
        fps = cap.get(cv2.CAP_PROP_FPS)
        self._fps = float(fps) if fps and fps > 0 and np.isfinite(fps) else 30.0

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def fps(self) -> float:
        return self._fps

    def _fit(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        if (w, h) == self._size:
            return frame
        interp = cv2.INTER_AREA if w > self._size[0] else cv2.INTER_LINEAR
        return cv2.resize(frame, self._size, interpolation=interp)

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> _OpenCVSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def quiet_opencv() -> Callable[[], None]:
    """Silence OpenCV's own logging (failed camera probes are noisy) and its FFmpeg's (a stream
    that cannot connect), unless the user set ``OPENCV_FFMPEG_LOGLEVEL``; returns the restorer."""
    key = "OPENCV_FFMPEG_LOGLEVEL"  # read by OpenCV's FFmpeg backend when it first opens
    ffmpeg_set = key not in os.environ
    if ffmpeg_set:
        os.environ[key] = "-8"  # AV_LOG_QUIET

    def restore_ffmpeg() -> None:
        if ffmpeg_set:
            os.environ.pop(key, None)

    try:
        logging_mod = cv2.utils.logging
        old = logging_mod.getLogLevel()
        logging_mod.setLogLevel(logging_mod.LOG_LEVEL_SILENT)
    except AttributeError:  # builds without the logging submodule
        return restore_ffmpeg

    def restore() -> None:
        logging_mod.setLogLevel(old)
        restore_ffmpeg()

    return restore


def list_cameras(max_index: int = MAX_CAMERA_INDEX) -> list[int]:
    """Indices in ``0 .. max_index-1`` of the cameras OpenCV can open and read a frame from."""
    restore = quiet_opencv()
    found = []
    try:
        for index in range(max_index):
            cap = cv2.VideoCapture(index)
            try:
                if cap.isOpened() and cap.read()[0]:
                    found.append(index)
            finally:
                cap.release()
    finally:
        restore()
    return found


def is_camera(camera: str | int) -> bool:
    """Whether ``camera`` names a live source: an index (``0``, ``"1"``), a device path
    (``/dev/video2``) or a stream URL (``rtsp://...``, ``http://...``), not a video file."""
    text = str(camera)
    if isinstance(camera, int) or text.isdecimal() or is_stream(text):
        return True
    try:  # a device node, not any file under /dev (/dev/shm holds plain files)
        return text.startswith("/dev/") and stat.S_ISCHR(os.stat(text).st_mode)
    except OSError:
        return text.startswith("/dev/video")  # a camera that is not plugged in: its own error


def is_stream(camera: str | int) -> bool:
    """Whether ``camera`` is a stream URL (``rtsp://...``), which keeps its own frame size."""
    return "://" in str(camera)


def camera_file(camera: str | int) -> Path | None:
    """The video file a ``--camera`` value reads, if it names one: a path, or a ``file://``
    URL; None for a camera or a network stream."""
    text = str(camera)
    if text.lower().startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(text).path))
    return None if is_camera(camera) else Path(text)


def camera_label(camera: str | int) -> str:
    """``camera 0`` or ``camera /dev/video2`` for a local camera; a URL or file as it is."""
    return f"camera {camera}" if str(camera).isdecimal() or str(camera).startswith("/dev/") \
        else str(camera)


class CameraSource(_OpenCVSource):
    """An OpenCV camera by index or device path, or a network stream by URL, asked for
    ``size`` (frames are resized if it cannot comply; ``None`` keeps the source's size)."""

    def __init__(self, index: int | str = 0, size: tuple[int, int] | None = (640, 480),
                 fps: float | None = None) -> None:
        if isinstance(index, str) and index.isdecimal():
            index = int(index)
        restore = quiet_opencv()
        try:
            if is_stream(index):
                cap = cv2.VideoCapture(index, cv2.CAP_FFMPEG,
                                       [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                        cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
            else:
                cap = cv2.VideoCapture(index)
            ok = cap.isOpened()
            if ok and size:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
            if ok and fps:
                cap.set(cv2.CAP_PROP_FPS, fps)
            first = cap.read() if ok else (False, None)
        finally:
            restore()
        if not first[0]:
            cap.release()
            if is_stream(index):
                raise InputError(f"{index} cannot be opened or delivers no frames")
            others = [i for i in list_cameras() if i != index]
            listing = ", ".join(str(i) for i in others) if others else "none"
            raise InputError(f"{camera_label(index)} cannot be opened or delivers no frames; "
                             f"cameras that work (indices 0-{MAX_CAMERA_INDEX - 1}): {listing}")
        super().__init__(cap, size, camera_label(index))
        self._pending: np.ndarray | None = first[1]

    def read(self) -> np.ndarray | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return self._fit(frame)
        ok, frame = self._cap.read()
        return self._fit(frame) if ok else None


class VideoFileSource(_OpenCVSource):
    """A video file played as a fake camera: frames resized to ``size``, optionally looping
    and optionally paced at the file's frame rate (``realtime``) like a real camera."""

    def __init__(self, path: str | Path, size: tuple[int, int] | None = None, *,
                 loop: bool = False, realtime: bool = False) -> None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"no such file: {path}")
        # OpenCV's FFmpeg prints its own errors ("moov atom not found") before ours; quiet
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        cap = cv2.VideoCapture(str(path))
        ok, first = cap.read() if cap.isOpened() else (False, None)
        if not ok:
            cap.release()
            raise InputError(f"{path} cannot be opened as a video")
        # by default the first frame's own size (OpenCV applies a rotation tag, which the
        # width and height it reports do not); a size given is what the frames become
        super().__init__(cap, size or (first.shape[1], first.shape[0]), str(path))
        self._pending: np.ndarray | None = first
        self._path = str(path)
        self._loop = loop
        self._realtime = realtime
        self._next_due: float | None = None

    def read(self) -> np.ndarray | None:
        if self._pending is not None:
            ok, frame, self._pending = True, self._pending, None
        else:
            ok, frame = self._cap.read()
        if not ok and self._loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
            if not ok:  # a source that cannot seek back (a still image): opened again
                self._cap.release()
                self._cap = cv2.VideoCapture(self._path)
                ok, frame = self._cap.read()
        if not ok:
            return None
        if self._realtime:
            now = time.perf_counter()
            self._next_due = max(self._next_due or now, now - 1.0 / self.fps) + 1.0 / self.fps
            time.sleep(max(0.0, self._next_due - 1.0 / self.fps - now))
        return self._fit(frame)


def live_threads(requested: int | None = None) -> int:
    """``requested``, else all cores but one (the one left to capture, conversion, display)."""
    import os

    return requested if requested else max(1, (os.cpu_count() or 1) - 1)


def cpu_threads(requested: int | None = None) -> int:
    """Set and return PyTorch's CPU thread count for live work.

    By default one core is left to capture, decoding, colour conversion and the window: on a
    busy 2-core machine two PyTorch threads spin against each other and the other stages and
    run many times slower than one (measured: 500 ms vs 15 ms per 180p bicubic frame).
    """
    import torch

    n = live_threads(requested)
    torch.set_num_threads(n)
    return n


def open_source(camera: str | int, size: tuple[int, int] | None = (640, 480), *,
                loop: bool = False, realtime: bool = False) -> FrameSource:
    """A camera for an index (``0``, ``"1"``), a device path or a stream URL (``is_camera``),
    otherwise the video file at that path."""
    if not str(camera).strip():
        raise InputError("no camera given: --camera takes an index, a device path, a stream "
                         "URL or a video file")
    if is_camera(camera):
        return CameraSource(camera, size)
    return VideoFileSource(camera, size, loop=loop, realtime=realtime)


@dataclass
class LiveFrame:
    """One upscaled frame: BGR for display and the upscaled Y'CbCr planes for encoding."""

    index: int
    bgr: np.ndarray
    planes: tuple[np.ndarray, np.ndarray, np.ndarray]
    captured: float  # time.perf_counter() when the source delivered it
    sr_ms: float
    latency_ms: float = 0.0


class LiveUpscaler:
    """BGR frame -> Y'CbCr 4:2:0 (``matrix``, ``full_range``, left siting) -> luma through the
    engine, chroma bicubic -> BGR. The engine is any object with ``scale``,
    ``upscale_luma(plane)`` and ``upscale_chroma(plane, siting=...)`` (``vidsr.engine.Engine``).
    """

    def __init__(self, engine: Any, matrix: str = "bt601", full_range: bool = False) -> None:
        self.engine = engine
        self.matrix = matrix
        self.full_range = full_range

    @property
    def scale(self) -> int:
        return int(self.engine.scale)

    def prepare(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """BGR -> Y'CbCr 4:2:0, chroma upscaled: ``(y, u_up, v_up, chroma_ms)``.

        ``run_live`` calls this on the capture thread, so chroma work overlaps the luma SR of
        the previous frame on another core.
        """
        y, u, v = rgb_to_yuv(bgr, self.matrix, self.full_range, siting="left", bgr=True)
        t0 = time.perf_counter()
        u = self.engine.upscale_chroma(u, siting="left")
        v = self.engine.upscale_chroma(v, siting="left")
        return y, u, v, (time.perf_counter() - t0) * 1e3

    def process(self, bgr: np.ndarray, index: int = 0, captured: float | None = None, *,
                prepared: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None,
                ) -> LiveFrame:
        """Upscale one frame (``prepared``: its ``prepare`` output, when already made).
        ``sr_ms`` is the luma model's time plus the chroma upscale's."""
        captured = time.perf_counter() if captured is None else captured
        y, u, v, chroma_ms = prepared if prepared is not None else self.prepare(bgr)
        t0 = time.perf_counter()
        y = self.engine.upscale_luma(y)
        sr_ms = (time.perf_counter() - t0) * 1e3 + chroma_ms
        out = yuv_to_rgb(y, u, v, self.matrix, self.full_range, bgr=True)
        return LiveFrame(index, out, (y, u, v), captured, sr_ms)


@dataclass
class LiveStats:
    """What a live run measured. ``seconds`` runs from the first frame's capture to the last
    frame's hand-off to the sink; ``fps`` is the steady-state rate, the frames after the first
    over ``span`` (the first hand-off to the last): n frames are n - 1 intervals, and counting
    n over them made a 25 fps source read 27.7 fps over 10 frames."""

    frames: int = 0
    seconds: float = 0.0
    span: float = 0.0  # seconds from the first frame's hand-off to the last's
    latencies_ms: list[float] = field(default_factory=list)
    sr_ms: list[float] = field(default_factory=list)
    dropped: int = 0          # captured frames dropped because processing was behind
    ended: bool = False       # the source stopped delivering (a file's end, a camera gone)
    display_skipped: int = 0  # processed frames a window did not get to paint

    @property
    def fps(self) -> float:
        if self.frames > 1 and self.span > 0:
            return (self.frames - 1) / self.span
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_latency_ms(self) -> float:
        return float(np.mean(self.latencies_ms)) if self.latencies_ms else 0.0

    @property
    def mean_sr_ms(self) -> float:
        return float(np.mean(self.sr_ms)) if self.sr_ms else 0.0


_END = object()


def draw_overlay(frame: np.ndarray, lines: list[str]) -> None:
    """Write ``lines`` in the top-left corner of a BGR frame, on a dark box, in place."""
    scale = max(0.4, frame.shape[0] / 1000)
    thick = 1 if scale < 0.8 else 2
    sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0] for t in lines]
    line_h = max(s[1] for s in sizes) + int(10 * scale)
    box_w = max(s[0] for s in sizes) + int(16 * scale)
    sub = frame[: line_h * len(lines) + int(10 * scale), :box_w]
    sub[:] = (sub * 0.35).astype(np.uint8)
    for i, text in enumerate(lines):
        org = (int(8 * scale), line_h * (i + 1))
        cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick,
                    cv2.LINE_AA)


def run_live(source: FrameSource, upscaler: LiveUpscaler, *,
             on_frame: Callable[[LiveFrame], bool | None] | None = None,
             max_frames: int | None = None, cancel: threading.Event | None = None,
             drop_late: bool = False, overlay: bool = True, label: str = "") -> LiveStats:
    """Upscale frames from ``source`` until it ends, ``max_frames`` were shown, ``cancel`` is
    set or ``on_frame`` returns ``False``; returns what was measured.

    Capture runs in a thread. ``drop_late`` (for live cameras) keeps only the newest captured
    frame when processing falls behind, which bounds latency; without it every frame is
    processed in order (a file). With ``overlay`` the BGR frame carries the fps and latency.
    """
    stop = threading.Event()
    frames: queue.Queue = queue.Queue(maxsize=1 if drop_late else 4)
    stats = LiveStats()

    def capture() -> None:
        index = 0
        try:
            while not stop.is_set():
                frame = source.read()
                if frame is None:
                    break
                captured = time.perf_counter()
                item = (index, frame, captured, upscaler.prepare(frame))
                index += 1
                while not stop.is_set():
                    try:
                        frames.put(item, timeout=0.05)
                        break
                    except queue.Full:
                        if drop_late:
                            try:
                                frames.get_nowait()
                                stats.dropped += 1
                            except queue.Empty:
                                pass
            item = _END
        except Exception as exc:  # re-raised in the caller
            item = exc
        while not stop.is_set():
            try:
                frames.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=capture, name="vidsr-capture", daemon=True)
    thread.start()
    first: float | None = None
    first_handed: float | None = None
    fps_ema = 0.0
    last_done: float | None = None
    try:
        while max_frames is None or stats.frames < max_frames:
            if cancel is not None and cancel.is_set():
                break
            try:
                item = frames.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _END:
                stats.ended = True
                break
            if isinstance(item, Exception):
                raise item
            index, bgr, captured, prepared = item
            first = captured if first is None else first
            result = upscaler.process(bgr, index, captured, prepared=prepared)
            now = time.perf_counter()
            result.latency_ms = (now - captured) * 1e3
            if last_done is not None:
                inst = 1.0 / max(now - last_done, 1e-6)
                fps_ema = inst if fps_ema == 0 else 0.9 * fps_ema + 0.1 * inst
            last_done = now
            if overlay:
                h, w = result.bgr.shape[:2]
                draw_overlay(result.bgr, [
                    f"{label}  {w}x{h}".strip(),
                    f"{fps_ema:5.1f} fps  latency {result.latency_ms:4.0f} ms  "
                    f"SR {result.sr_ms:4.1f} ms"])
            stats.frames += 1
            stats.latencies_ms.append(result.latency_ms)
            stats.sr_ms.append(result.sr_ms)
            keep_going = on_frame(result) if on_frame is not None else None
            handed = time.perf_counter()
            first_handed = handed if first_handed is None else first_handed
            stats.seconds = handed - first
            stats.span = handed - first_handed
            if keep_going is False:
                break
    finally:
        stop.set()
        thread.join(timeout=5)
    return stats
