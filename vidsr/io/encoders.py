"""Encoder choice: codec defaults per output container, pixel formats and codec options."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import av

from ..errors import OutputError
from .formats import PlaneLayout, subsampling_of

# output suffix -> (codec for 8-bit video, codec for 10/12-bit video)
CONTAINER_CODECS = {
    ".mp4": ("libx264", "libx265"),
    ".m4v": ("libx264", "libx265"),
    ".mov": ("libx264", "libx265"),
    ".mkv": ("libx264", "libx265"),
    ".webm": ("libvpx-vp9", "libsvtav1"),
}
# the audio codec a stream is re-encoded to when the container cannot hold the original
CONTAINER_AUDIO = {".webm": "libopus", ".mp4": "aac", ".m4v": "aac", ".mov": "aac"}
NVENC = ("h264_nvenc", "hevc_nvenc", "av1_nvenc")
_QSCALE_DEFAULT = {"mpeg4": 3, "mpeg2video": 3, "mpeg1video": 3, "msmpeg4": 3, "msmpeg4v2": 3}
_CRF_DEFAULT = {"libx264": 18, "libx265": 20, "libvpx-vp9": 30, "libsvtav1": 30}
_PRESET_DEFAULT = {"libx264": "fast", "libx265": "fast"}
_FASTEST_PRESET = {"libx264": "ultrafast", "libx265": "ultrafast"}  # EncodeOptions.realtime
# the presets each encoder takes (libsvtav1: a number, -2 slowest to 13 fastest)
_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                 "slower", "veryslow", "placebo")
_NVENC_PRESETS = ("p1", "p2", "p3", "p4", "p5", "p6", "p7", "default", "slow", "medium", "fast",
                  "hp", "hq", "bd", "ll", "llhq", "llhp", "lossless", "losslesshp")
# x264 and x265 also take their presets by number, 0 (ultrafast) to 9 (placebo)
_X26X_TAKES = (*_X26X_PRESETS, *map(str, range(10)))
PRESETS = {"libx264": _X26X_TAKES, "libx265": _X26X_TAKES,
           **dict.fromkeys(NVENC, _NVENC_PRESETS),
           "libsvtav1": tuple(str(n) for n in range(-2, 14)), "libvpx-vp9": ()}
# the quality scale each encoder's crf (NVENC: cq) takes, from the encoders' documentation;
# FFmpeg's libsvtav1 takes crf 0 for "not set" and encodes at SVT-AV1's default (35) instead
CRF_RANGE = {"libx264": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63),
             "libsvtav1": (1, 63), "libaom-av1": (0, 63), "h264_nvenc": (0, 51),
             "hevc_nvenc": (0, 51), "av1_nvenc": (0, 63)}


@dataclass(frozen=True)
class EncodeOptions:
    """How the upscaled video is encoded; ``None`` fields take the per-container defaults.

    ``codec``: an FFmpeg encoder name (``libx264``, ``libx265``, ``h264_nvenc``...). ``crf``:
    constant-quality level (``cq`` for NVENC). ``preset``: the encoder's speed preset.
    ``pix_fmt``: output pixel format (default: the source's bit depth and chroma layout).
    ``realtime``: without a ``preset``, each encoder's fastest setting instead of its default
    (a recording must keep up with the camera).
    """

    codec: str | None = None
    crf: float | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    realtime: bool = False


def default_codec(suffix: str, bit_depth: int, supported: set[str]) -> str:
    """The encoder a container gets by default for video of ``bit_depth`` bits."""
    eight, high = CONTAINER_CODECS.get(suffix.lower(), ("libx264", "libx265"))
    name = eight if bit_depth == 8 else high
    if av.Codec(name, "w").name in supported:
        return name
    raise OutputError(f"no default video encoder for {suffix or 'this'} container; "
                      "pick one with --codec")


def requested_depth(pix_fmt: str | None) -> int | None:
    """The bit depth of a ``--pix-fmt`` (the default encoder follows it: ``--pix-fmt yuv444p``
    on a 10-bit source into .webm takes the 8-bit VP9, not 10-bit AV1); None when unknown."""
    if not pix_fmt:
        return None
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.FFmpegError):
        return None
    return fmt.components[0].bits if fmt.components else None


def encoder(name: str) -> av.Codec:
    """The FFmpeg encoder ``name``; ``OutputError`` when this FFmpeg build lacks it."""
    try:
        codec = av.Codec(name, "w")
    except (av.FFmpegError, ValueError) as exc:
        raise OutputError(f"video encoder {name!r} is not available in this FFmpeg build "
                          "(try libx264 or libx265)") from exc
    if codec.type != "video":
        raise OutputError(f"{name!r} is not a video encoder")
    return codec


def _describe(fmt: str) -> tuple[int, tuple[int, int]] | None:
    """``(bit depth, (vertical, horizontal) chroma subsampling)`` of a YUV pixel format."""
    try:
        f = av.VideoFormat(fmt)
    except (ValueError, av.FFmpegError):
        return None
    if f.is_rgb or len(f.components) < 3 or f.is_bit_stream:
        return None
    bits = f.components[0].bits
    sub = (round(64 / f.chroma_height(64)), round(64 / f.chroma_width(64)))
    return bits, sub


def choose_pix_fmt(codec: av.Codec, layout: PlaneLayout, requested: str | None,
                   out_size: tuple[int, int], supported: Collection[str] | None = None) -> str:
    """The pixel format to encode with: ``requested``, else the source's bit depth and chroma.

    4:2:0 and 4:2:2 need even dimensions; an odd output width (height) switches to 4:4:4
    (4:4:4 or 4:2:2) so the output stays exactly ``s`` times the input.
    """
    formats = [f.name for f in (codec.video_formats or [])]
    if requested is not None:
        if formats and requested not in formats:
            raise OutputError(f"{codec.name} cannot encode pix_fmt {requested}; it takes "
                              f"{', '.join(formats)}")
        try:
            (vs, hs), (w, h) = subsampling_of(requested), out_size
        except ValueError:  # an encoder that lists no formats (rawvideo) takes any name
            raise OutputError(f"--pix-fmt {requested} is not a pixel format FFmpeg knows "
                              "(e.g. yuv420p, yuv444p, yuv420p10le)") from None
        odd = [what for what, n, sub in (("width", w, hs), ("height", h, vs)) if n % 2 and sub > 1]
        if odd:
            raise OutputError(f"--pix-fmt {requested} needs an even {' and '.join(odd)}, and "
                              f"the output is {w}x{h}; leave --pix-fmt out (vidsr then keeps "
                              "the size with 4:4:4 or 4:2:2) or pick a 4:4:4 format")
        return requested
    vs, hs = layout.subsampling
    w, h = out_size
    if w % 2:
        vs, hs = 1, 1
    elif h % 2:
        vs = 1
    want = (layout.bit_depth, (vs, hs))
    candidates = [f for f in formats if _describe(f) == want and not f.startswith("yuvj")]
    if not formats:
        return PlaneLayout(layout.bit_depth, {(2, 2): "420", (1, 2): "422"}.get((vs, hs), "444"),
                           ).pix_fmt
    if candidates:
        planar = [f for f in candidates if f.startswith("yuv")]
        return (planar or candidates)[0]
    same_depth = [f for f in formats if (_describe(f) or (0,))[0] == layout.bit_depth
                  and (_describe(f) or (0, (9, 9)))[1][1] <= hs]
    if same_depth:
        return same_depth[0]
    kind = f"{layout.bit_depth}-bit {'4:4:4' if hs == 1 else ':'.join(layout.chroma)}"
    keeps = _encoders_for(want, supported, codec.name)
    if (vs, hs) != layout.subsampling:
        # the source's own subsampling would do, but not at this size: no --pix-fmt helps
        odd = " and ".join(what for what, n in (("width", w), ("height", h)) if n % 2)
        raise OutputError(
            f"the output is {w}x{h}: its odd {odd} cannot be subsampled, so it needs "
            f"{'4:4:4' if hs == 1 else '4:2:2'}, which {codec.name} does not encode ("
            f"{', '.join(formats)})" + (f"; pick another --codec ({' or '.join(keeps)} keeps "
                                        "it here)" if keeps else "; pick another container"))
    raise OutputError(f"{codec.name} cannot encode {kind} video ({', '.join(formats)}); "
                      + (f"pick another --codec ({' or '.join(keeps)} keeps it here) or a "
                         "--pix-fmt" if keeps else
                         f"no encoder here keeps {kind} in this container: pick a --pix-fmt "
                         f"(e.g. {'yuv444p' if hs == 1 else 'yuv420p'}) or another container"))


# encoders a refusal may point to, in the order they are suggested
_SUGGESTED = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "ffv1", "prores_ks")


def _encoders_for(want: tuple[int, tuple[int, int]], supported: Collection[str] | None,
                  besides: str) -> list[str]:
    """The encoders of this FFmpeg build that write ``want`` (bit depth, subsampling) and that
    the output container (``supported``: its codec names; None: any) can hold."""
    found = []
    for name in _SUGGESTED:
        try:
            codec = av.Codec(name, "w")
        except (ValueError, av.FFmpegError):
            continue
        if name == besides or (supported is not None and codec.name not in supported
                               and codec.canonical_name not in supported):
            continue
        if any(_describe(f.name) == want for f in codec.video_formats or ()):
            found.append(name)
    return found[:2]


def codec_options(name: str, options: EncodeOptions, suffix: str) -> dict[str, str]:
    """Encoder options for the quality/speed settings (defaults per encoder)."""
    opts: dict[str, str] = {}
    # an encoder without the option would ignore it without a word (mpeg4 and --crf 10)
    if options.crf is not None and name not in CRF_RANGE:
        raise OutputError(f"--crf: {name} has no constant-quality setting vidsr knows (it "
                          f"would be ignored); those with one: {', '.join(CRF_RANGE)}")
    if options.preset is not None and name not in PRESETS:
        raise OutputError(f"--preset: {name} has no presets vidsr knows (it would be "
                          f"ignored); those with them: {', '.join(PRESETS)}")
    if options.crf is not None and name in CRF_RANGE:
        lo, hi = CRF_RANGE[name]
        if not lo <= options.crf <= hi:
            raise OutputError(f"--crf {options.crf:g} is outside {name}'s range, {lo} to {hi} "
                              "(lower is better quality)")
    known = PRESETS.get(name)
    if options.preset is not None and known is not None and \
            options.preset.lower() not in known:
        takes = ", ".join(PRESETS[name]) if PRESETS[name] else "no presets (its speed is set " \
            "for you)"
        raise OutputError(f"--preset {options.preset}: {name} takes {takes}")
    crf = options.crf if options.crf is not None else _CRF_DEFAULT.get(name)
    fast = options.realtime and options.preset is None
    preset = options.preset or (_FASTEST_PRESET if fast else _PRESET_DEFAULT).get(name)
    if name in NVENC:
        if crf is not None:
            opts.update(rc="vbr", cq=f"{crf:g}")
        opts["preset"] = options.preset or ("p1" if fast else "p4")
        return opts
    if crf is not None:
        opts["crf"] = f"{crf:g}"
    if preset is not None:
        opts["preset"] = preset
    if name == "libx265":
        opts["x265-params"] = "log-level=error"
    elif name == "libvpx-vp9":
        opts.update({"b": "0", "row-mt": "1", "deadline": "realtime" if fast else "good",
                     "cpu-used": "8" if fast else "4"})
    elif name == "libsvtav1" and options.preset is None:
        opts["preset"] = "12" if fast else "8"
    elif name in _QSCALE_DEFAULT:
        # FFmpeg gives these its 200 kb/s default bit rate: 30 dB at 640x480, unwatchable at
        # 4K; a fixed quantizer instead, ffmpeg's -q:v (2 best, 31 worst)
        q = str(_QSCALE_DEFAULT[name])
        opts.update({"flags": "+qscale", "qmin": q, "qmax": q})
    return opts
