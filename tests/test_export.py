"""``vidsr export``: ONNX and torch.export files that reproduce the PyTorch model."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from nets import perturbed_model

from vidsr.api import load_model, upscale_plane
from vidsr.errors import InputError, OutputError, WeightsError
from vidsr.export import ExportError, export_model
from vidsr.weights import save_weights


def _weights(tmp_path: Path, name: str) -> Path:
    """A weights file of ``name`` with random (not initial) weights."""
    model = perturbed_model(name)
    return save_weights(model, model.spec, tmp_path / f"{name}.safetensors")


def _codes(plane: np.ndarray, peak: int) -> np.ndarray:
    """The engines' quantisation of a 0-255 float plane: round half up, clip."""
    return np.clip(np.floor(plane / 255.0 * peak + 0.5), 0, peak)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if "partial" in p.name]


@pytest.mark.parametrize("name", ["ecbsr-m4c8-x3", "esr-tm-k7c16-x2"])
def test_pt2_runs_in_plain_torch(tmp_path: Path, name: str) -> None:
    weights = _weights(tmp_path, name)
    out = tmp_path / "model.pt2"
    report = export_model(weights, out)
    assert report.checked_with == "torch.export.load" and report.max_diff <= 1e-4
    extra = {"vidsr.json": ""}
    program = torch.export.load(str(out), extra_files=extra)
    meta = json.loads(extra["vidsr.json"])
    assert meta["vidsr.model"] == name and meta["vidsr.scale"] == name[-1]
    model = load_model(weights)
    x = torch.rand(2, 1, 29, 41)  # batch, height and width none of the traced ones
    with torch.inference_mode():
        want = model(x)
        got = program.module()(x)
    assert got.shape == (2, 1, 29 * model.spec.scale, 41 * model.spec.scale)
    assert torch.allclose(got, want, atol=1e-5)
    assert out.stat().st_mode & 0o777 == 0o666 & ~_umask()  # as a plain new file
    assert _leftovers(tmp_path) == []


def test_pt2_shapes_are_unbounded(tmp_path: Path) -> None:
    out = tmp_path / "m.pt2"
    export_model("esr-max-x2", out, check=False)
    module = torch.export.load(str(out)).module()
    with torch.inference_mode():
        assert module(torch.rand(1100, 1, 1, 2)).shape == (1100, 1, 2, 4)
        assert module(torch.rand(1, 1, 1, 17000)).shape == (1, 1, 2, 34000)


def test_uint8_graph_quantises_like_the_engines(tmp_path: Path) -> None:
    weights = _weights(tmp_path, "esr-max-k7c4-x2")
    out = tmp_path / "m.pt2"
    export_model(weights, out, io="uint8")
    plane = np.random.default_rng(3).integers(0, 256, (33, 47), dtype=np.uint8)
    got = torch.export.load(str(out)).module()(torch.from_numpy(plane)[None, None])[0, 0]
    assert got.dtype == torch.uint8
    want = _codes(upscale_plane(plane.astype(np.float64), load_model(weights)), 255)
    diff = np.abs(got.numpy().astype(np.int64) - want)
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3


def test_onnx_runs_in_onnxruntime(tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    weights = _weights(tmp_path, "ecbsr-m4c8-x2")
    out = tmp_path / "m.onnx"
    report = export_model(weights, out, io="uint10")
    assert report.checked_with == "onnxruntime" and report.max_diff <= 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("m.onnx")] == ["m.onnx"]
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["vidsr.model"] == "ecbsr-m4c8-x2" and meta["vidsr.io"] == "uint10"
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    plane = np.random.default_rng(4).integers(0, 1024, (1, 1, 25, 38), dtype=np.uint16)
    got = session.run(None, {"lr": plane})[0]
    assert got.dtype == np.uint16 and got.shape == (1, 1, 50, 76)
    want = _codes(upscale_plane(plane[0, 0] / 1023.0 * 255.0, load_model(weights)), 1023)
    diff = np.abs(got[0, 0].astype(np.int64) - want)
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3


def test_onnx_without_its_packages_says_what_to_install(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import fails as if not installed
    with pytest.raises(ExportError, match="needs onnxscript: pip install onnx onnxscript"):
        export_model("esr-max-x2", tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_check_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vidsr.export as ex

    real = ex._run_pt2
    monkeypatch.setattr(ex, "_run_pt2", lambda path, x: real(path, x) + 0.01)
    out = tmp_path / "m.pt2"
    out.write_bytes(b"old")
    with pytest.raises(ExportError, match="differs from PyTorch by 0.01"):
        export_model("esr-max-x2", out, overwrite=True)
    assert out.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_a_wrong_rounding_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vidsr.export as ex

    real = ex._run_pt2

    def every_other_code_off_by_one(path: Path, x: torch.Tensor) -> np.ndarray:
        got = real(path, x).astype(np.int64)
        got.reshape(-1)[::2] += 1
        return np.clip(got, 0, 255).astype(np.uint8)

    monkeypatch.setattr(ex, "_run_pt2", every_other_code_off_by_one)
    with pytest.raises(ExportError, match=r"in 4\d\.\d+% of the codes"):
        export_model("esr-max-x2", tmp_path / "m.pt2", io="uint8")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_stays_an_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C inside the exporter (or an extension module's start) comes back wrapped in the
    exporter's own error or an ImportError; it must stop the export as an interrupt."""
    import vidsr.export as ex

    def wrapped_interrupt(error: type[Exception], message: str):  # noqa: ANN202
        def raise_it(*args: object, **kwargs: object) -> None:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as exc:
                raise error(message) from exc
        return raise_it

    monkeypatch.setattr(torch.export, "export",
                        wrapped_interrupt(RuntimeError, "Failed to export the model"))
    with pytest.raises(KeyboardInterrupt):
        export_model("esr-max-x2", tmp_path / "m.pt2")
    monkeypatch.undo()
    monkeypatch.setattr(ex.importlib, "import_module",
                        wrapped_interrupt(ImportError, "initialization failed"))
    with pytest.raises(KeyboardInterrupt):
        ex._import("onnxruntime")
    assert list(tmp_path.iterdir()) == []


def test_an_exporter_failure_is_one_clean_line() -> None:
    import vidsr.export as ex

    try:
        try:
            raise ValueError("\x1b[96mUnsupported operator\x1b[0m aten::foo\nmore detail")
        except ValueError as inner:
            raise RuntimeError("Failed to export. \x1b[96mThis is step 1/3\x1b[0m") from inner
    except RuntimeError as exc:
        err = ex._failed("the ONNX exporter", exc)
    assert isinstance(err, ExportError)
    assert str(err) == "the ONNX exporter failed: Unsupported operator aten::foo"


def test_a_model_without_trained_weights_is_not_exported(tmp_path: Path) -> None:
    from vidsr.weights import manifest

    assert "esr-max-k5c3-x2" not in manifest()  # a name in the grammar, never trained
    with pytest.raises(WeightsError, match="export a weights file"):
        export_model("esr-max-k5c3-x2", tmp_path / "m.pt2")
    assert list(tmp_path.iterdir()) == []


def test_unchecked_exports_say_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = export_model("esr-max-x2", tmp_path / "m.pt2", check=False)
    assert report.describe().endswith("; not run (--no-check)")
    pytest.importorskip("onnxscript")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    report = export_model("esr-max-x2", tmp_path / "m.onnx")
    assert report.checked_with is None
    assert "not run (onnxruntime is not installed: pip install onnxruntime" in report.describe()


def test_default_output_names(tmp_path: Path) -> None:
    from vidsr.export import default_output

    assert default_output("ecbsr-x2") == Path("ecbsr-m4c16-x2.onnx")
    assert default_output("esr-max-x2", "uint8") == Path("esr-max-k7c4-x2-uint8.onnx")
    weights = _weights(tmp_path, "esr-max-k7c4-x2")
    assert default_output(weights, "uint10", "pt2") == Path("esr-max-k7c4-x2-uint10.pt2")
    teacher = tmp_path / "my-run.safetensors"
    weights.rename(teacher)
    assert default_output(teacher) == Path("my-run.onnx")


def test_an_unwritable_pt2_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:747] . open file failed with "
                           "strerror: Operation not permitted")

    monkeypatch.setattr(torch.export, "save", refuse)
    with pytest.raises(OutputError, match=r"cannot write \S+m.pt2: open file failed with "
                                          "strerror: Operation not permitted$"):
        export_model("esr-max-x2", tmp_path / "m.pt2")
    assert list(tmp_path.iterdir()) == []


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    taken = tmp_path / "taken.pt2"
    taken.write_bytes(b"x")
    with pytest.raises(OutputError, match="exists"):
        export_model("esr-max-x2", taken)
    with pytest.raises(OutputError, match="give .onnx or .pt2"):
        export_model("esr-max-x2", tmp_path / "m.txt")
    with pytest.raises(OutputError, match="folder does not exist"):
        export_model("esr-max-x2", tmp_path / "no" / "m.pt2")
    with pytest.raises(OutputError, match="is a directory; give an output file name"):
        export_model("esr-max-x2", tmp_path)
    with pytest.raises(InputError, match="an opset is for .onnx files"):
        export_model("esr-max-x2", tmp_path / "m.pt2", opset=18)
    with pytest.raises(InputError, match="opset 17 is outside 18-"):
        export_model("esr-max-x2", tmp_path / "m.onnx", opset=17)
    with pytest.raises(ExportError, match="not a network"):
        export_model("bicubic-x2", tmp_path / "m.pt2")
    assert taken.read_bytes() == b"x" and sorted(p.name for p in tmp_path.iterdir()) == \
        ["taken.pt2"]


def test_export_command(tmp_path: Path, capsys: pytest.CaptureFixture,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    from vidsr.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["export", "esr-max-x2", "-o", "m.pt2", "--io", "uint8", "--json", "r.json"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("esr-max-k7c4-x2 -> m.pt2 (torch.export program")
    assert "torch.export.load matches PyTorch" in line
    assert json.loads((tmp_path / "r.json").read_text())["io"] == "uint8"
    assert main(["export", "esr-max-x2", "-o", "m.pt2"]) == 1
    assert "m.pt2 exists" in capsys.readouterr().err
    (tmp_path / "folder").mkdir()
    assert main(["export", "esr-max-x2", "-o", "n.pt2", "--json", "folder"]) == 1
    assert capsys.readouterr().err.strip() == \
        "vidsr: error: --json folder is a directory; give an output file name"
    assert not (tmp_path / "n.pt2").exists()


def test_json_never_replaces_the_export_or_its_weights(tmp_path: Path,  # noqa: ANN001
                                                       capsys: pytest.CaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from vidsr.cli.main import main

    monkeypatch.chdir(tmp_path)
    weights = _weights(tmp_path, "esr-max-k7c4-x2")
    before = weights.read_bytes()
    for argv in (["-o", "m.pt2", "--json", "m.pt2"],
                 ["-o", "n.pt2", "--json", str(weights)]):
        assert main(["export", str(weights), *argv, "--no-check"]) == 1
        assert "--json" in capsys.readouterr().err
    assert weights.read_bytes() == before
    assert not (tmp_path / "m.pt2").exists() and not (tmp_path / "n.pt2").exists()


def test_a_corrupt_weights_file_is_not_called_untrained(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_text("{}")
    with pytest.raises(WeightsError) as err:
        export_model(bad, tmp_path / "m.pt2")
    assert "not worth exporting" not in str(err.value)


def test_pt2_archive_naming_and_the_shipped_weights_by_path(tmp_path: Path) -> None:
    # the archive's root folder was the temporary file's name (.m.vidsr-partial/...), the
    # shipped weights given as a file lost their measured scores, and "d/.pt2" was "a file
    # without an extension"
    import zipfile

    from vidsr.weights import manifest

    shipped = manifest()["esr-max-k7c4-x2"]
    (tmp_path / "d").mkdir()
    out = tmp_path / "d" / ".pt2"
    export_model(shipped.path, out)
    roots = {n.split("/")[0] for n in zipfile.ZipFile(out).namelist()}
    assert roots == {"archive"}
    extra = {"vidsr.json": ""}
    torch.export.load(str(out), extra_files=extra)
    meta = json.loads(extra["vidsr.json"])
    assert meta["vidsr.weights_sha256"] == shipped.sha256
    assert meta["vidsr.psnr.Set5"] == f"{shipped.metrics['Set5']['psnr']:.3f}"
