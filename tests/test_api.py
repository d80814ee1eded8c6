"""The public API: load_model, weights files, upscale_image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vidsr
from vidsr.registry import parse_name
from vidsr.weights import read_weights, save_weights


def test_load_model_deploy_form_in_eval_mode() -> None:
    m = vidsr.load_model("ecbsr-m4c16-x2", pretrained=False)
    assert not m.training
    assert m.spec.name == "ecbsr-m4c16-x2"
    out = m(torch.rand(1, 1, 8, 10))
    assert out.shape == (1, 1, 16, 20)


def test_dtype_and_device() -> None:
    m = vidsr.load_model("esr-max-x3", dtype=torch.float64, pretrained=False)
    assert next(m.parameters()).dtype == torch.float64


def test_missing_weights_warn_or_raise() -> None:
    name = "ecbsr-m1c2-x2"  # a valid architecture nobody ships
    with pytest.warns(UserWarning, match="no trained weights"):
        vidsr.load_model(name)
    with pytest.raises(vidsr.WeightsError):
        vidsr.load_model(name, pretrained=True)


def test_unknown_model_raises() -> None:
    with pytest.raises(vidsr.ModelNotFoundError):
        vidsr.load_model("srgan-x2")


def test_weights_file_round_trip(tmp_path) -> None:
    spec = parse_name("esr-tm-k3c2-x2")
    net = spec.build()
    path = save_weights(net, spec, tmp_path / "w.safetensors", recipe={"steps": 3})
    read_spec, tensors, meta = read_weights(path)
    assert read_spec == spec and meta["recipe"] == '{"steps": 3}'
    loaded = vidsr.load_model(path)
    x = torch.rand(1, 1, 5, 6)
    assert torch.equal(loaded(x), net(x))


def test_weights_file_must_be_vidsr(tmp_path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(vidsr.WeightsError):
        vidsr.load_model(bad)


@pytest.mark.parametrize("case", ["arch", "name", "shape"])
def test_bad_weights_metadata_is_a_weights_error(tmp_path, case) -> None:
    # metadata arch that is not JSON was a JSONDecodeError traceback; an unknown name did not
    # name the file; a shape mismatch said only "Error(s) in loading state_dict for ...:"
    from safetensors.torch import save_file

    spec = parse_name("esr-tm-k3c2-x2")
    path = save_weights(spec.build(), spec, tmp_path / "w.safetensors")
    _, tensors, meta = read_weights(path)
    if case == "arch":
        meta["arch"] = "not json"
    elif case == "name":
        meta["name"] = "nonsense"
    else:
        key = next(iter(tensors))
        tensors[key] = tensors[key][:1].contiguous()
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(vidsr.WeightsError) as err:
        vidsr.load_model(path)
    assert str(path) in str(err.value)
    if case == "shape":
        assert "size mismatch for" in str(err.value)


def test_upscale_image_shapes_and_gray() -> None:
    rng = np.random.default_rng(0)
    model = vidsr.load_model("bicubic-x2")
    rgb = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    assert vidsr.upscale_image(rgb, model).shape == (18, 14, 3)
    gray = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    up = vidsr.upscale_image(gray, model)
    assert up.shape == (18, 14) and up.dtype == np.uint8
    rgba = rng.integers(0, 256, (9, 7, 4), dtype=np.uint8)
    assert vidsr.upscale_image(rgba, model).shape == (18, 14, 4)


def test_upscale_image_keeps_colour() -> None:
    """A flat colour stays that colour: chroma survives the Y'CbCr round trip."""
    img = np.zeros((6, 6, 3), np.uint8)
    img[...] = (200, 40, 90)
    out = vidsr.upscale_image(img, vidsr.load_model("bicubic-x3"))
    assert np.abs(out.astype(int) - (200, 40, 90)).max() <= 1


def test_upscale_image_refuses_what_it_cannot_take(monkeypatch) -> None:
    # builtin TypeError/ValueError, torch's RuntimeError or AttributeError before; one
    # InputError each now, and H x W x 1 is gray
    from vidsr import api

    model = vidsr.load_model("bicubic-x2")
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(vidsr.upscale_image(gray[..., None], model)[..., 0],
                          vidsr.upscale_image(gray, model))
    for image, said in ((gray.astype(np.float32) / 255, "uint8 or uint16 pixels, got float32"),
                        (gray.astype(np.int32), "got int32"),
                        (np.zeros((5, 0), np.uint8), "empty"),
                        (np.zeros((2, 2, 2), np.uint8), r"got shape \(2, 2, 2\)"),
                        (gray.tolist(), "numpy array, got list"),
                        (torch.zeros(3, 4, dtype=torch.uint8), "numpy array, got Tensor")):
        with pytest.raises(vidsr.InputError, match=said):
            vidsr.upscale_image(image, model)
    with pytest.raises(vidsr.InputError, match="from vidsr.load_model"):
        vidsr.upscale_image(gray, torch.nn.Identity())
    with pytest.raises(vidsr.InputError, match="H x W array"):
        vidsr.upscale_plane(np.zeros((3, 4, 3)), model)
    # the library refuses an output larger than the memory available, as vidsr image does
    monkeypatch.setattr(api, "available_memory", lambda: 1 << 20)
    with pytest.raises(vidsr.OutputError, match="the 8x6 output needs about"):
        vidsr.upscale_image(gray, model)


def test_load_model_devices_and_names(tmp_path, monkeypatch) -> None:
    # device="auto" and a bad device were torch errors; a file named like a model in the
    # working folder was read as a weights file
    assert next(vidsr.load_model("esr-max-x2", device="auto").parameters()).device.type in (
        "cpu", "cuda")
    with pytest.raises(vidsr.InputError, match="unsupported device 'gpu'"):
        vidsr.load_model("esr-max-x2", device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(vidsr.InputError, match="no CUDA device"):
            vidsr.load_model("esr-max-x2", device="cuda")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ecbsr-x2").write_text("not weights")
    assert vidsr.load_model("ecbsr-x2").spec.name == "ecbsr-m4c16-x2"
    (tmp_path / "mine").write_text("not weights")
    with pytest.raises(vidsr.WeightsError):
        vidsr.load_model("mine")


def test_a_module_that_breaks_its_scale_is_one_clear_error() -> None:
    class Same(torch.nn.Module):  # claims x2, returns its input's size
        scale = 2

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    for image in (np.zeros((6, 5, 3), np.uint8), np.zeros((6, 5), np.uint8)):
        with pytest.raises(vidsr.InputError, match="promises"):
            vidsr.upscale_image(image, Same())


def test_upscale_plane_refuses_what_is_not_a_module() -> None:
    with pytest.raises(vidsr.InputError, match="torch module"):
        vidsr.upscale_plane(np.zeros((4, 4)), "ecbsr-x2")
