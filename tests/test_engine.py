"""Engine: luma against the reference module, chroma siting against a direct evaluation,
tiling, bit depths and the submit/collect API (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vidsr
from vidsr.engine import Engine
from vidsr.engine.chroma import SITINGS, sample_positions, siting_offsets
from vidsr.errors import InputError
from vidsr.imresize import cubic, imresize
from vidsr.metrics import psnr


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return vidsr.load_model(name, pretrained=False)


def _direct_chroma(c: np.ndarray, s: int, siting: str, sub: tuple[int, int]) -> np.ndarray:
    """Per output sample: 4 cubic taps around its input position, indices clipped."""
    ox, oy = siting_offsets(siting)

    def matrix(n_in: int, factor: int, off: float) -> np.ndarray:
        u = sample_positions(n_in * s, s, factor, off)
        m = np.zeros((len(u), n_in))
        for j, uj in enumerate(u):
            base = int(np.floor(uj))
            for t in range(base - 1, base + 3):
                m[j, min(max(t, 0), n_in - 1)] += cubic(np.array(uj - t))
        return m

    return matrix(c.shape[0], sub[0], oy) @ c.astype(np.float64) @ \
        matrix(c.shape[1], sub[1], ox).T


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("siting", sorted(SITINGS))
def test_chroma_matches_direct_evaluation(scale: int, siting: str) -> None:
    rng = np.random.default_rng(scale)
    c = rng.integers(0, 256, (11, 14), dtype=np.uint8)
    eng = Engine(f"bicubic-x{scale}", device="cpu")
    for sub in [(2, 2), (1, 2)]:
        ref = _direct_chroma(c, scale, siting, sub)
        expect = np.floor(np.clip(ref, 0, 255) + 0.5)
        got = eng.upscale_chroma(c, siting, subsampling=sub)
        assert got.dtype == np.uint8 and got.shape == (11 * scale, 14 * scale)
        # float32 rounding may flip a value sitting exactly on .5
        assert np.abs(got.astype(int) - expect).max() <= 1
        assert np.mean(got == expect) > 0.995


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_chroma_cpu_filters_match_the_convolutions(scale: int) -> None:
    """The CPU chroma path (OpenCV, per output phase) sums what the two convolutions do (the
    torch path, taken here through an input that needs grad)."""
    from vidsr.engine.chroma import upscale_plane_float

    x = torch.rand(2, 1, 9, 13) * 255
    for siting in sorted(SITINGS):
        for sub in [(2, 2), (1, 2), (1, 1)]:
            fast = upscale_plane_float(x, scale, siting, sub)
            conv = upscale_plane_float(x.clone().requires_grad_(True), scale, siting, sub)
            assert fast.shape == conv.shape == (2, 1, 9 * scale, 13 * scale)
            assert (fast - conv.detach()).abs().max().item() < 1e-3


def test_chroma_sitings_differ_and_center_is_matlab() -> None:
    rng = np.random.default_rng(1)
    c = rng.integers(0, 256, (12, 16), dtype=np.uint8)
    eng = Engine("bicubic-x2", device="cpu")
    left = eng.upscale_chroma(c, "left").astype(int)
    center = eng.upscale_chroma(c, "center").astype(int)
    assert np.abs(left - center).max() > 5
    # centred siting on both axes is plain pixel-centre-aligned bicubic: MATLAB imresize
    matlab = np.floor(np.clip(imresize(c.astype(np.float64), 2), 0, 255) + 0.5)
    assert np.abs(center - matlab).max() <= 1
    # 4:4:4 chroma is co-sited with luma whatever the name says
    full = eng.upscale_chroma(c, "left", subsampling=(1, 1)).astype(int)
    assert np.abs(full - center).max() <= 1


def test_left_siting_phase() -> None:
    """A step edge in chroma lands where left siting puts it on the new luma grid."""
    # chroma sample i sits at luma x = 2i; for x2 output j sits at input chroma u = j/2 - 1/8
    u = sample_positions(8, 2, 2, 0.0)
    assert np.allclose(u[:4], [-0.125, 0.375, 0.875, 1.375])
    # centred: u = (j + 0.5)/2 - 0.5
    assert np.allclose(sample_positions(4, 2, 2, 0.5), [-0.25, 0.25, 0.75, 1.25])


@pytest.mark.parametrize("scale", [2, 3])
def test_chroma_can_move_to_another_siting(scale: int) -> None:
    """A ramp that is linear in luma x, sampled at centre-sited 4:2:2 chroma positions, comes
    out equal to that ramp at the output siting's positions (cubic keeps linear functions)."""
    eng = Engine(f"bicubic-x{scale}", device="cpu")
    i = np.arange(16, dtype=np.float64)
    c = np.tile(40 + 6 * (2 * i + 0.5), (6, 1))  # chroma i sits at luma x = 2i + 1/2
    for out, off in [("center", 0.5), ("left", 0.0)]:
        got = eng.upscale_chroma(c.astype(np.uint8), "center", subsampling=(1, 2),
                                 out_siting=out).astype(np.float64)
        j = np.arange(got.shape[1])
        x_in = (2 * j + off + 0.5) / scale - 0.5  # output chroma j in input luma x
        inner = slice(4 * scale, -4 * scale)
        assert np.abs(got[:, inner] - np.round(40 + 6 * x_in)[inner]).max() <= 1, out
    # left siting moves the samples half an output pixel: 1.5 codes at x2, 1 at x3
    assert np.abs(eng.upscale_chroma(c.astype(np.uint8), "center", subsampling=(1, 2),
                                     out_siting="left").astype(int)
                  - eng.upscale_chroma(c.astype(np.uint8), "center", subsampling=(1, 2))
                  .astype(int))[:, 4 * scale:-4 * scale].mean() > 0.7


@pytest.mark.parametrize("name", ["ecbsr-m2c4-x2", "esr-max-k3c2-x3", "esr-tm-k5c4-x4",
                                  "esr-tr-k3c2-x2", "esr-cnn-c2d2s3-x2", "bicubic-x2"])
def test_luma_matches_reference(name: str) -> None:
    model = _model(name)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 256, (23, 37), dtype=np.uint8)
    eng = Engine(model, device="cpu", fp16=False)  # the fp32 fast path
    out = eng.upscale_luma(y)
    s = model.spec.scale
    assert out.dtype == np.uint8 and out.shape == (23 * s, 37 * s)
    ref = np.floor(np.clip(vidsr.upscale_plane(y.astype(np.float64), model), 0, 255) + 0.5)
    assert np.abs(out.astype(int) - ref).max() <= 1
    assert np.mean(out == ref) > 0.999


@pytest.mark.parametrize("bit_depth", [10, 12])
def test_high_bit_depth_luma_and_chroma(bit_depth: int) -> None:
    model = _model("ecbsr-m2c4-x2")
    maxv = (1 << bit_depth) - 1
    rng = np.random.default_rng(bit_depth)
    y = rng.integers(0, maxv + 1, (16, 20)).astype(np.uint16)
    eng = Engine(model, device="cpu")
    out = eng.upscale_luma(y, bit_depth)
    assert out.dtype == np.uint16 and out.max() <= maxv
    with torch.inference_mode():
        ref = model(torch.from_numpy(y.astype(np.float32) / maxv)[None, None])[0, 0].numpy()
    ref = np.floor(np.clip(ref.astype(np.float64) * maxv, 0, maxv) + 0.5)
    assert np.abs(out.astype(int) - ref).max() <= 1
    c = eng.upscale_chroma(y[:8, :10], "left", bit_depth)
    assert c.dtype == np.uint16 and c.shape == (16, 20) and c.max() <= maxv
    with pytest.raises(InputError):
        eng.upscale_luma(y.astype(np.uint8), bit_depth)


@pytest.mark.parametrize("name", ["ecbsr-m4c8-x2", "esr-tm-k7c4-x3", "esr-cnn-c2d2s3-x2",
                                  "bicubic-x4"])
def test_tiled_equals_untiled(name: str) -> None:
    model = _model(name)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 256, (45, 61), dtype=np.uint8)
    whole = Engine(model, device="cpu").upscale_luma(y)
    tiled = Engine(model, device="cpu", tile=16).upscale_luma(y)
    assert tiled.shape == whole.shape
    assert psnr(tiled.astype(np.float64), whole.astype(np.float64), 0) >= 50.0
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1


def test_engine_leaves_the_callers_model_alone() -> None:
    """The engine works on its own copy: a model shared by engines on two devices stays put."""
    model = _model("esr-max-k7c4-x2").double()
    eng = Engine(model, device="cpu")
    assert all(p.dtype == torch.float64 for p in model.parameters())
    y = np.random.default_rng(4).integers(0, 256, (12, 16), dtype=np.uint8)
    assert eng.upscale_luma(y).shape == (24, 32)


def test_submit_collect_in_order() -> None:
    eng = Engine(_model("esr-max-k3c2-x2"), device="cpu")
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 256, (12, 16), dtype=np.uint8) for _ in range(3)]
    tickets = [eng.submit(f, f[:6, :8], f[:6, :8]) for f in frames]
    assert eng.pending() == 3
    for t, f in zip(tickets, frames, strict=True):
        got_t, (y, u, v) = eng.collect()
        assert got_t == t
        assert np.array_equal(y, eng.upscale_luma(f))
        assert u.shape == (12, 16) and v.shape == (12, 16)
    assert eng.pending() == 0
    with pytest.raises(InputError):
        eng.collect()


def test_engine_attributes_and_errors() -> None:
    eng = Engine("esr-max-k3c2-x3", device="cpu", pretrained=False)
    assert eng.scale == 3 and eng.name == "esr-max-k3c2-x3" and eng.device.type == "cpu"
    assert not eng.fp16
    with pytest.raises(InputError):
        eng.upscale_luma(np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(InputError):
        eng.upscale_chroma(np.zeros((4, 4), np.uint8), "diagonal")
    with pytest.raises(InputError):
        Engine("esr-max-k3c2-x3", device="cpu", tile=2, pretrained=False)
    if not torch.cuda.is_available():
        with pytest.raises(InputError):
            Engine("esr-max-k3c2-x3", device="cuda", pretrained=False)
    for bad, said in ((np.zeros((0, 4), np.uint8), "empty"), ([[1, 2]], "numpy array")):
        with pytest.raises(InputError, match=said):
            eng.upscale_luma(bad)
        with pytest.raises(InputError, match=said):
            eng.upscale_chroma(bad)
    with pytest.raises(InputError, match="subsampling must be"):
        eng.upscale_chroma(np.zeros((4, 4), np.uint8), subsampling=(3, 3))
    y, c = np.zeros((5, 7), np.uint8), np.zeros((3, 4), np.uint8)
    assert [p.shape for p in eng.upscale_frame(y, c, c)] == [(15, 21), (9, 12), (9, 12)]
    with pytest.raises(InputError, match=r"V plane .* must be 4x3 or 3x2, got \(3, 3\)"):
        eng.upscale_frame(y, c, c[:, :3])
    floor = np.zeros((2, 3), np.uint8)  # sizes rounded down are taken too, and a list
    assert eng.upscale_frame(y, floor, floor, subsampling=[2, 2])[1].shape == (6, 9)
    for bad, said in ((([[1, 2]],), "numpy array"), ((y, c, c, 2), "subsampling must be")):
        with pytest.raises(InputError, match=said):
            eng.upscale_frame(*bad[:3], subsampling=bad[3] if len(bad) > 3 else (2, 2))
    with pytest.raises(InputError, match="must be 7x5"):
        eng.submit(y, c, c, subsampling=(1, 1))


def test_engine_threads_and_close() -> None:
    # one engine called from several threads gave wrong planes (its buffers are reused) or
    # torch errors; a closed engine went on or failed with "cannot schedule new futures"
    import threading

    eng = Engine("esr-max-x2", device="cpu", pretrained=False, threads=2)
    rng = np.random.default_rng(0)
    planes = [rng.integers(0, 256, (h, 40), np.uint8) for h in (170, 180, 190, 200)]
    want = [eng.upscale_luma(p) for p in planes]
    got: dict[int, list[bool]] = {}

    def work(k: int) -> None:
        got[k] = [np.array_equal(eng.upscale_luma(planes[(k + i) % 4]), want[(k + i) % 4])
                  for i in range(6)]

    workers = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert got == {k: [True] * 6 for k in range(3)}
    readonly = planes[0].copy()
    readonly.flags.writeable = False
    assert np.array_equal(eng.upscale_luma(readonly), want[0])
    eng.close()
    for call in (lambda: eng.upscale_luma(planes[0]), lambda: eng.submit(planes[0])):
        with pytest.raises(InputError, match="engine is closed"):
            call()


@pytest.mark.parametrize("bit_depth", [8, 10])
def test_stream_pipeline_slot_logic_on_host(bit_depth: int) -> None:
    """The CUDA pipeline's slots, ordering and plane handling, run in order on the host."""
    from vidsr.engine.cuda import CudaPipeline, CudaTorchRunner

    model = _model("esr-tm-k5c4-x2")
    ref = Engine(model, device="cpu", fast=False)
    host = Engine(model, device="cpu")
    host._runner = CudaTorchRunner(model, fp16=False, device="cpu")
    pipe = CudaPipeline(host, depth=2)
    assert pipe.fused is None and not pipe.on_gpu
    maxv = (1 << bit_depth) - 1
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    rng = np.random.default_rng(bit_depth)
    frames = [tuple(rng.integers(0, maxv + 1, shape).astype(dtype)
                    for shape in [(18, 26), (9, 13), (9, 13)]) for _ in range(5)]
    got = []
    for i, (y, u, v) in enumerate(frames):
        if pipe.pending() == 2:
            with pytest.raises(InputError):
                pipe.submit(99, y, u, v, bit_depth, "left", (2, 2))
            got.append(pipe.collect())
        pipe.submit(i, y, u, v, bit_depth, "left", (2, 2))
    while pipe.pending():
        got.append(pipe.collect())
    assert [t for t, _ in got] == list(range(5))
    # U and V travel and compute as one stacked unit: one copy each way, one chroma launch
    assert [tuple(b.shape) for b in pipe.slots[0].dev_in] == [(18, 26), (2, 9, 13)]
    for (_, (yo, uo, vo)), (y, u, v) in zip(got, frames, strict=True):
        assert yo.dtype == dtype and uo.shape == (18, 26)
        assert np.abs(yo.astype(int) - ref.upscale_luma(y, bit_depth).astype(int)).max() <= 1
        assert np.array_equal(uo, ref.upscale_chroma(u, "left", bit_depth))
        assert np.array_equal(vo, ref.upscale_chroma(v, "left", bit_depth))
    luma = pipe.run_luma(frames[0][0], bit_depth)  # a new geometry (luma only) after draining
    assert np.abs(luma.astype(int) - ref.upscale_luma(frames[0][0], bit_depth)).max() <= 1


def test_to_codes_rounds_half_up_and_clips() -> None:
    from vidsr.engine.chroma import to_codes

    x = torch.tensor([-3.0, 0.49, 0.5, 1.5, 254.5, 255.2, 300.0])
    assert to_codes(x.clone(), 8).tolist() == [0, 0, 1, 2, 255, 255, 255]
    assert to_codes(x.clone() / 255.0, 8, gain=255.0).tolist() == [0, 0, 1, 2, 255, 255, 255]
    ten = to_codes(torch.tensor([1022.5, 2000.0, -1.0]), 10)
    assert ten.dtype == np.uint16 and ten.tolist() == [1023, 1023, 0]


def test_a_frame_too_large_for_the_device_goes_in_tiles() -> None:
    """The CUDA pipeline's out-of-memory fallback (run on the host): a frame whose whole-frame
    call runs out of memory is redone in overlapping tiles, and so is every later frame;
    tiled and untiled agree (PSNR >= 50 dB; the tiles overlap by the receptive field)."""
    from vidsr.engine import cuda as cuda_mod
    from vidsr.engine.cuda import CudaPipeline, CudaTorchRunner

    model = _model("ecbsr-m4c4-x2")
    ref = Engine(model, device="cpu", fast=False)
    host = Engine(model, device="cpu")
    calls: list[tuple[int, int]] = []

    class SmallMemory(CudaTorchRunner):
        def __call__(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(tuple(x.shape[-2:]))
            if x.shape[-1] * x.shape[-2] > 48 * 48:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return super().__call__(x)

    host._runner = SmallMemory(model, fp16=False, device="cpu")
    pipe = CudaPipeline(host, depth=1)
    y = np.random.default_rng(0).integers(0, 256, (70, 90)).astype(np.uint8)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cuda_mod, "OOM_TILE", 32)
        first = pipe.run_luma(y, 8)
        calls.clear()
        second = pipe.run_luma(y, 8)
    assert pipe.tile == 32 and all(h <= 32 + 2 * pipe.halo for h, _ in calls)
    assert np.array_equal(first, second)
    want = ref.upscale_luma(y, 8).astype(float)
    mse = ((first.astype(float) - want) ** 2).mean()
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 50


def test_an_engine_is_a_context_manager_that_closes() -> None:
    y = np.zeros((8, 8), np.uint8)
    with Engine("bicubic-x2", device="cpu") as eng:
        assert eng.upscale_luma(y).shape == (16, 16)
    with pytest.raises(InputError, match="closed"):
        eng.upscale_luma(y)
