"""What happens to the source's non-video streams: copy, re-encode (audio) or drop.

A stream is copied when the output container lists its codec *and* a trial mux of its first
packets into an in-memory container of the same format succeeds: FFmpeg's muxers refuse some
combinations only when writing (FLAC or Opus in MOV, PCM with an unlabelled layout in MP4), and
finding out mid-run would waste the whole upscale.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.logging

from .encoders import CONTAINER_AUDIO
from .probe import ATTACHED_PIC, codec_name, open_media

log = logging.getLogger(__name__)

# Tags muxers write themselves; copying them would describe the source file, not ours.
_SKIP_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration"}

_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1",
            8: "7.1"}
SampleReader = Callable[[int], list[Any]]  # stream index -> its first few packets


def tags_to_copy(metadata: dict[str, str]) -> dict[str, str]:
    """Container/stream tags worth copying (not the ones muxers write themselves)."""
    return {k: v for k, v in metadata.items() if k.lower() not in _SKIP_TAGS
            and not k.upper().startswith("DURATION") and not k.startswith("_STATISTICS")
            and k.upper() not in ("NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "BPS")}


def stream_tags(metadata: dict[str, str]) -> dict[str, str]:
    """Stream tags to copy; MP4's ``name`` (a track title) becomes ``title``."""
    tags = tags_to_copy(metadata)
    if "name" in tags and "title" not in tags:
        tags["title"] = tags.pop("name")
    return tags


def encoder_rate(codec: str, rate: int) -> int:
    """``rate`` where the encoder takes it, else the lowest rate it takes above it (its highest
    if none is): Opus, for one, only runs at 48, 24, 16, 12 and 8 kHz, so 44.1 kHz goes to 48."""
    rates = av.Codec(codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    above = [r for r in rates if r > rate]
    return min(above) if above else max(rates)


class AudioReencoder:
    """Decode one audio stream and encode it with a codec the container can hold.

    Timing follows the source: the first sample keeps its start time (audio that starts after
    the video still does), and a gap in the source's timestamps longer than ``GAP`` seconds is
    filled with silence, so the audio after it stays in sync; overlaps are played through.
    """

    GAP = 0.01

    def __init__(self, out: Any, src: Any, codec: str) -> None:
        cc = src.codec_context
        self.rate = encoder_rate(codec, cc.sample_rate or 48000)
        if cc.sample_rate and self.rate != cc.sample_rate:
            log.info("audio stream #%d: resampled from %d Hz to %d Hz for %s", src.index,
                     cc.sample_rate, self.rate, codec)
        self.stream = out.add_stream(codec, rate=self.rate)
        channels = cc.layout.nb_channels if cc.layout else 2
        self.stream.layout = _LAYOUTS.get(channels, "stereo")  # the source may be unlabelled
        if codec in LOSSLESS_AUDIO.values():
            # a lossless copy keeps the source's bits: 8- and 16-bit samples as 16, deeper
            # ones (24-bit, decoded as 32) as 32; ALAC and FLAC keep 24 of them
            wide = cc.format is not None and cc.format.bits > 16
            formats = [f.name for f in av.Codec(codec, "w").audio_formats]
            self.stream.format = next(
                (f for f in formats if f.startswith("s32" if wide else "s16")), formats[0])
        self.out = out
        enc = self.stream.codec_context
        self.resampler = av.AudioResampler(format=enc.format, layout=enc.layout,
                                           rate=enc.sample_rate, frame_size=enc.frame_size or None)
        self.time_base = Fraction(1, self.rate)
        self.next_in: float | None = None  # where the next source sample belongs, in seconds
        self.next_out: int | None = None  # the next encoded sample's pts, in 1 / rate

    def write(self, packet: Any) -> None:
        """Decode a source packet and encode what it holds."""
        for frame in packet.decode():
            if frame.pts is not None and frame.time_base and frame.sample_rate:
                start = float(frame.pts * frame.time_base)
                if self.next_in is None:
                    self.next_in = start
                    self.next_out = max(0, round(start * self.rate))
                elif start - self.next_in > self.GAP:
                    self._encode(self.resampler.resample(self._silence(frame, start)))
                    self.next_in = start
            if self.next_out is None:  # no timestamps at all: from zero, back to back
                self.next_in, self.next_out = 0.0, 0
            if frame.sample_rate and self.next_in is not None:
                self.next_in += frame.samples / frame.sample_rate
            frame.pts = None
            self._encode(self.resampler.resample(frame))

    def _silence(self, like: Any, until: float) -> Any:
        """A silent frame in ``like``'s format from ``next_in`` to ``until``."""
        assert self.next_in is not None
        gap = av.AudioFrame(format=like.format.name, layout=like.layout.name,
                            samples=round((until - self.next_in) * like.sample_rate))
        gap.sample_rate = like.sample_rate
        zero = 0x80 if like.format.name in ("u8", "u8p") else 0  # unsigned 8-bit: 128 is silence
        for plane in gap.planes:
            plane.update(bytes([zero]) * plane.buffer_size)
        return gap

    def _encode(self, frames: list[Any]) -> None:
        for frame in frames:
            assert self.next_out is not None
            frame.pts, frame.time_base = self.next_out, self.time_base
            self.next_out += frame.samples
            for p in self.stream.encode(frame):
                self.out.mux(p)

    def flush(self) -> None:
        """Drain the resampler and the encoder."""
        if self.next_out is not None:
            self._encode(self.resampler.resample(None))
        for p in self.stream.encode(None):
            self.out.mux(p)


# lossless audio a container refuses (FLAC, WavPack, TTA, TrueHD in .mov; WavPack, TTA in
# .mp4) is re-encoded losslessly to these: ALAC is what QuickTime plays, FLAC what browsers
# play from MP4. WebM holds only Opus and Vorbis.
LOSSLESS_AUDIO = {".mp4": "flac", ".m4v": "flac", ".mov": "alac"}


def is_lossless(cc: Any) -> bool:
    """Whether an audio stream's codec is always lossless with integer samples (FLAC, PCM,
    ALAC, TrueHD; not float PCM, which ALAC and FLAC cannot hold, and not WavPack or DTS,
    which may be lossy)."""
    if cc is None or cc.codec is None or not cc.codec.lossless or cc.codec.lossy:
        return False
    return cc.format is None or not cc.format.name.startswith(("flt", "dbl"))


# text subtitles, by output container: the codec a text subtitle stream is converted to when
# the container cannot hold its own (MP4's mov_text in Matroska, SubRip in MP4)
CONTAINER_TEXT_SUBTITLES = {".mkv": "subrip", ".mp4": "mov_text", ".m4v": "mov_text",
                            ".mov": "mov_text", ".webm": "webvtt"}
TEXT_SUBTITLES = {"subrip", "srt", "mov_text", "ass", "ssa", "webvtt", "text"}


class SubtitleConverter:
    """Turn one text subtitle stream into another text codec, as ``ffmpeg -c:s`` does: FFmpeg's
    decoder gives each event as ASS text, its encoder for ``codec`` writes that back (bold,
    italic and line breaks survive; positioning and fonts may not). Each event keeps its
    packet's time and duration. A packet that does not decode is skipped with a warning."""

    def __init__(self, out: Any, src: Any, codec: str) -> None:
        self.dec = src.codec_context
        self.dec.open()  # its ASS header (styles) is what the encoder starts from
        # first in a scratch container: an encoder that does not open (an ASS stream without
        # its header) must not leave a stream in ``out``, where the header write then failed
        with ffmpeg_error_log(), av.open(io.BytesIO(), "w", format=out.format.name) as scratch:
            self._add(scratch, src, codec)
        self.stream, self.enc = self._add(out, src, codec)
        self.out, self.label = out, f"subtitle stream #{src.index}"
        self.skipped = 0

    def _add(self, out: Any, src: Any, codec: str) -> tuple[Any, Any]:
        stream = out.add_stream(codec)
        stream.time_base = src.time_base
        enc = stream.codec_context
        enc.time_base = src.time_base
        enc.subtitle_header = self.dec.subtitle_header
        enc.open()  # writes the codec's own header (MP4's tx3g sample description)
        return stream, enc

    def write(self, packet: Any) -> None:
        """Convert one source packet (an event) and mux it."""
        try:
            subs = self.dec.decode2(packet)
            converted = self.enc.encode_subtitle(subs) if subs is not None and subs.rects \
                else None
        except (av.FFmpegError, ValueError) as exc:
            self.skipped += 1
            if self.skipped == 1:
                log.warning("%s: an event that does not convert was left out (%s)", self.label,
                            exc)
            return
        if converted is None:
            return
        converted.stream = self.stream
        converted.time_base = packet.time_base
        converted.pts, converted.dts = packet.pts, packet.pts
        converted.duration = packet.duration
        self.out.mux(converted)

    def flush(self) -> None:
        """Nothing is buffered: each event is muxed as it comes."""


TRANSCODERS = (AudioReencoder, SubtitleConverter)


@contextlib.contextmanager
def ffmpeg_error_log() -> Iterator[None]:
    """FFmpeg's error-level log captured (not printed) for the block, so that an
    ``av.FFmpegError`` raised in it carries the library's own reason (``ffmpeg_reason``)."""
    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture():
            yield
    finally:
        av.logging.set_level(level)


def ffmpeg_reason(exc: BaseException) -> str | None:
    """The library's own message in an error raised under ``ffmpeg_error_log`` (None: none)."""
    text = str(exc)
    return text.split("last error log:")[-1].strip() if "last error log:" in text else None


def unlabelled_layout(src: Any) -> str | None:
    """The usual layout for an audio stream's channel count when the stream names none (PCM in
    Matroska or AVI: "2 channels"), else None. The MP4 muxer refuses PCM without a layout."""
    cc = src.codec_context
    layout = cc.layout if src.type == "audio" and cc is not None else None
    if layout is None or layout.name != f"{layout.nb_channels} channels":
        return None
    return _LAYOUTS.get(layout.nb_channels)


def trial_mux(format_name: str, src: Any, packets: list[Any],
              layout: str | None = None) -> str | None:
    """``None`` when a ``format_name`` container takes ``src``'s packets (its channels labelled
    ``layout`` when given), else why not."""
    try:
        with ffmpeg_error_log(), av.open(io.BytesIO(), "w", format=format_name) as out:
            dst = out.add_stream_from_template(src)
            if layout is not None:
                dst.layout = layout
            for packet in packets:
                packet.stream = dst
                out.mux(packet)
    except (av.FFmpegError, ValueError, TypeError) as exc:
        return ffmpeg_reason(exc) or str(exc)
    return None


def _carry_tags(dst: Any, src: Any) -> None:
    """``src``'s stream tags and disposition (default, comment...) onto the output ``dst``."""
    dst.metadata.update(stream_tags(dict(src.metadata)))
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        dst.disposition = src.disposition


@dataclass
class CopyPlan:
    """Where a source stream's packets go (an output stream, a re-encoder, or nowhere)."""

    target: Any = None
    note: str | None = None


# Cover art: a picture in a stream of its own (MP4's covr atom, a Matroska image attachment),
# which FFmpeg hands over once, ahead of every other packet. MP4's muxer writes JPEG, PNG and
# BMP covers; Matroska keeps any image as an attachment; MOV's and WebM's muxers keep none.
_COVER_MIME = {"mjpeg": "image/jpeg", "png": "image/png", "bmp": "image/bmp",
               "gif": "image/gif", "webp": "image/webp", "tiff": "image/tiff"}
_MP4_COVERS = {"mjpeg", "png", "bmp"}
_COVER_EXT = {"mjpeg": "jpg", "tiff": "tif"}


@dataclass(frozen=True)
class CoverArt:
    """A picture attached to the source (cover art): its stream and its encoded bytes."""

    stream: Any  # the source's attached-picture stream (a template for the output's)
    data: bytes

    @property
    def codec(self) -> str:
        return codec_name(self.stream)

    @property
    def label(self) -> str:
        return f"the cover art (stream #{self.stream.index}, {self.codec})"

    @property
    def mimetype(self) -> str:
        return self.stream.metadata.get("mimetype") or _COVER_MIME.get(self.codec,
                                                                         "application/octet-stream")

    @property
    def filename(self) -> str:
        return self.stream.metadata.get("filename") or \
            f"cover.{_COVER_EXT.get(self.codec, self.codec)}"


def read_covers(path: Path, streams: list[Any]) -> list[CoverArt]:
    """The pictures of ``streams`` (the attached-picture streams of the file at ``path``), read
    from a second opening of the file: FFmpeg queues them ahead of the first packet, so this
    reads no further than the first packet of any other stream."""
    want = {s.index: s for s in streams}
    found: dict[int, bytes] = {}
    if not want:
        return []
    with open_media(path) as probe:
        try:
            for packet in probe.demux():
                if packet.stream.index not in want:
                    break
                if packet.size and packet.stream.index not in found:
                    found[packet.stream.index] = bytes(packet)
                if len(found) == len(want):
                    break
        except av.FFmpegError as exc:  # damaged: the pictures read so far (the reader notes
            log.debug("reading the cover art of %s: %s", path, exc)  # the others)
    return [CoverArt(s, found[i]) for i, s in want.items() if i in found]


def plan_cover(out: Any, cover: CoverArt, suffix: str) -> tuple[Any, str | None]:
    """Add ``cover`` to ``out``: an attached-picture stream whose one packet the caller muxes
    (MP4), an attachment written with the header (Matroska), or nothing. Returns the stream
    to mux into (None when there is none) and a note when the cover is not kept."""
    if suffix == ".mkv":
        out.add_attachment(cover.filename, cover.mimetype, cover.data)
        return None, None
    if suffix in (".mp4", ".m4v") and cover.codec in _MP4_COVERS:
        # tried on a scratch muxer first: a picture FFmpeg could not read (a PNG in a
        # Matroska attachment labelled image/jpeg) has no size, and the MP4 muxer then refused
        # the whole header, blamed on the video ("dimensions not set")
        refusal = trial_mux(out.format.name, cover.stream, [av.Packet(cover.data)])
        if refusal is not None:
            return None, f"{cover.label} is not copied: the {suffix} muxer refuses it " \
                         f"({refusal.rstrip('.')}); a .mkv output keeps it"
        dst = out.add_stream_from_template(cover.stream)
        dst.disposition = ATTACHED_PIC
        return dst, None
    if suffix in (".mp4", ".m4v"):
        return None, f"{cover.label} is not copied: a {suffix} file holds JPEG, PNG or BMP " \
                     "covers (a .mkv output keeps it)"
    keeps = ".mp4 or .mkv" if cover.codec in _MP4_COVERS else ".mkv"
    return None, f"{cover.label} is not copied: a {suffix} file cannot hold it (a {keeps} " \
                 "output keeps it)"


def plan_copy(out: Any, src: Any, suffix: str, supported: set[str],
              samples: SampleReader | None) -> CopyPlan:
    """Add ``src`` to ``out`` as a copy, a re-encode or not at all; says why when not copied."""
    cc = src.codec_context
    name = cc.codec.canonical_name if cc is not None else None
    label = f"{src.type} stream #{src.index} ({name or 'no codec'})"
    if src.type == "data" and any(k.lower() == "timecode" for k in src.metadata):
        # a QuickTime timecode track: the muxer rebuilds it (MOV/MP4) or keeps it as a tag
        # (Matroska) from the video stream's timecode tag, which is copied
        log.debug("%s: kept as the video stream's timecode tag", label)
        return CopyPlan()
    why = f"a {suffix} file cannot hold it"
    copyable = listed(cc.codec, supported) if name is not None else (
        src.type == "attachment" and suffix == ".mkv")
    layout = None  # a channel layout the copy is labelled with (the source names none)
    if copyable and samples is not None and src.type != "attachment":
        refusal = trial_mux(out.format.name, src, samples(src.index))
        guess = unlabelled_layout(src) if refusal is not None else None
        if guess is not None and trial_mux(out.format.name, src, samples(src.index),
                                           layout=guess) is None:
            # copied bit-exact with its channels named as FFmpeg would guess them, rather
            # than re-encoded (lossy) because the muxer wants a name
            refusal, layout = None, guess
            log.info("%s: copied with its %d channels labelled %s", label,
                     cc.layout.nb_channels, guess)
        if refusal is not None:
            copyable, why = False, f"the {suffix} muxer refuses it ({refusal.rstrip('.')})"
    if copyable:
        dst = out.add_stream_from_template(src)
        if layout is not None:
            dst.layout = layout
        _carry_tags(dst, src)
        return CopyPlan(dst)
    target = CONTAINER_AUDIO.get(suffix, "aac")
    if src.type == "audio" and is_lossless(cc) and LOSSLESS_AUDIO.get(suffix) in supported:
        target = LOSSLESS_AUDIO[suffix]  # lossless audio stays lossless where it can
    if src.type == "audio" and target in supported:
        enc = AudioReencoder(out, src, target)
        _carry_tags(enc.stream, src)
        return CopyPlan(enc, f"{label}: {why}; re-encoding it to {target}")
    text = CONTAINER_TEXT_SUBTITLES.get(suffix)
    if src.type == "subtitle" and name in TEXT_SUBTITLES and text is not None and \
            listed(av.Codec(text, "w"), supported):
        try:
            conv = SubtitleConverter(out, src, text)
        except (av.FFmpegError, ValueError) as exc:
            reason = ffmpeg_reason(exc) or ("its stream has no ASS header" if name in ("ass", "ssa")
                                            and not cc.subtitle_header else
                                            getattr(exc, "strerror", None) or str(exc))
            why += f", and it does not convert to {text} ({reason})"
        else:
            _carry_tags(conv.stream, src)
            return CopyPlan(conv, f"{label}: {why}; converted to {text} (text, bold and "
                                  "italic kept; positions and fonts may not be)")
    holders = containers_for(cc.codec, suffix) if name is not None else []
    hint = f" (a {' or '.join(holders)} output keeps it)" if holders else ""
    return CopyPlan(None, f"{label}: {why}; dropped{hint}")


_FORMATS = {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov", ".webm": "webm"}


def listed(codec: Any, supported: set[str]) -> bool:
    """Whether a muxer's ``supported`` codec names include ``codec`` (an ``av.Codec``). The
    list holds FFmpeg's codec *implementation* names, which are not always the format's name:
    DTS is ``dca`` there (canonical ``dts``), Blu-ray subtitles ``pgssub``
    (``hdmv_pgs_subtitle``), DVD subtitles ``dvdsub``, so both names are looked up."""
    return codec.name in supported or codec.canonical_name in supported


def containers_for(codec: Any, suffix: str) -> list[str]:
    """The other output containers vidsr writes whose muxer lists ``codec``."""
    found = []
    for ext, fmt in _FORMATS.items():
        if ext == suffix:
            continue
        with av.open(io.BytesIO(), "w", format=fmt) as out:
            if listed(codec, out.supported_codecs):
                found.append(ext)
    return found
