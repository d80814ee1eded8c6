"""Fused Triton kernels against the fp32 PyTorch reference, on integer planes.

Without CUDA the kernels run on CPU under Triton's interpreter: ``TRITON_INTERPRET=1`` is set
only while triton and the kernel modules are imported and during each test (so other test
modules still see the CPU-only behaviour of ``fused_for``). Triton fixes interpreted-or-compiled
when it is first imported, so when an earlier test already imported it compiled (``torch.compile``
on CPU does), these tests run in a fresh Python process instead. With CUDA the same tests run
compiled, plus the ``gpu``-marked full-size ones.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)

HAVE_CUDA = torch.cuda.is_available()


def _triton_compiled_already() -> bool:
    language = sys.modules.get("triton.language")
    return language is not None and type(language.zeros).__name__ != "InterpretedFunction"


# Without CUDA, and triton already imported for compilation: hand the tests to a fresh process.
STALE = not HAVE_CUDA and _triton_compiled_already()
_previous = os.environ.get("TRITON_INTERPRET")
if not HAVE_CUDA and not STALE:
    # Triton reads it when it is first imported and when @triton.jit decorates each kernel.
    os.environ["TRITON_INTERPRET"] = "1"
try:
    if not STALE:
        from vidsr.kernels import bicubic as _bicubic  # noqa: F401
        from vidsr.kernels import chroma_upscale, ecbsr, fused_for
        from vidsr.kernels import edgesr as _edgesr  # noqa: F401 (decorate it now, under the env)
finally:
    if _previous is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = _previous

from vidsr.engine.chroma import phase_taps, upscale_plane_float  # noqa: E402
from vidsr.imresize import BicubicUpsample, phase_kernels  # noqa: E402
from vidsr.models.ecbsr import ECBSR, PlainSR  # noqa: E402
from vidsr.models.edgesr import ESRCNN, ESRTM, ESRTR, ESRMax  # noqa: E402

DEVICE = "cuda" if HAVE_CUDA else "cpu"
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not HAVE_CUDA, reason="needs CUDA")


@pytest.fixture(autouse=True)
def _interpreter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if STALE and request.node.name != "test_in_a_fresh_process":
        pytest.skip("run by test_in_a_fresh_process (triton was imported compiled earlier)")
    if not HAVE_CUDA:
        monkeypatch.setenv("TRITON_INTERPRET", "1")


@pytest.mark.skipif(not STALE, reason="this process runs the kernel tests itself")
def test_in_a_fresh_process() -> None:
    """Every test of this file, under the interpreter, in a process that imports triton fresh."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
        capture_output=True, text=True, env=env, timeout=600,
        cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout


def frames(n: int, h: int, w: int, bit_depth: int = 8, seed: int = 0) -> torch.Tensor:
    """Random integer planes with some smooth structure (pure noise saturates the models)."""
    g = torch.Generator().manual_seed(seed)
    top = (1 << bit_depth) - 1
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    base = (0.5 + 0.35 * torch.sin(xx * 0.7 + yy * 0.3)) * top
    noise = torch.randint(-top // 6, top // 6 + 1, (n, h, w), generator=g)
    x = (base + noise).round().clamp(0, top).to(torch.int32)
    return x.to(torch.uint8 if bit_depth == 8 else torch.uint16).to(DEVICE)


@torch.no_grad()
def reference(model: torch.nn.Module, x: torch.Tensor, bit_depth: int) -> torch.Tensor:
    """The deploy module in fp32 on the same integers, rounded half up and clipped."""
    top = float((1 << bit_depth) - 1)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # a true fp32 reference on the GPU too
    try:
        y = model.float().to(x.device)(x.to(torch.int32).float()[:, None] / top)[:, 0]
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    return (y.clamp(0, 1) * top + 0.5).floor()


def assert_matches(out: torch.Tensor, ref: torch.Tensor, bit_depth: int) -> None:
    """At most one code value off on >= 99.9% of pixels, and PSNR >= 50 dB."""
    assert out.shape == ref.shape
    diff = (out.to(torch.int32).float() - ref).abs()
    within = (diff <= 1).float().mean().item()
    mse = (diff / ((1 << bit_depth) - 1)).pow(2).mean().item()
    psnr = float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)
    assert within >= 0.999, f"only {within:.5f} of pixels within one code (max {diff.max()})"
    assert psnr >= 50.0, f"PSNR {psnr:.2f} dB"


def random_plainsr(m: int, c: int, s: int, seed: int = 0) -> torch.nn.Module:
    """A random deploy ECBSR with a trained net's gain: He-scaled convs, a last layer whose
    residual is a fraction of the signal, PReLU slopes in [0, 0.5)."""
    g = torch.Generator().manual_seed(seed)
    net = PlainSR(m, c, s)
    with torch.no_grad():
        for i, conv in enumerate(net.convs):
            gain = 0.2 if i == len(net.convs) - 1 else 1.0
            std = gain * (2.0 / (conv.in_channels * 9)) ** 0.5
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * std)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=g) * 0.05)
        for act in net.acts:
            act.weight.copy_(torch.rand(act.weight.shape, generator=g) * 0.5)
    return net.eval()


def high_gain_plainsr(m: int, c: int, s: int) -> torch.nn.Module:
    """A random training-form ECBSR with every parameter perturbed by N(0, 0.3), merged:
    activations reach the hundreds, too large for fp16 intermediates."""
    torch.manual_seed(0)
    net = ECBSR(m, c, s)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return net.reparameterize()


@pytest.mark.parametrize(("m", "c", "s"), [(4, 16, 2), (2, 8, 3), (1, 32, 4)])
def test_plainsr_8bit(m: int, c: int, s: int) -> None:
    model = random_plainsr(m, c, s)
    x = frames(2, 16, 20)
    out = fused_for(model)(x)
    assert out.dtype == torch.uint8 and out.shape == (2, 16 * s, 20 * s)
    assert_matches(out, reference(model, x, 8), 8)


def test_plainsr_fp16_compute() -> None:
    """The GPU default (fp16 dot inputs, fp32 accumulation) stays within the bounds, 8 and
    10-bit; a high-gain net (merged from a perturbed training form) is given fp32 instead."""
    model = random_plainsr(3, 16, 2, seed=2)
    x = frames(1, 8, 12)
    fn = fused_for(model, dtype=torch.float16)
    assert_matches(fn(x), reference(model, x, 8), 8)
    x10 = frames(1, 8, 12, bit_depth=10)
    assert_matches(fn(x10, bit_depth=10), reference(model, x10, 10), 10)
    cuda = torch.device("cuda")
    assert ecbsr._pick_dtype(cuda, 8, fn.peak) == torch.float16
    loud_model = high_gain_plainsr(3, 16, 2)
    loud = ecbsr.FusedPlainSR(loud_model)
    assert loud.peak > ecbsr.FP16_PEAK
    assert ecbsr._pick_dtype(cuda, 8, loud.peak) == torch.float32
    x_loud = frames(1, 8, 8)
    assert_matches(loud(x_loud), reference(loud_model, x_loud, 8), 8)


def test_plainsr_many_tiles_and_10bit() -> None:
    """Tiles smaller than the frame (halo seams, the persistent tile loop) on 10-bit planes."""
    model = random_plainsr(2, 8, 2, seed=1)
    x = frames(1, 19, 37, bit_depth=10)
    fn = ecbsr.FusedPlainSR(model, tile_h=8, tile_w=32, rows=4)
    assert fn.geometry(19, 37, 4) == (8, 32, 16)  # 3 x 2 tiles, more than the 4 CPU programs
    out = fn(x, bit_depth=10)
    assert out.dtype == torch.uint16 and out.shape == (1, 38, 74)
    assert_matches(out, reference(model, x, 10), 10)


def test_plainsr_loop_and_cache_settings_change_nothing() -> None:
    """The sweep's ECBSR settings (unrolled taps, pipelining depth, cache modifier) give the
    same integers as the defaults; a bad cache modifier is refused."""
    model = random_plainsr(2, 8, 2, seed=3)
    x = frames(1, 10, 14)
    ref = fused_for(model)(x)
    for kw in (dict(unroll=True), dict(num_stages=1, cache=".ca"),
               dict(unroll=True, num_stages=2, cache=".cg"), dict(variant="stream")):
        assert torch.equal(fused_for(model, **kw)(x), ref), kw
    assert_matches(fused_for(model, variant="wave")(x), reference(model, x, 8), 8)
    with pytest.raises(ValueError, match="cache"):
        ecbsr.FusedPlainSR(model, cache=".zz")
    with pytest.raises(ValueError, match="variant"):
        ecbsr.FusedPlainSR(model, variant="rows")


def test_autotune_picks_the_fastest_matching_setting_and_remembers_it(tmp_path: Path) -> None:
    from vidsr.kernels.autotune import AutoTuned

    model = random_plainsr(1, 8, 2, seed=5)
    build = lambda **kw: ecbsr.FusedPlainSR(model, **kw)  # noqa: E731
    candidates = [{}, {"variant": "stream"}, {"tile_w": 5}, {"variant": "stream", "tile_h": 4}]
    ms = iter([3.0, 1.0, 2.0])  # defaults, stream, stream with 4-row tiles (tile_w=5 fails)
    tuned = AutoTuned(build, "ecbsr test", candidates, timer=lambda fn: next(ms),
                      path=tmp_path / "t.json")
    x = frames(1, 9, 11)
    assert torch.equal(tuned(x), fused_for(model)(x))
    assert tuned.chosen == {((1, 9, 11), torch.uint8, None, x.device.type): {"variant": "stream"}}
    saved = json.loads((tmp_path / "t.json").read_text())
    (entry,) = saved.values()
    assert entry["settings"] == {"variant": "stream"} and len(entry["ms"]) == 3

    def no_timing(fn) -> float:  # noqa: ANN001
        raise AssertionError("the cached choice should be used")

    again = AutoTuned(build, "ecbsr test", candidates, timer=no_timing, path=tmp_path / "t.json")
    assert torch.equal(again(x), tuned(x))
    assert list(again.chosen.values()) == [{"variant": "stream"}]
    other = AutoTuned(build, "ecbsr test", candidates[:1], timer=lambda fn: 1.0,
                      path=tmp_path / "t.json")
    assert torch.equal(other(x), tuned(x))  # the cached setting is not a candidate: re-timed
    assert list(other.chosen.values()) == [{}]


@pytest.mark.parametrize("variant", ["stream", "wave"])
def test_plainsr_row_variants_tiles_and_12bit(variant: str) -> None:
    """The line-buffer and wavefront kernels across tile seams (10-bit) and on the fp32 path
    (12-bit)."""
    model = random_plainsr(2, 8, 3, seed=4)
    x = frames(1, 13, 37, bit_depth=10)
    fn = ecbsr.FusedPlainSR(model, variant=variant, tile_h=4, tile_w=32)
    assert_matches(fn(x, bit_depth=10), reference(model, x, 10), 10)
    x12 = frames(1, 6, 9, bit_depth=12)
    out = ecbsr.FusedPlainSR(model, variant=variant)(x12, bit_depth=12)
    assert out.dtype == torch.uint16 and out.shape == (1, 18, 27)
    assert_matches(out, reference(model, x12, 12), 12)


@pytest.mark.parametrize(("cls", "s", "k", "c"), [
    (ESRMax, 2, 7, 4), (ESRTM, 2, 7, 16), (ESRTR, 3, 5, 12), (ESRMax, 4, 3, 1)])
def test_edgesr_8bit(cls: type, s: int, k: int, c: int) -> None:
    torch.manual_seed(0)
    model = cls(s, k, c).eval()
    x = frames(2, 13, 21)
    out = fused_for(model)(x)
    assert out.shape == (2, 13 * s, 21 * s)
    assert_matches(out, reference(model, x, 8), 8)


def test_edgesr_12bit_single_plane() -> None:
    torch.manual_seed(1)
    model = ESRTR(2, 7, 16).eval()
    x = frames(1, 12, 18, bit_depth=12)
    out = fused_for(model)(x[0], bit_depth=12)
    assert out.shape == (24, 36) and out.dtype == torch.uint16
    assert_matches(out[None], reference(model, x, 12), 12)


@pytest.mark.parametrize("s", [2, 3, 4])
def test_chroma_centre_matches_bicubic_module(s: int) -> None:
    x = frames(2, 9, 14)
    taps = phase_kernels(s)
    out = chroma_upscale(x, s, taps, taps)
    ref = BicubicUpsample(s).to(DEVICE)(x.float()[:, None])[:, 0]
    assert_matches(out, (ref + 0.5).floor().clamp(0, 255), 8)
    assert (out.float() - (ref + 0.5).floor().clamp(0, 255)).abs().max() <= 1


@pytest.mark.parametrize("siting", ["left", "topleft", "bottom"])
def test_chroma_sited_taps_match_engine(siting: str) -> None:
    """The engine's sited taps (with their own first offsets) on 10-bit planes."""
    from vidsr.engine.chroma import siting_offsets

    off_x, off_y = siting_offsets(siting)
    wy, first_y = phase_taps(2, 2, off_y)
    wx, first_x = phase_taps(2, 2, off_x)
    x = frames(1, 11, 7, bit_depth=10)
    out = chroma_upscale(x, 2, wx, wy, bit_depth=10, first_h=first_x, first_v=first_y)
    ref = upscale_plane_float(x.to(torch.int32).float()[:, None].cpu(), 2, siting)[:, 0]
    ref = (ref + 0.5).floor().clamp(0, 1023).to(out.device)
    assert (out.to(torch.int32).float() - ref).abs().max() <= 1


def test_fused_for_api(caplog: pytest.LogCaptureFixture) -> None:
    model = random_plainsr(1, 8, 2)
    fn = fused_for(model)
    x = frames(3, 6, 9)
    batched = fn(x)
    assert torch.equal(fn(x[1]), batched[1])  # 2-D in, 2-D out; batching changes nothing
    out = torch.zeros(12, 18, dtype=torch.uint8, device=DEVICE)
    assert fn(x[2], out=out) is out and torch.equal(out, batched[2])
    with pytest.raises(ValueError, match="bit_depth"):
        fn(x.to(torch.int32).to(torch.uint16))
    with pytest.raises(ValueError, match="uint8 or uint16"):
        fn(x.float())
    bicubic = fused_for(BicubicUpsample(3), dtype=torch.float32)  # the engine's fp32 keywords
    assert bicubic(x).shape == (3, 18, 27)
    with caplog.at_level(logging.INFO, logger="vidsr.kernels"):
        assert fused_for(ESRCNN(2, 4, 3, 6)) is None
        assert fused_for(ECBSR(1, 8, 2)) is None  # training form: reparameterize first
    assert "eSR-CNN" in caplog.text


def test_fused_for_refuses_without_a_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert fused_for(random_plainsr(1, 8, 2)) is None
    with pytest.raises(RuntimeError, match="CUDA"):
        chroma_upscale(frames(1, 4, 4), 2, phase_kernels(2), phase_kernels(2))


def test_shipped_weights() -> None:
    """Every model with shipped weights that a kernel covers matches its reference."""
    from vidsr import load_model
    from vidsr.weights import manifest

    shipped = [name for name, entry in manifest().items() if entry.path.is_file()]
    if not shipped:
        pytest.skip("no shipped weights in vidsr/weights/manifest.json")
    checked = 0
    for name in shipped:
        model = load_model(name)
        fn = fused_for(model)
        if fn is None:
            continue
        x = frames(1, 12, 16, seed=3)
        assert_matches(fn(x), reference(model, x, 8), 8)
        checked += 1
    assert checked or pytest.skip("no shipped model is covered by a fused kernel")


# ---- GPU only: full-size frames, fp16 compute, batching and CUDA graphs -----------------------

@gpu
@needs_cuda
@pytest.mark.parametrize("name", ["ecbsr-m4c16-x2", "ecbsr-m4c8-x2", "ecbsr-m8c32-x4",
                                  "esr-max-k7c4-x2", "esr-tm-k7c16-x2", "esr-tr-k7c16-x2",
                                  "esr-tr-k7c12-x3"])
def test_gpu_full_frame(name: str) -> None:
    from vidsr import load_model

    model = load_model(name, pretrained=False)
    if name.startswith("ecbsr"):
        model = random_plainsr(model.m, model.c, model.scale)
    x = frames(2, 1080, 1920, seed=5)
    fn = fused_for(model)
    assert_matches(fn(x), reference(model, x, 8), 8)
    x10 = frames(1, 270, 480, bit_depth=10, seed=6)
    assert_matches(fn(x10, bit_depth=10), reference(model, x10, 10), 10)


@gpu
@needs_cuda
def test_gpu_autotune_on_a_full_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's path: the timed choice among the ECBSR settings matches fp32 and is
    remembered per GPU and shape."""
    from vidsr.kernels.autotune import AutoTuned

    monkeypatch.setenv("VIDSR_KERNEL_AUTOTUNE", "1")
    monkeypatch.setenv("VIDSR_CACHE_DIR", str(tmp_path))
    model = random_plainsr(4, 16, 2)
    fn = fused_for(model, autotune=True)
    assert isinstance(fn, AutoTuned)
    x = frames(1, 1080, 1920, seed=11)
    assert_matches(fn(x), reference(model, x, 8), 8)
    (entry,) = json.loads((tmp_path / "kernel-tuning.json").read_text()).values()
    assert entry["settings"] in fn.candidates and len(entry["ms"]) >= 1


@gpu
@needs_cuda
@pytest.mark.parametrize("variant", ["stream", "wave"])
def test_gpu_row_variants_full_frame(variant: str) -> None:
    """The line-buffer and wavefront ECBSR kernels on full 1080p frames, 8- and 10-bit."""
    model = random_plainsr(4, 16, 2)
    fn = fused_for(model, variant=variant)
    x = frames(2, 1080, 1920, seed=9)
    assert_matches(fn(x), reference(model, x, 8), 8)
    x10 = frames(1, 270, 480, bit_depth=10, seed=10)
    assert_matches(fn(x10, bit_depth=10), reference(model, x10, 10), 10)


@gpu
@needs_cuda
def test_gpu_model_already_on_the_device() -> None:
    """A model on the GPU (as the engine and the bench hold it) packs like one on the CPU."""
    from vidsr import load_model

    model = load_model("ecbsr-m4c16-x2")
    x = frames(1, 64, 96, seed=8)
    ref = reference(model, x, 8)  # moves the model to x's device
    assert next(model.parameters()).device.type == "cuda"
    assert_matches(fused_for(model)(x), ref, 8)


@gpu
@needs_cuda
def test_gpu_cuda_graph_and_chroma_full_size() -> None:
    model = random_plainsr(4, 16, 2)
    x = frames(1, 540, 960)
    plain, graphed = fused_for(model), fused_for(model, cuda_graph=True)
    assert torch.equal(graphed(x), plain(x)) and torch.equal(graphed(x), plain(x))
    c = frames(2, 540, 960, seed=7)
    taps = phase_kernels(2)
    ref = BicubicUpsample(2).to(DEVICE)(c.float()[:, None])[:, 0]
    assert_matches(chroma_upscale(c, 2, taps, taps), (ref + 0.5).floor().clamp(0, 255), 8)
