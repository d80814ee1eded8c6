"""The evaluation protocol: metrics, and bicubic reproducing the published numbers."""

from __future__ import annotations

import numpy as np
import pytest
from media import huge_png

import vidsr
from vidsr.color import rgb_to_y
from vidsr.errors import InputError
from vidsr.evaluation import make_pair
from vidsr.metrics import psnr, ssim


def test_psnr_by_hand() -> None:
    a = np.zeros((10, 10))
    b = np.full((10, 10), 5.0)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / 25))
    b[0, :] = 100.0  # shaved away
    assert psnr(a, b, shave=1) == pytest.approx(10 * np.log10(255 ** 2 / 25))
    assert psnr(a, a) == float("inf")


def test_ssim_properties() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((40, 40)) * 255
    assert ssim(a, a) == pytest.approx(1.0)
    noisy = a + rng.normal(0, 20, a.shape)
    assert 0.0 < ssim(a, noisy) < ssim(a, a + rng.normal(0, 5, a.shape)) < 1.0


def test_bt601_studio_swing() -> None:
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8)
    assert np.allclose(rgb_to_y(rgb)[0], [16.0, 235.0, 16 + 65.481])


def test_pair_is_cropped_to_a_multiple_of_the_scale() -> None:
    hr = np.random.default_rng(0).integers(0, 256, (31, 20, 3), dtype=np.uint8)
    pair = make_pair(hr, 3)
    assert pair.hr_y.shape == (30, 18) and pair.lr_y.shape == (10, 6)


@pytest.mark.data
@pytest.mark.parametrize("dataset,scale,published", [
    ("Set5", 2, 33.66), ("Set5", 3, 30.39), ("Set5", 4, 28.42), ("Set14", 2, 30.24),
])
def test_bicubic_reproduces_published_psnr(shared_data, dataset: str, scale: int,
                                           published: float) -> None:
    report = vidsr.evaluate(vidsr.load_model(f"bicubic-x{scale}"), shared_data / dataset)
    assert abs(report.psnr - published) <= 0.05


def test_metrics_refuse_what_they_cannot_measure() -> None:
    # ssim on a plane its window does not fit was a cv2.error, psnr of mismatched or
    # over-shaved planes numpy's broadcast error or NaN with warnings
    a = np.zeros((20, 20))
    for call, said in ((lambda: ssim(a, a, shave=5), "leaves less than 11 pixels"),
                       (lambda: psnr(a, a, shave=10), "less than 1 pixel a side"),
                       (lambda: psnr(a, np.zeros((20, 21))), "of one shape")):
        with pytest.raises(InputError, match=said):
            call()
    assert type(psnr(a, a + 1)) is float and ssim(a, a, shave=4) == pytest.approx(1.0)


def test_eval_refuses_images_that_do_not_decode_whole(tmp_path) -> None:
    # a truncated JPEG was scored (half of it grey), a header too large for OpenCV was a
    # cv2.error traceback
    import cv2

    from vidsr.errors import DataError
    from vidsr.evaluation import read_rgb

    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    data = cv2.imencode(".jpg", rgb)[1].tobytes()
    (tmp_path / "cut.jpg").write_bytes(data[: 2 * len(data) // 3])
    (tmp_path / "huge.png").write_bytes(huge_png())
    for name, said in (("cut.jpg", "not a readable image"), ("huge.png", "larger than OpenCV")):
        with pytest.raises(DataError, match=said):
            read_rgb(tmp_path / name)
    (tmp_path / "whole.jpg").write_bytes(data)
    assert read_rgb(tmp_path / "whole.jpg").shape == (64, 64, 3)


def test_eval_folder_hidden_and_other_files_and_shared_stems(tmp_path, caplog) -> None:
    # macOS's ._a.png stopped the whole run ("cannot read image"), a.png and a.jpg were both
    # reported as "a", and a file of another kind dropped out of the mean unsaid
    import cv2

    rng = np.random.default_rng(3)
    for name in ("a.png", "a.jpg", "b.pgm"):
        shape = (24, 24) if name.endswith(".pgm") else (24, 24, 3)
        assert cv2.imwrite(str(tmp_path / name), rng.integers(0, 256, shape, np.uint8))
    (tmp_path / "._a.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (tmp_path / "notes.txt").write_text("where these came from")
    with caplog.at_level("WARNING"):
        report = vidsr.evaluate(vidsr.load_model("bicubic-x2"), tmp_path)
    assert [name for name, _p, _s in report.images] == ["a.jpg", "a.png", "b"]
    assert "skipping 1 file that is not an image vidsr reads: notes.txt" in caplog.text


def test_the_skipped_files_warning_comes_once_a_folder(tmp_path, caplog) -> None:
    import cv2

    from vidsr.evaluation import image_files

    assert cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 20, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    with caplog.at_level("WARNING"):
        for _ in range(3):
            assert [p.name for p in image_files(tmp_path)] == ["a.png"]
    assert caplog.text.count("skipping 1 file") == 1


def test_evaluate_takes_a_name_and_refuses_a_foreign_module(tmp_path) -> None:
    import cv2
    import torch

    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "a.png"), rng.integers(0, 256, (24, 24, 3), np.uint8))
    by_name = vidsr.evaluate("esr-max-x2", tmp_path)
    by_model = vidsr.evaluate(vidsr.load_model("esr-max-x2"), tmp_path)
    assert by_name.model == "esr-max-k7c4-x2" and by_name.psnr == by_model.psnr
    with pytest.raises(InputError, match="evaluate takes"):
        vidsr.evaluate(torch.nn.Identity(), tmp_path)


def test_a_broken_link_or_a_subfolder_does_not_drop_out_of_a_set_unsaid(tmp_path,
                                                                        caplog) -> None:
    # a dangling link named head.png left Set5 scored (and --record'ed) on four images, and
    # the images of a subfolder were passed over without a word
    import cv2

    from vidsr.errors import DataError
    from vidsr.evaluation import image_files

    assert cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 20, 3), np.uint8))
    (tmp_path / "sub").mkdir()
    assert cv2.imwrite(str(tmp_path / "sub" / "b.png"), np.zeros((20, 20, 3), np.uint8))
    with caplog.at_level("WARNING"):
        assert [p.name for p in image_files(tmp_path)] == ["a.png"]
    assert "subfolders are not searched: sub/" in caplog.text
    (tmp_path / "top" / "inner").mkdir(parents=True)
    with pytest.raises(DataError, match="subfolders are not searched: inner/"):
        image_files(tmp_path / "top")
    (tmp_path / "head.png").symlink_to(tmp_path / "gone" / "head.png")
    with pytest.raises(DataError, match="head.png is a broken link"):
        image_files(tmp_path)
