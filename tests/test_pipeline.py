"""upscale_video round trips: size, frame count, timestamps, streams, tags and luma fidelity."""

from __future__ import annotations

import threading
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from media import (
    add_h264,
    make_clip,
    mp4_movie_duration,
    packets_of,
    read_video,
    write_test_frames,
    yuv_frame,
)

from vidsr import Cancelled, OutputError, upscale_plane
from vidsr.color import to_uint8
from vidsr.engine import Engine
from vidsr.io import EncodeOptions, VideoReader
from vidsr.metrics import psnr
from vidsr.pipeline import partial_path, upscale_video

LOSSLESS = EncodeOptions(crf=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine("esr-max-x2", device="cpu", pretrained=False)


def reference_lumas(src, engine: Engine) -> list[np.ndarray]:
    """The luma the pipeline should produce, frame by frame through the library API."""
    out = []
    with VideoReader(src) as r:
        for f in r:
            if r.info.bit_depth == 8:
                out.append(to_uint8(upscale_plane(f.y, engine.module)))
            else:
                out.append(engine.upscale_luma(f.y, bit_depth=r.info.bit_depth))
    return out


def min_psnr(got: list[np.ndarray], ref: list[np.ndarray], peak: float = 255.0) -> float:
    assert len(got) == len(ref)
    scale = 255.0 / peak
    return min(psnr(g.astype(np.float64) * scale, r.astype(np.float64) * scale)
               for g, r in zip(got, ref, strict=True))


def test_mp4_round_trip_keeps_everything(tmp_path, engine):
    src = make_clip(tmp_path / "in.mp4", frames=8, audio_tracks=2, subtitles=True,
                    title="a clip")
    dst = tmp_path / "out.mp4"
    summary = upscale_video(src, dst, model=engine, options=LOSSLESS)
    a, b = read_video(src), read_video(dst)
    assert (b["width"], b["height"]) == (128, 96)
    assert summary.frames == len(b["pts"]) == 8 and summary.output_size == (128, 96)
    assert b["pts"] == a["pts"] and b["time_base"] == a["time_base"] and b["rate"] == a["rate"]
    assert packets_of(dst, "audio") == packets_of(src, "audio")  # bit-exact, same timestamps
    assert packets_of(dst, "subtitle") == packets_of(src, "subtitle")
    langs = [m.get("language") for kind, _c, m in b["streams"] if kind == "audio"]
    titles = [m.get("name", m.get("title")) for kind, _c, m in b["streams"] if kind == "audio"]
    assert langs == ["eng", "fra"] and titles == ["track 0", "track 1"]
    assert b["container_metadata"].get("title") == "a clip"
    assert b["container_metadata"].get("creation_time") == "2024-05-06T07:08:09.000000Z"
    assert min_psnr(b["luma"], reference_lumas(src, engine)) >= 50.0
    assert summary.bound in ("decode", "sr", "encode") and summary.sr_s > 0
    assert not partial_path(dst).exists()


def test_vfr_mkv_stays_vfr_with_subtitles(tmp_path, engine):
    pts = [0, 40, 90, 100, 180, 250, 330]
    src = make_clip(tmp_path / "in.mkv", pts=pts, time_base=Fraction(1, 1000),
                    audio_tracks=1, subtitles=True)
    dst = tmp_path / "out.mkv"
    upscale_video(src, dst, model=engine)
    b = read_video(dst)
    assert b["pts"] == pts and b["time_base"] == Fraction(1, 1000)
    assert packets_of(dst, "audio") == packets_of(src, "audio")
    assert packets_of(dst, "subtitle") == packets_of(src, "subtitle")
    assert min_psnr(b["luma"], reference_lumas(src, engine)) >= 35.0  # default crf 18


MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)"


def hdr_side_data(path) -> dict[str, bytes]:
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        return {sd.type.name: bytes(sd) for sd in frame.side_data
                if sd.type.name in ("MASTERING_DISPLAY_METADATA", "CONTENT_LIGHT_LEVEL")}


@pytest.mark.parametrize("codec", [None, "libx264"])
def test_ten_bit_hdr_stays_ten_bit(tmp_path, engine, codec):
    hdr = {"color_primaries": 9, "color_trc": 16, "colorspace": 9, "color_range": 1}
    src = make_clip(tmp_path / "in.mp4", codec="libx265", pix_fmt="yuv420p10le", frames=4,
                    color=hdr, options={"x265-params": f"log-level=error:master-display="
                                                       f"{MASTER}:max-cll=1000,400"})
    dst = tmp_path / "out.mp4"
    summary = upscale_video(src, dst, model=engine, options=EncodeOptions(codec=codec))
    b = read_video(dst)
    assert summary.codec == (codec or "libx265") and b["pix_fmt"] == "yuv420p10le"
    assert b["color"] == (1, 9, 9, 16)  # range, matrix, primaries, transfer
    if codec is None:  # HDR10 static metadata goes through libx265 unchanged
        assert hdr_side_data(dst) == hdr_side_data(src) and len(hdr_side_data(src)) == 2
    else:
        assert any("HDR10" in n for n in summary.notes)
    assert max(int(y.max()) for y in b["luma"]) > 255
    assert min_psnr(b["luma"], reference_lumas(src, engine), peak=1023.0) >= 35.0


@pytest.mark.parametrize(("pix_fmt", "codec"), [("yuv422p", "libx264"), ("yuv444p", "libx264"),
                                             ("yuv422p10le", "libx265"),
                                             ("yuv420p12le", "libx265")])
def test_chroma_layouts_and_bit_depths_kept(tmp_path, pix_fmt, codec):
    opts = {"x265-params": "log-level=error"} if codec == "libx265" else {}
    src = make_clip(tmp_path / "in.mkv", codec=codec, pix_fmt=pix_fmt, frames=3, options=opts)
    summary = upscale_video(src, tmp_path / "out.mkv", model="bicubic-x2", device="cpu")
    b = read_video(tmp_path / "out.mkv")
    assert (summary.pix_fmt, b["pix_fmt"], b["width"], b["height"]) == (pix_fmt, pix_fmt, 128, 96)
    assert summary.codec == codec and not summary.notes


def test_odd_size_input(tmp_path, engine):
    src = make_clip(tmp_path / "in.mkv", width=63, height=47, codec="ffv1", frames=4)
    dst = tmp_path / "out.mkv"
    upscale_video(src, dst, model=engine, options=LOSSLESS)
    b = read_video(dst)
    assert (b["width"], b["height"], len(b["pts"])) == (126, 94, 4)
    assert min_psnr(b["luma"], reference_lumas(src, engine)) >= 50.0


def test_odd_output_size_switches_to_444(tmp_path):
    src = make_clip(tmp_path / "in.mkv", width=21, height=15, codec="ffv1", frames=3)
    dst = tmp_path / "out.mkv"
    summary = upscale_video(src, dst, model="bicubic-x3", device="cpu")
    b = read_video(dst)
    assert (b["width"], b["height"], b["pix_fmt"]) == (63, 45, "yuv444p")
    assert summary.pix_fmt == "yuv444p" and any("yuv444p" in n for n in summary.notes)


def test_rotation_and_full_range_tags_kept(tmp_path, engine):
    tags = {"color_range": 2, "colorspace": 1, "color_primaries": 1, "color_trc": 1}
    src = make_clip(tmp_path / "in.mp4", rotation=90, frames=3, color=tags)
    b = read_video(upscale_video(src, tmp_path / "out.mp4", model=engine,
                                 options=LOSSLESS).dst)
    assert b["rotation"] == 90 and b["color"] == (2, 1, 1, 1)
    assert (b["width"], b["height"]) == (128, 96)  # coded size; the display matrix rotates it
    assert b["pts"] == read_video(src)["pts"]
    # the coded pictures are upscaled as they are: rotating is the player's job
    assert min_psnr(b["luma"], reference_lumas(src, engine)) >= 50.0


def test_webm_reencodes_audio_it_cannot_hold(tmp_path, engine):
    src = make_clip(tmp_path / "in.mkv", frames=4, audio_tracks=1)
    summary = upscale_video(src, tmp_path / "out.webm", model=engine)
    b = read_video(tmp_path / "out.webm")
    assert [(k, c) for k, c, _m in b["streams"]] == [("video", "vp9"), ("audio", "opus")]
    assert any("re-encoding it to libopus" in n for n in summary.notes)
    assert len(packets_of(tmp_path / "out.webm", "audio")[0]) > 5


def _late_pcm_clip(path, rate: int = 44100) -> None:
    """One second of video; a 440 Hz PCM tone from 0.25 s to 1.0 s, silent in a gap between
    0.5 and 0.75 s that its timestamps skip."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=24)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("pcm_s16le", rate=rate)
        a.layout = "mono"
        a.disposition = av.stream.Disposition.default | av.stream.Disposition.comment
        for i in range(24):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i, np.uint8), "rgb24")
            frame.pts = i
            for packet in vs.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        n = 441
        for start in [*range(rate // 4, rate // 2, n), *range(3 * rate // 4, rate, n)]:
            t = (start + np.arange(n)) / rate
            tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)[None]
            frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in a.encode(frame):
                out.mux(packet)
        for packet in a.encode():
            out.mux(packet)


def test_reencoded_audio_keeps_its_timing(tmp_path, engine):
    # to WebM, 44.1 kHz PCM must become Opus, which takes no 44.1 kHz (it was an error): it is
    # resampled to 48 kHz, starts at 0.25 s (it started at 0 s) and keeps its gap as silence
    src = tmp_path / "late.mkv"
    _late_pcm_clip(src)
    upscale_video(src, tmp_path / "out.webm", model=engine)
    with av.open(str(tmp_path / "out.webm")) as c:
        a = c.streams.audio[0]
        assert a.codec_context.sample_rate == 48000
        assert a.disposition & av.stream.Disposition.default  # the source's flag, kept (WebM
        # has no place for its "comment" flag)
        frames = list(c.decode(a))
    start = float(frames[0].pts * frames[0].time_base)
    pcm = np.concatenate([f.to_ndarray()[0] for f in frames])
    t = start + np.arange(len(pcm)) / 48000

    def loud(t0: float, t1: float) -> float:
        return float(np.abs(pcm[(t >= t0) & (t < t1)]).mean())

    assert abs(start - 0.25) < 0.02
    assert loud(0.30, 0.45) > 0.1 and loud(0.80, 0.95) > 0.1  # the tone, before and after
    assert loud(0.55, 0.70) < 0.01  # the gap, filled with silence in its place


def test_centred_422_chroma_is_resited_for_the_encoder(tmp_path, engine):
    # MJPEG 4:2:2 is centre-sited; H.264 4:2:2 has only co-sited ("left") chroma, so the
    # upscale puts the chroma there instead of leaving centred samples under a left label
    src = make_clip(tmp_path / "in.mkv", codec="mjpeg", pix_fmt="yuvj422p", frames=2)
    dst = tmp_path / "out.mkv"
    upscale_video(src, dst, model=engine, options=LOSSLESS)
    with VideoReader(src) as r:
        assert r.info.chroma_location == "center"
        first = next(iter(r))
    with VideoReader(dst) as r:
        assert r.info.layout.subsampling == (1, 2) and r.info.chroma_location in ("left",
                                                                                "unspecified")
        got = next(iter(r)).u.astype(int)
    moved = engine.upscale_chroma(first.u, "center", subsampling=(1, 2), out_siting="left")
    kept = engine.upscale_chroma(first.u, "center", subsampling=(1, 2))
    assert np.array_equal(got, moved) and not np.array_equal(got, kept)


def test_resiting_follows_the_encoded_layout(tmp_path, monkeypatch):
    # an odd x3 height turns centred 4:2:0 into 4:2:2, which has left siting only: the chroma
    # must move there too (the choice was made from the source's 4:2:0)
    src = make_clip(tmp_path / "in.mkv", codec="mjpeg", pix_fmt="yuvj420p", width=34,
                    height=25, frames=2)
    eng = Engine("bicubic-x3", device="cpu")
    asked = []
    upscale_frame = eng.upscale_frame  # what the pipeline calls on CPU

    def spy(*args, **kw):
        asked.append(kw.get("out_siting"))
        return upscale_frame(*args, **kw)

    monkeypatch.setattr(eng, "upscale_frame", spy)
    summary = upscale_video(src, tmp_path / "out.mkv", model=eng)
    assert summary.pix_fmt.startswith("yuv422p") and asked == ["left", "left"]


def test_muxer_refusal_is_found_before_the_run(tmp_path, engine):
    src = make_clip(tmp_path / "in.mkv", frames=3, audio_tracks=1, audio_codec="flac")
    summary = upscale_video(src, tmp_path / "out.mov", model=engine)  # MOV takes no FLAC
    # lossless kept lossless
    assert [c for _k, c, _m in read_video(tmp_path / "out.mov")["streams"]] == ["h264", "alac"]
    assert any("refuses it" in n and "flac only supported in MP4" in n and "re-encoding" in n
               for n in summary.notes)
    upscale_video(src, tmp_path / "out.mp4", model=engine)  # MP4 does: copied bit-exact
    assert [p for _t, p in packets_of(tmp_path / "out.mp4", "audio")[0]] == \
        [p for _t, p in packets_of(src, "audio")[0]]


@pytest.mark.parametrize("tracks", [1, 2])
def test_pcm_without_a_channel_layout_is_copied_into_mp4(tmp_path, engine, tracks):
    # Matroska stores no channel layout ("2 channels", "1 channels"), which the MP4 muxer
    # refuses for PCM: lossless audio was re-encoded to AAC where a label made it copyable
    src = make_clip(tmp_path / "in.mkv", frames=12, audio_tracks=tracks, audio_codec="pcm_s16le")
    with av.open(str(src)) as c:
        assert all(s.codec_context.layout.name.endswith("channels") for s in c.streams.audio)
    summary = upscale_video(src, tmp_path / "out.mp4", model=engine)
    assert not any("re-encoding" in n for n in summary.notes), summary.notes
    assert [c for _k, c, _m in read_video(tmp_path / "out.mp4")["streams"]] == \
        ["h264"] + ["pcm_s16le"] * tracks
    with av.open(str(tmp_path / "out.mp4")) as c:
        # labelled where the muxer needs it (stereo); mono it takes as it is
        assert c.streams.audio[0].codec_context.layout.name == "stereo"
    assert [[p for _t, p in track] for track in packets_of(tmp_path / "out.mp4", "audio")] == \
        [[p for _t, p in track] for track in packets_of(src, "audio")]


def _events(path) -> list[tuple[float, str]]:
    """A file's subtitle events: (start in seconds, text), empty samples left out."""
    out = []
    for t, data in packets_of(path, "subtitle")[0]:
        text = data[2:] if data[:2] == len(data[2:]).to_bytes(2, "big") else data  # mov_text
        if text:
            out.append((round(float(t), 3), text.decode()))
    return out


@pytest.mark.parametrize(("src_ext", "dst_ext", "codec", "reads_as"), [
    (".mkv", ".mp4", "mov_text", "mov_text"), (".mp4", ".mkv", "subrip", "srt"),
    (".mkv", ".webm", "webvtt", "webvtt")])
def test_text_subtitles_are_converted_where_they_cannot_be_copied(tmp_path, engine, src_ext,
                                                                  dst_ext, codec, reads_as):
    # SubRip in MP4 and mov_text in Matroska were dropped; now converted, as ffmpeg -c:s does
    src = make_clip(tmp_path / f"in{src_ext}", frames=24, subtitles=True)
    dst = tmp_path / f"out{dst_ext}"
    summary = upscale_video(src, dst, model=engine)
    streams = read_video(dst)["streams"]
    # (FFmpeg's first SubRip decoder is named "srt")
    assert [(k, c) for k, c, _m in streams if k == "subtitle"] == [("subtitle", reads_as)]
    assert [m.get("language") for k, _c, m in streams if k == "subtitle"] == ["eng"]
    assert any(f"converted to {codec}" in n for n in summary.notes), summary.notes
    want = _events(src)
    assert len(want) == 5 and _events(dst) == want  # every event, same text, same time
    if codec == "mov_text":  # players need the tx3g sample description (style, font table)
        with av.open(str(dst)) as c:
            assert b"ftab" in (c.streams.subtitles[0].codec_context.extradata or b"")


def test_a_dropped_stream_names_the_containers_that_keep_it():
    from vidsr.io.streams import containers_for

    assert containers_for(av.Codec("dvdsub", "r"), ".webm") == [".mkv", ".mp4"]
    assert containers_for(av.Codec("subrip", "r"), ".mp4") == [".mkv"]


def test_muxers_list_codecs_under_their_implementation_names():
    # DTS tracks and Blu-ray subtitles in Matroska were re-encoded or dropped: the muxer lists
    # them as "dca" and "pgssub", not by their canonical names "dts" and "hdmv_pgs_subtitle"
    import io

    from vidsr.io.streams import listed

    with av.open(io.BytesIO(), "w", format="matroska") as out:
        supported = out.supported_codecs
    for name in ("dca", "pgssub", "dvdsub", "aac"):
        codec = av.Codec(name, "r")
        assert listed(codec, supported), name
    assert av.Codec("dca", "r").canonical_name not in supported  # why both names are needed
    with av.open(io.BytesIO(), "w", format="webm") as out:
        assert not listed(av.Codec("dca", "r"), out.supported_codecs)


def test_mpegts_input_goes_to_mkv_with_aac_payload_intact(tmp_path, engine):
    src = make_clip(tmp_path / "in.ts", frames=6, audio_tracks=1)
    summary = upscale_video(src, model=engine)  # default name: .ts is not written -> .mkv
    assert summary.dst == str(tmp_path / "in_esr-max-k7c4-x2.mkv")
    a, b = read_video(src), read_video(summary.dst)
    # the TS muxer starts its clock 62 ms in (the AAC's first packet, priming included, at
    # 5580 ticks); that start is taken off every stream, as ffmpeg does. Matroska counts
    # milliseconds: the 1/90000 times come back rounded to the millisecond
    with av.open(str(src)) as c:
        begin = Fraction(c.start_time, 1_000_000)
    assert begin == Fraction(5580, 90000)
    assert [round(float(p * a["time_base"] - begin), 3) for p in a["pts"]] == \
        [float(p * b["time_base"]) for p in b["pts"]]
    src_audio, out_audio = packets_of(src, "audio")[0], packets_of(summary.dst, "audio")[0]
    # the muxer strips each packet's 7-byte ADTS header (as ffmpeg does); the AAC is untouched
    assert [p[7:] for _t, p in src_audio] == [p for _t, p in out_audio]


# an MPEG-TS whose clock starts 10 s in: 1.5 s of video from 10 s, AAC whose first packet is at
# 10.05 s (its first sample 1024 samples later: the encoder's priming); 10.05 s falls on a tick
# of every time base involved (1/90000, 1/48000, Matroska's and MP4's edit lists' 1/1000)
LATE_TS = {"frames": 36, "time_base": Fraction(1, 90000), "audio_tracks": 1,
           "pts": [900000 + 3750 * i for i in range(36)], "options": {"g": "12"},
           "audio_start": 10.05 + 1024 / 48000}


def _first_times(path) -> tuple[Fraction, Fraction]:
    """The first video frame's and the first audio packet's times, in seconds."""
    info = read_video(path)
    return info["pts"][0] * info["time_base"], packets_of(path, "audio")[0][0][0]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_mpegts_clock_start_is_taken_off_every_stream(tmp_path, engine, suffix):
    # the 10 s before the first frame were kept: an 11.5 s .mp4 opening on a 10 s empty edit,
    # an .mkv claiming 11.5 s with its first frame at 10 s. ffmpeg takes the file's start
    # time off every stream; so does vidsr, keeping the audio's offset to the tick
    src = make_clip(tmp_path / "late.ts", **LATE_TS)
    with av.open(str(src)) as c:
        assert c.start_time == 10_000_000
    video, audio = _first_times(src)
    assert (video, audio) == (10, Fraction(201, 20))
    dst = tmp_path / f"out{suffix}"
    upscale_video(src, dst, model=engine)
    out_video, out_audio = _first_times(dst)
    assert out_video == 0 and out_audio - out_video == audio - video  # 50 ms, exactly
    a, b = read_video(src), read_video(dst)
    assert [round(float(p * a["time_base"]) - 10, 3) for p in a["pts"]] == \
        [round(float(p * b["time_base"]), 3) for p in b["pts"]]
    src_audio, got_audio = packets_of(src, "audio")[0], packets_of(dst, "audio")[0]
    # the ADTS header goes (as with ffmpeg); the AAC itself is untouched
    assert [p[7:] for _t, p in src_audio] == [p for _t, p in got_audio]
    assert all(abs(t - (s - 10)) <= Fraction(1, 2000)  # Matroska's milliseconds
               for (s, _p), (t, _q) in zip(src_audio, got_audio, strict=True))
    with av.open(str(dst)) as c:
        assert c.start_time == 0 and abs(c.duration / 1e6 - 1.5) < 0.01, c.duration
    if suffix == ".mp4":  # what players show: FFmpeg's reading leaves the empty edit out
        assert abs(mp4_movie_duration(dst) - Fraction(3, 2)) < Fraction(1, 100)


def test_mpegts_cut_matches_the_same_cut_of_a_file_starting_at_zero(tmp_path, engine):
    # --start/--duration count from the first frame (in source time), and the cut's
    # timestamps come out as those of the same cut of an equivalent file whose clock starts
    # at 0 (they kept the TS's 10 s)
    late = make_clip(tmp_path / "late.ts", **LATE_TS)
    plain = make_clip(tmp_path / "plain.mkv", **{
        **LATE_TS, "pts": [3750 * i for i in range(36)], "audio_start": 0.05 + 1024 / 48000})
    for src in (late, plain):
        upscale_video(src, tmp_path / f"{src.stem}-cut.mkv", model=engine, start=0.5,
                      duration=0.5, options=LOSSLESS)
    a, b = read_video(tmp_path / "late-cut.mkv"), read_video(tmp_path / "plain-cut.mkv")
    assert len(a["pts"]) == len(b["pts"]) == 12
    assert [p * a["time_base"] for p in a["pts"]] == [p * b["time_base"] for p in b["pts"]]
    assert a["pts"][0] == 0
    for x, y in zip(a["luma"], b["luma"], strict=True):  # the same frames (0.5 s to 1 s)
        assert np.array_equal(x, y)
    cut_late, cut_plain = (packets_of(tmp_path / f"{n}-cut.mkv", "audio")[0]
                           for n in ("late", "plain"))
    assert [t for t, _p in cut_late] == [t for t, _p in cut_plain]
    assert [p for _t, p in cut_late] == [p for _t, p in cut_plain]


def test_timecode_track_kept(tmp_path, engine):
    src = make_clip(tmp_path / "in.mov", frames=3, timecode="01:00:00:00")
    summary = upscale_video(src, tmp_path / "out.mov", model=engine)
    streams = read_video(tmp_path / "out.mov")["streams"]
    assert [k for k, _c, _m in streams] == ["video", "data"] and not summary.notes
    assert streams[0][2].get("timecode") == streams[1][2].get("timecode") == "01:00:00:00"


def test_start_and_duration_cut(tmp_path, engine):
    src = make_clip(tmp_path / "in.mp4", frames=24, audio_tracks=1)
    summary = upscale_video(src, tmp_path / "out.mp4", model=engine, start=0.25, duration=0.5)
    b = read_video(tmp_path / "out.mp4")
    assert summary.frames == len(b["pts"]) == 12
    assert b["pts"][0] * b["time_base"] < Fraction(1, 24)  # the cut starts near 0
    n_audio = len(packets_of(tmp_path / "out.mp4", "audio")[0])
    assert 0 < n_audio < len(packets_of(src, "audio")[0])
    # video from 0.25 s, audio from 0: --duration alone keeps the audio before the first
    # frame, as the whole-file run does (it was cut off)
    late = make_clip(tmp_path / "late.mkv", frames=24, audio_tracks=1,
                     pts=[3072 + 512 * i for i in range(24)])
    upscale_video(late, tmp_path / "whole.mkv", model=engine)
    upscale_video(late, tmp_path / "cut.mkv", model=engine, duration=0.5)
    whole, cut = (packets_of(tmp_path / f"{n}.mkv", "audio")[0] for n in ("whole", "cut"))
    assert cut[0] == whole[0] and cut[0][0] < Fraction(1, 5)
    assert cut == whole[: len(cut)] and float(cut[-1][0]) < 0.25 + 0.5 + 0.05 < whole[-1][0]


def _timed_events(path) -> list[tuple[float, float, str]]:
    """A file's subtitle events as (start, duration, text), empty samples left out."""
    out = []
    with av.open(str(path)) as c:
        for p in c.demux(c.streams.subtitles[0]):
            data = bytes(p)
            text = data[2:] if data[:2] == len(data[2:]).to_bytes(2, "big") else data
            if p.size and text:
                tb = p.time_base
                out.append((round(float(p.pts * tb), 3), round(float(p.duration * tb), 3),
                            text.decode()))
    return out


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_cut_keeps_the_subtitles_on_screen_at_its_ends(tmp_path, engine, suffix):
    # an event shown across --start was dropped (only its start time was tested), and one
    # shown across the end ran on past the video
    src = make_clip(tmp_path / f"in{suffix}", frames=24, subtitles=True)
    assert _timed_events(src)[:5] == [(round(0.2 * k, 3), 0.15, f"line {k}") for k in range(5)]
    dst = tmp_path / f"out{suffix}"
    upscale_video(src, dst, model=engine, start=0.3, duration=0.35)  # [0.3, 0.65)
    assert _timed_events(dst) == [(0.0, 0.05, "line 1"), (0.1, 0.15, "line 2"),
                                  (0.3, 0.05, "line 3")]


@pytest.mark.parametrize(("src_ext", "dst_ext"), [(".mkv", ".mkv"), (".mp4", ".mp4"),
                                                  (".mp4", ".mkv"), (".mkv", ".webm")])
def test_chapters_are_kept_and_cut_with_the_video(tmp_path, engine, src_ext, dst_ext):
    # chapters were dropped, and an MP4's chapter track showed as "data stream #1 (no codec)
    # ... dropped"
    marks = [(0.0, 0.5, "Intro"), (0.5, 0.8, "Middle"), (0.8, 1.0, "End")]
    src = make_clip(tmp_path / f"in{src_ext}", frames=24, chapters=marks)

    def chapters(path):
        with av.open(str(path)) as c:
            return [(round(float(ch["start"] * ch["time_base"]), 3),
                     round(float(ch["end"] * ch["time_base"]), 3), ch["metadata"]["title"])
                    for ch in c.chapters()]

    assert chapters(src) == marks
    summary = upscale_video(src, tmp_path / f"whole{dst_ext}", model=engine)
    assert chapters(tmp_path / f"whole{dst_ext}") == marks and not summary.notes
    upscale_video(src, tmp_path / f"cut{dst_ext}", model=engine, start=0.3, duration=0.5)
    assert chapters(tmp_path / f"cut{dst_ext}") == [(0.0, 0.2, "Intro"), (0.2, 0.5, "Middle")]


@pytest.mark.parametrize("suffix, codec", [(".mp4", "aac"), (".mkv", "aac"), (".webm", "libopus")])
def test_the_audio_before_the_first_video_frame_is_kept(tmp_path, engine, suffix, codec):
    # the reader's rewind after probing (a seek to 0) put the audio at the video's first
    # keyframe: an MP4's audio before it and an Opus track's first packet (-7 ms) were lost
    src = make_clip(tmp_path / f"late{suffix}", frames=12, audio_tracks=1, audio_codec=codec,
                    codec="libvpx-vp9" if suffix == ".webm" else "libx264",
                    pts=[3072 + 512 * i for i in range(12)])
    dst = tmp_path / f"out{suffix}"
    upscale_video(src, dst, model=engine)
    [want], [got] = packets_of(src, "audio"), packets_of(dst, "audio")
    assert want[0][0] < Fraction(1, 5) and got == want


def test_a_cut_keeps_audio_stored_after_the_video(tmp_path, engine):
    # 12.5 s of video muxed before any audio: past FFmpeg's 10 s interleave window the audio
    # lies a second or more behind the video in the file, and a --duration run stopped
    # reading at the first frame past its end (47 packets in the window, 4 kept)
    src = tmp_path / "loose.mp4"
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        for i in range(300):
            f = yuv_frame(64, 48, i)
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode())
        tone = (0.1 * np.sin(np.arange(300 * 2000 + 1024) * 0.05)).astype(np.float32)
        for t in range(0, 300 * 2000, 1024):
            af = av.AudioFrame.from_ndarray(np.stack([tone[t:t + 1024]] * 2), format="fltp",
                                            layout="stereo")
            af.sample_rate, af.pts = 48000, t
            out.mux(a.encode(af))
        out.mux(a.encode())
    upscale_video(src, tmp_path / "cut.mp4", model=engine, start=1, duration=1)
    [whole], [cut] = packets_of(src, "audio"), packets_of(tmp_path / "cut.mp4", "audio")
    inside = [data for t, data in whole if 1 <= t < 2]
    assert len(inside) > 40 and [data for _t, data in cut] == inside


def test_progress_and_cancel(tmp_path, engine):
    src = make_clip(tmp_path / "in.mp4", frames=10)
    seen = []
    upscale_video(src, tmp_path / "a.mp4", model=engine, progress=seen.append)
    assert seen and seen[-1].frames == 10 and seen[-1].total == 10
    # cancel from the first progress report: no output, no partial file
    long_src = make_clip(tmp_path / "long.mp4", frames=400, width=96, height=64)
    cancel = threading.Event()
    reports = []

    def stop_early(p):
        reports.append(p)
        cancel.set()

    dst = tmp_path / "b.mp4"
    with pytest.raises(Cancelled):
        upscale_video(long_src, dst, model=engine, progress=stop_early, cancel=cancel)
    assert not dst.exists() and not partial_path(dst).exists()
    assert reports[-1].frames < 400


class _FailingEngine(Engine):
    """An engine whose third frame fails, to check errors cross the thread boundary."""

    frames = 0

    def upscale_frame(self, *args, **kwargs):  # what the pipeline calls on CPU
        self.frames += 1
        if self.frames == 3:
            raise RuntimeError("boom in the SR stage")
        return super().upscale_frame(*args, **kwargs)


def test_worker_error_is_reraised_and_output_removed(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=8)
    dst = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom in the SR stage"):
        upscale_video(src, dst, model=_FailingEngine("bicubic-x2", device="cpu"))
    assert not dst.exists() and not partial_path(dst).exists()


def test_output_rules(tmp_path, engine):
    src = make_clip(tmp_path / "in.mp4", frames=3)
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists"):
        upscale_video(src, dst, model=engine)
    assert dst.read_bytes() == b"keep me"
    upscale_video(src, dst, model=engine, overwrite=True)
    assert read_video(dst)["width"] == 128
    with pytest.raises(OutputError, match="is the input"):
        upscale_video(src, src, model=engine, overwrite=True)
    with pytest.raises(OutputError, match="cannot encode"):
        upscale_video(src, tmp_path / "x.mp4", model=engine,
                      options=EncodeOptions(pix_fmt="rgb48le"))


@pytest.mark.parametrize("src_fmt, gray", [("yuv420p", "gray"), ("yuv420p10le", "gray10le")])
def test_a_gray_output_keeps_the_luma_codes(tmp_path, engine, src_fmt, gray):
    # swscale took gray for full range and stretched limited-range luma into it: blacks
    # crushed, the stream still tagged limited
    src = make_clip(tmp_path / "in.mkv", frames=2, pix_fmt=src_fmt, codec="ffv1",
                    color={"color_range": 1})
    for fmt in (src_fmt, gray):
        upscale_video(src, tmp_path / f"{fmt}.mkv", model=engine,
                      options=EncodeOptions(codec="ffv1", pix_fmt=fmt))
    with av.open(str(tmp_path / f"{src_fmt}.mkv")) as a, \
            av.open(str(tmp_path / f"{gray}.mkv")) as b:
        fa, fb = next(a.decode(video=0)), next(b.decode(video=0))
        assert fb.format.name == gray and fb.color_range == 1
        ya, yb = fa.to_ndarray(format=src_fmt), fb.to_ndarray(format=gray)
        assert np.array_equal(ya[: fb.height], yb)


def test_an_output_name_near_the_length_limit(tmp_path, engine):
    # the temporary name beside it is longer: 241-255 byte names gave an ENAMETOOLONG
    # traceback, and a name over the limit one too
    src = make_clip(tmp_path / "in.mp4", frames=2)
    for name in ("a" * 246 + ".mp4", "é" * 120 + ".mp4"):  # 250 and 244 bytes
        upscale_video(src, tmp_path / name, model=engine)
        assert read_video(tmp_path / name)["width"] == 128
        assert partial_path(tmp_path / name).name.endswith(".vidsr-partial.mp4")
        assert len(partial_path(tmp_path / name).name.encode()) <= 255
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["in.mp4", "a" * 246 + ".mp4", "é" * 120 + ".mp4"])
    with pytest.raises(OutputError, match="File name too long"):
        upscale_video(src, tmp_path / ("b" * 300 + ".mp4"), model=engine)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_nvenc_without_gpu_is_a_clear_error(tmp_path, engine):
    src = make_clip(tmp_path / "in.mp4", frames=2)
    with pytest.raises(OutputError, match="h264_nvenc"):
        upscale_video(src, tmp_path / "o.mp4", model=engine,
                      options=EncodeOptions(codec="h264_nvenc"))
    assert not (tmp_path / "o.mp4").exists()
    assert not partial_path(tmp_path / "o.mp4").exists()


def test_no_worker_thread_outlives_a_run(tmp_path):
    """Band workers and compilers of an engine the pipeline built are gone when it returns
    (a compiler thread left running can abort the interpreter at exit)."""
    src = make_clip(tmp_path / "in.mp4", width=96, height=144, frames=6)  # two bands a frame
    before = {t.ident for t in threading.enumerate()}
    upscale_video(src, tmp_path / "out.mp4", model="esr-max-k3c2-x2", device="cpu")
    left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert not [n for n in left if n.startswith(("vidsr-band", "vidsr-compile"))], left


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_chroma_siting_is_read_used_and_written(tmp_path, engine, container):
    # x264 writes chroma_sample_loc_type into the VUI; FFmpeg reports it back as "topleft"
    src = make_clip(tmp_path / f"in.{container}", frames=2, codec="libx264",
                    options={"chroma_sample_location": "topleft", "crf": "0"})
    with VideoReader(src) as r:
        assert r.info.chroma_location == "topleft"
        first = next(iter(r))
    dst = upscale_video(src, tmp_path / f"out.{container}", model=engine, options=LOSSLESS).dst
    with VideoReader(dst) as r:
        assert r.info.chroma_location == "topleft"
        out = next(iter(r))
    # the chroma planes were upscaled for top-left siting, not the left-siting default
    # (Cr varies vertically in the test pattern, where top-left and left siting differ)
    want = engine.upscale_chroma(first.v, siting="topleft")
    left = engine.upscale_chroma(first.v, siting="left")
    assert np.abs(want.astype(int) - left.astype(int)).max() > 0
    assert np.array_equal(out.v, want)


def test_unspecified_siting_stays_unspecified(tmp_path, engine):
    src = make_clip(tmp_path / "in.mkv", frames=2, codec="mpeg4")
    dst = upscale_video(src, tmp_path / "out.mkv", model=engine).dst
    with VideoReader(src) as a, VideoReader(dst) as b:
        assert a.info.chroma_location == b.info.chroma_location


def _cover_clip(path, picture: str = "mjpeg", mimetype: str = "image/png") -> bytes:
    """Twelve frames with cover art: a JPEG or PNG picture, as MP4 keeps it (an attached-picture
    stream) or as Matroska does (an image attachment named front.png). Returns its bytes."""
    fmt = "yuvj420p" if picture == "mjpeg" else "rgb24"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=24)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        enc = av.CodecContext.create(picture, "w")
        enc.width, enc.height, enc.pix_fmt, enc.time_base = 32, 32, fmt, Fraction(1, 25)
        rgb = np.random.default_rng(7).integers(0, 256, (32, 32, 3), np.uint8)
        data = b"".join(bytes(p) for p in [
            *enc.encode(av.VideoFrame.from_ndarray(rgb, "rgb24").reformat(format=fmt)),
            *enc.encode()])
        if path.suffix == ".mkv":
            out.add_attachment("front.png", mimetype, data)
        else:
            cs = out.add_stream(picture)
            cs.width, cs.height, cs.pix_fmt = 32, 32, fmt
            cs.disposition = av.stream.Disposition.attached_pic
        for i in range(12):
            for packet in vs.encode(yuv_frame(64, 48, i)):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if path.suffix != ".mkv":
            packet = av.Packet(data)
            packet.stream = cs
            out.mux(packet)
    return data


def _covers(path) -> list[tuple[str, bytes, str | None]]:
    with av.open(str(path)) as c:
        pics = [s for s in c.streams.video if s.disposition & av.stream.Disposition.attached_pic]
        found = {}
        for packet in c.demux(*pics):
            if packet.size:
                found.setdefault(packet.stream.index, bytes(packet))
        return [(s.codec_context.name, found.get(s.index, b""), s.metadata.get("filename"))
                for s in pics]


def test_cover_art_is_kept(tmp_path, engine):
    # the picture's own bytes, as an MP4 cover (covr) or a Matroska attachment, named as the
    # source named it; a container that holds none says so and the video is still written
    jpeg = _cover_clip(tmp_path / "song.mp4")
    png = _cover_clip(tmp_path / "song.mkv", "png")
    for src, data, codec, name in ((tmp_path / "song.mp4", jpeg, "mjpeg", "cover.jpg"),
                                   (tmp_path / "song.mkv", png, "png", "front.png")):
        for out, filename in (("out.mp4", None), ("out.mkv", name)):
            target = tmp_path / f"{src.suffix[1:]}-{out}"
            summary = upscale_video(src, target, model=engine)
            assert _covers(target) == [(codec, data, filename)], target
            assert not any("cover" in n for n in summary.notes)
            video = read_video(target)
            assert (video["width"], video["height"], len(video["pts"])) == (128, 96, 12)
    summary = upscale_video(tmp_path / "song.mp4", tmp_path / "out.mov", model=engine)
    assert "the cover art (stream #1, mjpeg) is not copied: a .mov file cannot hold it (a " \
        ".mp4 or .mkv output keeps it)" in summary.notes
    assert _covers(tmp_path / "out.mov") == []
    assert len(read_video(tmp_path / "out.mov")["pts"]) == 12


def test_a_cover_that_cannot_be_read_does_not_stop_an_mp4_output(tmp_path, engine):
    # a PNG attached to a Matroska file under image/jpeg (FFmpeg takes the codec from the
    # MIME type, finds no JPEG and no size): the MP4 muxer refused the header and the run
    # failed with "the .mp4 muxer refuses libx264 video: [mp4] dimensions not set"
    src = tmp_path / "song.mkv"
    _cover_clip(src, "png", mimetype="image/jpeg")
    with av.open(str(src)) as c:
        assert [s.codec_context.name for s in c.streams.video] == ["h264", "mjpeg"]
    summary = upscale_video(src, tmp_path / "out.mp4", model=engine)
    assert any("the cover art (stream #1, mjpeg) is not copied: the .mp4 muxer refuses it"
               in n for n in summary.notes), summary.notes
    video = read_video(tmp_path / "out.mp4")
    assert (video["width"], video["height"], len(video["pts"])) == (128, 96, 12)


def test_a_second_interrupt_during_the_cleanup_still_removes_the_partial(tmp_path,
                                                                          monkeypatch) -> None:
    # GNU timeout (and an impatient user) sends SIGINT twice: the second one, raised inside
    # runner.stop(), skipped the writer's abort and the unlink and left .out.vidsr-partial.mp4
    import signal

    from vidsr import pipeline_stages

    src = make_clip(tmp_path / "in.mp4", frames=30)
    dst = tmp_path / "out.mp4"
    real_stop = pipeline_stages.StageRunner.stop
    seconds = []

    def stop_with_a_second_ctrl_c(self, *args, **kwargs):
        seconds.append(1)
        signal.raise_signal(signal.SIGINT)  # handled now, as it would be mid-join
        return real_stop(self, *args, **kwargs)

    def first_ctrl_c(_progress) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline_stages.StageRunner, "stop", stop_with_a_second_ctrl_c)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            upscale_video(src, dst, model="bicubic-x2", device="cpu", progress=first_ctrl_c)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seconds and not dst.exists() and not partial_path(dst).exists()
    assert signal.getsignal(signal.SIGINT) is previous


def test_a_subtitle_that_does_not_convert_is_dropped_not_fatal(tmp_path, caplog) -> None:
    # an ASS stream without its header (styles) cannot become mov_text or webvtt: the
    # converter's stream stayed in the output and the header write failed the whole run,
    # blaming the audio ("converting audio stream #1 to libopus failed")
    from fractions import Fraction as F

    base = make_clip(tmp_path / "base.mp4", frames=6, audio_tracks=1)
    src = tmp_path / "ass.mkv"
    with av.open(str(base)) as inp, av.open(str(src), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        sub = out.add_stream("ass")
        sub.time_base = F(1, 1000)
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
        for i in range(2):
            packet = av.Packet(f"0,0,Default,,0,0,0,,line {i}".encode())
            packet.pts = packet.dts = i * 100
            packet.duration = 80
            packet.stream = sub
            out.mux(packet)
    # the remux has no default duration: its average rate is the H.264 VUI's tick rate (12288,
    # as make_clip encodes), which libvpx refused ("Invalid data") and made 3072 frames of 6
    with VideoReader(src) as reader:
        assert 23 < reader.info.fps < 25 and reader.info.frames == 6, reader.info
    for suffix in (".mp4", ".webm"):
        dst = tmp_path / f"out{suffix}"
        with caplog.at_level("WARNING"):
            upscale_video(src, dst, model="bicubic-x2", device="cpu")
        with av.open(str(dst)) as got:
            assert [s.type for s in got.streams] == ["video", "audio"]
        assert "no ASS header" in caplog.text and "dropped" in caplog.text
        caplog.clear()


def _lossless_audio_clip(path, codec: str, fmt: str, bits: int) -> None:
    # 16- or 24-bit integer audio (a tone in the top bits, noise in the low ones, so that a
    # cut to 16 bits or a lossy codec shows) under a short video
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as out:
        vs = add_h264(out)
        a = out.add_stream(codec, rate=44100)
        a.layout, a.format = "stereo", fmt
        write_test_frames(out, vs, 12)
        n, shift = 1152, 32 - bits if fmt.startswith("s32") else 0
        dtype = {"s32": np.int32, "s16": np.int16, "u8": np.uint8}[fmt.rstrip("p")]
        for k in range(20):
            t = (k * n + np.arange(n)) / 44100
            tone = np.round(0.3 * np.sin(2 * np.pi * 440 * t) * (2 ** (bits - 1)))
            data = (tone[None] + rng.integers(-3, 4, (2, n))).astype(np.int64) << shift
            data = data + 128 if fmt == "u8" else data
            data = data if fmt.endswith("p") else data.T.reshape(1, -1)  # packed: interleaved
            samples = av.AudioFrame.from_ndarray(data.astype(dtype), format=fmt, layout="stereo")
            samples.sample_rate, samples.pts = 44100, k * n
            for packet in a.encode(samples):
                out.mux(packet)
        for packet in a.encode():
            out.mux(packet)


def _decoded_audio(path) -> tuple[str, np.ndarray, float]:
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        frames = list(c.decode(s))
        pcm = np.concatenate([(f.to_ndarray() if f.format.is_planar else
                               f.to_ndarray().reshape(f.samples, -1).T).astype(np.int64)
                              for f in frames], axis=1)
        name = frames[0].format.name.rstrip("p")
        pcm = pcm - 128 if name == "u8" else pcm  # all on one signed 32-bit scale
        return s.codec_context.codec.name, pcm << {"s32": 0, "s16": 16, "u8": 24}[name], \
            float(frames[0].pts * frames[0].time_base)


@pytest.mark.parametrize(("suffix", "codec", "fmt", "bits", "want"), [
    (".mov", "flac", "s16", 16, "alac"), (".mov", "flac", "s32", 24, "alac"),
    (".mp4", "pcm_u8", "u8", 8, "flac")])
def test_lossless_audio_a_container_refuses_is_reencoded_losslessly(
        tmp_path, engine, suffix, codec, fmt, bits, want) -> None:
    # FLAC in .mov (and 8-bit PCM in .mp4) were re-encoded to AAC: lossy, from a lossless
    # source
    src = tmp_path / "in.mkv"
    _lossless_audio_clip(src, codec, fmt, bits)
    dst = tmp_path / f"out{suffix}"
    summary = upscale_video(src, dst, model=engine)
    assert any(f"re-encoding it to {want}" in n for n in summary.notes), summary.notes
    got_codec, got, got_start = _decoded_audio(dst)
    _, ref, ref_start = _decoded_audio(src)
    assert got_codec == want
    assert got.shape == ref.shape and np.array_equal(got, ref)  # every sample, every bit
    assert got_start == pytest.approx(ref_start, abs=1e-4)


def test_two_runs_sharing_a_cpu_engine_keep_their_own_frames(tmp_path, monkeypatch):
    """Two threads' upscale_video calls given one CPU Engine: each output holds its own
    video's frames. The engine's submit queue is shared, so the pipeline must not use it:
    here the first frame's collect is held until both threads have submitted theirs, the
    thread that submitted first collecting last."""
    import time
    from pathlib import Path

    samples = Path(__file__).resolve().parents[1] / "samples"
    srcs = [samples / "sample.mp4", samples / "photos.mp4"]
    eng = Engine("bicubic-x2", device="cpu")
    order: list[int] = []
    seen: set[int] = set()
    barrier = threading.Barrier(2, timeout=20)
    submit, pending = eng.submit, eng.pending

    def held_submit(*a, **k):
        ticket = submit(*a, **k)
        order.append(threading.get_ident())
        return ticket

    def held_pending():
        me = threading.get_ident()
        if me not in seen:
            seen.add(me)
            barrier.wait()
            if order[0] == me:
                time.sleep(0.3)
        return pending()

    monkeypatch.setattr(eng, "submit", held_submit)
    monkeypatch.setattr(eng, "pending", held_pending)
    errors: list[BaseException] = []

    def job(src, dst):
        try:
            upscale_video(src, dst, model=eng, duration=0.2)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    outs = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    threads = [threading.Thread(target=job, args=a) for a in zip(srcs, outs, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    for src, out in zip(srcs, outs, strict=True):
        solo = tmp_path / f"solo-{out.name}"
        upscale_video(src, solo, model="bicubic-x2", duration=0.2)
        with av.open(str(out)) as a, av.open(str(solo)) as b:
            got = [f.to_ndarray(format="gray").astype(int) for f in a.decode(video=0)]
            want = [f.to_ndarray(format="gray").astype(int) for f in b.decode(video=0)]
        assert len(got) == len(want)
        assert max(np.abs(g - w).mean() for g, w in zip(got, want, strict=True)) < 2
    eng.close()
