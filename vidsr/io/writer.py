"""Write upscaled planes to a file, copying the source's other streams and metadata.

``VideoWriter`` encodes frames handed over as planes (same layout as the reader's, ``s`` times
the size) with the source's timestamps, time base, frame rate, colour tags, rotation and stream
metadata. Audio, subtitle and data packets from the reader are remuxed bit-exact; an audio
stream whose codec the output container cannot hold is re-encoded (with a warning), a subtitle
or data stream it cannot hold is dropped (with a warning).
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..errors import InputError, OutputError
from .avframe import CHROMA_LOCATIONS
from .encoders import (
    NVENC,
    EncodeOptions,
    choose_pix_fmt,
    codec_options,
    default_codec,
    encoder,
    requested_depth,
)
from .formats import (
    COLOR_PRIMARIES,
    COLOR_RANGES,
    COLOR_SPACES,
    COLOR_TRCS,
    output_siting,
    subsampling_of,
    value_of,
)
from .reader import StreamPacket, VideoInfo
from .streams import (
    TRANSCODERS,
    AudioReencoder,
    CoverArt,
    SampleReader,
    ffmpeg_error_log,
    ffmpeg_reason,
    plan_copy,
    plan_cover,
    stream_tags,
    tags_to_copy,
)

_FRAME_PERIOD = {"mpeg1video", "mpeg2video"}  # read the encoder's time base as the frame rate
_SHORT_DENOMINATOR = {"mpeg4", "msmpeg4", "msmpeg4v2", "h263", "h263p"}  # at most 65535


def _encoder_time_base(codec: str, info: VideoInfo) -> Fraction:
    """The source's time base where the encoder takes it; MPEG-1/2: the frame period (their
    frames are at a constant rate); MPEG-4 part 2 and H.263: a time base with a denominator
    of at most 65535 (the frame period for a source whose own is finer)."""
    tb = Fraction(info.time_base)
    if codec in _FRAME_PERIOD and info.fps:
        return 1 / Fraction(info.fps)
    if codec in _SHORT_DENOMINATOR and tb.denominator > 65535:
        period = (1 / Fraction(info.fps)) if info.fps else tb
        return period.limit_denominator(65535)
    return tb

log = logging.getLogger(__name__)

# encoders whose bitstream cannot say full range (their decoders report limited)
LIMITED_RANGE_ONLY = ("prores_ks", "prores_aw", "prores", "dnxhd")


def repair_dts(packet: Any, last_dts: int | None) -> int | None:
    """Replace an impossible decode timestamp (later than the packet's pts) and return the dts.

    libx265 through FFmpeg now and then hands out a garbage dts on very short streams (seen
    here: dts 417934970997863124 for pts 33), which the muxer rejects. A dts can never exceed
    its pts; the repaired one keeps the stream's dts increasing and at most the pts.
    """
    if packet.dts is not None and packet.pts is not None and packet.dts > packet.pts:
        bad = packet.dts
        packet.dts = packet.pts if last_dts is None else min(packet.pts, last_dts + 1)
        log.debug("encoder gave dts %s for pts %s; using %s", bad, packet.pts, packet.dts)
    return packet.dts

class VideoWriter:
    """Encode upscaled planes and remux the source's other streams into ``path``.

    ``info`` describes the source; ``scale`` the upscale factor; ``streams`` are the reader's
    non-video streams (``VideoReader.streams``) to copy; ``samples``
    (``VideoReader.sample_packets``) lets each copy be tried on a scratch muxer first. When
    ``path`` is a temporary file, ``suffix`` is the target's extension and ``name`` its name
    for messages. Use as a context manager, or call ``close()`` (finish the file) or
    ``abort()`` (stop without finishing it).
    """

    def __init__(self, path: str | Path, info: VideoInfo, scale: int,
                 options: EncodeOptions | None = None, streams: list[Any] | None = None,
                 container_metadata: dict[str, str] | None = None,
                 suffix: str | None = None, samples: SampleReader | None = None,
                 name: str | None = None, covers: list[CoverArt] | None = None,
                 chapters: list[dict[str, Any]] | None = None) -> None:
        self.path = Path(path)
        self.name = name or self.path.name  # in messages: the target's, not a temporary file's
        self._samples = samples
        self.info = info
        self.scale = scale
        self.options = options or EncodeOptions()
        self.suffix = (suffix or self.path.suffix).lower()
        self.width, self.height = info.width * scale, info.height * scale
        self.layout = info.layout
        self.notes: list[str] = []
        try:
            fmt = {".mkv": "matroska", ".webm": "webm", ".mov": "mov", ".m4v": "mp4",
                   ".mp4": "mp4"}.get(self.suffix)
            self._out = av.open(str(self.path), "w", format=fmt)
        except (av.FFmpegError, ValueError, OSError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise OutputError(f"cannot create a file in {self.path.parent}: {why}") from exc
        try:
            self._setup(container_metadata or {}, streams or [], covers or [], chapters or [])
        except BaseException:
            self.abort()
            raise
        self.frames = 0
        self._last_dts: int | None = None  # of the last video packet muxed
        self._last_pts: int | None = None  # of the last frame, in a rescaled time base

    # -- setup ------------------------------------------------------------------------------
    def _setup(self, container_metadata: dict[str, str], streams: list[Any],
               covers: list[CoverArt], chapters: list[dict[str, Any]]) -> None:
        out, info, opts = self._out, self.info, self.options
        out.metadata.update(tags_to_copy(container_metadata))
        if chapters:  # Matroska, WebM and MP4/MOV all write chapters
            out.set_chapters(chapters)
        supported = out.supported_codecs
        name = opts.codec or default_codec(self.suffix, requested_depth(opts.pix_fmt)
                                           or self.layout.bit_depth, supported)
        codec = encoder(name)
        self.codec = codec.name
        if codec.canonical_name not in supported and codec.name not in supported:
            raise OutputError(f"a {self.suffix} file cannot hold {codec.name} video")
        self.pix_fmt = choose_pix_fmt(codec, self.layout, opts.pix_fmt,
                                      (self.width, self.height), supported)
        if self.pix_fmt.startswith("yuvj") and info.color_range != "pc":
            # the codes would be kept and tagged full range: a washed-out picture on playback
            raise OutputError(f"--pix-fmt {self.pix_fmt} is full range (JPEG) and the source is "
                              f"limited range; use {self.pix_fmt.replace('yuvj', 'yuv')}")
        # where the upscaled chroma must sit for this encoded layout (the pipeline puts it there)
        self.chroma_siting = output_siting(info.chroma_location, subsampling_of(self.pix_fmt))
        vs = out.add_stream(codec.name, rate=info.fps, options=self._options(codec.name))
        cc = vs.codec_context
        vs.width, vs.height, vs.pix_fmt = self.width, self.height, self.pix_fmt
        self._tb = _encoder_time_base(codec.name, info)
        cc.time_base = self._tb
        vs.time_base = self._tb
        if info.fps:
            cc.framerate = info.fps
        cc.thread_count = 0
        # Frame and slice threads, as the ffmpeg tool has it: PyAV's default is slice threads
        # alone, which leaves libx264 at 4K well short of its throughput on many cores.
        cc.thread_type = "AUTO"
        # the planes' own range and matrix: each frame carries them, so that swscale converts
        # with the source's matrix (it took BT.601 for every source: a BT.709 clip written
        # as RGB came out with shifted colours) and encoders that write the frame's tags into
        # the bitstream (prores_ks) get them
        self._range = value_of(COLOR_RANGES, info.color_range)
        self._matrix = value_of(COLOR_SPACES, info.color_space)
        self._rgb = av.VideoFormat(self.pix_fmt).is_rgb
        # ProRes and DNxHD have no full-range flag: their decoders say limited, so full-range
        # codes written as they are would play with blacks and whites clipped; converted
        self._to_limited = codec.name in LIMITED_RANGE_ONLY and self._range == 2 and \
            not self._rgb
        if self._to_limited:
            log.warning("%s has no full-range flag: the full-range source is written in "
                        "limited range", codec.name)
        # RGB is full range with no YCbCr matrix (AVCOL_SPC_RGB); primaries and transfer stay
        cc.color_range = 2 if self._rgb else 1 if self._to_limited else self._range
        cc.colorspace = 0 if self._rgb else self._matrix
        cc.color_primaries = value_of(COLOR_PRIMARIES, info.color_primaries)
        cc.color_trc = value_of(COLOR_TRCS, info.color_trc)
        if info.sample_aspect_ratio:
            cc.sample_aspect_ratio = info.sample_aspect_ratio
        if codec.name in ("libx265", "hevc_nvenc") and self.suffix in (".mp4", ".mov", ".m4v"):
            vs.codec_tag = "hvc1"  # what Apple players need to play HEVC in MP4/MOV
        if info.rotation:
            vs.set_display_rotation(info.rotation)
        vs.metadata.update(stream_tags(info.metadata))
        self._vs = vs
        self._open_encoder(codec.name)
        self._frame_fmt = self.layout.pix_fmt
        if self.pix_fmt != self._frame_fmt:
            self.notes.append(f"encoding {self._frame_fmt} planes as {self.pix_fmt}")
            log.warning(self.notes[-1])
        self._map: dict[int, Any] = {}
        # per copied audio stream, a packet without a duration waiting for the next one's pts
        self._held: dict[int, tuple[Any, int]] = {}
        for src in streams:
            self._add_copy(src, supported)
        self._covers: list[tuple[Any, bytes]] = []  # (stream, picture) muxed before the trailer
        for cover in covers:
            dst, note = plan_cover(self._out, cover, self.suffix)
            if note:
                log.warning(note)
                self.notes.append(note)
            if dst is not None:
                self._covers.append((dst, cover.data))
        try:  # the header now, before any frame: a muxer's refusal comes with its reason
            with ffmpeg_error_log():
                out.start_encoding()
        except av.FFmpegError as exc:
            why = (ffmpeg_reason(exc) or "").rstrip(".") or exc.strerror or str(exc)
            raise OutputError(f"the {self.suffix} muxer refuses {codec.name} video: "
                              f"{why}") from exc

    def _options(self, name: str) -> dict[str, str]:
        opts = codec_options(name, self.options, self.suffix)
        info = self.info
        loc = self.chroma_siting
        if loc in CHROMA_LOCATIONS.values() and info.chroma_location != "unspecified":
            # a generic AVCodecContext option: x264, x265, SVT-AV1 and libvpx write it into the
            # bitstream, and the muxers into the container
            opts.setdefault("chroma_sample_location", loc)
        if not (info.mastering_display or info.content_light):
            return opts
        if name == "libx265":
            extra = []
            if info.mastering_display:
                extra.append(f"master-display={info.mastering_display}")
            if info.content_light:
                extra.append("max-cll={},{}".format(*info.content_light))
            opts["x265-params"] = ":".join([opts.get("x265-params", ""), *extra]).strip(":")
        else:
            msg = (f"HDR10 mastering-display/content-light metadata is only written with "
                   f"libx265; {name} leaves it out")
            log.warning(msg)
            self.notes.append(msg)
        return opts

    def _open_encoder(self, name: str) -> None:
        if name == "libsvtav1":  # SVT-AV1 prints a 20-line banner at its default level, info
            os.environ.setdefault("SVT_LOG", "1")  # errors only (its warnings are about threads)
        try:
            with ffmpeg_error_log():  # so the error carries the encoder's own reason
                self._vs.codec_context.open()
        except av.FFmpegError as exc:
            hint = (" (NVENC needs an NVIDIA GPU and its driver's encoder library, "
                    "libnvidia-encode; try --codec libx264)" if name in NVENC else "")
            why = (ffmpeg_reason(exc) or "").rstrip(".") or exc.strerror or str(exc)
            raise OutputError(f"cannot start the {name} encoder at {self.width}x{self.height} "
                              f"{self.pix_fmt}: {why}{hint}") from exc

    def _add_copy(self, src: Any, supported: set[str]) -> None:
        plan = plan_copy(self._out, src, self.suffix, supported, self._samples)
        if plan.note:
            log.warning(plan.note)
            self.notes.append(plan.note)
        if plan.target is not None:
            self._map[src.index] = plan.target

    # -- writing ----------------------------------------------------------------------------
    def write(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, pts: int | None) -> None:
        """Encode one upscaled frame (planes cropped to the output's exact plane sizes)."""
        frame = av.VideoFrame(self.width, self.height, self._frame_fmt)
        dtype = np.uint8 if self.layout.bit_depth == 8 else np.uint16
        for what, plane, data in zip("YUV", frame.planes, (y, u, v), strict=True):
            if not (isinstance(data, np.ndarray) and data.dtype == dtype and data.ndim == 2
                    and data.shape[0] >= plane.height and data.shape[1] >= plane.width):
                got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else \
                    type(data).__name__
                raise InputError(f"{self.name}: the {what} plane must be {np.dtype(dtype)} "
                                 f"codes, at least {plane.height}x{plane.width}, got {got}")
            view = np.frombuffer(plane, dtype=dtype)
            stride = plane.line_size // view.itemsize
            dst = view[: plane.height * stride].reshape(plane.height, stride)
            dst[:, : plane.width] = data[: plane.height, : plane.width]
        if pts is not None and self._tb != self.info.time_base:
            # frames closer than the coarser time base's tick move apart by one tick
            pts = round(pts * self.info.time_base / self._tb)
            if self._last_pts is not None:
                pts = max(pts, self._last_pts + 1)
            self._last_pts = pts
        frame.pts = pts
        frame.time_base = self._tb
        cc = self._vs.codec_context
        frame.color_range, frame.colorspace = self._range, self._matrix
        frame.color_primaries, frame.color_trc = cc.color_primaries, cc.color_trc
        if self._to_limited:
            frame = frame.reformat(format=self.pix_fmt, src_color_range=2, dst_color_range=1)
            frame.color_range = 1
        elif self.pix_fmt != self._frame_fmt:
            if self.pix_fmt.startswith("gray"):
                # swscale takes a gray format for full range and stretches limited-range luma
                # into it (blacks crushed, the stream still tagged limited); the codes stay
                # as they are when both sides are named full range
                frame = frame.reformat(format=self.pix_fmt, src_color_range=2,
                                       dst_color_range=2)
            else:
                frame = frame.reformat(format=self.pix_fmt)
            if self._rgb:
                frame.color_range, frame.colorspace = 2, 0
        self._encode(frame)
        self.frames += 1

    def write_packet(self, item: StreamPacket) -> None:
        """Copy (or re-encode) one packet of a non-video stream."""
        dst = self._map.get(item.stream_index)
        if dst is None:
            return
        try:
            if isinstance(dst, TRANSCODERS):
                dst.write(item.packet)
            else:
                self._copy(item.stream_index, dst, item.packet)
        except av.FFmpegError as exc:
            what = (f"converting {'audio' if isinstance(dst, AudioReencoder) else 'subtitle'} "
                    f"stream #{item.stream_index} to {dst.stream.codec_context.name} failed"
                    if isinstance(dst, TRANSCODERS) else f"cannot write {self.name}")
            raise OutputError(f"{what}: {exc.strerror or exc}") from exc

    def _copy(self, index: int, dst: Any, packet: Any) -> None:
        """Mux a copied packet. Audio packets without a duration (Matroska stores none) are
        held until the next one's pts gives it: the MP4/MOV muxer drops a last packet of
        duration 0 (the end of an ALAC track)."""
        packet.stream = dst
        held = self._held.pop(index, None)
        gap = 0  # in the source's time base (muxing rescales a packet in place)
        if held is not None:
            last, gap = held
            if packet.pts is not None and last.pts is not None and packet.pts > last.pts:
                gap = packet.pts - last.pts
            last.duration = gap
            self._out.mux(last)
        if dst.type == "audio" and not packet.duration and packet.pts is not None:
            self._held[index] = (packet, gap)  # the last one gets its previous one's duration
            return
        self._out.mux(packet)

    def _flush_held(self) -> None:
        for last, gap in self._held.values():
            if gap:
                last.duration = gap
            self._out.mux(last)
        self._held.clear()

    def _encode(self, frame: Any) -> None:
        where = "end of stream" if frame is None else f"pts {frame.pts}"
        try:
            packets = self._vs.encode(frame)
        except av.FFmpegError as exc:
            raise OutputError(f"the {self._vs.codec_context.name} encoder failed at {where}: "
                              f"{exc.strerror or exc}") from exc
        for packet in packets:
            self._last_dts = repair_dts(packet, self._last_dts)
            try:
                self._out.mux(packet)
            except av.FFmpegError as exc:
                raise OutputError(f"writing {self.name} failed at packet pts "
                                  f"{packet.pts} dts {packet.dts}: {exc.strerror or exc}") from exc

    # -- finishing --------------------------------------------------------------------------
    def close(self) -> None:
        """Flush the encoders and finish the file."""
        try:
            self._encode(None)
            self._flush_held()
            for dst, data in self._covers:  # kept by the muxer for its trailer (MP4's covr)
                packet = av.Packet(data)
                packet.stream = dst
                self._out.mux(packet)
            for dst in self._map.values():
                if isinstance(dst, TRANSCODERS):
                    dst.flush()
            self._out.close()
        except av.FFmpegError as exc:
            raise OutputError(f"cannot finish {self.name}: {exc.strerror or exc}") from exc

    def abort(self) -> None:
        """Stop without finishing the file (it is left incomplete for the caller to delete)."""
        try:
            self._out.close()
        except Exception:  # noqa: BLE001 - the file is being thrown away
            log.debug("closing an aborted output raised", exc_info=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


__all__ = ["EncodeOptions", "VideoWriter"]
