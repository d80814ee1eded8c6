"""VideoReader: planes, timestamps, colour tags and rotation of generated clips; clean refusals."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
from media import (
    add_h264,
    corrupt,
    faststart,
    luma_pattern,
    make_audio_only,
    make_clip,
    make_not_media,
    make_zero_frames,
    truncate,
    write_test_frames,
    yuv_frame,
)

from vidsr.errors import InputError
from vidsr.io import VideoReader
from vidsr.io.reader import StreamPacket


def test_cfr_planes_and_timestamps(tmp_path):
    src = make_clip(tmp_path / "a.mp4", frames=6, options={"crf": "0"})
    with VideoReader(src) as r:
        info = r.info
        frames = list(r)
    assert (info.width, info.height, info.fps, info.time_base) == (64, 48, 24, Fraction(1, 12288))
    assert (info.bit_depth, info.chroma, info.frames, info.rotation) == (8, "420", 6, 0)
    assert [f.pts for f in frames] == [i * 512 for i in range(6)]
    assert [f.index for f in frames] == list(range(6))
    assert frames[1].time == pytest.approx(1 / 24)
    f = frames[3]
    assert f.y.dtype == np.uint8 and f.y.shape == (48, 64) and f.u.shape == (24, 32)
    # crf 0 is lossless: the planes are the generated ones, not an RGB round trip
    assert np.array_equal(f.y, luma_pattern(64, 48, 3))


def test_vfr_timestamps_survive(tmp_path):
    pts = [0, 40, 90, 100, 180, 250, 260]
    src = make_clip(tmp_path / "v.mkv", pts=pts, time_base=Fraction(1, 1000))
    with VideoReader(src) as r:
        assert [f.pts for f in r] == pts


def test_ten_bit_hdr_tags(tmp_path):
    src = make_clip(tmp_path / "h.mp4", codec="libx265", pix_fmt="yuv420p10le", frames=3,
                    options={"x265-params": "log-level=error"},
                    color={"color_primaries": 9, "color_trc": 16, "colorspace": 9,
                           "color_range": 1})
    with VideoReader(src) as r:
        info, frame = r.info, next(iter(r))
    assert (info.bit_depth, info.chroma, info.pix_fmt) == (10, "420", "yuv420p10le")
    assert (info.color_primaries, info.color_trc, info.matrix, info.color_range) == \
        ("bt2020", "smpte2084", "bt2020nc", "tv")
    assert frame.y.dtype == np.uint16 and int(frame.y.max()) > 255  # LSB-aligned 10-bit codes
    assert int(frame.y.max()) < 1024


def test_odd_size_and_rotation(tmp_path):
    with VideoReader(make_clip(tmp_path / "o.mkv", width=63, height=47, codec="ffv1",
                               frames=2)) as r:
        f = next(iter(r))
        assert (r.info.width, r.info.height, f.y.shape, f.u.shape) == (63, 47, (47, 63),
                                                                       (24, 32))
    with VideoReader(make_clip(tmp_path / "r.mp4", rotation=90, frames=2)) as r:
        assert r.info.rotation == 90


def test_rgb_source_is_converted_to_yuv(tmp_path):
    with VideoReader(make_clip(tmp_path / "rgb.mkv", codec="ffv1", pix_fmt="bgr0",
                               frames=2)) as r:
        info, f = r.info, next(iter(r))
    assert info.converted and info.pix_fmt == "bgr0"
    assert (info.planes_pix_fmt, info.matrix, info.color_range) == ("yuv420p", "bt709", "tv")
    assert f.y.shape == (48, 64) and f.u.shape == (24, 32)


def test_gray_source_gets_neutral_chroma(tmp_path):
    path = tmp_path / "gray.mkv"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("ffv1", rate=24)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "gray"
        for i in range(2):
            g = luma_pattern(64, 48, i)
            frame = av.VideoFrame.from_ndarray(g, format="gray")
            frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    with VideoReader(path) as r:
        frames = list(r)
    assert r.info.converted and r.info.color_range == "tv"
    for i, f in enumerate(frames):
        # full-range gray to limited-range luma, chroma exactly neutral (it was Cr 127)
        want = np.round(16 + luma_pattern(64, 48, i) * (219 / 255)).astype(np.uint8)
        assert np.abs(f.y.astype(int) - want).max() <= 1
        assert (f.u == 128).all() and (f.v == 128).all()


def test_alpha_source_says_alpha_is_dropped(tmp_path):
    src = make_clip(tmp_path / "alpha.mkv", codec="ffv1", pix_fmt="yuva420p", frames=2)
    with VideoReader(src) as r:
        assert r.info.chroma == "420" and len(list(r)) == 2
        assert any("alpha channel (yuva420p) is not kept" in n for n in r.notes), r.notes
    with VideoReader(make_clip(tmp_path / "plain.mkv", frames=2)) as r:
        assert r.notes == []


def test_start_duration_and_seek(tmp_path):
    src = make_clip(tmp_path / "s.mp4", frames=12)
    with VideoReader(src, start=0.2, duration=0.2) as r:
        frames = list(r)
        assert r.info.frames == 5
    # frames at 5/24 .. 9/24 s, shifted so the cut starts at 0
    assert [f.pts for f in frames] == [k * 512 - round(0.2 * 12288) for k in range(5, 10)]
    with VideoReader(src) as r:
        r.seek(0.25)
        first = next(iter(r))
        assert first.pts == 6 * 512 and first.index == 6


def test_each_pass_starts_over(tmp_path):
    # a second pass said the file was corrupt ("End of file"), a pass after a partial one went
    # on from where that stopped, and a closed reader or a negative seek gave raw errors
    src = make_clip(tmp_path / "p.mp4", frames=12, audio_tracks=1)

    def frames(it):
        return [(f.index, f.pts, f.y.tobytes()) for f in it]

    with VideoReader(src) as r:
        whole = frames(r)
        assert len(whole) == 12 and frames(r) == whole
        it = iter(r)
        next(it), next(it)
        assert frames(r) == whole
        r.seek(0.25)  # a seek since the last pass began: the next one continues there
        assert frames(r) == whole[6:]
        assert frames(r) == whole
        with pytest.raises(InputError, match="seconds must be >= 0"):
            r.seek(-1)
    with pytest.raises(InputError, match="the reader is closed"):
        list(r)
    with VideoReader(src, start=0.2, duration=0.2, passthrough=True) as r:
        cut = [type(i).__name__ for i in r.items()]
        assert cut.count("VideoFrame") == 5 and "StreamPacket" in cut
        assert [type(i).__name__ for i in r.items()] == cut


def test_long_last_frame_is_not_truncation(tmp_path):
    # a one-frame "video" shown for two seconds (a still over audio) ends where it declares
    path = tmp_path / "still.mp4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=24)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.codec_context.time_base = Fraction(1, 12288)
        frame = yuv_frame(64, 48, 0)
        frame.pts, frame.time_base, frame.duration = 0, Fraction(1, 12288), 2 * 12288
        for packet in [*vs.encode(frame), *vs.encode()]:
            packet.duration = 2 * 12288  # the muxer takes the last sample's length from here
            out.mux(packet)
    with VideoReader(path) as r:
        assert r.info.duration == pytest.approx(2.0) and [f.pts for f in r] == [0]


@pytest.mark.parametrize("frames", [1, 3])
def test_a_few_frames_over_longer_audio_in_mkv_is_not_truncation(tmp_path, frames):
    # a song with one picture as its video (ffmpeg -i song.flac -i cover.jpg out.mkv): FFmpeg
    # gives the video stream the file's duration as its own (1 s here, for 1 or 3 frames), a
    # guess Matroska has no field for; the stream's DURATION tag says 0.04 or 0.125 s, and the
    # file was refused as "truncated or corrupt"
    path = tmp_path / "still.mkv"
    with av.open(str(path), "w") as out:
        vs = add_h264(out)
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        write_test_frames(out, vs, frames)
        for k in range(47):  # 1 s of silence
            samples = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp",
                                                 layout="stereo")
            samples.sample_rate, samples.pts = 48000, 1024 * k
            for packet in a.encode(samples):
                out.mux(packet)
        for packet in a.encode():
            out.mux(packet)
    with av.open(str(path)) as c:  # what made the reader call it truncated
        assert c.streams.video[0].duration
    with VideoReader(path) as r:
        assert [f.pts for f in r] == [round(1000 * i / 24) for i in range(frames)]
        assert r.info.frames == frames


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_late_start_is_not_truncation(tmp_path, ext):
    # remuxed broadcast files start late (MPEG-TS clocks): ffmpeg's Matroska DURATION tag then
    # holds the end time, 3.0 s here, against 2.0 s of video; it was refused as truncated
    pts = [1000 + 40 * i for i in range(50)]
    src = make_clip(tmp_path / f"late.{ext}", frames=50, fps=Fraction(25), pts=pts,
                    time_base=Fraction(1, 1000))
    with VideoReader(src) as r:
        got = [f.pts for f in r]
    assert len(got) == 50 and got[-1] - got[0] == 49 * 40 * r.info.time_base.denominator // 1000


def test_mpegts_clock_start_is_taken_off_and_cuts_count_in_source_time(tmp_path):
    # an MPEG-TS clock 10 s in gave frames (and packets) at 10 s on, which the output kept as
    # 10 s of nothing; the file's start (the earliest stream's: audio at 9.9 s here) is taken
    # off every stream, as ffmpeg does, while --start/seek still count from the first frame
    pts = [900000 + 3750 * i for i in range(36)]
    ts = make_clip(tmp_path / "late.ts", frames=36, time_base=Fraction(1, 90000), pts=pts,
                   audio_tracks=1, audio_start=9.9 + 1024 / 48000, options={"g": "12"})
    with VideoReader(ts, start=0.5, duration=0.5, passthrough=True) as r:
        items = list(r.items())
    frames = [i for i in items if not isinstance(i, StreamPacket)]
    audio = [i.packet for i in items if isinstance(i, StreamPacket)]
    # the frames from 10.5 s to 11 s, at 0.6 s to 1.1 s less the cut's 0.5 s
    assert [f.pts for f in frames] == [9000 + 3750 * i for i in range(12)]
    assert audio and all(p.pts * p.time_base >= Fraction(1, 10) for p in audio)
    assert (r.origin, r.rebase) == (10.0, 9.9)
    with VideoReader(ts) as r:  # the GUI's time of a frame: from the first one
        times = [f.time + r.rebase - r.origin for f in r]
    assert times == pytest.approx([i / 24 for i in range(36)])
    # the same cut of the same pictures in a file whose clock starts at 0: the same planes
    plain = make_clip(tmp_path / "plain.mp4", frames=36, time_base=Fraction(1, 90000),
                      pts=[p - 900000 for p in pts], options={"g": "12"})
    with VideoReader(plain, start=0.5, duration=0.5) as r:
        assert (r.origin, r.rebase) == (0.0, 0.0)
        same = list(r)
    assert all(np.array_equal(a.y, b.y) for a, b in zip(frames, same, strict=True))
    assert [f.pts for f in same] == [p - 9000 for p in (f.pts for f in frames)]
    # other containers keep their timestamps: an .mkv (or .mp4) starting late, as before
    late = make_clip(tmp_path / "late.mkv", frames=4, time_base=Fraction(1, 1000),
                     pts=[10000 + 40 * i for i in range(4)])
    with VideoReader(late) as r:
        assert r.rebase == 0 and [f.pts for f in r] == [10000 + 40 * i for i in range(4)]


@pytest.mark.parametrize("case", ["missing", "directory", "not_media", "audio_only",
                                  "zero_frames", "truncated_mp4", "truncated_faststart",
                                  "truncated_mkv",
                                  "corrupt_mkv", "sixteen_bit", "interlaced"])
def test_bad_input_is_refused(tmp_path, case):
    make = {
        "missing": lambda: tmp_path / "nope.mp4",
        "directory": lambda: tmp_path,
        "not_media": lambda: make_not_media(tmp_path / "x.mp4"),
        "audio_only": lambda: make_audio_only(tmp_path / "a.m4a"),
        "zero_frames": lambda: make_zero_frames(tmp_path / "z.mkv"),
        "truncated_mp4": lambda: truncate(make_clip(tmp_path / "t.mp4"), tmp_path / "tt.mp4"),
        "truncated_faststart": lambda: truncate(
            faststart(make_clip(tmp_path / "f.mp4", frames=40), tmp_path / "fs.mp4"),
            tmp_path / "tfs.mp4", 0.6),
        "truncated_mkv": lambda: truncate(make_clip(tmp_path / "t.mkv", frames=40),
                                          tmp_path / "tt.mkv", 0.6),
        "corrupt_mkv": lambda: corrupt(make_clip(tmp_path / "c.mkv", frames=40),
                                       tmp_path / "cc.mkv"),
        "sixteen_bit": lambda: make_clip(tmp_path / "p16.mkv", codec="ffv1",
                                         pix_fmt="yuv444p16le", frames=2),
        "interlaced": lambda: make_clip(tmp_path / "i.mp4", frames=4,
                                        options={"x264-params": "interlaced=1:tff=1"}),
    }
    path = make[case]()
    expected = {"missing": "no such file", "directory": "is a directory",
                "not_media": "cannot be opened as media", "audio_only": "no video stream",
                "zero_frames": "has no frames", "truncated_mp4": "truncated",
                "truncated_faststart": "truncated", "truncated_mkv": "truncated",
                "corrupt_mkv": "corrupt",
                "sixteen_bit": "yuv444p16le is not supported", "interlaced": "interlaced"}
    with pytest.raises(InputError, match=expected[case]), VideoReader(path) as r:
        list(r)


def test_chroma_location_field_is_found_and_checked():
    from vidsr.io import avframe

    assert avframe.field_offset() is not None  # calibration found exactly one place
    f = av.VideoFrame(16, 8, "yuv420p")
    assert avframe.chroma_location(f) == "unspecified"  # a fresh AVFrame says unspecified
    assert avframe.chroma_location(object()) == "unspecified"


def test_decoder_threads_are_set_explicitly(tmp_path):
    """Frame and slice threads, as many as FFmpeg picks for the cores (PyAV's default is slice
    threads only)."""
    import os

    src = make_clip(tmp_path / "c.mp4", frames=2)
    with VideoReader(src) as reader:
        next(iter(reader))  # the decoder opened (it says its thread count from then on)
        cc = reader._stream.codec_context
        assert cc.thread_type == av.codec.context.ThreadType.AUTO
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count()
        assert cc.thread_count > 1 or cores == 1  # FFmpeg counts the cores it may run on


def test_a_truncated_avi_is_refused(tmp_path):
    # an AVI's duration is worked out from what is left of it, so a cut file read as a
    # shorter, complete one (10 of 25 frames, exit 0); its header still counts 25
    src = make_clip(tmp_path / "a.avi", codec="mpeg4", frames=25, audio_tracks=1,
                    audio_codec="mp3")
    with VideoReader(src) as reader:  # whole: read as it is; its 1/600 s time base gives
        assert len(list(reader)) == 25  # 640 chunks, 615 empty (as a capture's dropped frames)
    cut = truncate(src, tmp_path / "cut.avi", keep=0.6)
    with VideoReader(cut) as reader, pytest.raises(InputError, match="header declares 1.07 s"):
        list(reader)
    data = src.read_bytes()  # a piece out of the middle
    at = len(data) * 2 // 5
    (tmp_path / "mid.avi").write_bytes(data[:at] + data[at + 3000:])
    with VideoReader(tmp_path / "mid.avi") as reader, pytest.raises(InputError,
                                                                    match="truncated or corrupt"):
        list(reader)


def test_a_seek_numbers_frames_by_the_frame_it_lands_on(tmp_path):
    # a seek between two frames numbered the first frame after it as the one before it (the
    # GUI's status bar said "frame 48" under frame 49 for most slider positions)
    src = make_clip(tmp_path / "n.mp4", frames=12)
    with VideoReader(src) as r:
        for seconds, expected in ((0.22, 6), (0.25, 6), (0.26, 7), (0.0, 0)):
            r.seek(seconds)
            it = iter(r)
            first, second = next(it), next(it)
            assert first.pts == expected * 512, seconds
            assert (first.index, second.index) == (expected, expected + 1), seconds


def test_damage_found_after_a_seek_is_placed_by_time(tmp_path):
    # after seeks the message counted every frame decoded since the file was opened
    # ("after frame 50" for damage after frame 25)
    src = corrupt(make_clip(tmp_path / "c.mp4", width=160, height=96, frames=48),
                  tmp_path / "bad.mp4", start=0.5, length=0.3)
    messages = []
    with VideoReader(src) as r:
        for _ in range(2):
            r.seek(0.0)
            with pytest.raises(InputError) as err:
                for _f in r:
                    pass
            messages.append(str(err.value))
    assert messages[0] == messages[1], messages
    assert "after frame" not in messages[1] and " s (" in messages[1], messages
