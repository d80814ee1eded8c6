"""Where the GUI's frames come from: a video file (the library's ``VideoReader``) or a camera
(``vidsr.webcam``), both delivered as Y'CbCr planes with the colour tags needed to show them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vidsr.color import matrix_name, rgb_to_yuv
from vidsr.errors import InputError
from vidsr.webcam import (
    FrameSource,
    camera_file,
    camera_label,
    is_camera,
    is_stream,
    open_source,
)

log = logging.getLogger(__name__)


def quarter_turns(rotation: float) -> int:
    """``np.rot90``'s ``k`` for a display rotation in degrees counterclockwise."""
    return round(rotation / 90) % 4


@dataclass(frozen=True)
class SourceFrame:
    """One source frame's planes and what is needed to upscale and display them."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    time: float
    index: int
    bit_depth: int = 8
    matrix: str = "bt709"
    full_range: bool = False
    siting: str = "left"
    subsampling: tuple[int, int] = (2, 2)  # (vertical, horizontal), as the Engine takes it
    rotation: int = 0  # the display rotation, degrees counterclockwise (PyAV's frame.rotation)

    @property
    def size(self) -> tuple[int, int]:
        return self.y.shape[1], self.y.shape[0]

    @property
    def quarter_turns(self) -> int:
        """``np.rot90``'s ``k`` that turns the coded picture upright for display."""
        return quarter_turns(self.rotation)

    @property
    def shown_size(self) -> tuple[int, int]:
        """``(width, height)`` as displayed, upright."""
        w, h = self.size
        return (h, w) if self.quarter_turns % 2 else (w, h)


@dataclass(frozen=True)
class SourceInfo:
    """What the window needs to know about an opened source."""

    label: str
    size: tuple[int, int]          # the source's own size
    preview_size: tuple[int, int]  # the size the panes' models get (after any preview shrink)
    fps: float
    duration: float | None         # seconds; None for a camera
    seekable: bool
    path: str | None = None        # the file, for a file source
    pixel_aspect: float = 1.0      # shown width / height of one pixel as displayed (anamorphic
    #                                video: its sample aspect ratio, upright)

    @property
    def display_size(self) -> tuple[int, int]:
        """``size`` as a player shows it: the width stretched by ``pixel_aspect``."""
        w, h = self.size
        return max(1, round(w * self.pixel_aspect)), h


def shrink(frame: SourceFrame, max_height: int | None) -> SourceFrame:
    """The frame scaled down (area average) to at most ``max_height`` lines *as shown* (a
    frame shown turned by 90 degrees is limited in its width), even sizes kept even so 4:2:0
    chroma stays exactly half."""
    w, h = frame.shown_size  # work in the shown orientation
    turned = frame.quarter_turns % 2 == 1
    if not max_height or h <= max_height:
        return frame
    nh = max(2, int(max_height) // 2 * 2)
    nw = max(2, int(round(w * nh / h / 2)) * 2)
    if turned:
        nw, nh = nh, nw
    sv, sh = frame.subsampling
    cw, ch = -(-nw // sh), -(-nh // sv)

    def area(p: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return cv2.resize(p, size, interpolation=cv2.INTER_AREA)

    return replace(frame, y=area(frame.y, (nw, nh)), u=area(frame.u, (cw, ch)),
                   v=area(frame.v, (cw, ch)))


class FileFrames:
    """A video file through ``vidsr.io.reader.VideoReader``: sequential frames and seeking."""

    seekable = True
    self_paced = False  # played at its frame rate by the worker

    def __init__(self, path: str | Path, max_height: int | None = None) -> None:
        from vidsr.io.reader import VideoReader

        self.path = Path(path)
        self.max_height = max_height
        self._reader = VideoReader(self.path)
        self._reader.__enter__()
        info = self._reader.info
        self.info = info
        self.size = (int(info.width), int(info.height))
        self.fps = float(info.fps) if info.fps else 30.0
        self.duration: float | None = info.duration
        self.bit_depth = int(info.bit_depth)
        self.matrix = matrix_name(info.matrix, info.height)
        self.full_range = bool(info.full_range)
        loc = str(info.chroma_location or "left").lower()
        self.siting = "left" if loc in ("", "unknown", "unspecified") else loc
        self.subsampling = info.layout.subsampling
        self.rotation = int(info.rotation or 0)
        sar = info.sample_aspect_ratio
        self.sample_aspect = float(sar) if sar and sar > 0 else 1.0  # coded orientation
        self._iter = iter(self._reader)
        self._ran_out = False  # the last ``next`` found no frame left (not a seek given up)

    def label(self) -> str:
        return self.path.name

    def next(self) -> SourceFrame | None:
        frame = next(self._iter, None)
        self._ran_out = frame is None
        if frame is None:
            return None
        return shrink(self._source_frame(frame), self.max_height)

    def ended_early(self) -> str | None:
        """Once ``next`` has run out: why the file ends before its stated length (the
        reader's message, as the command line refuses it), or None. Played from the start,
        the reader raises this itself; after a seek it does not look, and the cut went
        unremarked ("end of video", the full length beside it)."""
        if not self._ran_out:
            return None
        try:
            self._reader.check_complete()
        except InputError as exc:
            # the file by its name, as the window's source label gives it
            return str(exc).replace(str(self._reader.path), self.path.name)
        return None

    def _source_frame(self, frame: Any) -> SourceFrame:
        # from the first frame: the times handed over have an MPEG-TS's start taken off
        at = float(frame.time) + self._reader.rebase - self._reader.origin
        return SourceFrame(frame.y, frame.u, frame.v, at,
                           int(frame.index),
                           self.bit_depth, self.matrix, self.full_range, self.siting,
                           self.subsampling, self.rotation)

    def seek(self, seconds: float, stop: Callable[[], bool] | None = None,
             ) -> SourceFrame | None:
        """Position at the first frame at or after ``seconds`` and return it; past the last
        frame (the end of the slider, or beyond where a cut-short file stops), the last frame,
        with nothing left to play after it. Looking back for that frame decodes ever longer
        stretches before ``seconds``; ``stop()`` true between frames gives up (None)."""
        self._reader.seek(max(0.0, seconds))
        self._iter = iter(self._reader)
        frame = self.next()
        back = 1.0
        while frame is None and seconds > 0:
            start = max(0.0, seconds - back)
            self._reader.seek(start)
            self._iter = iter(self._reader)
            for frame in self._iter:  # noqa: B007 - the last one is wanted
                if stop is not None and stop():
                    self._ran_out = False  # given up part way: the end was not reached
                    return None
            if frame is not None:
                return shrink(self._source_frame(frame), self.max_height)
            if start == 0.0:
                return None
            back *= 4
        return frame

    def close(self) -> None:
        self._reader.__exit__(None, None, None)


class CameraFrames:
    """A camera (or any ``FrameSource``) converted to BT.601 limited-range 4:2:0 planes, the
    convention of SD webcams."""

    seekable = False
    duration = None
    sample_aspect = 1.0  # square pixels (OpenCV delivers them so)

    def __init__(self, source: int | str | FrameSource,
                 size: tuple[int, int] | None = (640, 480),
                 max_height: int | None = None, matrix: str = "bt601") -> None:
        if isinstance(source, (int, str)):  # what ``vidsr webcam --camera`` takes
            local = is_camera(source) and not is_stream(source)  # a stream or file: own size
            self._source: FrameSource = open_source(source, size if local else None)
            self._name = camera_label(source)
            # a camera or a network stream delivers frames at its own pace; a file (a path or
            # a file:// URL) standing in for one is played at its frame rate by the worker
            self.self_paced = camera_file(source) is None
        else:
            self._source, self._name = source, type(source).__name__
            self.self_paced = True
        self.size = self._source.size
        self.fps = self._source.fps
        self.max_height = max_height
        self.matrix = matrix
        self._index = 0
        self._t0: float | None = None
        # A live source is read in its own thread that keeps only the newest frame: read in
        # turn, a stream's frames queued up behind a slow pane (a network stream buffers them
        # all: the picture fell further behind every second, and a pause showed the moment it
        # was paused when play resumed), as ``vidsr webcam`` drops late frames.
        self.dropped = 0  # frames replaced by a newer one before they were shown
        self._cond = threading.Condition()
        self._latest: tuple[np.ndarray, float] | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.self_paced:
            self._thread = threading.Thread(target=self._capture, name="vidsr-gui-capture",
                                            daemon=True)
            self._thread.start()

    def _capture(self) -> None:
        try:
            while not self._stop.is_set():
                bgr = self._source.read()
                captured = time.perf_counter()
                with self._cond:
                    if bgr is None:
                        break
                    self.dropped += self._latest is not None
                    self._latest = (bgr, captured)
                    self._cond.notify_all()
        except Exception as exc:  # noqa: BLE001 - raised by ``next`` in the worker
            with self._cond:
                self._error = exc
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def _read(self) -> tuple[np.ndarray, float] | None:
        """The next frame and when it was captured (a live source: the newest captured)."""
        if self._thread is None:
            bgr = self._source.read()
            return None if bgr is None else (bgr, time.perf_counter())
        with self._cond:
            while self._latest is None and not self._ended:
                self._cond.wait()
            item, self._latest = self._latest, None
            if item is None and self._error is not None:
                raise self._error
        return item

    def label(self) -> str:
        return self._name

    def next(self) -> SourceFrame | None:
        got = self._read()
        if got is None:
            return None
        bgr, captured = got
        if self.self_paced:  # a camera's frames are timed as they arrive
            self._t0 = captured if self._t0 is None else self._t0
            t = captured - self._t0
        else:  # a file standing in for one: its own clock, which a slow model holds back
            t = self._index / self.fps if self.fps else 0.0
        y, u, v = rgb_to_yuv(bgr, self.matrix, bgr=True)
        frame = SourceFrame(y, u, v, t, self._index, 8, self.matrix)
        self._index += 1
        return shrink(frame, self.max_height)

    def seek(self, seconds: float) -> SourceFrame | None:
        return self.next()

    def ended_early(self) -> str | None:
        return None  # a camera has no stated length

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()  # within one read (a stream's read gives up after a timeout)
        self._source.close()
