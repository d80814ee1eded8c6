"""Lazy torch.compile on CPU: never before ``after`` frames, the same output once it switches,
and a failed compile leaves the hand-written runner in place."""

from __future__ import annotations

import logging
import time

import pytest
import torch

import vidsr
from vidsr.engine.compiled import LazyCompiledRunner, compile_available
from vidsr.engine.cpu import fast_runner


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return vidsr.load_model(name, pretrained=False)


def test_short_runs_never_compile() -> None:
    model = _model("esr-max-k3c2-x2")
    runner = LazyCompiledRunner(model, fast_runner(model), after=30)
    x = torch.rand(1, 1, 12, 16)
    for _ in range(5):
        runner(x)
    (state,) = runner.shapes.values()
    assert state.thread is None and state.choice is None
    assert runner.backend.endswith("(+compile)")


def test_failed_compile_keeps_fallback(monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_a, **_k):
        raise RuntimeError("no compiler today")

    monkeypatch.setattr(torch, "compile", broken)
    model = _model("esr-max-k3c2-x2")
    runner = LazyCompiledRunner(model, fast_runner(model), after=1)
    x = torch.rand(1, 1, 12, 16)
    deadline = time.time() + 120  # the thread first imports inductor: seconds on a busy CPU
    with caplog.at_level(logging.INFO, logger="vidsr.engine.compiled"):
        while time.time() < deadline:
            out = runner(x)
            if runner.decided():
                break
            time.sleep(0.05)
    assert runner.decided() and not runner.backend.startswith("cpu-inductor")
    assert "no compiler today" in caplog.text
    with torch.inference_mode():
        assert (out - model(x)).abs().max().item() < 1e-5


@pytest.mark.slow
@pytest.mark.skipif(compile_available() is not None, reason=str(compile_available()))
def test_compiled_output_matches_reference() -> None:
    model = _model("esr-max-k3c1-x2")
    runner = LazyCompiledRunner(model, fast_runner(model), after=1)
    x = torch.rand(1, 1, 10, 14)
    with torch.inference_mode():
        ref = model(x)
    deadline = time.time() + 240
    while not runner.decided() and time.time() < deadline:
        out = runner(x)
        assert (out - ref).abs().max().item() < 1e-5
        time.sleep(0.05)
    assert runner.decided()
    (state,) = runner.shapes.values()
    assert state.compiled is not None, state.error
    with torch.inference_mode():
        assert (state.compiled(x) - ref).abs().max().item() < 1e-5
        assert (runner(x) - ref).abs().max().item() < 1e-5
