"""A minimal Qt window that shows live frames, for ``vidsr webcam`` when OpenCV has no GUI
(the ``opencv-python-headless`` wheel). The live loop runs in a thread; closing the window or
pressing q / Esc cancels it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import numpy as np
from PyQt6.QtCore import QEventLoop, QObject, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QKeyEvent, QPixmap
from PyQt6.QtWidgets import QApplication, QLabel

from .view import to_qimage


class _Bridge(QObject):
    frame = pyqtSignal(object)
    finished = pyqtSignal()


class LiveWindow(QLabel):
    """Shows BGR frames at their own size; q or Esc closes it."""

    def __init__(self, title: str, cancel: threading.Event) -> None:
        super().__init__()
        self.setWindowTitle(title)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.cancel = cancel

    def show_bgr(self, bgr: np.ndarray) -> None:
        self.setPixmap(QPixmap.fromImage(to_qimage(np.ascontiguousarray(bgr[..., ::-1]))))
        if not self.isVisible():
            self.resize(bgr.shape[1], bgr.shape[0])
            self.show()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Q, Qt.Key.Key_Escape):
            self.close()

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802
        self.cancel.set()
        super().closeEvent(event)


def run_with_window(title: str, loop: Callable[[Callable[[np.ndarray], None],
                                                threading.Event], object]) -> object:
    """Run ``loop(show, cancel)`` in a thread while a window shows what ``show`` is given.

    Returns what ``loop`` returned; re-raises what it raised.
    """
    app = QApplication.instance() or QApplication([])
    app.setQuitOnLastWindowClosed(False)
    cancel = threading.Event()
    bridge = _Bridge()
    window = LiveWindow(title, cancel)
    bridge.frame.connect(window.show_bgr)
    # A local loop, not app.exec()/app.quit(): QCoreApplication.exit leaves a flag that makes
    # every later QEventLoop in the process return at once (pytest-qt's waits included).
    events = QEventLoop()
    bridge.finished.connect(events.quit)
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = loop(bridge.frame.emit, cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome["error"] = exc
        finally:
            bridge.finished.emit()

    thread = threading.Thread(target=target, name="vidsr-live", daemon=True)
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    # Qt's loop does not let Python run signal handlers; a timer gives it the chance.
    tick = QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(200)
    thread.start()
    try:
        events.exec()
    finally:
        cancel.set()
        thread.join()
        tick.stop()
        signal.signal(signal.SIGINT, previous)
        window.close()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value")
