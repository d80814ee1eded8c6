"""StageRunner: bounded queues (flat memory), order, error propagation and stopping."""

from __future__ import annotations

import threading
import time

import pytest

from vidsr.pipeline_stages import END, StageRunner


class Source:
    """Counts how far the producer got."""

    def __init__(self, n: int) -> None:
        self.n, self.produced = n, 0

    def __iter__(self):
        for i in range(self.n):
            self.produced += 1
            yield i


def passthrough(items, emit, busy):
    for item in items:
        if item is END:
            return
        emit(item)


def sink(items, emit, busy):
    for item in items:
        if item is END:
            return


def settle(read, limit: float = 5.0) -> int:
    """The value ``read()`` settles at (unchanged for 0.2 s)."""
    last, since, deadline = read(), time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > 0.2:
            break
    return last


def test_queues_bound_how_far_the_source_runs_ahead():
    source, gate, seen = Source(2000), threading.Event(), []

    def gated(items, emit, busy):
        for item in items:
            if item is END:
                return
            gate.wait()
            seen.append(item)

    runner = StageRunner(queue_size=3)
    runner.start(source, [passthrough, gated])
    ahead = settle(lambda: source.produced)
    # two queues of 3, one item held by each stage, one in the producer's hand
    assert ahead <= 2 * 3 + 3
    gate.set()
    while not runner.wait(0.1):
        pass
    runner.raise_error()
    assert seen == list(range(2000))


def test_first_error_is_reraised_and_everything_stops():
    source = Source(10_000)

    def failing(items, emit, busy):
        for item in items:
            if item == 5:
                raise ValueError("stage failed on item 5")
            emit(item)

    runner = StageRunner(queue_size=2)
    runner.start(source, [failing, sink])
    while not runner.wait(0.1):
        pass
    with pytest.raises(ValueError, match="item 5"):
        runner.raise_error()
    assert source.produced < 100
    assert not any(t.is_alive() for t in runner._threads)


def test_stop_unblocks_every_thread():
    gate = threading.Event()

    def stuck(items, emit, busy):
        for _item in items:
            gate.wait(30)  # a compute stage busy with one item

    runner = StageRunner(queue_size=2)
    runner.start(Source(1000), [stuck, sink])
    settle(lambda: 0, limit=0.3)
    runner.stop()  # source and last stage exit promptly; the busy stage is not waited for long
    assert not runner._threads[0].is_alive() and not runner._threads[-1].is_alive()
    assert runner._threads[1].is_alive()
    gate.set()
    runner.join()
    assert not any(t.is_alive() for t in runner._threads)
