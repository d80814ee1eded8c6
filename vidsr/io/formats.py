"""Pixel formats and colour tags: what vidsr reads natively and FFmpeg's enum names.

Colour tags travel as FFmpeg's names (``"bt709"``, ``"tv"``...), the same strings ``ffprobe``
prints, and are mapped back to FFmpeg's integer enums (stable ABI values) when writing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import av

# FFmpeg AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic / AVColorRange values.
COLOR_SPACES = {0: "gbr", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m",
                7: "smpte240m", 8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085",
                12: "chroma-derived-nc", 13: "chroma-derived-c", 14: "ictcp"}
COLOR_PRIMARIES = {1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m",
                   7: "smpte240m", 8: "film", 9: "bt2020", 10: "smpte428", 11: "smpte431",
                   12: "smpte432", 22: "ebu3213"}
COLOR_TRCS = {1: "bt709", 2: "unknown", 4: "gamma22", 5: "gamma28", 6: "smpte170m",
              7: "smpte240m", 8: "linear", 9: "log100", 10: "log316", 11: "iec61966-2-4",
              12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12",
              16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
COLOR_RANGES = {0: "unknown", 1: "tv", 2: "pc"}

_NATIVE = re.compile(r"^yuv(j?)(420|422|444)p(?:(10|12)le)?$")
SUBSAMPLING = {"420": (2, 2), "422": (1, 2), "444": (1, 1)}  # (vertical, horizontal)


def name_of(table: dict[int, str], value: int | None) -> str:
    """The FFmpeg name of an enum value (``"unknown"`` for anything unlisted)."""
    return table.get(int(value), "unknown") if value is not None else "unknown"


def value_of(table: dict[int, str], name: str) -> int:
    """The FFmpeg enum value of a name (the "unspecified" value 2, or 0 for ranges, if unknown)."""
    for k, v in table.items():
        if v == name:
            return k
    return 0 if table is COLOR_RANGES else 2


@dataclass(frozen=True)
class PlaneLayout:
    """How a frame's planes are laid out: bit depth, chroma family, full (JPEG) range or not."""

    bit_depth: int
    chroma: str  # "420", "422" or "444"
    full_range: bool = False

    @property
    def pix_fmt(self) -> str:
        """The planar YUV pixel format holding exactly these planes."""
        suffix = "" if self.bit_depth == 8 else f"{self.bit_depth}le"
        return f"yuv{self.chroma}p{suffix}"

    @property
    def subsampling(self) -> tuple[int, int]:
        """Chroma ``(vertical, horizontal)`` subsampling factors."""
        return SUBSAMPLING[self.chroma]


def native_layout(pix_fmt: str) -> PlaneLayout | None:
    """The layout of a planar YUV format vidsr reads without conversion, else ``None``."""
    m = _NATIVE.match(pix_fmt)
    if m is None:
        return None
    return PlaneLayout(int(m.group(3) or 8), m.group(2), full_range=bool(m.group(1)))


def conversion_target(bits: int) -> str:
    """The planar format other pixel formats are converted to: 4:2:0 at 8 or 10 bits."""
    return "yuv420p" if bits <= 8 else "yuv420p10le"


def layout_for(pix_fmt: str) -> PlaneLayout:
    """The layout of a planar YUV format name such as ``yuv420p10le`` (``ValueError`` else)."""
    layout = native_layout(pix_fmt)
    if layout is None:
        raise ValueError(f"not a planar YUV format: {pix_fmt}")
    return layout


def output_siting(siting: str, subsampling: tuple[int, int]) -> str:
    """The siting upscaled chroma is written at: the input's, except for 4:2:2, which H.264,
    HEVC, VP9 and AV1 only define co-sited with the first luma column ("left"): a centre-sited
    4:2:2 source (MJPEG) is re-sited there rather than mislabelled. (4:2:0 siting is carried
    by codecs and containers; 4:4:4 has none to move.)"""
    return "left" if tuple(subsampling) == (1, 2) else siting


def subsampling_of(pix_fmt: str) -> tuple[int, int]:
    """``(vertical, horizontal)`` chroma subsampling of a pixel format: (2, 2) for 4:2:0."""
    desc = av.VideoFormat(pix_fmt)
    return (1 if desc.chroma_height(2) == 2 else 2, 1 if desc.chroma_width(2) == 2 else 2)
