"""Threads joined by bounded queues: a source stage and a chain of worker stages.

The source iterator runs in its own thread and feeds the first queue; each stage function
``stage(items, emit, busy)`` runs in its own thread, reading the previous queue through
``items`` and writing the next through ``emit``. ``END`` flows down the chain as the
end-of-stream sentinel. The first error in any stage stops all of them and is re-raised in the
caller by ``raise_error``; ``stop`` (cancel) unblocks every thread within ``_POLL`` seconds.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

END = object()  # end-of-stream sentinel
_POLL = 0.05  # seconds between checks of the stop flag while blocked on a queue

Stage = Callable[[Iterator[Any], Callable[[Any], None], list[float]], None]


class _Stopped(Exception):
    """Raised inside a stage thread when the run is being stopped."""


class StageRunner:
    """Run ``source`` and ``stages`` in threads; see the module docstring."""

    def __init__(self, queue_size: int = 4) -> None:
        self.queue_size = queue_size
        self._stop = threading.Event()
        self._done = threading.Event()
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.busy: list[float] = []
        self.frames_done = 0

    # -- queue helpers ----------------------------------------------------------------------
    def _put(self, q: queue.Queue, item: Any) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                q.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def _items(self, q: queue.Queue) -> Iterator[Any]:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                item = q.get(timeout=_POLL)
            except queue.Empty:
                continue
            yield item
            if item is END:
                return

    # -- threads ----------------------------------------------------------------------------
    def _guard(self, fn: Callable[[], None], last: bool) -> None:
        try:
            fn()
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            with self._lock:
                self._errors.append(exc)
            self._stop.set()
            self._done.set()
        finally:
            if last:
                self._done.set()

    def start(self, source: Iterable[Any], stages: list[Stage]) -> None:
        """Start the source thread and one thread per stage."""
        queues = [queue.Queue(maxsize=self.queue_size) for _ in stages]
        self.busy = [0.0] * (len(stages) + 1)

        def produce() -> None:
            it = iter(source)
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    break
                finally:
                    self.busy[0] += time.perf_counter() - t0
                self._put(queues[0], item)
            self._put(queues[0], END)

        def make(i: int, stage: Stage) -> Callable[[], None]:
            def body() -> None:
                out = queues[i + 1] if i + 1 < len(queues) else None
                acc = [0.0]
                try:
                    stage(self._items(queues[i]),
                          (lambda x: self._put(out, x)) if out is not None else _nowhere, acc)
                finally:
                    self.busy[i + 1] += acc[0]
                if out is not None:
                    self._put(out, END)
            return body

        bodies = [produce] + [make(i, s) for i, s in enumerate(stages)]
        names = ["vidsr-decode", "vidsr-sr", "vidsr-encode"]
        for k, body in enumerate(bodies):
            name = names[k] if k < len(names) else f"vidsr-stage{k}"
            t = threading.Thread(target=self._guard, args=(body, k == len(bodies) - 1),
                                 name=name, daemon=True)
            self._threads.append(t)
            t.start()

    def wait(self, timeout: float) -> bool:
        """True once the last stage has finished or any stage failed."""
        return self._done.wait(timeout)

    def stop(self, join_timeout: float = 5.0, compute_timeout: float = 0.2) -> None:
        """Stop every stage; wait for the source and last stage (they hold files open) for up
        to ``join_timeout`` s, and for the middle (compute) stages only ``compute_timeout`` s:
        they touch no files, and a frame in flight on a slow CPU must not delay Ctrl-C."""
        self._stop.set()
        deadline = time.monotonic() + join_timeout
        middle = self._threads[1:-1]
        for t in (self._threads[:1] + self._threads[-1:]):
            t.join(max(deadline - time.monotonic(), 0.0))
        for t in middle:
            t.join(compute_timeout)

    def join(self) -> None:
        """Wait for every thread to exit (after ``stop``, compute stages finish their item)."""
        for t in self._threads:
            t.join()

    def raise_error(self) -> None:
        """Join the threads; re-raise the first error a stage raised, if any."""
        if self._errors:
            self.stop()
            raise self._errors[0]
        for t in self._threads:
            t.join()


def _nowhere(item: Any) -> None:
    raise RuntimeError("the last stage has no output queue")
