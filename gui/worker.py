"""The render thread: decodes source frames and runs every pane's model, off the UI thread.

The window sends commands (open, play, pause, seek, step, models) by calling methods that only
record them under a lock; the thread's loop picks them up and answers with signals carrying
numpy images. Results for one frame are cached per model, so switching one pane's model only
computes that pane.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PyQt6.QtCore import QThread, pyqtSignal

from vidsr.color import yuv_to_rgb
from vidsr.engine import Engine
from vidsr.engine.panes import RGB_WORKERS
from vidsr.errors import VidsrError
from vidsr.webcam import camera_label, live_threads
from vidsr.weights import is_untrained

from .errors import error_message
from .sources import CameraFrames, FileFrames, SourceFrame, SourceInfo

log = logging.getLogger(__name__)

EMA = 0.2  # weight of the newest measurement in the ms/frame average
MAX_ENGINES = 8


def display_rate(fps: float, gap: float) -> float:
    """The shown-frames rate after a frame ``gap`` seconds after the last, from the rate so far
    (0: none yet): the running average of the intervals, not of their rates, which a catch-up
    frame shown at once after a late one (1 / 1 ms) lifted far above the frame rate."""
    gap = max(gap, 1e-6)
    interval = 1.0 / fps if fps else gap
    return 1.0 / ((1 - EMA) * interval + EMA * gap)


@dataclass
class PaneResult:
    """One model's output for the current frame."""

    model: str                 # the name the pane asked for
    name: str = ""             # canonical model name
    rgb: np.ndarray | None = None
    ms: float = 0.0            # this frame's SR time (luma model + chroma bicubic)
    ms_avg: float = 0.0        # running average over recent frames
    untrained: bool = False
    backend: str = ""
    error: str = ""


@dataclass
class Rendered:
    """Everything the window shows for one source frame."""

    index: int
    time: float
    source_size: tuple[int, int]
    results: list[PaneResult] = field(default_factory=list)
    display_fps: float = 0.0
    wall: float = 0.0  # time.perf_counter() when it was rendered


class RenderWorker(QThread):
    """Owns the source and the engines; renders frames on request or while playing."""

    opened = pyqtSignal(object)        # SourceInfo
    rendered = pyqtSignal(object)      # Rendered
    playing_changed = pyqtSignal(bool)
    message = pyqtSignal(str)          # status text
    failed = pyqtSignal(str)           # an error to show the user
    ended = pyqtSignal()               # playing or a step went past the last frame

    def __init__(self, models: list[str], device: str = "auto",
                 max_height: int | None = None, threads: int | None = None) -> None:
        super().__init__()
        self.device = device
        # CPU SR threads (band workers) per engine: all cores but one by default, the other
        # left to decoding and the window (the engines' own default takes every core)
        self.threads = live_threads(threads)
        self.max_height = max_height
        self.realtime = True  # while playing, wait for each frame's due time (False: flat out)
        self._cond = threading.Condition()
        self._models = list(models)
        self._open: tuple[str, Any] | None = None
        self._seek: float | None = None
        self._step = 0
        self._rerender = False
        self._playing = False
        self._play_left: int | None = None  # frames left to play before pausing (None: all)
        self._play_start = False  # the next played frame is the first after play()
        self._quit = False
        self._source: FileFrames | CameraFrames | None = None
        self._frame: SourceFrame | None = None
        self._engines: dict[str, tuple[Engine, bool]] = {}
        self._failed: dict[str, str] = {}  # model -> why it did not load (not retried per frame)
        self._cache: dict[str, PaneResult] = {}   # model -> result for self._frame
        self._avg: dict[str, float] = {}
        self._last_shown: float | None = None
        self._next_due: float | None = None  # when the next played frame starts (pacing)
        self._pool = ThreadPoolExecutor(max_workers=RGB_WORKERS, thread_name_prefix="vidsr-rgb")
        self._display_fps = 0.0

    # -- commands (any thread) --------------------------------------------------------------
    def _command(self, **changes: Any) -> None:
        with self._cond:
            for key, value in changes.items():
                setattr(self, key, value)
            self._cond.notify_all()

    def open_file(self, path: str) -> None:
        # a seek or step made before it was meant for the source it replaces
        self._command(_open=("file", path), _playing=False, _seek=None, _step=0)

    def open_camera(self, source: Any) -> None:
        self._command(_open=("camera", source), _playing=True, _seek=None, _step=0)

    def set_models(self, models: list[str]) -> None:
        # a model that failed to load is tried again once the panes are set anew
        self._command(_models=list(models), _rerender=True, _failed={})

    def play(self, frames: int | None = None, restart: bool = True) -> None:
        """Play on from the current frame (from the start when the video has ended, unless
        not ``restart``); with ``frames``, pause after that many."""
        self._command(_playing=True, _play_left=frames, _play_start=restart)

    def pause(self) -> None:
        self._command(_playing=False)

    def seek(self, seconds: float) -> None:
        self._command(_seek=float(seconds), _step=0)

    def step(self, frames: int = 1) -> None:
        """Show the frame ``frames`` on (back when negative: only in a seekable source, so a
        step back on a camera neither pauses it nor shows anything) and pause there."""
        if frames < 0 and self._source is not None and not self._source.seekable:
            return
        with self._cond:
            was_playing = self._playing
            self._step += frames
            self._playing = False
            self._cond.notify_all()
        if was_playing:
            self.playing_changed.emit(False)

    def stop(self) -> None:
        self._command(_quit=True)
        # No time limit: a QThread destroyed while it runs aborts the process, and the loop
        # notices the quit after the frame in hand (a long seek gives way at once).
        self.wait()

    @property
    def playing(self) -> bool:
        return self._playing

    # -- the loop ---------------------------------------------------------------------------
    def _has_work(self) -> bool:
        return bool(self._quit or self._open or self._seek is not None or self._step
                    or self._rerender or (self._playing and self._source is not None))

    def run(self) -> None:
        while True:
            with self._cond:
                while not self._has_work():
                    self._cond.wait()
                if self._quit:
                    break
                job = (self._open, self._seek, self._step, self._rerender, list(self._models))
                self._open, self._seek, self._step, self._rerender = None, None, 0, False
            try:
                self._do(*job)
            except Exception as exc:  # noqa: BLE001 - an escaping exception aborts the app
                self._command(_playing=False)
                self.playing_changed.emit(False)
                self.failed.emit(error_message(exc, "render"))
        self._pool.shutdown()
        for engine, _untrained in self._engines.values():
            engine.close()
        if self._source is not None:
            self._source.close()

    def _do(self, open_req: tuple[str, Any] | None, seek: float | None, step: int,
            rerender: bool, models: list[str]) -> None:
        # An open, a seek and a step picked up together are done in that order (a command
        # cancels those before it: see open_file, seek), and only the frame they end on is
        # computed; a step that arrived with a seek was lost.
        at: SourceFrame | None = None  # where the open or seek landed, not yet shown
        if open_req is not None:
            at = self._open_source(*open_req)
            self.playing_changed.emit(self._playing)
        if self._source is None:
            return
        if seek is not None:
            at = (self._source.seek(seek, stop=self._has_new_command)
                  if self._source.seekable else self._source.next())
            if at is None:  # past the end
                self._show(None, models)
                return
        base = at if at is not None else self._frame
        if step > 0 or (step < 0 and base is not None and self._source.seekable):
            frame = self._stepped(step, base)
            if frame is None and at is not None:  # stepped past the end: show where it got
                self._show(at, models)
            self._show(frame, models)
            return
        if open_req is not None or seek is not None:
            self._show(at, models)
            return
        if rerender and self._frame is not None:
            self._render(self._frame, models, new_frame=False)
            return
        if self._playing:
            if not self._pace():
                return  # a command came in while waiting: it goes first
            frame = self._source.next()
            with self._cond:
                restart, self._play_start = self._play_start, False
            if frame is None and restart and self._source.seekable:
                frame = self._source.seek(0.0)  # Play at the end plays it again, as players do
            self._show(frame, models)
            with self._cond:
                if self._play_left is not None and self._playing:
                    self._play_left -= 1
                    if self._play_left <= 0:
                        self._playing, self._play_left = False, None
                        self.playing_changed.emit(False)

    def _stepped(self, step: int, base: SourceFrame) -> SourceFrame | None:
        """The frame ``step`` frames on from ``base``, the source's position (back: a seek)."""
        assert self._source is not None
        if step > 0:
            for _ in range(step - 1):
                self._source.next()
            return self._source.next()
        target = base.time + step / self._source.fps
        return self._source.seek(max(0.0, target - 0.25 / self._source.fps))

    def _pace(self) -> bool:
        """While playing, do not run ahead of the source's frame rate: frames start one period
        apart (the time a frame takes to compute and show is inside its period, not added to
        it), and a late frame is not made up for by a burst. False when a command arrived
        during the wait."""
        if not self.realtime or self._source is None or self._source.self_paced:
            return True  # a camera delivers frames at its own pace
        period = 1.0 / max(self._source.fps, 1.0)
        if self._next_due is None:  # the first frame after play, a seek or an open
            self._next_due = time.perf_counter()
        with self._cond:
            while not self._has_work_besides_play() and time.perf_counter() < self._next_due:
                self._cond.wait(timeout=max(0.0, self._next_due - time.perf_counter()))
            if self._has_work_besides_play():
                return False
        self._next_due = max(self._next_due, time.perf_counter() - period) + period
        return True

    def _has_new_command(self) -> bool:
        """A quit, open or seek arrived (a long seek gives way to it)."""
        return bool(self._quit or self._open or self._seek is not None)

    def _has_work_besides_play(self) -> bool:
        return self._has_new_command() or bool(self._step or self._rerender or not self._playing)

    def _open_source(self, kind: str, what: Any) -> SourceFrame:
        """Open ``what`` and read its first frame; only then does it replace the current source
        (a file that fails to open leaves the one on screen playable)."""
        label = what if kind == "file" or not isinstance(what, (int, str)) else camera_label(what)
        self.message.emit(f"opening {label}...")
        if kind == "file":
            src: FileFrames | CameraFrames = FileFrames(what, self.max_height)
        else:
            src = CameraFrames(what, max_height=self.max_height)
        try:
            frame = src.next()
            if frame is None:
                raise VidsrError(f"{src.label()} has no video frames")
        except BaseException:
            src.close()
            raise
        if self._source is not None:
            self._source.close()
        self._source = src
        # a new source: no cached results, averages or display rate from the old one
        self._frame, self._cache, self._last_shown, self._next_due = None, {}, None, None
        self._avg, self._display_fps, self._failed = {}, 0.0, {}
        first = (src.size[0], src.size[1])
        if frame.quarter_turns % 2:  # shown upright: sizes as displayed
            first = first[::-1]
        # a pixel's shape as shown: a sample aspect ratio turns with the picture
        sar = src.sample_aspect
        aspect = 1.0 / sar if frame.quarter_turns % 2 else sar
        self.opened.emit(SourceInfo(src.label(), first, frame.shown_size, float(src.fps),
                                    src.duration, src.seekable,
                                    str(what) if kind == "file" else None, aspect))
        return frame

    def _show(self, frame: SourceFrame | None, models: list[str]) -> None:
        if frame is None:  # the last frame stays on screen
            if self._playing:
                self._command(_playing=False)
                self.playing_changed.emit(False)
            if self._source is not None and self._source.self_paced \
                    and not self._source.seekable:  # a camera unplugged, a stream gone
                self.message.emit(f"{self._source.label()} stopped sending frames; Open camera "
                                  f"to try it again")
            else:
                # a file cut short (after a seek the reader does not say so itself) says where
                early = self._source.ended_early() if self._source is not None else None
                self.message.emit(f"end of video: {early}" if early else "end of video")
            self.ended.emit()
            return
        self._render(frame, models, new_frame=True)

    # -- rendering --------------------------------------------------------------------------
    def _engine(self, model: str) -> tuple[Engine, bool]:
        if model in self._failed:  # said once; loading it again each frame would not help
            raise VidsrError(self._failed[model])
        if model not in self._engines:
            self.message.emit(f"loading {model}...")
            try:
                with warnings.catch_warnings():
                    # An untrained model warns; the pane says "untrained" instead.
                    warnings.simplefilter("ignore")
                    # No background torch.compile: with several models it would hold the CPU
                    # (and the GIL) for minutes on a small machine; the window must respond.
                    engine = Engine(model, device=self.device, compile_after=None,
                                    threads=self.threads)
            except VidsrError as exc:
                self._failed[model] = str(exc)
                raise
            if len(self._engines) >= MAX_ENGINES:
                # the least recently used goes (the panes' own are used every frame)
                self._engines.pop(next(iter(self._engines)))[0].close()
            self._engines[model] = (engine, is_untrained(engine.spec))
        else:  # most recently used last
            self._engines[model] = self._engines.pop(model)
        return self._engines[model]

    def _render(self, frame: SourceFrame, models: list[str], new_frame: bool) -> None:
        if new_frame:
            self._frame, self._cache = frame, {}
        # Each model's YUV -> RGB conversion runs on the pool while the next model computes.
        converting = []
        for model in dict.fromkeys(models):
            if model in self._cache:
                continue
            result, planes = self._run_model(model, frame)
            self._cache[model] = result
            if planes is not None:
                converting.append((result, self._pool.submit(
                    yuv_to_rgb, *planes, frame.matrix, frame.full_range,
                    bit_depth=frame.bit_depth)))
        for result, rgb in converting:
            result.rgb = rgb.result()
            if frame.quarter_turns:  # upright, as a player shows it (a phone's portrait video)
                result.rgb = np.ascontiguousarray(np.rot90(result.rgb, frame.quarter_turns))
        now = time.perf_counter()
        if not self._playing:  # a step, a seek or a paused re-render: no display rate
            self._display_fps = 0.0
        elif new_frame and self._last_shown is not None:
            self._display_fps = display_rate(self._display_fps, now - self._last_shown)
        if new_frame:  # a frame shown while paused starts no interval (a pause is not a gap)
            self._last_shown = now if self._playing else None
            if not self._playing:  # playing on from here starts a new pacing schedule
                self._next_due = None
        self.rendered.emit(Rendered(frame.index, frame.time, frame.shown_size,
                                    [self._cache[m] for m in models], self._display_fps, now))

    def _run_model(self, model: str, frame: SourceFrame) -> tuple[PaneResult, Any]:
        """Run one model on ``frame``: its result (without RGB yet) and the upscaled planes."""
        try:
            engine, untrained = self._engine(model)
        except VidsrError as exc:
            return PaneResult(model, error=str(exc)), None
        t0 = time.perf_counter()
        y, u, v = engine.upscale_frame(frame.y, frame.u, frame.v, bit_depth=frame.bit_depth,
                                       siting=frame.siting, subsampling=frame.subsampling)
        ms = (time.perf_counter() - t0) * 1e3
        prev = self._avg.get(engine.name)
        avg = ms if prev is None else (1 - EMA) * prev + EMA * ms
        self._avg[engine.name] = avg
        return PaneResult(model, engine.name, None, ms, avg, untrained,
                          getattr(engine, "backend", "")), (y, u, v)
