"""The signals that stop a run: Ctrl-C (SIGINT), SIGTERM and, where it exists, SIGHUP."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))
                     if s is not None)


@contextlib.contextmanager
def on_stop_signals(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """``handler(signum, frame)`` for every stop signal inside the block, the previous
    handlers after it."""
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def stop_signals_held() -> Iterator[list[int]]:
    """Inside the block (a run's cleanup after a first Ctrl-C or error) further stop signals
    do not raise: a second Ctrl-C, or the one GNU ``timeout`` sends the process group after
    the process, broke the cleanup off and left the partial file behind. The block gets the
    list of signals that came; the run is stopping anyway, so they are not raised again.
    Off the main thread (where handlers cannot be set) the block runs unguarded."""
    came: list[int] = []
    try:
        previous = {sig: signal.signal(sig, lambda signum, _frame: came.append(signum))
                    for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield came
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
