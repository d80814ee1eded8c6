"""Read a video file as planes: Y, Cb, Cr (uint8, or uint16 for 10/12-bit) plus timestamps.

``with VideoReader(path) as r:`` opens the file, checks it (a readable video stream with at least
one decodable, progressive frame in a pixel format vidsr handles) and exposes ``r.info``; iterate
it for ``VideoFrame`` objects. Planar YUV frames are handed over as they are decoded, never
through RGB; other pixel formats (RGB, NV12, P010, gray...) are converted to 4:2:0 YUV at 8 or 10
bits by FFmpeg's swscale. Interlaced video is refused: vidsr's models are trained on progressive
frames, and a silent deinterlace would change the frame rate or the motion.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..errors import InputError
from .avframe import chroma_location
from .formats import (
    COLOR_PRIMARIES,
    COLOR_RANGES,
    COLOR_SPACES,
    COLOR_TRCS,
    PlaneLayout,
    name_of,
    native_layout,
)
from .probe import (
    ATTACHED_PIC,
    check_path,
    codec_name,
    declared_duration,
    duration_tag,
    frame_layout,
    hdr_metadata,
    open_media,
    plane_array,
    video_stream,
)
from .streams import read_covers

log = logging.getLogger(__name__)

_INTERLACED_FIELD_ORDERS = {2, 3, 4, 5}  # AV_FIELD_TT, BB, TB, BT
# how far past a --duration window's end the video may be read for the other streams' packets
# inside the window (FFmpeg's muxers interleave within 10 s by default)
DRAIN_SECONDS = 30.0
# how far before a --start cut a subtitle event still on screen there is looked for
SUBTITLE_LOOKBACK = 60.0
_INEXACT_SEEK = {"mpegts", "mpeg", "mpegvideo"}  # demuxers whose seek may land past the target
# demuxers whose timestamps are a transport clock's (MPEG-TS/PS: minutes or hours into it, 1.4 s
# from ffmpeg's muxer): the file's start time is taken off every stream, as ffmpeg does (kept,
# it opened the output on that much nothing: an MP4's empty edit, a Matroska first frame at 10 s)
_CLOCK_START = {"mpegts", "mpeg"}
_MAX_PLAUSIBLE_FPS = 1000  # above it (and 4x the timestamps' rate) a declared rate is a tick rate


@dataclass(frozen=True)
class VideoInfo:
    """What a video stream is: size, timing, pixel layout and colour tags (FFmpeg names)."""

    path: str
    width: int
    height: int
    fps: Fraction | None
    time_base: Fraction
    frames: int | None  # an estimate when the container has no frame count
    duration: float | None
    pix_fmt: str  # the stream's own pixel format
    bit_depth: int  # of the planes vidsr hands over
    chroma: str  # "420", "422" or "444", of the planes vidsr hands over
    color_range: str
    color_space: str
    color_primaries: str
    color_trc: str
    chroma_location: str
    rotation: int
    codec: str
    container: str
    sample_aspect_ratio: Fraction | None = None
    converted: bool = False  # True when planes come out of a swscale conversion
    stream_index: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    # HDR10 static metadata: x265's master-display string and (MaxCLL, MaxFALL)
    mastering_display: str | None = None
    content_light: tuple[int, int] | None = None

    @property
    def matrix(self) -> str:
        """The YCbCr matrix (``color_space``)."""
        return self.color_space

    @property
    def full_range(self) -> bool:
        """True for full-range (JPEG, "pc") code values."""
        return self.color_range == "pc"

    @property
    def layout(self) -> PlaneLayout:
        """The layout of the planes the reader hands over."""
        return PlaneLayout(self.bit_depth, self.chroma, self.full_range)

    @property
    def planes_pix_fmt(self) -> str:
        """The planar pixel format of the planes the reader hands over."""
        return self.layout.pix_fmt


@dataclass
class VideoFrame:
    """One decoded frame: planes plus its timestamp in ``time_base`` units, on the output's
    timeline (the source's less ``VideoReader.rebase`` and ``start``)."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    pts: int | None
    time_base: Fraction
    index: int

    @property
    def time(self) -> float:
        """Presentation time in seconds (0 when the frame has no timestamp)."""
        return float(self.pts * self.time_base) if self.pts is not None else 0.0


@dataclass
class StreamPacket:
    """A packet of a non-video stream, passed through untouched to be copied into the output."""

    stream_index: int
    packet: Any  # an av.Packet; opaque outside vidsr.io


class VideoReader:
    """Decode a video file's frames as planes; a context manager and an iterable.

    ``start`` and ``duration`` (seconds) restrict the frames to ``[start, start + duration)``.
    ``passthrough=True`` makes ``items()`` also yield the packets of the other streams (audio,
    subtitles, data) in file order, for the writer to copy. Frames and packets come with the
    source's timestamps less ``start`` and, for an MPEG-TS/PS, less the file's start time
    (``rebase``), the same ticks off every stream so that their offsets are kept exactly.
    """

    def __init__(self, path: str | Path, start: float | None = None,
                 duration: float | None = None, *, passthrough: bool = False) -> None:
        self.path = Path(path)
        check_path(self.path)
        if start is not None and start < 0:
            raise InputError(f"start must be >= 0 seconds, got {start}")
        if duration is not None and duration <= 0:
            raise InputError(f"duration must be > 0 seconds, got {duration}")
        self._start = start or 0.0
        self._end = None if duration is None else self._start + duration
        self._passthrough = passthrough
        self._container = open_media(self.path)
        try:
            self._stream = video_stream(self._container, self.path)
            self.info = self._probe()  # it opens the file again, at its start
            pictures = [s for s in self._container.streams.video
                        if s.disposition & ATTACHED_PIC]
            # the cover art, for the writer to keep where its container can
            self.covers = read_covers(self.path, pictures) if passthrough else []
        except BaseException:
            self._container.close()
            raise
        self.container_metadata = dict(self._container.metadata)
        self.streams = self._copy_streams()
        # the chapters on the output's timeline, for the writer
        self.chapters = self._window_chapters()
        # what the output will not carry, for the run summary
        self.notes = [f"video stream #{s.index} ({codec_name(s)}) is not copied: vidsr "
                      f"upscales stream #{self._stream.index} only"
                      for s in self._container.streams.video
                      if s.index != self._stream.index and not s.disposition & ATTACHED_PIC]
        kept = {c.stream.index for c in self.covers}
        self.notes += [f"the cover art (stream #{s.index}, {codec_name(s)}) is not copied: "
                       "its picture cannot be read" for s in pictures
                       if passthrough and s.index not in kept]
        if self._has_alpha:
            self.notes.append(f"the video's alpha channel ({self._stream.codec_context.pix_fmt}) "
                              "is not kept: the output is opaque")
        for note in self.notes:
            log.warning(note)
        self._next_index = 0
        self._index_from_time = False  # after a seek: number the next frame by its time
        self._skip_before: float | None = self._start if self._start > 0 else None
        self._started = False
        self._decoded = 0
        self._sought = False
        self._iterated = False  # a pass over the frames has begun (a new one starts over)
        self._seek_pending = False  # seek() was called since: the next pass continues there
        self._closed = False
        self._last_end: float | None = None  # end time of the last frame handed over
        self._prev_pts: int | None = None  # set per iteration in _iterate

    def _copy_streams(self) -> list[Any]:
        """The streams passed through to the output: every audio, subtitle, data and
        attachment stream."""
        return [s for s in self._container.streams if s.index != self._stream.index
                and s.type in ("audio", "subtitle", "data", "attachment")
                and not self._is_chapter_track(s)]

    def _is_chapter_track(self, stream: Any) -> bool:
        """Whether ``stream`` is a QuickTime chapter track (MP4/MOV keep chapters as a text
        track of one sample per chapter, which FFmpeg reads as a data stream without a
        codec): the chapters are carried as chapters (``chapters``), not as a stream."""
        return (stream.type == "data" and stream.codec_context is None
                and self._container.format.name.startswith("mov")
                and 0 < stream.frames == len(self._container.chapters()))

    def _window_chapters(self) -> list[dict[str, Any]]:
        """The file's chapters on the output's timeline: moved back by ``start`` and cut to
        the window; one wholly outside it is left out. Without a window they are unchanged."""
        chapters = []
        for ch in self._container.chapters():
            tb = ch["time_base"]
            start, end = ch["start"], max(ch["end"], ch["start"])  # an end may be unknown
            if self._start > 0:
                cut = round((self._origin + self._start) / tb)
                if end <= cut and not (end == start == cut):
                    continue
                start, end = max(start, cut), max(end, cut)
                start, end = start - round(self._start / tb), end - round(self._start / tb)
            if self._end is not None:
                stop = round((self._origin + self._end - self._start) / tb) \
                    if self._start > 0 else round((self._origin + self._end) / tb)
                if start >= stop:
                    continue
                end = min(end, stop)
            if self._rebase:  # onto the timeline the streams are moved to
                lift = round(self._rebase / tb)
                start, end = max(start - lift, 0), max(end - lift, 0)
            chapters.append({**ch, "start": start, "end": end,
                             "metadata": dict(ch["metadata"])})
        return chapters

    # -- probing ------------------------------------------------------------------------------
    def _decode_one(self) -> Any:
        """The next video frame decoded from where the demuxer is (None at the end)."""
        for packet in self._container.demux(self._stream):
            for frame in packet.decode():
                return frame
        return None

    def _first_frame(self) -> Any:
        try:
            frame = self._decode_one()
        except av.FFmpegError as exc:
            raise InputError(f"{self.path}: the video stream cannot be decoded "
                             f"({exc.strerror or exc}); the file is corrupt or truncated") from exc
        if frame is None:
            raise InputError(f"{self.path}: the video stream has no frames")
        return frame

    def _probe(self) -> VideoInfo:
        s, cc = self._stream, self._stream.codec_context
        frame = self._first_frame()
        if frame.interlaced_frame or cc.field_order in _INTERLACED_FIELD_ORDERS:
            raise InputError(f"{self.path}: interlaced video is not supported; deinterlace it "
                             "first (e.g. ffmpeg -i IN -vf bwdif=mode=send_frame OUT)")
        layout, converted = frame_layout(frame, self.path)
        self._has_alpha = any(c.is_alpha for c in frame.format.components)
        self._layout, self._convert = layout, converted
        fps = s.average_rate or s.guessed_rate or s.base_rate
        if fps and s.guessed_rate and fps > _MAX_PLAUSIBLE_FPS and fps > 4 * s.guessed_rate:
            # Matroska without a default duration takes the codec's rate, which can be an
            # H.264 VUI's tick rate (12288 "fps" for 24 fps frames): libvpx refused it, and the
            # frame count came out 500x; the timestamps' own rate is the frame rate
            log.debug("%s: average rate %s is the codec's tick rate; the frames come at %s",
                      self.path, fps, s.guessed_rate)
            fps = s.guessed_rate
        fps = Fraction(fps) if fps else None
        tb = Fraction(s.time_base) if s.time_base else Fraction(1, 90000)
        matroska = self._container.format.name.startswith("matroska")
        duration = declared_duration(s, tb, matroska=matroska)
        self._declared = duration
        # Matroska has no per-stream duration field; ffmpeg's DURATION tag holds the stream's
        # end time (mkvmerge's its length), so a stream starting late is not "short"
        self._declared_is_tag = bool(duration) and (not s.duration or (
            matroska and duration_tag(s) is not None))
        if duration is None and self._container.duration:
            duration = self._container.duration / 1_000_000
        frames = s.frames or (round(duration * float(fps)) if duration and fps else None)
        if self._start or self._end is not None:
            frames, duration = self._window(frames, duration, fps)
        if converted:
            # swscale writes BT.709 limited range unless the source says otherwise
            fmt = frame.format
            rgb = fmt.is_rgb or fmt.name.startswith(("gray", "ya")) or fmt.has_palette
            space = "bt709" if rgb else name_of(COLOR_SPACES, frame.colorspace)
            crange = "tv" if rgb else name_of(COLOR_RANGES, frame.color_range)
        else:
            space = name_of(COLOR_SPACES, frame.colorspace)
            crange = "pc" if layout.full_range else name_of(COLOR_RANGES, frame.color_range)
        sar = s.sample_aspect_ratio
        display, light = hdr_metadata(frame)
        # --start/--duration and seeks count from the video's first frame (an MPEG-TS often
        # starts at 1.4 s or 10 s); a negative time (an edit list's) counts as 0
        self._origin = max(float(frame.pts * tb), 0.0) if frame.pts is not None else 0.0
        demuxer = self._container.format.name.split(",")[0]
        self._seek_by_time = demuxer in _INEXACT_SEEK
        # the earliest start over the streams (audio may start before the video), in
        # AV_TIME_BASE microseconds; a Fraction, so that each time base's ticks come out exact
        begin = self._container.start_time
        self._rebase = Fraction(max(begin, 0), 1_000_000) \
            if demuxer in _CLOCK_START and begin is not None else Fraction(0)
        info = VideoInfo(
            path=str(self.path), width=frame.width, height=frame.height, fps=fps, time_base=tb,
            frames=frames, duration=duration, pix_fmt=frame.format.name,
            bit_depth=layout.bit_depth, chroma=layout.chroma, color_range=crange,
            color_space=space, color_primaries=name_of(COLOR_PRIMARIES, frame.color_primaries),
            color_trc=name_of(COLOR_TRCS, frame.color_trc),
            chroma_location="unspecified" if converted else chroma_location(frame),
            rotation=int(round(frame.rotation or 0)), codec=cc.name,
            container=self._container.format.name,
            sample_aspect_ratio=Fraction(sar) if sar else None, converted=converted,
            stream_index=s.index, metadata=dict(s.metadata), mastering_display=display,
            content_light=light)
        self._reopen()  # the pass starts at the file's start, every stream's first packet too
        return info

    def _converted(self, frame: Any) -> Any:
        fmt = frame.format
        if fmt.name.startswith(("gray", "ya")):
            # limited-range luma and neutral chroma: swscale's BT.709 matrix (which gray does
            # not need) rounds its Cr to 127 of 128, a faint tint on every frame
            return frame.reformat(format=self._layout.pix_fmt, dst_color_range="MPEG")
        if fmt.is_rgb or fmt.has_palette:
            # RGB-like sources become BT.709 limited-range YCbCr, as VideoInfo declares
            return frame.reformat(format=self._layout.pix_fmt, dst_colorspace="itu709",
                                  dst_color_range="MPEG")
        return frame.reformat(format=self._layout.pix_fmt)

    def _window(self, frames: int | None, duration: float | None,
                fps: Fraction | None) -> tuple[int | None, float | None]:
        total = duration
        end = self._end if self._end is not None else total
        if end is None:
            return None, None
        if total is not None:
            end = min(end, total)
        span = max(end - self._start, 0.0)
        return (math.ceil(span * float(fps) - 1e-6) if fps else None), span

    def sample_packets(self, stream_index: int, count: int = 4) -> list[Any]:
        """The first ``count`` packets of a stream, read through a second handle on the file
        (so iteration is not disturbed); for trying a stream on a muxer before the run."""
        packets: list[Any] = []
        try:
            with av.open(str(self.path), metadata_errors="replace") as c:
                for packet in c.demux(c.streams[stream_index]):
                    if packet.size:
                        packets.append(packet)
                        if len(packets) >= count:
                            break
        except (av.FFmpegError, OSError, IndexError):
            log.debug("could not sample stream %d of %s", stream_index, self.path, exc_info=True)
        return packets

    @property
    def origin(self) -> float:
        """The video's first frame's time in seconds (0 for most files; an MPEG-TS often
        starts later): ``start``, ``duration`` and ``seek`` count from it."""
        return self._origin

    @property
    def rebase(self) -> float:
        """The seconds taken off every timestamp handed over, before ``start``: an MPEG-TS/PS's
        start time (its clock's, the earliest over its streams), as ffmpeg takes it off; 0 for
        other containers, whose timestamps are kept. A frame's ``time + rebase - origin`` is
        its time from the video's first frame (without ``start``)."""
        return float(self._rebase)

    # -- context manager ------------------------------------------------------------------------
    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file; iterating or seeking afterwards raises ``InputError``."""
        self._closed = True
        self._container.close()

    def _check_open(self) -> None:
        if self._closed:
            raise InputError(f"{self.path}: the reader is closed")

    # -- iteration ------------------------------------------------------------------------------
    def _reopen(self) -> None:
        """Open the file again, at its start. A seek to 0 is not the start: it puts the other
        streams at the video's first keyframe (an MP4's audio before it, or an Opus track's
        first packet at -7 ms in WebM, was never read), and a raw H.264/HEVC stream cannot
        seek at all."""
        self._container.close()
        self._container = open_media(self.path)
        self._stream = video_stream(self._container, self.path)
        self.streams = self._copy_streams()

    def _rewind(self, pts: int) -> None:
        """Put the demuxer at or before ``pts`` (the video stream's time base); a file that
        cannot seek is opened again, at its start."""
        try:
            self._container.seek(max(pts, 0), stream=self._stream, backward=True)
        except av.FFmpegError:
            self._reopen()
            return
        self._stream.codec_context.flush_buffers()

    def _first_time(self) -> float | None:
        """The time of the first frame decoded from here (it consumes the data)."""
        try:
            frame = self._decode_one()
        except av.FFmpegError:
            return None
        if frame is None or frame.pts is None:
            return None
        return float(frame.pts * self.info.time_base)

    def seek(self, seconds: float) -> None:
        """Continue iteration from the first frame at or after ``seconds`` (counted from the
        video's first timestamp)."""
        self._check_open()
        if not seconds >= 0:
            raise InputError(f"seek: seconds must be >= 0, got {seconds}")
        tb = self.info.time_base
        target = seconds + self._origin
        at: float | None = None if seconds <= 0 else target  # None: from the file's start
        if self._seek_by_time and at is not None:
            # MPEG-TS/PS seek by DTS or clock reference, landing on a keyframe that may be
            # after the target: step back until the first frame decoded is not (or start over)
            margin = 1.0
            while True:
                at = target - margin
                if at <= self._origin:
                    at = None
                    break
                self._rewind(math.floor(at / tb))
                first = self._first_time()
                if first is None or first <= target + 1e-6:
                    break
                margin *= 4
        if at is None:
            self._reopen()
        else:
            self._rewind(math.floor(at / tb + 1e-9))
        self._skip_before = seconds
        # the frame number is that of the first frame kept (at or after ``seconds``, which
        # need not fall on a frame: round(seconds * fps) was one less for most seeks)
        self._next_index, self._index_from_time = 0, True
        self._started = True
        self._sought = True
        self._seek_pending = True

    def __iter__(self) -> Iterator[VideoFrame]:
        """The frames in ``[start, start + duration)``; each new pass starts there again,
        unless ``seek`` was called after the last pass (the next one starts where it put the
        reader). A seek in the middle of a pass ends that pass's use: begin a new one."""
        for item in self._iterate(False):
            if isinstance(item, VideoFrame):
                yield item

    def items(self) -> Iterator[VideoFrame | StreamPacket]:
        """Frames and, with ``passthrough=True``, the other streams' packets, in file order."""
        return self._iterate(self._passthrough)

    def _iterate(self, with_packets: bool) -> Iterator[VideoFrame | StreamPacket]:
        self._check_open()
        if self._iterated and not self._seek_pending:  # another pass: from the start again
            self.seek(self._start)
            self._next_index, self._decoded, self._index_from_time = 0, 0, False
            self._sought = self._start > 0  # a whole pass is checked for truncation again
        elif not self._started and self._start > 0:
            self.seek(self._start)
            self._next_index, self._index_from_time = 0, False
        self._started = self._iterated = True
        self._seek_pending = False
        streams = [self._stream, *(self.streams if with_packets else [])]
        shift = self._start
        self._prev_pts = None  # the source timestamp of the last frame decoded
        try:
            if with_packets and shift:
                yield from self._spanning(shift)
            demux = self._container.demux(streams)
            for packet in demux:
                if packet.stream.index != self._stream.index:
                    item = self._pass(packet, shift)
                    if item is not None:
                        yield item
                    continue
                for frame in packet.decode():
                    out = self._to_frame(frame, shift)
                    if out is None:
                        continue
                    if out is StopIteration:
                        if with_packets:
                            yield from self._drain(demux, shift)
                        return
                    yield out
        except av.FFmpegError as exc:
            # after a seek the frames decoded so far say nothing about where the damage is
            # (they were counted across seeks): the last good frame's time does
            where = f"frame {self._decoded}"
            if self._sought and self._prev_pts is not None:
                where = f"{float(self._prev_pts * self.info.time_base) - self._origin:.3f} s"
            elif self._sought:
                where = f"the seek to {self._skip_before or 0.0:.3f} s"
            raise InputError(f"{self.path}: corrupt or truncated video data after {where} "
                             f"({exc.strerror or exc})") from exc
        if not (self._sought or self._end):
            self._check_complete()

    def check_complete(self) -> None:
        """Once a pass has run out: raise ``InputError`` if the video ended well before its
        declared length. A pass read from the start checks this itself; one begun at a seek
        (a player's, which reaches the end from wherever it was put) does not, and may ask
        here. Within a ``duration`` window the end is the window's, so nothing is checked."""
        self._check_open()
        if self._end is None:
            self._check_complete()

    def _check_complete(self) -> None:
        """Raise if the video ended well before the stream's declared duration.

        Frame counts are not compared: an MP4 edit list can legitimately drop indexed frames.
        A Matroska DURATION tag is compared with the last frame's end time, the looser of its
        two readings (ffmpeg writes the end time, mkvmerge the length).
        """
        start = float((self._stream.start_time or 0) * self.info.time_base)
        step = 1 / float(self.info.fps) if self.info.fps else 0.1
        if self._container.format.name == "avi":
            self._check_avi_length(start)
        if not self._declared or self._last_end is None:
            return
        got = self._last_end if self._declared_is_tag else self._last_end - start
        if got + 3 * step + 0.1 < self._declared:
            raise InputError(f"{self.path} is truncated or corrupt: video stops at {got:.2f} s "
                             f"but the stream declares {self._declared:.2f} s")

    def _check_avi_length(self, start: float) -> None:
        """An AVI's duration is worked out again from what is left of a cut file, so the
        check against it cannot see the cut; its header's stream length (in time-base ticks,
        one per chunk, the empty chunks of dropped or held frames included, which the demuxer
        skips but counts in the timestamps) still says how long it was."""
        ticks, tb = self._stream.frames, self.info.time_base
        if not ticks or self._last_end is None:
            return
        length = float(ticks * tb)
        got = self._last_end - start
        rate = self._stream.guessed_rate or self.info.fps  # the frames' rate, not the ticks'
        step = 1 / float(rate) if rate else 0.1
        if got + 2 * step + float(tb) < length:
            raise InputError(f"{self.path} is truncated or corrupt: video stops at {got:.2f} s "
                             f"but its header declares {length:.2f} s")

    def _drain(self, demux: Iterator[Any], shift: float) -> Iterator[StreamPacket]:
        """After the --duration window's last frame: the other streams' packets inside the
        window that the file stores later than the video (a loosely interleaved file keeps
        audio seconds behind it), until each audio and subtitle stream has passed the end,
        the video is ``DRAIN_SECONDS`` past it, or the file ends. Video is not decoded."""
        assert self._end is not None
        pending = {s.index for s in self.streams if s.type in ("audio", "subtitle")}
        try:
            for packet in demux:
                if not pending:
                    return
                t = (None if packet.pts is None
                     else float(packet.pts * packet.time_base) - self._origin)
                if packet.stream.index == self._stream.index:
                    if t is not None and t >= self._end + DRAIN_SECONDS:
                        return
                    continue
                if t is not None and t >= self._end:
                    pending.discard(packet.stream.index)
                    continue
                item = self._pass(packet, shift)
                if item is not None:
                    yield item
        except av.FFmpegError as exc:  # damage past the window is not the run's concern
            log.debug("%s: reading on past the window: %s", self.path, exc)

    def _spanning(self, shift: float) -> Iterator[StreamPacket]:
        """The subtitle events on screen at the ``start`` cut: each that begins before it and
        ends after it is moved to the cut and shortened to end where it did. They are looked
        for through a second handle on the file, from ``SUBTITLE_LOOKBACK`` seconds before
        the cut (an event shown longer than that before it is not found)."""
        wanted = {s.index for s in self.streams if s.type == "subtitle"}
        if not wanted:
            return
        found: list[StreamPacket] = []
        try:
            with open_media(self.path) as c:
                video = c.streams[self._stream.index]
                at = self._origin + shift - SUBTITLE_LOOKBACK
                if at > self._origin:
                    c.seek(math.floor(at / video.time_base), stream=video, backward=True)
                for packet in c.demux([video, *(c.streams[i] for i in sorted(wanted))]):
                    if packet.pts is None:
                        continue
                    t = float(packet.pts * packet.time_base) - self._origin
                    if packet.stream.index == video.index:
                        if t >= shift + DRAIN_SECONDS:
                            break
                        continue
                    if t >= shift - 1e-6:  # this stream's events from here on are in the cut
                        wanted.discard(packet.stream.index)
                        if not wanted:
                            break
                        continue
                    tb = packet.time_base
                    cut = round((self._origin + shift) / tb)
                    if packet.size and packet.duration and packet.pts + packet.duration > cut:
                        packet.duration = packet.pts + packet.duration - cut
                        packet.pts = packet.dts = cut
                        found.append(self._place(packet, shift))
        except (av.FFmpegError, InputError) as exc:
            log.debug("%s: looking for subtitles at the cut: %s", self.path, exc)
        yield from found

    def _pass(self, packet: Any, shift: float) -> StreamPacket | None:
        if packet.size == 0:
            return None
        if shift or self._end is not None:
            if packet.pts is None:  # cannot be placed in the cut: kept where nothing is cut off
                return None if shift else self._place(packet, shift)
            t = float(packet.pts * packet.time_base) - self._origin
            # --duration alone keeps what comes before the first video frame, as a run with
            # neither option does (audio often starts first)
            if (shift and t < shift) or (self._end is not None and t >= self._end):
                return None
        return self._place(packet, shift)

    def _place(self, packet: Any, shift: float) -> StreamPacket:
        """A packet inside the window put on the output's timeline: moved back by ``shift``
        and ``rebase``; a subtitle event still on screen at the window's end stops there."""
        if self._end is not None and packet.duration and packet.stream.type == "subtitle" \
                and packet.pts is not None:
            stop = round((self._origin + self._end) / packet.time_base)
            packet.duration = min(packet.duration, max(stop - packet.pts, 1))
        delta = self._ticks(shift, packet.time_base)
        if packet.pts is not None:  # one without (kept where nothing is cut off) keeps none
            packet.pts -= delta
        if packet.dts is not None:
            packet.dts -= delta
        return StreamPacket(packet.stream.index, packet)

    def _ticks(self, shift: float, tb: Fraction) -> int:
        """How many ``tb`` ticks a timestamp moves back onto the output's timeline: ``shift``
        and ``rebase``, each rounded on its own, so that every stream of a time base (all of
        an MPEG-TS's are 1/90000) moves by the same ticks and their offsets are kept."""
        return int(round(shift / tb)) + round(self._rebase / tb)

    def _to_frame(self, frame: Any, shift: float) -> Any:
        tb = self.info.time_base
        pts, prev = frame.pts, self._prev_pts
        if pts is None:  # raw streams: continue from the previous timestamp at the frame rate
            step = int(round(1 / (self.info.fps * tb))) if self.info.fps else 1
            pts = 0 if prev is None else prev + step
        elif prev is not None and pts <= prev:
            raise InputError(f"{self.path} is corrupt: the video's timestamps go back at frame "
                             f"{self._decoded} ({float(pts * tb):.3f} s after "
                             f"{float(prev * tb):.3f} s)")
        self._prev_pts = pts  # skipped frames too: a raw stream's clock runs through them
        t = float(pts * tb)
        rel = t - self._origin  # --start/--duration count from the video's first timestamp
        if self._skip_before is not None and rel < self._skip_before - 1e-6:
            return None
        if self._end is not None and rel >= self._end - 1e-6:
            return StopIteration
        if frame.is_corrupt:
            raise InputError(f"{self.path}: frame {self._decoded} at {t:.3f} s is corrupt "
                             "(damaged or truncated video data)")
        if frame.interlaced_frame:
            raise InputError(f"{self.path}: interlaced frames at {t:.3f} s are not supported; "
                             "deinterlace first (e.g. ffmpeg -vf bwdif=mode=send_frame)")
        if self._convert:
            frame = self._converted(frame)
        elif frame.format.name != self._layout.pix_fmt and \
                native_layout(frame.format.name) != self._layout:
            raise InputError(f"{self.path}: the pixel format changes mid-stream "
                             f"({self._layout.pix_fmt} -> {frame.format.name})")
        if frame.width != self.info.width or frame.height != self.info.height:
            raise InputError(f"{self.path}: the frame size changes mid-stream "
                             f"({self.info.width}x{self.info.height} -> "
                             f"{frame.width}x{frame.height} at {t:.3f} s)")
        dtype = np.dtype(np.uint8 if self._layout.bit_depth == 8 else np.uint16)
        y, u, v = (plane_array(frame.planes[i], dtype) for i in range(3))
        if shift or self._rebase:
            pts -= self._ticks(shift, tb)
        step = frame.duration * tb if frame.duration else \
            (1 / self.info.fps if self.info.fps else Fraction(0))
        self._last_end = float(t + step)
        if self._index_from_time:
            fps = self.info.fps
            self._next_index = max(0, round(rel * float(fps))) if fps else 0
            self._index_from_time = False
        out = VideoFrame(y, u, v, pts, tb, self._next_index)
        self._next_index += 1
        self._decoded += 1
        return out
