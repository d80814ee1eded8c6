"""Export: run the library's file pipeline (``vidsr.pipeline.upscale_video``) in a thread,
reporting progress to the window; cancelling removes the partial output (the pipeline writes
to a temporary file and renames it only on success)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QThread, pyqtSignal

from vidsr.errors import Cancelled

from .errors import error_message


def progress_fraction(progress: Any) -> float | None:
    """Done fraction of a pipeline ``Progress`` (None when the total is unknown)."""
    done = getattr(progress, "frames", None)
    total = getattr(progress, "total", None)
    if done is None or not total:
        return None
    return min(max(done / total, 0.0), 1.0)


def progress_text(progress: Any) -> str:
    """One status line for a pipeline ``Progress``."""
    done = getattr(progress, "frames", 0)
    total = getattr(progress, "total", None)
    fps = getattr(progress, "fps", None)
    eta = getattr(progress, "eta", None)
    parts = [f"frame {done}" + (f"/{total}" if total else "")]
    if fps:
        parts.append(f"{fps:.1f} fps")
    if eta is not None:
        parts.append(f"ETA {eta:.0f} s")
    return " · ".join(parts)


class ExportWorker(QThread):
    """Upscale ``src`` to ``dst`` with ``model``; emits progress, then done/failed/cancelled."""

    progress = pyqtSignal(object)   # the pipeline's Progress
    done = pyqtSignal(object)       # the pipeline's RunSummary
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()

    def __init__(self, src: str | Path, dst: str | Path, model: str, device: str = "auto",
                 overwrite: bool = True) -> None:
        super().__init__()
        self.src, self.dst, self.model = Path(src), Path(dst), model
        self.device, self.overwrite = device, overwrite
        self.cancel_event = threading.Event()
        self.ended = False  # set just before done/failed/cancelled: the thread is then closing

    def _end(self, signal: Any, *args: object) -> None:
        self.ended = True
        signal.emit(*args)

    def cancel(self) -> None:
        self.cancel_event.set()

    def run(self) -> None:
        from vidsr.pipeline import upscale_video

        try:
            summary = upscale_video(self.src, self.dst, model=self.model, device=self.device,
                                    overwrite=self.overwrite, progress=self.progress.emit,
                                    cancel=self.cancel_event)
        except Cancelled:
            self._end(self.cancelled)
        except Exception as exc:  # noqa: BLE001 - an escaping exception aborts the app
            if self.cancel_event.is_set():
                self._end(self.cancelled)
            else:
                self._end(self.failed, error_message(exc, "export"))
        else:
            if self.cancel_event.is_set() and not self.dst.exists():
                self._end(self.cancelled)
            else:
                self._end(self.done, summary)
