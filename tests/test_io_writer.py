"""VideoWriter, encoder choice and the synthetic-clip helpers used by benchmarks."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from media import make_clip, read_video

from vidsr.errors import InputError, OutputError
from vidsr.io import EncodeOptions, VideoWriter
from vidsr.io.encoders import choose_pix_fmt, codec_options, default_codec, requested_depth
from vidsr.io.formats import PlaneLayout, layout_for, native_layout
from vidsr.io.synthetic import (
    encoder_seconds,
    frame_count,
    synthetic_info,
    synthetic_planes,
    write_synthetic_clip,
)


def test_synthetic_clip_and_encoder_timing(tmp_path):
    path = write_synthetic_clip(tmp_path / "s.mp4", 96, 54, 7, fps=25)
    info = read_video(path)
    assert (info["width"], info["height"], info["rate"]) == (96, 54, 25)
    assert frame_count(path) == 7
    # MP4 raises a coarse time base (1/25) to >= 10000 ticks/s; the times stay exact
    assert [p * info["time_base"] for p in info["pts"]] == [Fraction(i, 25) for i in range(7)]
    assert encoder_seconds(64, 48, 5, EncodeOptions(codec="libx264", preset="ultrafast")) > 0


def test_writer_scales_and_keeps_tags(tmp_path):
    info = synthetic_info(33, 20)
    with VideoWriter(tmp_path / "w.mkv", info, 2) as w:
        # frame and slice threads, as ffmpeg has it (PyAV's default is slice threads only)
        assert w._vs.codec_context.thread_type == av.codec.context.ThreadType.AUTO
        for i in range(3):
            y, u, v = synthetic_planes(66, 40, i)
            w.write(y, u, v, pts=i)
    got = read_video(tmp_path / "w.mkv")
    assert (got["width"], got["height"], len(got["pts"])) == (66, 40, 3)
    assert got["color"] == (1, 1, 1, 1)
    # planes that are not codes of the file's depth, or smaller than the frame: refused (float
    # planes were written black, uint16 ones wrapped, a one-row plane was spread over the frame)
    y, u, v = synthetic_planes(66, 40, 0)
    with VideoWriter(tmp_path / "bad.mkv", info, 2) as w:
        for planes, said in (((y / 255.0, u, v), "Y plane must be uint8 codes, at least 40x66, "
                                                  r"got float64 \(40, 66\)"),
                             ((y, u.astype(np.uint16), v), "U plane must be uint8"),
                             ((y[:1], u, v), r"got uint8 \(1, 66\)"),
                             ((y, u, None), "V plane .* got NoneType")):
            with pytest.raises(InputError, match=said):
                w.write(*planes, pts=0)
        w.write(y, u, v, pts=0)
    assert len(read_video(tmp_path / "bad.mkv")["pts"]) == 1


def test_pixel_format_choice():
    x264, x265 = av.Codec("libx264", "w"), av.Codec("libx265", "w")
    eight, ten = PlaneLayout(8, "420"), PlaneLayout(10, "420")
    assert choose_pix_fmt(x264, eight, None, (128, 96)) == "yuv420p"
    assert choose_pix_fmt(x265, ten, None, (128, 96)) == "yuv420p10le"
    assert choose_pix_fmt(x264, eight, None, (63, 45)) == "yuv444p"  # odd size: no 4:2:0
    assert choose_pix_fmt(av.Codec("h264_nvenc", "w"), ten, None, (64, 48)) == "p010le"
    with pytest.raises(OutputError, match="10-bit"):
        choose_pix_fmt(av.Codec("libvpx-vp9", "w"), ten, None, (64, 48))
    with pytest.raises(OutputError, match="cannot encode pix_fmt"):
        choose_pix_fmt(x264, eight, "rgb48le", (64, 48))
    # the refusal names encoders that keep the video in that container (it said libx265,
    # which WebM cannot hold)
    webm = {"vp9", "av1", "vp8"}
    with pytest.raises(OutputError, match=r"10-bit 4:4:4 .* no encoder here keeps .* yuv444p"):
        choose_pix_fmt(av.Codec("libsvtav1", "w"), PlaneLayout(10, "444"), None, (33, 17), webm)
    with pytest.raises(OutputError, match=r"8-bit 4:2:0 .*\(libx264 or libx265 keeps it here\)"):
        choose_pix_fmt(av.Codec("libx264rgb", "w"), eight, None, (64, 48), {"h264", "hevc"})
    # a 4:2:0 source at an odd size into a 4:2:0-only encoder: the size is what is wrong (it
    # said "cannot encode 8-bit 4:4:4 video ... or a --pix-fmt", and no --pix-fmt could help)
    with pytest.raises(OutputError, match=r"^the output is 99x51: its odd width and height .* "
                                          r"needs 4:4:4, which mpeg4 does not encode"):
        choose_pix_fmt(av.Codec("mpeg4", "w"), eight, None, (99, 51), {"mpeg4", "h264"})


def test_defaults_per_container(tmp_path):
    mp4 = av.open(str(tmp_path / "x.mp4"), "w")  # nothing written: asks what the muxer holds
    assert default_codec(".mp4", 8, mp4.supported_codecs) == "libx264"
    assert default_codec(".mp4", 10, mp4.supported_codecs) == "libx265"
    # an 8-bit --pix-fmt on a 10-bit source takes the 8-bit default (AV1 refused yuv444p)
    assert requested_depth("yuv444p") == 8 and requested_depth("yuv420p10le") == 10
    assert requested_depth(None) is None and requested_depth("nonsense") is None
    assert codec_options("libx264", EncodeOptions(), ".mp4") == {"crf": "18", "preset": "fast"}
    assert codec_options("h264_nvenc", EncodeOptions(crf=23), ".mp4")["cq"] == "23"
    assert native_layout("yuvj422p") == PlaneLayout(8, "422", full_range=True)
    assert native_layout("nv12") is None and layout_for("yuv444p12le").bit_depth == 12


def test_unknown_encoder_is_a_clear_error(tmp_path):
    with pytest.raises(OutputError, match="not available"):
        VideoWriter(tmp_path / "o.mp4", synthetic_info(64, 48), 2,
                    EncodeOptions(codec="libnothing"))


def test_impossible_dts_is_repaired() -> None:
    """A dts later than its pts (libx265 on tiny streams, now and then) is replaced."""
    from types import SimpleNamespace

    from vidsr.io.writer import repair_dts

    good = SimpleNamespace(pts=4, dts=-1)
    assert repair_dts(good, -2) == -1 and good.dts == -1  # valid packets are left alone
    bad = SimpleNamespace(pts=33, dts=417934970997863124)
    assert repair_dts(bad, 10) == 11 and bad.dts == 11
    first = SimpleNamespace(pts=0, dts=99)
    assert repair_dts(first, None) == 0
    tight = SimpleNamespace(pts=12, dts=50)
    assert repair_dts(tight, 20) == 12  # never past its own pts


def test_presets_x264_takes_and_refuses() -> None:
    for preset in ("ultrafast", "Fast", "0", "9"):  # names in any case, and x264's numbers
        assert codec_options("libx264", EncodeOptions(preset=preset), ".mp4")["preset"] == preset
    for name, preset in (("libx264", "warpspeed"), ("libx264", "10"), ("libvpx-vp9", "fast"),
                         ("libsvtav1", "14")):
        with pytest.raises(OutputError, match="--preset"):
            codec_options(name, EncodeOptions(preset=preset), ".mkv")


def test_a_muxer_that_refuses_the_codec_says_so_before_any_frame(tmp_path) -> None:
    # MOV lists av1 but its muxer refuses it when it writes the header, which came at the
    # first frame's packet: "writing x.mov failed at packet pts 0 dts 0: Invalid argument"
    if "libsvtav1" not in av.codecs_available:
        pytest.skip("this PyAV build has no libsvtav1")
    from vidsr.io import VideoReader

    src = make_clip(tmp_path / "in.mp4", frames=2)
    with VideoReader(src) as reader, pytest.raises(OutputError,
                                                   match="muxer refuses.*only supported in MP4"):
        VideoWriter(tmp_path / "x.mov", reader.info, 2, EncodeOptions(codec="libsvtav1"))


def _first_frame(path):
    with av.open(str(path)) as c:
        return next(c.decode(video=0))


def test_an_rgb_output_takes_the_sources_matrix_and_is_tagged_rgb(tmp_path) -> None:
    # the planes went to swscale untagged, so a BT.709 source written as RGB was converted
    # with BT.601 (colours shifted, ~32 dB off), and the RGB stream was tagged bt709, tv range
    info = synthetic_info(64, 48)  # BT.709, limited range
    planes = synthetic_planes(64, 48, 0)
    with VideoWriter(tmp_path / "rgb.mkv", info, 1,
                     EncodeOptions(codec="ffv1", pix_fmt="bgr0")) as w:
        w.write(*planes, pts=0)
    got = _first_frame(tmp_path / "rgb.mkv")
    src = av.VideoFrame(64, 48, "yuv420p")
    for plane, data in zip(src.planes, planes, strict=True):
        plane.update(np.ascontiguousarray(
            np.pad(data, ((0, 0), (0, plane.line_size - data.shape[1])))).tobytes())
    want = src.reformat(format="rgb24", src_colorspace="ITU709", src_color_range="MPEG",
                        dst_color_range="JPEG").to_ndarray()
    rgb = got.reformat(format="rgb24").to_ndarray()
    assert np.abs(rgb.astype(int) - want.astype(int)).max() <= 1
    assert (got.color_range, got.colorspace) == (2, 0)  # full range, AVCOL_SPC_RGB


def test_prores_frames_carry_the_colour_tags(tmp_path) -> None:
    # prores_ks writes each frame's primaries, transfer and matrix into its frame header;
    # the frames went in untagged, so FFmpeg (and vidsr reading the file back) saw unspecified
    with VideoWriter(tmp_path / "p.mov", synthetic_info(64, 48), 1,
                     EncodeOptions(codec="prores_ks", pix_fmt="yuv422p10le")) as w:
        w.write(*synthetic_planes(64, 48, 0), pts=0)
    got = _first_frame(tmp_path / "p.mov")
    assert (got.color_range, got.colorspace, got.color_primaries, got.color_trc) == (1, 1, 1, 1)


def test_svtav1_crf_zero_is_refused() -> None:
    # FFmpeg's libsvtav1 reads crf 0 as "not set" and encoded at SVT-AV1's default, 35
    with pytest.raises(OutputError, match="1 to 63"):
        codec_options("libsvtav1", EncodeOptions(crf=0), ".webm")
    assert codec_options("libsvtav1", EncodeOptions(crf=1), ".webm")["crf"] == "1"


@pytest.mark.parametrize("codec", ["mpeg4", "mpeg2video"])
def test_mpeg_encoders_get_a_quantizer_not_ffmpegs_200_kbps(tmp_path, codec) -> None:
    # with FFmpeg's default bit rate a 640x480 picture came out at about 30 dB, and --crf is
    # refused for these encoders: there was no way to a watchable file
    import cv2

    from vidsr.metrics import psnr

    info = synthetic_info(640, 480)
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(16, 236, (480, 640)).astype(np.float32), (0, 0), 1.5)
    frames = []
    for i in range(40):  # detail that moves: what a 200 kb/s budget cannot hold
        y, u, v = synthetic_planes(640, 480, i)
        frames.append((np.clip(np.roll(texture, 3 * i, axis=1), 16, 235).astype(np.uint8), u, v))
    with VideoWriter(tmp_path / "m.mkv", info, 1, EncodeOptions(codec=codec)) as w:
        for i, planes in enumerate(frames):
            w.write(*planes, pts=i)
    with av.open(str(tmp_path / "m.mkv")) as c:
        got = [f.to_ndarray()[:480] for f in c.decode(video=0)]
    assert len(got) == 40
    worst = min(psnr(g.astype(np.float64), p[0].astype(np.float64))
                for g, p in zip(got, frames, strict=True))
    assert worst > 38


def test_a_full_range_source_into_prores_is_converted_to_limited(tmp_path, caplog) -> None:
    # ProRes has no full-range flag: full-range codes were written as they were and decoded as
    # limited range, blacks and whites clipped on playback
    from dataclasses import replace

    info = replace(synthetic_info(64, 48), color_range="pc")
    y, u, v = synthetic_planes(64, 48, 0)
    y = np.linspace(0, 255, 64 * 48).reshape(48, 64).astype(np.uint8)  # the whole full range
    with caplog.at_level("WARNING"), VideoWriter(
            tmp_path / "p.mov", info, 1, EncodeOptions(codec="prores_ks",
                                                       pix_fmt="yuv422p10le")) as w:
        w.write(y, u, v, pts=0)
    assert "no full-range flag" in caplog.text
    got = _first_frame(tmp_path / "p.mov")
    assert got.color_range == 1
    luma = got.to_ndarray()[:48].astype(np.float64) if got.format.name == "gray" else \
        np.frombuffer(got.planes[0], np.uint16).reshape(48, -1)[:, :64].astype(np.float64)
    want = 64 + y.astype(np.float64) * 4 * (876 / 1020)  # 10-bit limited: 64..940
    assert np.abs(luma - want).max() < 6  # ProRes is near-lossless, not exact
