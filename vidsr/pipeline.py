"""Upscale a video file: decode -> luma SR + chroma bicubic -> encode, overlapped in threads.

``upscale_video(src, dst, model=...)`` is the library call behind ``vidsr INPUT -o OUTPUT`` and
the GUI's export. Three stages run in their own threads, joined by bounded queues so memory stays
flat over any length of video: the decoder (``vidsr.io.VideoReader``), the SR stage
(``vidsr.engine.Engine``, which on CUDA overlaps upload, compute and download itself) and the
encoder/muxer (``vidsr.io.VideoWriter``). The output goes to a temporary file beside the target
and is renamed only on success; a cancel event or Ctrl-C stops every stage within a fraction of a
second and removes the partial file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .api import resolve_spec
from .engine import Engine
from .errors import Cancelled, InputError, OutputError
from .io import EncodeOptions, VideoFrame, VideoReader, VideoWriter
from .paths import check_output, partial_path
from .pipeline_stages import END, StageRunner
from .signals import stop_signals_held

log = logging.getLogger(__name__)

# Containers vidsr writes by default; anything else gets an .mkv output when -o is omitted.
_KEEP_SUFFIX = {".mp4", ".mkv", ".mov", ".m4v", ".webm"}


@dataclass(frozen=True)
class Progress:
    """Where a run stands: frames written, the expected total (may be None), speed and ETA."""

    frames: int
    total: int | None
    fps: float
    eta: float | None  # seconds
    elapsed: float


@dataclass(frozen=True)
class RunSummary:
    """What a run did and where its time went.

    ``decode_s`` / ``sr_s`` / ``encode_s`` are the seconds each stage spent working (not
    waiting on a queue); the stage with the most is the one that ``bound`` the run's speed.
    """

    src: str
    dst: str
    model: str
    device: str
    frames: int
    seconds: float
    fps: float
    decode_s: float
    sr_s: float
    encode_s: float
    bound: str
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    codec: str
    pix_fmt: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def lines(self, notes: bool = True) -> list[str]:
        """A short human-readable report (what the CLI prints at the end, without the
        ``notes``, which the library logs as warnings when they arise)."""
        (w, h), (ow, oh) = self.input_size, self.output_size
        out = [f"{self.src} ({w}x{h}) -> {self.dst} ({ow}x{oh}, {self.codec} {self.pix_fmt})",
               f"{self.frames} frames in {self.seconds:.2f} s ({self.fps:.1f} fps) with "
               f"{self.model} on {self.device}",
               "stage busy time: " + ", ".join(
                   f"{name} {sec:.2f} s ({1000 * sec / max(self.frames, 1):.1f} ms/frame)"
                   for name, sec in (("decode", self.decode_s), ("sr", self.sr_s),
                                     ("encode", self.encode_s)))
               + f"; bound by {self.bound}"]
        if notes:
            out.extend(self.notes)
        return out


def default_output(src: str | Path, model_name: str) -> Path:
    """``<stem>_<model>.<ext>`` beside the input (``.mkv`` for containers vidsr doesn't write)."""
    src = Path(src)
    suffix = src.suffix.lower() if src.suffix.lower() in _KEEP_SUFFIX else ".mkv"
    return src.with_name(f"{src.stem}_{model_name}{suffix}")


def check_video_output(src: str | Path | None, dst: str | Path, overwrite: bool = False) -> None:
    """Raise ``OutputError`` unless ``upscale_video`` can write ``dst`` from ``src``: a container
    vidsr writes, then ``check_output``'s checks (the GUI's export dialog asks this before it
    closes, so a bad name is refused while it can still be changed). ``src`` is None for a
    source that is no file (``vidsr webcam``'s camera)."""
    src, dst = (None if src is None else Path(src)), Path(dst)
    if dst.suffix.lower() not in _KEEP_SUFFIX and not dst.is_dir():
        raise OutputError(f"cannot write {dst.name}: vidsr writes "
                          f"{', '.join(sorted(_KEEP_SUFFIX))} files")
    check_output(dst, overwrite=overwrite, src=src)


def _model_name(model: str | Path | nn.Module | Engine) -> str:
    if isinstance(model, Engine):
        return model.name
    if isinstance(model, nn.Module):
        return model.spec.name
    return resolve_spec(model).name


# On CPU, inputs of at least this many frames get a background torch.compile after
# COMPILE_AFTER frames: compiling costs tens of seconds of CPU, which only a long run wins back.
LONG_INPUT_FRAMES = 1500
COMPILE_AFTER = 30


def _engine(model: str | Path | nn.Module | Engine, device: str, fp16: bool | None,
            tile: int | None, threads: int | None, frames: int | None) -> Engine:
    if isinstance(model, Engine):
        return model
    compile_after = COMPILE_AFTER if (frames or 0) >= LONG_INPUT_FRAMES else None
    return Engine(model, device=device, fp16=fp16, tile=tile, threads=threads,
                  compile_after=compile_after)


def upscale_video(src: str | Path, dst: str | Path | None = None, *,
                  model: str | Path | nn.Module | Engine = "ecbsr-x2", device: str = "auto",
                  options: EncodeOptions | None = None, overwrite: bool = False,
                  start: float | None = None, duration: float | None = None,
                  progress: Callable[[Progress], None] | None = None,
                  cancel: threading.Event | None = None, fp16: bool | None = None,
                  tile: int | None = None, threads: int | None = None,
                  queue_size: int = 4) -> RunSummary:
    """Upscale ``src`` into ``dst`` (default: ``default_output``) and return a ``RunSummary``.

    ``model``: a name/alias/weights file, a module from ``load_model`` or an ``Engine``
    (``device``, ``fp16``, ``tile`` and ``threads`` configure the engine built for the first
    three; ``threads`` sets torch's CPU thread count process-wide).
    ``start``/``duration`` (seconds) cut a section (timestamps then start near 0).
    ``progress`` is called from the calling thread about five times a second; setting
    ``cancel`` stops the run (``Cancelled`` is raised, no output is left). Raises
    ``InputError`` / ``OutputError`` / ``ModelNotFoundError`` for bad input, output or model.
    """
    src = Path(src)
    with VideoReader(src, start=start, duration=duration, passthrough=True) as reader:
        dst = Path(dst) if dst is not None else default_output(src, _model_name(model))
        check_video_output(src, dst, overwrite)
        engine = _engine(model, device, fp16, tile, threads, reader.info.frames)
        tmp = partial_path(dst)
        try:
            tmp.open("wb").close()
        except OSError as exc:
            raise OutputError(f"cannot create a file in {dst.parent}: "
                              f"{exc.strerror or exc}") from exc
        try:
            writer = VideoWriter(tmp, reader.info, engine.scale, options, reader.streams,
                                 container_metadata=reader.container_metadata,
                                 suffix=dst.suffix, samples=reader.sample_packets,
                                 name=dst.name, covers=reader.covers,
                                 chapters=reader.chapters)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        runner = StageRunner(queue_size)
        try:
            summary = _run(reader, engine, writer, runner, src, dst, progress, cancel)
        except BaseException:
            with stop_signals_held():  # a second Ctrl-C must not leave the partial file
                try:
                    runner.stop()
                    writer.abort()
                finally:
                    tmp.unlink(missing_ok=True)
            runner.join()  # a compute stage finishes its frame; no thread outlives the call
            raise
    tmp.replace(dst)
    if engine is not model:
        engine.close()  # the engine was ours: no band thread or compile outlives the call
    return summary


def _run(reader: VideoReader, engine: Engine, writer: VideoWriter, runner: StageRunner,
         src: Path, dst: Path, progress: Callable[[Progress], None] | None,
         cancel: threading.Event | None) -> RunSummary:
    info = reader.info
    siting, subsampling, bits = info.chroma_location, info.layout.subsampling, info.bit_depth
    out_siting = writer.chroma_siting  # by the encoded layout (an odd height: 4:2:0 -> 4:2:2)
    # CUDA overlaps upload, compute and download of 3 frames through submit/collect; on CPU
    # submit computes the frame at once, and its queue is the engine's, shared with any other
    # thread submitting to it (two upscale_video calls given one Engine swapped frames).
    overlap = engine.device.type == "cuda"
    depth = 3

    def sr(items: Any, emit: Callable[[Any], None], busy: list[float]) -> None:
        in_flight: list[Any] = []
        for item in items:
            if item is END:
                break
            if not isinstance(item, VideoFrame):  # a packet to copy: pass it on
                emit(item)
                continue
            t0 = time.perf_counter()
            if not overlap:  # CPU: one call, so an Engine shared by other threads stays safe
                planes = engine.upscale_frame(item.y, item.u, item.v, bit_depth=bits,
                                              siting=siting, subsampling=subsampling,
                                              out_siting=out_siting)
                busy[0] += time.perf_counter() - t0
                emit((item.pts, planes))
                continue
            engine.submit(item.y, item.u, item.v, bit_depth=bits, siting=siting,
                          subsampling=subsampling, out_siting=out_siting)
            in_flight.append(item)
            done = []
            while engine.pending() >= depth:
                done.append((in_flight.pop(0), engine.collect()[1]))
            busy[0] += time.perf_counter() - t0
            for frame, planes in done:
                emit((frame.pts, planes))
        t0 = time.perf_counter()
        rest = [(frame, engine.collect()[1]) for frame in list(in_flight)]
        busy[0] += time.perf_counter() - t0
        for frame, planes in rest:
            emit((frame.pts, planes))

    def encode(items: Any, emit: Callable[[Any], None], busy: list[float]) -> None:
        for item in items:
            if item is END:
                break
            t0 = time.perf_counter()
            if isinstance(item, tuple):
                pts, (y, u, v) = item
                writer.write(y, u, v, pts)
                runner.frames_done += 1
            else:
                writer.write_packet(item)
            busy[0] += time.perf_counter() - t0
        t0 = time.perf_counter()
        writer.close()
        busy[0] += time.perf_counter() - t0

    t_start = time.perf_counter()
    runner.start(reader.items(), [sr, encode])
    last = 0.0
    while not runner.wait(0.1):  # the caller stops the runner on any exception
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled; no output was written")
        now = time.perf_counter()
        if progress is not None and now - last >= 0.2:
            last = now
            progress(_progress(runner.frames_done, info.frames, now - t_start))
    runner.raise_error()
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled; no output was written")
    elapsed = time.perf_counter() - t_start
    frames = writer.frames
    if progress is not None:
        progress(Progress(frames, frames, frames / max(elapsed, 1e-9), 0.0, elapsed))
    if frames == 0:
        raise InputError(f"{src}: no frames in the requested range (check --start/--duration)")
    decode_s, sr_s, encode_s = runner.busy
    stages = {"decode": decode_s, "sr": sr_s, "encode": encode_s}
    return RunSummary(
        src=str(src), dst=str(dst), model=engine.name,
        device=f"{engine.device.type} ({getattr(engine, 'backend', 'eager')})", frames=frames,
        seconds=elapsed, fps=frames / max(elapsed, 1e-9), decode_s=decode_s, sr_s=sr_s,
        encode_s=encode_s, bound=max(stages, key=stages.__getitem__),
        input_size=(info.width, info.height), output_size=(writer.width, writer.height),
        codec=writer.codec, pix_fmt=writer.pix_fmt, notes=tuple(reader.notes + writer.notes))


def _progress(done: int, total: int | None, elapsed: float) -> Progress:
    fps = done / elapsed if elapsed > 0 else 0.0
    eta = (max(total - done, 0) / fps) if total and fps > 0 else None
    return Progress(done, total, fps, eta, elapsed)


__all__ = ["EncodeOptions", "Progress", "RunSummary", "default_output", "partial_path",
           "upscale_video"]
