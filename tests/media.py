"""Test media made with PyAV: small procedural clips covering what the video pipeline must keep.

Every helper writes into a path the test owns (``tmp_path``) and returns it. Content is
deterministic: smooth gradients plus a moving square and a fixed texture, so SR outputs differ
visibly from a flat frame and PSNR checks mean something.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

LANGS = ("eng", "fra", "deu")


def luma_pattern(width: int, height: int, i: int, bit_depth: int = 8) -> np.ndarray:
    """Frame ``i``'s luma: a gradient, a fixed texture and a square moving 2 px per frame."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    base = 40 + 120 * (xx / max(width - 1, 1)) + 40 * (yy / max(height - 1, 1))
    base += 20 * np.sin(xx * 0.9 + yy * 0.35) * np.cos(yy * 0.7)
    x0, y0 = (3 + 2 * i) % max(width - 10, 1), (2 + i) % max(height - 10, 1)
    base[y0:y0 + 10, x0:x0 + 10] = 220
    scale = (1 << bit_depth) - 1
    out = np.clip(base / 255.0 * scale, 0, scale)
    return np.round(out).astype(np.uint8 if bit_depth == 8 else np.uint16)


def chroma_pattern(width: int, height: int, i: int, bit_depth: int = 8) -> tuple[np.ndarray, ...]:
    """Frame ``i``'s Cb and Cr planes (smooth, slowly changing)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    cb = 128 + 40 * np.sin(xx * 0.2 + i * 0.3)
    cr = 128 + 40 * np.cos(yy * 0.25 - i * 0.2)
    scale = (1 << bit_depth) - 1
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return tuple(np.round(np.clip(c / 255.0 * scale, 0, scale)).astype(dtype) for c in (cb, cr))


def _fill(frame: av.VideoFrame, planes: list[np.ndarray]) -> None:
    for plane, data in zip(frame.planes, planes, strict=False):
        itemsize = data.dtype.itemsize
        buf = np.zeros((plane.height, plane.line_size // itemsize), dtype=data.dtype)
        buf[:, : data.shape[1]] = data
        plane.update(buf.tobytes())


def yuv_frame(width: int, height: int, i: int, pix_fmt: str = "yuv420p") -> av.VideoFrame:
    """A planar YUV frame of the test pattern (8 or 10/12-bit, 4:2:0/4:2:2/4:4:4)."""
    bits = 10 if "10" in pix_fmt else 12 if "12" in pix_fmt else 8
    frame = av.VideoFrame(width, height, pix_fmt)
    cw, ch = frame.planes[1].width, frame.planes[1].height
    cb, cr = chroma_pattern(cw, ch, i, bits)
    _fill(frame, [luma_pattern(width, height, i, bits), cb, cr])
    return frame


def make_clip(path: Path, *, width: int = 64, height: int = 48, frames: int = 10,
              fps: Fraction = Fraction(24), codec: str = "libx264", pix_fmt: str = "yuv420p",
              pts: list[int] | None = None, time_base: Fraction | None = None,
              audio_tracks: int = 0, audio_codec: str = "aac", subtitles: bool = False,
              rotation: int = 0, color: dict[str, int] | None = None,
              options: dict[str, str] | None = None, title: str | None = None,
              timecode: str | None = None,
              chapters: list[tuple[float, float, str]] | None = None,
              audio_start: float = 0.0) -> Path:
    """Write a test clip; ``pts`` (in ``time_base``) gives variable frame timing;
    ``chapters`` are ``(start, end, title)`` in seconds; the audio's first sample is at
    ``audio_start`` seconds (its first packet is earlier by the encoder's priming, AAC's 1024
    samples) and the audio runs to the video's end."""
    path = Path(path)
    tb = time_base or Fraction(1, 12288)
    with av.open(str(path), "w") as out:
        if title:  # a titled clip also gets a recording time, as camera files have
            out.metadata["title"] = title
            out.metadata["creation_time"] = "2024-05-06T07:08:09.000000Z"
        vs = out.add_stream(codec, rate=fps, options=dict(options or {}))
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.codec_context.time_base = tb
        vs.time_base = tb
        vs.metadata["title"] = "test video"
        if timecode:  # MOV/MP4 muxers turn this into a timecode (tmcd) data track
            vs.metadata["timecode"] = timecode
        for key, value in (color or {}).items():
            setattr(vs.codec_context, key, value)
        if rotation:
            vs.set_display_rotation(rotation)
        streams = []
        for k in range(audio_tracks):
            a = out.add_stream(audio_codec, rate=48000 if audio_codec != "libopus" else 48000)
            a.layout = "stereo" if k == 0 else "mono"
            a.metadata["language"] = LANGS[k % len(LANGS)]
            a.metadata["title"] = f"track {k}"
            streams.append(a)
        sub = None
        if subtitles:
            sub = out.add_mux_stream("mov_text" if path.suffix in (".mp4", ".mov") else "subrip")
            sub.metadata["language"] = "eng"
        if chapters:
            out.set_chapters([{"id": k + 1, "start": round(a * 1000), "end": round(b * 1000),
                               "time_base": Fraction(1, 1000), "metadata": {"title": title}}
                              for k, (a, b, title) in enumerate(chapters)])
        step = int(round(1 / (fps * tb)))
        times = pts if pts is not None else [i * step for i in range(frames)]
        for i, p in enumerate(times):
            f = yuv_frame(width, height, i, pix_fmt) if pix_fmt.startswith("yuv") else \
                yuv_frame(width, height, i, "yuv444p").reformat(format=pix_fmt)
            f.pts, f.time_base = p, tb
            for packet in vs.encode(f):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        seconds = float((times[-1] + step) * tb) if times else 0.5
        for k, a in enumerate(streams):
            _write_audio(out, a, seconds, 440.0 * (k + 1), audio_start)
        if sub is not None:
            _write_subtitles(out, sub, seconds, path.suffix in (".mp4", ".mov"))
    return path


def add_h264(out: av.container.OutputContainer, width: int = 64,
             height: int = 48) -> av.VideoStream:
    """A 24 fps H.264 stream (time base 1/12288) added to a hand-built file; its frames are
    written by ``write_test_frames`` once the other streams are added."""
    vs = out.add_stream("libx264", rate=24)
    vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    vs.codec_context.time_base = Fraction(1, 12288)
    return vs


def write_test_frames(out: av.container.OutputContainer, vs: av.VideoStream,
                      frames: int) -> None:
    """Encode ``frames`` test frames, 1/24 s apart, into ``add_h264``'s stream ``vs``, flushed."""
    for i in range(frames):
        frame = yuv_frame(vs.width, vs.height, i)
        frame.pts, frame.time_base = 512 * i, Fraction(1, 12288)
        for packet in vs.encode(frame):
            out.mux(packet)
    for packet in vs.encode():
        out.mux(packet)


def _write_audio(out: av.container.OutputContainer, stream: av.AudioStream, seconds: float,
                 freq: float, begin: float = 0.0) -> None:
    rate = stream.codec_context.sample_rate
    n = stream.codec_context.frame_size or 1024
    channels = stream.codec_context.layout.nb_channels
    total = int(seconds * rate)
    for start in range(round(begin * rate), total, n):
        t = (start + np.arange(n)) / rate
        tone = (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        data = np.repeat(tone[None], channels, axis=0)
        frame = av.AudioFrame.from_ndarray(data, format="fltp",
                                           layout=stream.codec_context.layout.name)
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def _write_subtitles(out: av.container.OutputContainer, stream: av.stream.Stream,
                     seconds: float, mov_text: bool) -> None:
    for k, start in enumerate(np.arange(0.0, seconds, 0.2)):
        text = f"line {k}".encode()
        data = struct.pack(">H", len(text)) + text if mov_text else text
        packet = av.Packet(data)
        packet.stream = stream
        packet.time_base = Fraction(1, 1000)
        packet.pts = packet.dts = int(start * 1000)
        packet.duration = 150
        out.mux(packet)


def make_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """An AAC-only file (no video stream)."""
    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=48000)
        _write_audio(out, a, seconds, 440.0)
    return Path(path)


def make_zero_frames(path: Path) -> Path:
    """A file with a video stream that holds no frames (and an audio track)."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=24)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=48000)
        _write_audio(out, a, 0.3, 440.0)
        for packet in vs.encode():
            out.mux(packet)
    return Path(path)


def make_not_media(path: Path) -> Path:
    """A text file with a video file's name."""
    Path(path).write_text("this is not a video\n" * 50)
    return Path(path)


def truncate(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """Copy the first ``keep`` fraction of ``src``'s bytes to ``dst``."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * keep)])
    return Path(dst)


def faststart(src: Path, dst: Path) -> Path:
    """Remux ``src``'s video into an MP4 with its index at the front (as streamed files are)."""
    with av.open(str(src)) as i, av.open(str(dst), "w", options={"movflags": "faststart"}) as o:
        stream = o.add_stream_from_template(i.streams.video[0])
        for packet in i.demux(i.streams.video[0]):
            if packet.size:
                packet.stream = stream
                o.mux(packet)
    return Path(dst)


def corrupt(src: Path, dst: Path, start: float = 0.3, length: float = 0.4) -> Path:
    """Copy ``src`` to ``dst`` with a span of its bytes replaced by noise."""
    data = bytearray(Path(src).read_bytes())
    a, n = int(len(data) * start), int(len(data) * length)
    data[a:a + n] = np.random.default_rng(0).integers(0, 256, n, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def read_video(path: Path) -> dict:
    """What a test needs to know about a written file: stream facts, timestamps, planes."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        cc = vs.codec_context
        info = {"width": vs.width, "height": vs.height, "time_base": vs.time_base,
                "rate": vs.average_rate, "codec": cc.name, "pix_fmt": cc.pix_fmt,
                "metadata": dict(vs.metadata), "container_metadata": dict(c.metadata),
                "streams": [(s.type, s.codec_context.name if s.codec_context else None,
                             dict(s.metadata)) for s in c.streams]}
        pts, lumas, rotation, tags = [], [], None, None
        for frame in c.decode(vs):
            pts.append(frame.pts)
            plane = frame.planes[0]
            dtype = np.uint8 if frame.format.name in ("yuv420p", "yuvj420p", "yuv444p",
                                                      "yuv422p") else np.uint16
            isz = np.dtype(dtype).itemsize
            flat = np.frombuffer(plane, dtype)
            lumas.append(flat[: plane.height * plane.line_size // isz]
                         .reshape(plane.height, -1)[:, : plane.width].copy())
            if rotation is None:
                rotation = frame.rotation
                tags = (frame.color_range, frame.colorspace, frame.color_primaries,
                        frame.color_trc)
        info.update(pts=pts, luma=lumas, rotation=rotation, color=tags,
                    frame_pix_fmt=None)
    return info


def packets_of(path: Path, kind: str) -> list[list[tuple[Fraction | None, bytes]]]:
    """Per stream of ``kind`` ("audio", "subtitle"): every packet's ``(pts in seconds, bytes)``."""
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        out: dict[int, list[tuple[Fraction | None, bytes]]] = {s.index: [] for s in streams}
        if not streams:
            return []
        for packet in c.demux(streams):
            if packet.size:
                t = None if packet.pts is None else packet.pts * packet.time_base
                out[packet.stream.index].append((t, bytes(packet)))
        return [out[s.index] for s in streams]


def mp4_movie_duration(path: Path) -> Fraction:
    """An MP4's movie duration as its ``mvhd`` box states it (what players show as the length;
    FFmpeg's ``duration`` leaves an empty edit at the start out of it)."""
    data = Path(path).read_bytes()

    def boxes(start: int, end: int):
        while start + 8 <= end:
            size, kind = struct.unpack(">I4s", data[start:start + 8])
            yield kind, start + 8, start + size
            start += size

    moov = next((a, b) for kind, a, b in boxes(0, len(data)) if kind == b"moov")
    at = next(a for kind, a, _b in boxes(*moov) if kind == b"mvhd")
    if data[at] == 1:  # version 1: 64-bit times
        scale, length = struct.unpack(">IQ", data[at + 20:at + 32])
    else:
        scale, length = struct.unpack(">II", data[at + 12:at + 20])
    return Fraction(length, scale)


def huge_png() -> bytes:
    """A PNG header claiming 100000 x 100000 pixels, with a few bytes of picture data."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(
        b"\x00" * 8)) + chunk(b"IEND", b"")
