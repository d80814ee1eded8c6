"""``vidsr upscale INPUT -o OUTPUT`` (or just ``vidsr INPUT -o OUTPUT``): upscale a video file."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

from tqdm import tqdm

from ..errors import InputError
from . import check_trained

if TYPE_CHECKING:
    from ..pipeline import Progress


def parse_time(text: str) -> float:
    """Seconds from ``"12.5"``, ``"1:30"`` or ``"01:02:03.5"``."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (seconds or HH:MM:SS)") from exc
    if len(parts) > 3 or any(not math.isfinite(p) or p < 0 for p in parts):
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (seconds or HH:MM:SS)")
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


# options that only mean something for a video: a still image given with one stays a video
_VIDEO_ONLY = ("codec", "crf", "preset", "pix_fmt", "start", "duration", "tile", "threads")
_VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v", ".webm")


def still_image(path: str) -> bool:
    """Whether ``path`` is one still picture (PNG, JPEG, TIFF, ...: FFmpeg's image demuxers),
    not a video, an animated GIF or an APNG."""
    import av

    try:
        with av.open(path) as container:
            name = container.format.name
            return (name == "image2" or name.endswith("_pipe")) and \
                len(container.streams.video) == 1 and not container.streams.audio
    except (av.FFmpegError, OSError, ValueError):
        return False  # the pipeline says what is wrong with it


def run(args: argparse.Namespace) -> int:
    from ..io import EncodeOptions
    from ..paths import extension
    from ..pipeline import upscale_video

    out_ext = extension(args.output) if args.output else None
    if out_ext not in _VIDEO_SUFFIXES and still_image(args.input) and \
            not any(getattr(args, k) is not None for k in _VIDEO_ONLY) and \
            args.device == "auto" and not args.fp32:
        # 'vidsr photo.png' means the picture upscaled, not a one-frame .mkv beside it; an
        # image output (-o big.png) is what 'vidsr image' writes
        from . import cmd_image

        return cmd_image.run(argparse.Namespace(input=args.input, output=args.output,
                                                model=args.model, overwrite=args.overwrite))
    check_trained(args.model)
    if args.crf is not None and not (math.isfinite(args.crf) and args.crf >= 0):
        raise InputError(f"--crf must be a number >= 0, got {args.crf}")
    options = EncodeOptions(codec=args.codec, crf=args.crf, preset=args.preset,
                            pix_fmt=args.pix_fmt)
    bar: tqdm | None = None

    def progress(p: Progress) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None:
            bar = tqdm(total=p.total, unit="frame", dynamic_ncols=True, file=sys.stderr,
                       desc="upscaling")
        if bar.total is not None and p.frames > bar.total:
            bar.total = p.frames
        bar.update(p.frames - bar.n)  # tqdm shows frames/s and the ETA from these updates

    try:
        summary = upscale_video(
            args.input, args.output, model=args.model, device=args.device, options=options,
            overwrite=args.overwrite, start=args.start, duration=args.duration,
            progress=progress, fp16=False if args.fp32 else None, tile=args.tile,
            threads=args.threads)
    finally:
        if bar is not None:
            bar.close()
    for line in summary.lines(notes=False):  # the notes were warnings on stderr already
        print(line)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale", help="upscale a video file (the default command)",
        description="Upscale a video: SR on the luma, bicubic chroma, everything else kept "
                    "(timestamps, audio and subtitle streams, colour tags, rotation).")
    p.add_argument("input", help="video file (a still image is upscaled as 'vidsr image' "
                                  "does, unless -o names a video)")
    p.add_argument("-o", "--output",
                   help="output file (.mp4, .mkv, .mov, .m4v, .webm; default: "
                        "INPUT_<model>.<ext> beside the input)")
    p.add_argument("-m", "--model", default="ecbsr-x2",
                   help="model name, alias or weights file (default ecbsr-x2)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where SR runs (default: CUDA when available)")
    p.add_argument("--fp32", action="store_true",
                   help="full precision (default: fp16 on CUDA; bf16 ECBSR convolutions on "
                   "CPUs with native bf16)")
    p.add_argument("--tile", type=int, default=None,
                   help="process the luma in tiles of at most TILE x TILE input pixels")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for SR (default: PyTorch's choice; 1 helps on a busy "
                        "machine, where decode and encode threads compete)")
    p.add_argument("--codec", default=None,
                   help="video encoder (default: libx264 for 8-bit, libx265 for 10/12-bit; "
                        "libvpx-vp9 / libsvtav1 for .webm; h264_nvenc, hevc_nvenc on NVIDIA)")
    p.add_argument("--crf", type=float, default=None,
                   help="constant-quality level (default 18 for x264, 20 for x265)")
    p.add_argument("--preset", default=None, help="encoder speed preset (default: fast)")
    p.add_argument("--pix-fmt", default=None,
                   help="output pixel format (default: the input's bit depth and chroma)")
    p.add_argument("--start", type=parse_time, default=None,
                   help="start at this time (seconds or HH:MM:SS)")
    p.add_argument("--duration", type=parse_time, default=None,
                   help="upscale this many seconds")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
