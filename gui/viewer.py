"""A minimal Qt window that shows live frames, for ``vidsr webcam`` when OpenCV has no GUI
(the ``opencv-python-headless`` wheel). The live loop runs in a thread; closing the window or
pressing q / Esc cancels it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from PyQt6.QtCore import QEventLoop, QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QImage, QKeyEvent, QPainter
from PyQt6.QtWidgets import QApplication, QWidget

from vidsr.signals import on_stop_signals


class _Bridge(QObject):
    """Hands the newest frame to the window. Frames arriving while the window has not yet
    taken the previous one replace it (no queue builds up, so latency stays bounded)."""

    ready = pyqtSignal()
    finished = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self.dropped = 0

    def put(self, bgr: np.ndarray) -> None:
        with self._lock:
            pending, self._frame = self._frame is not None, bgr
            self.dropped += pending
        if not pending:
            self.ready.emit()

    def take(self) -> np.ndarray | None:
        with self._lock:
            frame, self._frame = self._frame, None
        return frame


class LiveWindow(QWidget):
    """Paints BGR frames at their own size (no conversion: Qt reads BGR888); q or Esc closes."""

    def __init__(self, title: str, cancel: threading.Event) -> None:
        super().__init__()
        self.setWindowTitle(title)
        self.cancel = cancel
        self._frame: np.ndarray | None = None
        self._image: QImage | None = None

    def show_bgr(self, bgr: np.ndarray | None) -> None:
        if bgr is None:
            return
        self._frame = np.ascontiguousarray(bgr)  # the QImage below borrows its memory
        h, w = bgr.shape[:2]
        self._image = QImage(self._frame.data, w, h, self._frame.strides[0],
                             QImage.Format.Format_BGR888)
        if not self.isVisible():
            self.resize(w, h)
            self.show()
        self.update()

    def paintEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        if self._image is not None:
            QPainter(self).drawImage(0, 0, self._image)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Q, Qt.Key.Key_Escape):
            self.close()

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802
        self.cancel.set()
        super().closeEvent(event)


def run_with_window(title: str, loop: Callable[[Callable[[np.ndarray], None],
                                                threading.Event], object],
                    ) -> tuple[object, int]:
    """Run ``loop(show, cancel)`` in a thread while a window shows what ``show`` is given.

    Returns what ``loop`` returned and how many frames the window skipped because the next one
    arrived before it had painted the last; re-raises what ``loop`` raised.
    """
    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)
    cancel = threading.Event()
    bridge = _Bridge()
    window = LiveWindow(title, cancel)
    bridge.ready.connect(lambda: window.show_bgr(bridge.take()))
    # A local loop, not app.exec()/app.quit(): QCoreApplication.exit leaves a flag that makes
    # every later QEventLoop in the process return at once (pytest-qt's waits included).
    events = QEventLoop()
    bridge.finished.connect(events.quit)
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = loop(bridge.put, cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome["error"] = exc
        finally:
            bridge.finished.emit()

    thread = threading.Thread(target=target, name="vidsr-live", daemon=True)
    # Qt's loop does not let Python run signal handlers; a timer gives it the chance.
    tick = QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(200)
    # Ctrl-C, SIGTERM and SIGHUP end the run as closing the window does (an exception raised
    # by a handler inside Qt's loop would abort the process, leaving a partial recording)
    with on_stop_signals(lambda *_: cancel.set()):
        thread.start()
        try:
            events.exec()
        finally:
            cancel.set()
            thread.join()
            tick.stop()
            window.close()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value"), bridge.dropped
