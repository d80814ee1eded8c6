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
    assert runner.backend.endswith("+compile")


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


@pytest.mark.slow
@pytest.mark.skipif(compile_available() is not None, reason=str(compile_available()))
def test_compiled_bf16_prelu_equals_the_eager_one() -> None:
    """The one-pass bf16 PReLU gives the eager two-op form's values bit for bit, keeps the
    channels-last layout the next conv wants, and serves any size (dynamic shapes)."""
    from vidsr.engine import cpu_prelu

    cpu_prelu.start_compile()
    cpu_prelu.wait()
    assert cpu_prelu.compiled(), cpu_prelu._error
    g = torch.Generator().manual_seed(0)
    for h, w in ((7, 9), (64, 40), (121, 33)):
        y = (4 * torch.randn(1, 16, h, w, generator=g)).to(torch.bfloat16).contiguous(
            memory_format=torch.channels_last)
        a = torch.rand(1, 16, 1, 1, generator=g).to(torch.bfloat16)
        eager = cpu_prelu.prelu_bf16(y.clone(), a, torch.empty_like(y), use_compiled=False)
        fused = cpu_prelu.prelu_bf16(y, a, torch.empty_like(y), use_compiled=True)
        assert fused.data_ptr() != y.data_ptr() and torch.equal(fused, eager)
        assert fused.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.slow
@pytest.mark.skipif(compile_available() is not None, reason=str(compile_available()))
def test_the_runners_calls_reuse_the_compiled_prelu() -> None:
    """The probe compile serves the bf16 runner's calls (column blocks of shrinking width, two
    band threads, any frame size) without recompiling: a recompile would stall the bands for
    the length of a compile, in the middle of a run."""
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    from vidsr.engine import cpu_prelu
    from vidsr.engine.cpu import bf16_supported, cpu_runner

    if not bf16_supported():
        pytest.skip("no native bf16 on this CPU (no PReLU compile)")
    runner = cpu_runner(_model("ecbsr-m4c16-x2"), workers=2, bf16=True, compile_after=1)
    entries = lambda: len(_debug_get_cache_entry_list(cpu_prelu._max_mul.__code__))  # noqa: E731
    with torch.inference_mode():
        runner(torch.rand(1, 1, 150, 50))  # starts the compile
        cpu_prelu.wait()
        assert cpu_prelu.compiled(), cpu_prelu._error
        compiled = entries()  # the probe's
        for h, w in ((150, 50), (130, 45), (140, 64), (9, 12), (64, 64)):
            runner(torch.rand(1, 1, h, w))
    assert entries() == compiled
    assert runner.backend.endswith("+compiled-prelu (2 bands)")


@pytest.mark.slow
@pytest.mark.skipif(compile_available() is not None, reason=str(compile_available()))
def test_bf16_ecbsr_compiles_only_its_prelu_and_keeps_its_output() -> None:
    from vidsr.engine import Engine
    from vidsr.engine.cpu import bf16_supported

    if not bf16_supported():
        pytest.skip("no native bf16 on this CPU (the engine then runs fp32)")
    model = _model("ecbsr-m4c8-x2")
    plane = (torch.rand(1, 1, 90, 70) * 255).to(torch.uint8).numpy()[0, 0]
    plain = Engine(model, device="cpu", threads=1)
    lazy = Engine(model, device="cpu", threads=1, compile_after=2)
    ref = plain.upscale_luma(plane)
    deadline = time.time() + 240
    while not lazy._runner.decided() and time.time() < deadline:
        assert (lazy.upscale_luma(plane) == ref).all()
        time.sleep(0.05)
    assert lazy.backend == "cpu-packed-bfloat16-cols4+compiled-prelu"
    assert plain.backend == "cpu-packed-bfloat16-cols4"  # an engine not allowed to compile
    assert (lazy.upscale_luma(plane) == ref).all()
    lazy.close()

