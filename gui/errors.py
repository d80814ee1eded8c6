"""What the window tells the user about an exception raised in one of its threads.

The worker threads catch every exception: one that escapes a ``QThread.run`` or a slot makes
PyQt abort the whole process, so a bug or an unforeseen error (``cv2.error``, ``MemoryError``)
would close the window without a word. Expected failures (bad files, missing devices) read as
their own message; anything else names its type and is logged with its traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from types import TracebackType

from PyQt6.QtCore import QObject, pyqtSignal

from vidsr.errors import VidsrError

log = logging.getLogger(__name__)

EXPECTED = (VidsrError, OSError, ValueError, RuntimeError)


def error_message(exc: BaseException, what: str) -> str:
    """The one-line message for ``exc``, raised while doing ``what`` (e.g. "render")."""
    if isinstance(exc, EXPECTED):
        log.debug("%s failed", what, exc_info=exc)
        return str(exc) or type(exc).__name__
    log.error("%s failed unexpectedly", what, exc_info=exc)
    return f"{what} failed unexpectedly: {type(exc).__name__}: {exc}"


class ErrorRelay(QObject):
    """``sys.excepthook`` for the app: an exception that escapes a slot or a thread is logged
    with its traceback and shown in the window (a queued signal, so any thread may raise)
    instead of PyQt's default, which aborts the process."""

    raised = pyqtSignal(str)

    def __init__(self, show: Callable[[str], None]) -> None:
        super().__init__()
        self.raised.connect(show)
        self._previous = sys.excepthook

    def __enter__(self) -> ErrorRelay:
        sys.excepthook = self._hook
        return self

    def __exit__(self, *exc: object) -> None:
        sys.excepthook = self._previous

    def _hook(self, kind: type[BaseException], exc: BaseException, tb: TracebackType | None,
              ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            self._previous(kind, exc, tb)
            return
        log.error("unhandled exception", exc_info=(kind, exc, tb))
        self.raised.emit(f"unexpected error: {kind.__name__}: {exc}")
