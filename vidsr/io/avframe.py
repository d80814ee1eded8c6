"""Read a decoded frame's chroma siting, which PyAV (18.x) does not expose.

FFmpeg stores it in ``AVFrame.chroma_location``, the int field right after the four colour
fields PyAV does expose (``color_range``, ``color_primaries``, ``color_trc``, ``colorspace``).
PyAV's ``Frame`` objects hold their ``AVFrame *`` as the first C field after the Python object
header and the Cython vtable pointer. Nothing here is assumed blindly:

- the field offset is found once per process by *calibration*: a frame vidsr makes itself gets
  four distinctive colour values, and the offset is accepted only if exactly one place in the
  AVFrame holds that sequence (and the frame's width and height sit where FFmpeg puts them);
- every read checks that the four colour fields before the offset equal the values PyAV reports
  for that frame.

If any check fails (a future PyAV or FFmpeg with a different layout), ``chroma_location``
returns ``"unspecified"``, which vidsr treats as ``"left"``, the H.264/HEVC default for 4:2:0 —
the behaviour vidsr had before it could read the field.
"""

from __future__ import annotations

import ctypes
import logging
import struct
from typing import Any

import av
import numpy as np

log = logging.getLogger(__name__)

# FFmpeg's AVChromaLocation values and names (as ffprobe prints them).
CHROMA_LOCATIONS = {0: "unspecified", 1: "left", 2: "center", 3: "topleft", 4: "top",
                    5: "bottomleft", 6: "bottom"}

_PTR_OFFSET = 24           # PyObject_HEAD (16 bytes) + Cython vtable pointer (8 bytes)
_WH_OFFSET = 104           # AVFrame: data[8], linesize[8], extended_data, then width, height
_SCAN_BYTES = 512          # AVFrame is larger than this in every FFmpeg since 4.x
_CALIBRATION = (2, 9, 16, 9)  # pc range, bt2020 primaries, smpte2084 trc, bt2020nc matrix
_offset: int | None | bool = False  # False: not calibrated yet; None: calibration failed


def _avframe_ptr(frame: Any) -> int | None:
    if not isinstance(frame, av.VideoFrame):
        return None
    ptr = struct.unpack("Q", ctypes.string_at(id(frame) + _PTR_OFFSET, 8))[0]
    if ptr < 4096 or ptr >= 1 << 56:
        return None
    w, h = struct.unpack("2i", ctypes.string_at(ptr + _WH_OFFSET, 8))
    return ptr if (w, h) == (frame.width, frame.height) else None


def _colour_key(frame: Any) -> list[int]:
    return [int(frame.color_range), int(frame.color_primaries), int(frame.color_trc),
            int(frame.colorspace)]


def _calibrate() -> int | None:
    try:
        probe = av.VideoFrame(34, 18, "yuv420p")
        probe.color_range, probe.color_primaries, probe.color_trc, probe.colorspace = _CALIBRATION
        ptr = _avframe_ptr(probe)
        if ptr is None:
            return None
        ints = np.frombuffer(ctypes.string_at(ptr, _SCAN_BYTES), dtype=np.int32)
        key = list(_CALIBRATION)
        hits = [i for i in range(len(ints) - 4) if list(ints[i:i + 4]) == key]
        if len(hits) != 1:
            return None
        return 4 * (hits[0] + 4)
    except Exception:  # noqa: BLE001 - any surprise means "cannot read it here"
        return None


def field_offset() -> int | None:
    """Byte offset of ``chroma_location`` in ``AVFrame`` (None where it cannot be verified)."""
    global _offset
    if _offset is False:
        _offset = _calibrate()
        if _offset is None:
            log.info("cannot locate AVFrame.chroma_location in this PyAV build; "
                     "chroma siting is taken as left")
    return _offset  # type: ignore[return-value]


def chroma_location(frame: Any) -> str:
    """The decoded frame's chroma siting as FFmpeg names it (``"unspecified"`` if unknown)."""
    off = field_offset()
    if off is None:
        return "unspecified"
    try:
        ptr = _avframe_ptr(frame)
        if ptr is None:
            return "unspecified"
        ints = struct.unpack("5i", ctypes.string_at(ptr + off - 16, 20))
        if list(ints[:4]) != _colour_key(frame):
            return "unspecified"
        return CHROMA_LOCATIONS.get(ints[4], "unspecified")
    except Exception:  # noqa: BLE001
        return "unspecified"
