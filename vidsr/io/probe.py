"""Opening a media file and reading facts from its streams and frames (used by the reader)."""

from __future__ import annotations

import errno
import stat
import struct
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..errors import InputError
from .formats import PlaneLayout, conversion_target, layout_for, native_layout

ATTACHED_PIC = 0x400  # AV_DISPOSITION_ATTACHED_PIC: a picture (cover art), not video


def codec_name(stream: Any) -> str:
    """A stream's codec name, for messages (a stream whose parameters are lost has none)."""
    return stream.codec_context.name if stream.codec_context is not None else "unknown codec"


def check_path(path: Path) -> None:
    """Raise ``InputError`` for a missing path or a directory."""
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a video file")
    if stat.S_ISFIFO(path.stat().st_mode):
        # read twice (probing, then the copy of the other streams) a pipe loses data or blocks
        raise InputError(f"{path} is a pipe: vidsr reads a video file it can seek in; save "
                         "the stream to a file first")


def open_media(path: Path) -> Any:
    """Open a file with PyAV; ``InputError`` when it is not readable media."""
    try:
        return av.open(str(path), metadata_errors="replace")
    except av.FFmpegError as exc:
        if isinstance(exc, PermissionError) or exc.errno == errno.EACCES:
            raise InputError(f"cannot read {path}: permission denied") from exc
        raise InputError(f"{path} cannot be opened as media ({exc.strerror or exc}): not a "
                         "video file, or a truncated/corrupt one") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def video_stream(container: Any, path: Path) -> Any:
    """The first real video stream (not cover art), set up for threaded decoding."""
    streams = [s for s in container.streams.video if not (s.disposition & ATTACHED_PIC)]
    if not streams:
        kinds = sorted({"cover art" if s.type == "video" else s.type
                        for s in container.streams})
        what = f"only {', '.join(kinds)}" if kinds else "no streams"
        raise InputError(f"{path} has no video stream ({what})")
    stream = streams[0]
    if stream.codec_context is None:  # its codec parameters are lost (a cut-off header)
        raise InputError(f"{path} is truncated or corrupt: the video stream's codec "
                         "parameters are missing")
    # Frame threads decode several frames at once; slice threads split each frame.
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = 0
    return stream


def duration_tag(stream: Any) -> float | None:
    """Seconds in a stream's ``DURATION`` tag (ffmpeg's and mkvmerge's, in Matroska), if any."""
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag and tag.count(":") == 2:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            return None
    return None


def declared_duration(stream: Any, tb: Fraction, matroska: bool = False) -> float | None:
    """The stream's own duration in seconds: its header field, or Matroska's DURATION tag.

    Matroska has no per-stream duration field: a ``stream.duration`` there is FFmpeg's guess,
    the whole file's duration, given to a stream whose start it had not found while probing
    (a video of a few frames under longer audio), so the tag is read first."""
    tag = duration_tag(stream)
    if matroska and tag:
        return tag
    if stream.duration:
        return float(stream.duration * tb)
    return tag


def hdr_metadata(frame: Any) -> tuple[str | None, tuple[int, int] | None]:
    """HDR10 mastering display (x265 ``master-display`` syntax) and content light level."""
    display = light = None
    for sd in frame.side_data:
        kind, raw = sd.type.name, bytes(sd)
        if kind == "MASTERING_DISPLAY_METADATA" and len(raw) >= 88:
            v = struct.unpack("=22i", raw[:88])  # AVMasteringDisplayMetadata
            q = [Fraction(v[2 * k], v[2 * k + 1] or 1) for k in range(10)]
            if v[20] and v[21]:  # has_primaries, has_luminance
                xy = [f"({round(q[2 * k] * 50000)},{round(q[2 * k + 1] * 50000)})"
                      for k in range(4)]  # R, G, B, white point in 0.00002 units
                display = (f"G{xy[1]}B{xy[2]}R{xy[0]}WP{xy[3]}"
                           f"L({round(q[9] * 10000)},{round(q[8] * 10000)})")
        elif kind == "CONTENT_LIGHT_LEVEL" and len(raw) >= 8:
            light = tuple(struct.unpack("=2I", raw[:8]))
    return display, light


def plane_array(plane: Any, dtype: np.dtype) -> np.ndarray:
    """A copy of one frame plane as a ``height x width`` array (line padding dropped)."""
    itemsize = np.dtype(dtype).itemsize
    stride = plane.line_size // itemsize
    flat = np.frombuffer(plane, dtype=dtype)
    return flat[: plane.height * stride].reshape(plane.height, stride)[:, : plane.width].copy()


def frame_layout(frame: Any, path: Path) -> tuple[PlaneLayout, bool]:
    """The plane layout frames of this format arrive in, and whether they need converting."""
    fmt = frame.format
    native = native_layout(fmt.name)
    if native is not None:
        return native, False
    bits = max((c.bits for c in fmt.components), default=0)
    if fmt.is_bit_stream or fmt.is_bayer or not fmt.components or bits > 12:
        raise InputError(f"{path}: pixel format {fmt.name} is not supported "
                         "(vidsr handles 8 to 12-bit YUV, RGB and gray video)")
    return layout_for(conversion_target(bits)), True
