"""Recording live upscaled frames with the main pipeline's encoder path (``VideoWriter``)."""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

from .errors import OutputError
from .io import VideoInfo, VideoWriter
from .paths import partial_path
from .signals import stop_signals_held
from .webcam import LiveFrame

_END = object()


_TAGS = {"bt601": "smpte170m", "bt709": "bt709", "bt2020": "bt2020nc"}


def camera_info(size: tuple[int, int], fps: float, matrix: str = "bt601",
                full_range: bool = False, label: str = "camera") -> VideoInfo:
    """A ``VideoInfo`` describing a live source's 8-bit 4:2:0 planes, for ``VideoWriter``.

    The time base is one frame at the nominal rate (``1/fps``); ``Recorder`` places each
    frame on it by frame count or by capture time.
    """
    rate = Fraction(fps).limit_denominator(1001)
    return VideoInfo(
        path=label, width=size[0], height=size[1], fps=rate, time_base=1 / rate, frames=None,
        duration=None, pix_fmt="yuv420p", bit_depth=8, chroma="420",
        color_range="pc" if full_range else "tv", color_space=_TAGS[matrix],
        # Camera RGB is sRGB: BT.709 primaries with the sRGB transfer curve.
        color_primaries="bt709", color_trc="iec61966-2-1", chroma_location="left",
        rotation=0, codec="rawvideo", container="camera")


class Recorder:
    """Encode upscaled live frames into ``path`` with the main pipeline's ``VideoWriter`` on a
    thread of its own. The file is written beside ``path`` and renamed on ``close``; ``abort``
    (or an error) leaves nothing behind.

    ``clock=False`` (a file played as a camera) times frame ``n`` at ``n / fps``: the file's
    own pace, however fast it was processed. ``clock=True`` (a live camera) times each frame
    by when it was captured, on the same ``1/fps`` grid: a camera that delivers fewer frames
    than its nominal rate (low light), or frames the processing could not keep up with, leave
    gaps and the recording plays at the speed of life, not faster.
    """

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float, scale: int, *,
                 matrix: str = "bt601", full_range: bool = False, options: Any = None,
                 overwrite: bool = False, src: str | Path | None = None,
                 clock: bool = False) -> None:
        from .pipeline import check_video_output

        self.path = Path(path)
        # a container the main command writes (.avi, .ts, .png were tried, or written, only
        # here); src: a file read as the camera
        check_video_output(src, self.path, overwrite)
        self.frames = 0
        self._clock = clock
        self._t0: float | None = None
        self._last_pts = -1
        self._tmp = partial_path(self.path)
        info = camera_info(size, fps, matrix, full_range)
        self._rate = float(info.fps)
        self._writer = VideoWriter(self._tmp, info, scale, options, suffix=self.path.suffix,
                                   name=self.path.name)
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="vidsr-record", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not _END:
            if self._error is None:
                try:
                    self._writer.write(*item)
                except BaseException as exc:  # re-raised in write/close
                    self._error = exc

    def write(self, frame: LiveFrame) -> None:
        """Queue one frame (blocks while the encoder is 8 frames behind)."""
        if self._error is not None:
            raise self._error
        if self._clock:
            self._t0 = frame.captured if self._t0 is None else self._t0
            pts = round((frame.captured - self._t0) * self._rate)
        else:
            pts = frame.index
        pts = max(pts, self._last_pts + 1)  # capture jitter never puts two frames on one tick
        self._last_pts = pts
        self._queue.put((*frame.planes, pts))
        self.frames += 1

    def close(self) -> Path:
        """Finish the file and move it into place (``OutputError`` when no frame came)."""
        if not self.frames:
            self.abort()
            raise OutputError(f"no frames were recorded; {self.path} was not written")
        self._queue.put(_END)
        self._thread.join()
        if self._error is not None:
            self.abort()
            raise self._error
        try:
            self._writer.close()
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        self._tmp.replace(self.path)
        return self.path

    def abort(self) -> None:
        """Stop and remove the partial file (a second Ctrl-C meanwhile does not stop that)."""
        with stop_signals_held():
            try:
                if self._thread.is_alive():
                    self._queue.put(_END)
                    self._thread.join()
                self._writer.abort()
            finally:
                self._tmp.unlink(missing_ok=True)
