"""The video pipeline on CUDA: fp16 SR through the engine's stream pipeline, NVENC when present."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from media import make_clip, read_video

from vidsr import OutputError, load_model, upscale_plane
from vidsr.color import to_uint8
from vidsr.engine import Engine
from vidsr.io import EncodeOptions, VideoReader
from vidsr.metrics import psnr
from vidsr.pipeline import partial_path, upscale_video

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("name", ["ecbsr-m4c16-x2", "esr-max-k7c4-x2", "esr-tm-k7c16-x2"])
def test_cuda_pipeline_matches_cpu_reference(tmp_path, name):
    model = load_model(name, pretrained=False)
    src = make_clip(tmp_path / "in.mp4", frames=12, width=160, height=96, audio_tracks=1)
    dst = tmp_path / "out.mp4"
    engine = Engine(copy.deepcopy(model), device="cuda")  # fp16 by default
    summary = upscale_video(src, dst, model=engine, options=EncodeOptions(crf=0))
    got = read_video(dst)
    with VideoReader(src) as r:
        ref = [to_uint8(upscale_plane(f.y, model)) for f in r]
    assert summary.frames == len(got["pts"]) == 12 and got["pts"] == read_video(src)["pts"]
    assert min(psnr(a, b) for a, b in zip(got["luma"], ref, strict=True)) >= 40.0


def test_cuda_ten_bit(tmp_path):
    src = make_clip(tmp_path / "in.mkv", codec="libx265", pix_fmt="yuv420p10le", frames=6,
                    options={"x265-params": "log-level=error"})
    summary = upscale_video(src, tmp_path / "o.mkv", model="bicubic-x2", device="cuda")
    got = read_video(tmp_path / "o.mkv")
    assert summary.pix_fmt == "yuv420p10le" and max(int(y.max()) for y in got["luma"]) > 255


@pytest.mark.parametrize("codec", ["h264_nvenc", "hevc_nvenc"])
def test_nvenc_when_available(tmp_path, codec):
    src = make_clip(tmp_path / "in.mp4", frames=8, width=256, height=144)
    dst = tmp_path / "o.mp4"
    try:
        upscale_video(src, dst, model="bicubic-x2", device="cuda",
                      options=EncodeOptions(codec=codec))
    except OutputError as exc:  # GPUs without NVENC (H100/H200) get the clear error instead
        assert codec in str(exc) and not dst.exists() and not partial_path(dst).exists()
        pytest.skip(f"{codec} not usable here: {exc}")
    got = read_video(dst)
    assert (got["width"], got["height"], len(got["pts"])) == (512, 288, 8)
    assert float(np.std(got["luma"][0])) > 5.0  # a real picture, not a blank frame
