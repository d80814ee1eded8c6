"""The CLI, in process."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidsr.cli.main import main


def test_models_lists_every_family_and_scale(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("bicubic", "ecbsr-m4c16", "ecbsr-m4c8", "esr-max", "esr-tm", "esr-tr", "esr-cnn"):
        for s in (2, 3, 4):
            if name == "ecbsr-m4c8" and s != 2:
                continue
            assert f"{name}" in out and f"-x{s}" in out


def test_models_json(capsys) -> None:
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"ecbsr-m4c16-x2", "esr-max-k7c4-x4", "bicubic-x3"}


def test_image_command(tmp_path, capsys) -> None:
    src = tmp_path / "in.png"
    img = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    cv2.imwrite(str(src), img)
    dst = tmp_path / "out.png"
    assert main(["image", str(src), "-o", str(dst), "--model", "bicubic-x3"]) == 0
    assert cv2.imread(str(dst)).shape == (36, 30, 3)
    # an existing output is not replaced without --overwrite
    assert main(["image", str(src), "-o", str(dst), "--model", "bicubic-x3"]) == 1
    assert "exists" in capsys.readouterr().err
    # the input itself is never the output, even with --overwrite
    before = src.read_bytes()
    assert main(["image", str(src), "-o", str(src), "--model", "bicubic-x3", "--overwrite"]) == 1
    assert "is the input file" in capsys.readouterr().err and src.read_bytes() == before


def test_image_keeps_alpha_and_orientation_and_refuses_bad_outputs(tmp_path, capsys) -> None:
    rng = np.random.default_rng(1)
    rgba = tmp_path / "a.png"
    cv2.imwrite(str(rgba), rng.integers(0, 256, (12, 10, 4), dtype=np.uint8))
    assert main(["image", str(rgba), "--model", "bicubic-x2"]) == 0
    out = cv2.imread(str(tmp_path / "a_bicubic-x2.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (24, 20, 4)  # alpha was dropped
    jpg = tmp_path / "r.jpg"  # stored 10 wide, 12 high; EXIF orientation 6: shown 12 x 10
    assert cv2.imwrite(str(jpg), rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    data = jpg.read_bytes()  # an APP1 Exif segment with Orientation = 6 after SOI
    tiff = b"MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" \
        b"\x00\x00\x00\x00"
    app1 = b"Exif\x00\x00" + tiff
    jpg.write_bytes(data[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + data[2:])
    assert main(["image", str(jpg), "--model", "bicubic-x2"]) == 0  # default name: .png
    assert cv2.imread(str(tmp_path / "r_bicubic-x2.png")).shape == (20, 24, 3)
    capsys.readouterr()
    for dst in (tmp_path / "x.foo", tmp_path / "noext", tmp_path):  # were tracebacks
        assert main(["image", str(rgba), "-o", str(dst), "--model", "bicubic-x2",
                     "--overwrite"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("vidsr: error: "), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_bicubic-x2.png", "r.jpg",
                                                          "r_bicubic-x2.png"]
    # a PNG with alpha and an eXIf chunk (orientation 6) is turned upright too
    import struct
    import zlib

    exif = b"II*\x00" + struct.pack("<IHHHIHHI", 8, 1, 0x0112, 3, 1, 6, 0, 0)
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(
        ">I", zlib.crc32(b"eXIf" + exif) & 0xFFFFFFFF)
    png = cv2.imencode(".png", rng.integers(0, 256, (12, 10, 4), dtype=np.uint8))[1].tobytes()
    at = png.index(b"IDAT") - 4
    (tmp_path / "t.png").write_bytes(png[:at] + chunk + png[at:])
    assert main(["image", str(tmp_path / "t.png"), "--model", "bicubic-x2"]) == 0
    out = cv2.imread(str(tmp_path / "t_bicubic-x2.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (20, 24, 4)  # sideways, (24, 20, 4), before


def _png_with_orientation(pixels: np.ndarray, orientation: int) -> bytes:
    import struct
    import zlib

    exif = b"MM\x00*" + struct.pack(">IHHHIHHI", 8, 1, 0x0112, 3, 1, orientation, 0, 0)
    chunk = struct.pack(">I", len(exif)) + b"eXIf" + exif + struct.pack(
        ">I", zlib.crc32(b"eXIf" + exif) & 0xFFFFFFFF)
    png = cv2.imencode(".png", pixels)[1].tobytes()
    at = png.index(b"IDAT") - 4
    return png[:at] + chunk + png[at:]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_alpha_is_turned_by_the_exif_tag_itself(tmp_path, orientation) -> None:
    # the alpha was turned by a search for the turn that gives OpenCV's upright colour, which
    # a flat colour cannot tell apart: a red logo's alpha ramp came out the wrong way round
    from vidsr.images import _dihedral, exif_orientation, read_image

    textured = np.random.default_rng(orientation).integers(0, 256, (6, 9, 4), dtype=np.uint8)
    data = _png_with_orientation(textured, orientation)
    assert exif_orientation(data) == orientation
    (tmp_path / "t.png").write_bytes(data)
    upright = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_ANYCOLOR)  # OpenCV's turn
    rgba = read_image(tmp_path / "t.png")
    assert np.array_equal(rgba[..., 2::-1], upright)
    # the texture makes the turn unambiguous: the alpha went with the colour
    turn = next(i for i, t in enumerate(_dihedral(textured[..., :3]))
                if np.array_equal(t, upright))
    assert np.array_equal(rgba[..., 3], _dihedral(textured[..., 3])[turn])
    flat = np.zeros((4, 6, 4), np.uint8)
    flat[..., 2], flat[..., 3] = 255, np.arange(6, dtype=np.uint8)[None] * 40
    (tmp_path / "f.png").write_bytes(_png_with_orientation(flat, orientation))
    assert np.array_equal(read_image(tmp_path / "f.png")[..., 3], _dihedral(flat[..., 3])[turn])


def test_image_outputs_refused_before_the_work(tmp_path, capsys, monkeypatch) -> None:
    from vidsr import api

    rgb, gray = tmp_path / "c.png", tmp_path / "g.png"
    cv2.imwrite(str(rgb), np.random.default_rng(0).integers(0, 256, (8, 6, 3), np.uint8))
    cv2.imwrite(str(gray), np.full((8, 6), 90, np.uint8))
    ran = []
    real = api.upscale_image
    monkeypatch.setattr(api, "upscale_image", lambda *a: ran.append(1) or real(*a))
    # a colour image as PGM was OpenCV's log line and "cannot write x: cannot write x" after
    # the work
    assert main(["image", str(rgb), "-o", str(tmp_path / "x.pgm"), "-m", "bicubic-x2"]) == 1
    assert ".pgm holds gray images" in capsys.readouterr().err
    monkeypatch.setattr(api, "available_memory", lambda: 1 << 20)
    assert main(["image", str(rgb), "-o", str(tmp_path / "y.png"), "-m", "bicubic-x2"]) == 1
    assert "GiB are available" in capsys.readouterr().err
    assert ran == [] and sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "g.png"]
    monkeypatch.undo()
    # a gray image as PPM is written in colour; a name that is only an extension works
    assert main(["image", str(gray), "-o", str(tmp_path / "x.ppm"), "-m", "bicubic-x2"]) == 0
    assert cv2.imread(str(tmp_path / "x.ppm"), cv2.IMREAD_UNCHANGED).shape == (16, 12, 3)
    (tmp_path / "d").mkdir()
    rgba = tmp_path / "a.png"
    cv2.imwrite(str(rgba), np.random.default_rng(1).integers(0, 256, (8, 6, 4), np.uint8))
    assert main(["image", str(rgba), "-o", str(tmp_path / "d" / ".png"), "-m", "bicubic-x2"]) == 0
    assert [p.name for p in (tmp_path / "d").iterdir()] == [".png"]
    assert cv2.imread(str(tmp_path / "d" / ".png"), cv2.IMREAD_UNCHANGED).shape == (16, 12, 4)


def test_image_formats_that_cannot_hold_the_picture(tmp_path, capsys, caplog) -> None:
    gray = tmp_path / "g.png"
    ramp = (np.arange(48, dtype=np.uint8).reshape(6, 8) * 5 + 6)
    cv2.imwrite(str(gray), ramp)
    # .pbm is 1-bit: OpenCV wrote a blank white page and the run said it worked
    assert main(["image", str(gray), "-o", str(tmp_path / "x.pbm"), "-m", "bicubic-x2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1-bit" in err[0], err
    # GIF's writer refused gray after the work with a reasonless "cannot write"; now RGB,
    # with a line saying the picture is put on a palette
    with caplog.at_level("WARNING"):
        assert main(["image", str(gray), "-o", str(tmp_path / "x.gif"), "-m", "bicubic-x2"]) == 0
    assert "256 colours" in caplog.text
    caplog.clear()
    assert cv2.imread(str(tmp_path / "x.gif")).shape == (12, 16, 3)
    # a refusal is the error alone, not a warning about alpha first
    rgba = tmp_path / "a.png"
    cv2.imwrite(str(rgba), np.random.default_rng(1).integers(0, 256, (6, 8, 4), np.uint8))
    with caplog.at_level("WARNING"):
        assert main(["image", str(rgba), "-o", str(tmp_path / "x.pgm"), "-m", "bicubic-x2"]) == 1
    assert ".pgm holds gray images" in capsys.readouterr().err and "alpha" not in caplog.text
    # AVIF keeps alpha (it was dropped with a warning)
    if cv2.haveImageWriter(str(tmp_path / "x.avif")):
        assert main(["image", str(rgba), "-o", str(tmp_path / "x.avif"), "-m", "bicubic-x2"]) == 0
        assert cv2.imread(str(tmp_path / "x.avif"), cv2.IMREAD_UNCHANGED).shape == (12, 16, 4)
    for argv in (["image", ""], ["", "-o", "x.mp4"], ["eval", "-m", "ecbsr-x2", "--data", ""],
                 ["export", "ecbsr-x2", "-o", ""]):  # ". is a directory", "no images in .",
        assert main(argv) == 1, argv                 # a default-named export in the cwd
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "an empty name" in err[0], (argv, err)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("x.pbm", "x.pgm"))]


def test_a_gray_sun_raster_reads_back(tmp_path) -> None:
    # OpenCV decodes vidsr's own gray .ras output as zeros unless asked for colour
    from vidsr.images import read_image

    ramp = (np.arange(48, dtype=np.uint8).reshape(6, 8) * 5 + 6)
    assert cv2.imwrite(str(tmp_path / "g.ras"), ramp)
    assert np.array_equal(read_image(tmp_path / "g.ras"), ramp)
    colour = np.random.default_rng(2).integers(0, 256, (6, 8, 3), np.uint8)
    assert cv2.imwrite(str(tmp_path / "c.ras"), colour)
    assert np.array_equal(read_image(tmp_path / "c.ras"), colour[..., ::-1])


def test_large_images_run_in_bands_without_seams() -> None:
    from vidsr import load_model
    from vidsr.api import upscale_image

    img = np.random.default_rng(3).integers(0, 256, (41, 23, 4), dtype=np.uint8)
    for name in ("ecbsr-x2", "esr-tm-x3", "bicubic-x4"):
        model = load_model(name)
        whole = upscale_image(img, model, band_pixels=1 << 30)
        bands = upscale_image(img, model, band_pixels=200)  # a band of one or two rows
        diff = np.abs(whole.astype(int) - bands)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, name


def test_unknown_model_is_one_error_line(tmp_path, capsys) -> None:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.zeros((4, 4, 3), np.uint8))
    assert main(["image", str(src), "--model", "ecbsr-x9"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidsr: error: ") and "ecbsr-x9" in err[0]


def test_missing_input_is_an_error(tmp_path, capsys) -> None:
    assert main(["image", str(tmp_path / "nope.png"), "--model", "bicubic-x2"]) == 1
    assert "no such file" in capsys.readouterr().err


def _eval_set(tmp_path: Path) -> Path:
    """A one-image HR folder for the evaluation tests."""
    data = tmp_path / "set"
    data.mkdir()
    yy, xx = np.mgrid[0:48, 0:40]
    img = np.stack([(yy * 5) % 256, (xx * 6) % 256, ((xx + yy) * 3) % 256], -1).astype(np.uint8)
    cv2.imwrite(str(data / "a.png"), img)
    return data


def test_eval_json(tmp_path, capsys) -> None:
    data = _eval_set(tmp_path)
    out = tmp_path / "r.json"
    assert main(["eval", "--model", "bicubic-x2", "--data", str(data), "--json", str(out)]) == 0
    [report] = json.loads(out.read_text())  # a list, for one report as for several
    assert report["model"] == "bicubic-x2" and report["images"][0]["name"] == "a"
    assert 20 < report["psnr"] < 60
    assert "mean" in capsys.readouterr().out


def test_eval_json_to_stdout_alone(tmp_path, capsys, monkeypatch) -> None:
    # --json - wrote a file named "-"; now stdout is the JSON alone and the table goes to stderr
    data = _eval_set(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--model", "bicubic-x2", "--data", str(data), "--json", "-"]) == 0
    out, err = capsys.readouterr()
    [report] = json.loads(out)
    assert report["model"] == "bicubic-x2" and "mean" in err
    assert not (tmp_path / "-").exists()


def test_eval_json_of_an_exact_match_is_strict_json(tmp_path, monkeypatch) -> None:
    # a flat image scores PSNR inf, which json.dumps wrote as the non-JSON token Infinity
    data = tmp_path / "flat"
    data.mkdir()
    cv2.imwrite(str(data / "grey.png"), np.full((40, 40), 16, np.uint8))
    out = tmp_path / "r.json"
    monkeypatch.chdir(data)  # --data . is named after the folder, not ""
    assert main(["eval", "--model", "bicubic-x2", "--data", ".", "--json", str(out)]) == 0
    assert "Infinity" not in out.read_text()
    [report] = json.loads(out.read_text())
    assert report["psnr"] == "inf" and report["dataset"] == "flat"


@pytest.mark.parametrize("case", ["image", "bicubic", "unshipped", "weights"])
def test_eval_refuses_what_it_must_not_write_or_record(tmp_path, capsys, case) -> None:
    # --json onto an input image overwrote it; --record of bicubic or an unshipped model was a
    # KeyError after the work; --record of a weights file rewrote the shipped model's entry
    from vidsr import load_model
    from vidsr.weights import manifest, save_weights

    data = _eval_set(tmp_path)
    before = (data / "a.png").read_bytes()
    weights = tmp_path / "w.safetensors"
    model = load_model("esr-max-k7c4-x3")
    save_weights(model, model.spec, weights)
    shipped = manifest()
    argv = {"image": ["-m", "bicubic-x2", "--json", str(data / "a.png")],
            "bicubic": ["-m", "bicubic-x2", "--record"],
            "unshipped": ["-m", "esr-max-k7c2-x2", "--record"],
            "weights": ["-m", str(weights), "--record"]}[case]
    assert main(["eval", *argv, "--data", str(data)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidsr: error: "), err
    assert "PSNR" not in captured.out  # refused before any work
    assert (data / "a.png").read_bytes() == before and manifest() == shipped


def test_eval_several_models(tmp_path, capsys) -> None:
    data = _eval_set(tmp_path)
    out = tmp_path / "r.json"
    assert main(["eval", "--model", "bicubic-x2", "--model", "esr-max-x2", "--data", str(data),
                 "--json", str(out)]) == 0
    reports = json.loads(out.read_text())
    assert [r["model"] for r in reports] == ["bicubic-x2", "esr-max-k7c4-x2"]
    assert reports[0]["psnr"] != reports[1]["psnr"]
    assert "summary" in capsys.readouterr().out


def test_eval_bad_model_evaluates_nothing(tmp_path, capsys) -> None:
    data = _eval_set(tmp_path)
    assert main(["eval", "--model", "bicubic-x2", "--model", "no-such-model",
                 "--data", str(data)]) != 0
    assert "mean" not in capsys.readouterr().out


@pytest.mark.data
def test_eval_bicubic_set5(shared_data, capsys) -> None:
    assert main(["eval", "--model", "bicubic-x2", "--data", str(shared_data / "Set5")]) == 0
    mean = [ln for ln in capsys.readouterr().out.splitlines() if "mean" in ln][0]
    assert abs(float(mean.split()[2]) - 33.66) <= 0.05


def test_closed_output_pipe_is_quiet(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["models"]) == 141
    assert "Traceback" not in capsys.readouterr().err


def test_eval_self_ensemble(tmp_path, capsys) -> None:
    data = _eval_set(tmp_path)
    out = tmp_path / "se.json"
    assert main(["eval", "--model", "esr-max-x2", "--self-ensemble", "--data", str(data),
                 "--json", str(out)]) == 0
    assert json.loads(out.read_text())[0]["model"] == "esr-max-k7c4-x2 (self-ensemble)"
    capsys.readouterr()
    assert main(["eval", "--model", "esr-max-x2", "--self-ensemble", "--record",
                 "--data", str(data)]) == 1
    assert "--record" in capsys.readouterr().err


def test_eval_round_lr_scores_whole_grey_level_inputs(tmp_path, capsys) -> None:
    data = _eval_set(tmp_path)
    plain, rounded = tmp_path / "plain.json", tmp_path / "rounded.json"
    assert main(["eval", "--model", "esr-max-x2", "--data", str(data), "--json", str(plain)]) == 0
    assert main(["eval", "--model", "esr-max-x2", "--round-lr", "--data", str(data),
                 "--json", str(rounded)]) == 0
    [a], [b] = json.loads(plain.read_text()), json.loads(rounded.read_text())
    assert b["model"] == "esr-max-k7c4-x2 (8-bit LR)"
    assert b["psnr"] < a["psnr"]    # rounding the input loses information on a smooth ramp
    capsys.readouterr()
    assert main(["eval", "--model", "esr-max-x2", "--round-lr", "--record",
                 "--data", str(data)]) == 1
    assert "--round-lr" in capsys.readouterr().err


def test_the_console_entry_flushes_before_its_fast_exit() -> None:
    """``python -m vidsr`` ends with ``os._exit`` (no module teardown): what it printed into a
    pipe, which Python buffers, still arrives whole, and the exit status is main()'s."""
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "vidsr", "models", "--json"], cwd=repo,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names = {row["name"] for row in json.loads(done.stdout)}
    assert {"ecbsr-m4c16-x2", "esr-max-k7c4-x4", "bicubic-x2"} <= names
    bad = subprocess.run([sys.executable, "-m", "vidsr", "no-such-file.mp4"], cwd=repo,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.strip() == "vidsr: error: no such file: " \
        "no-such-file.mp4"


@pytest.mark.parametrize("case", ["tiny_eval", "eval_json_folder", "bench_json_folder",
                                  "bench_frames", "bench_threads"])
def test_eval_and_bench_refuse_bad_arguments_in_one_line(tmp_path, capsys, case) -> None:
    # tiny images were tracebacks (or SSIM nan); a --json into a missing folder failed only
    # after the work; --frames 0 ran 5 frames
    (tmp_path / "set").mkdir()
    side = 8 if case == "tiny_eval" else 40
    img = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "set" / "a.png"), img)
    bench = ["bench", "--sizes", "64x48", "--no-e2e", "--models", "bicubic-x2", "--device",
             "cpu"]
    argv = {"tiny_eval": ["eval", "-m", "bicubic-x2", "--data", str(tmp_path / "set")],
            "eval_json_folder": ["eval", "-m", "bicubic-x2", "--data", str(tmp_path / "set"),
                                 "--json", str(tmp_path / "no" / "x.json")],
            "bench_json_folder": [*bench, "--json", str(tmp_path / "no" / "x.json")],
            "bench_frames": [*bench, "--frames", "0"],
            "bench_threads": [*bench, "--threads", "0"]}[case]
    assert main(argv) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidsr: error: "), err
    assert "PSNR" not in captured.out  # refused before any work


def test_a_mistyped_command_is_named_and_debug_goes_anywhere(capsys) -> None:
    assert main(["modles"]) == 1  # was "no such file: modles"
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vidsr: error: no such command or file: modles (did you mean 'vidsr "
                   "models'?)"]
    assert main(["models", "--debug"]) == 0  # was "unrecognized arguments: --debug"
    assert "ecbsr-m4c16-x2" in capsys.readouterr().out
    # an option is never taken for a mistyped command (--model is close to "models")
    assert main(["--model", "no-such-x2", "in.mp4"]) == 1
    assert "did you mean" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:  # argparse's abbreviations still reach the top
        main(["--vers"])
    assert done.value.code == 0 and "vidsr" in capsys.readouterr().out


def test_a_full_disk_on_stdout_is_one_line() -> None:
    import os

    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "vidsr", "models"], stdout=full,
                              stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 1 and proc.stderr.strip() == \
        "vidsr: error: cannot write: No space left on device", proc.stderr


def test_list_options_take_spaces_or_commas(tmp_path, capsys) -> None:
    # `vidsr bench --models ecbsr-x2,esr-max-x2` was "unknown model 'ecbsr-x2,esr-max-x2'"
    # while `vidsr gui --models` takes only commas
    from vidsr.cli import split_list

    assert split_list(["ecbsr-x2,esr-max-x2", "esr-tm-x2"]) == ["ecbsr-x2", "esr-max-x2",
                                                                 "esr-tm-x2"]
    assert split_list("a, b,") == ["a", "b"] and split_list(None) is None
    weights = tmp_path / "a,b" / "best.safetensors"
    weights.parent.mkdir()
    weights.write_bytes(b"")
    assert split_list([str(weights), "x,y"]) == [str(weights), "x", "y"]
    assert main(["bench", "--models", "bicubic-x2,esr-max-x2", "--sizes", "32x24,16x12",
                 "--frames", "1", "--no-e2e", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert all(f"{m}  " in out for m in ("bicubic-x2", "esr-max-k7c4-x2"))  # the alias named
    assert "32x24" in out and "16x12" in out


def test_parser_needs_no_torch() -> None:
    """'vidsr --help', a subcommand's --help and a usage error answer without importing torch
    or PyAV (seconds on a laptop); each command imports them when it runs."""
    import subprocess

    code = ("import sys; from vidsr.cli.main import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'av', 'PyQt6') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    from vidsr.cli.cmd_export import IO_KINDS
    from vidsr.export import IO_BITS

    assert tuple(IO_BITS) == IO_KINDS


def test_untrained_models_and_undecodable_images_are_refused(tmp_path, capsys) -> None:
    # a model with no shipped weights wrote noise and exited 0 (a warning aside); an image
    # header too large for OpenCV was a cv2.error traceback
    from media import huge_png

    src = tmp_path / "a.png"
    cv2.imwrite(str(src), np.full((8, 8, 3), 100, np.uint8))
    (tmp_path / "huge.png").write_bytes(huge_png())
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"")  # refused for the model before the file is opened
    for argv, said in ((["image", str(src), "-m", "ecbsr-m4c4-x2"], "no trained weights"),
                       (["eval", "-m", "esr-max-k7c8-x2", "--data", str(tmp_path)],
                        "no trained weights"),
                       ([str(clip), "-m", "ecbsr-m4c4-x2"], "no trained weights"),
                       (["webcam", "--camera", str(clip), "--no-display", "-m", "ecbsr-m4c4-x2"],
                        "no trained weights"),
                       (["image", str(tmp_path / "huge.png"), "-m", "bicubic-x2"],
                        "larger than OpenCV decodes")):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "c.mp4", "huge.png"]


def test_json_reports_are_written_whole_or_not_at_all(tmp_path) -> None:
    # past a file-size limit, eval/export/bench --json left half a file in place of the old
    # one, with a traceback
    import resource
    import subprocess

    old = tmp_path / "r.json"
    old.write_text('{"old": 1}\n')
    code = ("import sys; from vidsr.paths import write_json\n"
            "try:\n    write_json(sys.argv[1], {'a': 'b' * 4000})\n"
            "except Exception as e:\n    print(type(e).__name__, e)")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    out = subprocess.run([sys.executable, "-c", code, str(old)], capture_output=True, text=True,
                         preexec_fn=limit, check=True).stdout
    assert out.startswith("OutputError cannot write") and "File too large" in out, out
    assert old.read_text() == '{"old": 1}\n' and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_16_bit_images_stay_16_bit(tmp_path, capsys, caplog) -> None:
    # 16-bit PNG/TIFF were refused ("only 8-bit images are supported"); they are upscaled on
    # the same scale as 8-bit ones and written with 16 bits where the format holds them
    import vidsr

    rng = np.random.default_rng(5)
    rgb8 = rng.integers(0, 256, (12, 10, 3), np.uint8)
    model = vidsr.load_model("esr-max-x2")
    want = vidsr.upscale_image(rgb8, model).astype(np.int64) * 257
    for name, img in (("c.png", rgb8), ("g.tif", rgb8[..., 0])):
        deep = img.astype(np.uint16) * 257
        cv2.imwrite(str(tmp_path / name), deep if deep.ndim == 2 else deep[..., ::-1])
        out = tmp_path / f"up-{name}"
        assert main(["image", str(tmp_path / name), "-o", str(out), "-m", "esr-max-x2"]) == 0
        assert "16-bit" in capsys.readouterr().out
        got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
        assert got.dtype == np.uint16
        got = got.astype(np.int64) if got.ndim == 2 else got[..., ::-1].astype(np.int64)
        ref = want if got.ndim == 3 else \
            vidsr.upscale_image(rgb8[..., 0], model).astype(np.int64) * 257
        assert np.abs(got - ref).max() <= 129  # rounding to 16 bits, not to 8
        assert (got % 257 != 0).any()  # more than 8 bits of result
    with caplog.at_level("WARNING"):
        assert main(["image", str(tmp_path / "c.png"), "-o", str(tmp_path / "c.jpg"),
                     "-m", "esr-max-x2"]) == 0
    assert "the 16-bit image is written with 8" in caplog.text
    assert cv2.imread(str(tmp_path / "c.jpg"), cv2.IMREAD_UNCHANGED).dtype == np.uint8


def test_images_with_fewer_bits_than_their_type_are_stretched(tmp_path, capsys, caplog) -> None:
    # OpenCV hands a 12-bit AVIF or JPEG 2000 over as 0..4095 in uint16 and a PGM with maxval
    # 99 as 0..99: upscaled as they came, they were written nearly black
    import av

    import vidsr
    from vidsr.images import read_image, sample_max

    y, x = np.mgrid[0:24, 0:32]
    codes12 = ((x * 131 + y * 37) % 4096).astype(np.uint16)
    files = {}
    cv2.imwrite(str(tmp_path / "a12.avif"), np.dstack([codes12] * 3),
                [cv2.IMWRITE_AVIF_DEPTH, 12, cv2.IMWRITE_AVIF_QUALITY, 100])
    files["a12.avif"] = 4095
    cv2.imwrite(str(tmp_path / "a10.avif"), np.dstack([codes12 >> 2] * 3),
                [cv2.IMWRITE_AVIF_DEPTH, 10, cv2.IMWRITE_AVIF_QUALITY, 100])
    files["a10.avif"] = 1023
    enc = av.CodecContext.create("jpeg2000", "w")
    enc.width, enc.height, enc.pix_fmt, enc.time_base = 32, 24, "gray12le", 1
    frame = av.VideoFrame.from_ndarray(codes12, format="gray12le")
    (tmp_path / "g12.j2k").write_bytes(b"".join(bytes(p) for p in enc.encode(frame)
                                                + enc.encode(None)))
    files["g12.j2k"] = 4095
    codes99 = (codes12 % 100).astype(np.uint8)
    (tmp_path / "g99.pgm").write_bytes(b"P5\n# a comment\n32 24\n99\n" + codes99.tobytes())
    files["g99.pgm"] = 99
    for name, top in files.items():
        data = (tmp_path / name).read_bytes()
        assert sample_max(data) == top, name
        img = read_image(tmp_path / name, bits16=True)
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        raw = raw if raw.ndim == 2 else raw[..., ::-1]
        full = np.iinfo(img.dtype).max
        assert np.abs(img.astype(np.float64) - raw * (full / top)).max() <= 0.5, name
        assert img.max() > full * 0.9, name  # the picture's whole range, not its bottom 6%
    assert sample_max((tmp_path / "a12.avif").read_bytes().replace(b"avif", b"heic", 1)) is None
    # written back: AVIF with 12 bits, JPEG 2000 and .pnm with 16
    model = vidsr.load_model("esr-max-x2")
    for name in ("up.avif", "up.jp2", "up.pnm"):
        with caplog.at_level("WARNING"):
            assert main(["image", str(tmp_path / "a12.avif"), "-o", str(tmp_path / name),
                         "-m", "esr-max-x2"]) == 0
        capsys.readouterr()
        back = read_image(tmp_path / name, bits16=True)
        want = vidsr.upscale_image(read_image(tmp_path / "a12.avif", bits16=True), model)
        assert back.dtype == np.uint16 and back.shape == want.shape, name
        # AVIF and JPEG 2000 at OpenCV's default quality are lossy, .pnm is exact
        err = np.abs(back.astype(np.int64) - want).mean()
        assert err <= {"up.avif": 120, "up.jp2": 16}.get(name, 0), name
        assert (back % 257 != 0).any(), name
    assert "written with 12" in caplog.text and "written with 8" not in caplog.text


def test_codec_messages_become_the_reason(tmp_path, capfd) -> None:
    # libpng printed "libpng error: ..." on a line of its own before vidsr's error line
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), np.random.default_rng(2).integers(0, 256, (128, 128, 3), np.uint8))
    data = src.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) * 2 // 3])
    assert main(["image", str(tmp_path / "cut.png"), "-m", "bicubic-x2"]) == 1
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vidsr: error: ") and "(libpng error: " in err[0]


def test_codec_messages_across_threads_and_json_through_links(tmp_path, capfd) -> None:
    # two threads decoding at once each get their own codec's reason and fd 2 comes back;
    # --json through a link writes its target (it replaced the link), to a device as asked
    import os
    import threading

    from vidsr.errors import InputError
    from vidsr.images import read_image
    from vidsr.paths import write_json

    src = tmp_path / "a.png"
    cv2.imwrite(str(src), np.random.default_rng(2).integers(0, 256, (128, 128, 3), np.uint8))
    data = src.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) * 2 // 3])
    before = os.readlink("/proc/self/fd/2") if os.path.exists("/proc/self/fd/2") else None
    said: list[str] = []

    def read() -> None:
        try:
            read_image(tmp_path / "cut.png")
        except InputError as exc:
            said.append(str(exc))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(said) == 4 and all("(libpng error: " in s for s in said), said
    if before is not None:
        assert os.readlink("/proc/self/fd/2") == before
    os.write(2, b"still here\n")
    assert "still here" in capfd.readouterr().err
    target = tmp_path / "target.json"
    target.write_text("{}")
    (tmp_path / "link.json").symlink_to(target)
    write_json(tmp_path / "link.json", {"a": 1})
    assert (tmp_path / "link.json").is_symlink() and json.loads(target.read_text()) == {"a": 1}
    write_json("/dev/null", {"a": 1})


def test_a_usage_error_is_one_line(capsys) -> None:
    # argparse printed its whole usage block before the error
    with pytest.raises(SystemExit) as exc:
        main(["samples/sample.mp4", "-o", "x.mkv", "--start", "1:2:3:4"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and err.startswith("vidsr upscale: error: argument --start")
    assert err.endswith("(see 'vidsr upscale --help')")


@pytest.mark.parametrize(("argv", "prog", "named"), [
    (["--bogus"], "vidsr upscale", "--bogus"), (["eval", "--frob=1"], "vidsr eval", "--frob=1"),
    (["-Z", "--mod", "x"], "vidsr upscale", "-Z"),
    (["-Z", "--models"], "vidsr upscale", "-Z --models")])
def test_an_unknown_option_is_named_before_a_missing_argument(capsys, argv, prog, named) -> None:
    # "vidsr --bogus" said "the following arguments are required: input"
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"{prog}: error: unrecognized arguments: {named} (see '{prog} --help')"


def test_a_missing_argument_is_still_named_when_every_option_is_known(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["-q", "--mod", "esr-max-x2", "--crf=20"])  # an abbreviation and a --name=value
    assert "the following arguments are required: input" in capsys.readouterr().err
