"""``vidsr INPUT -o OUTPUT``: in-process CLI runs, one-line errors that leave no files, Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from media import (
    corrupt,
    make_audio_only,
    make_clip,
    make_not_media,
    make_zero_frames,
    read_video,
    truncate,
)

from vidsr.cli.main import main
from vidsr.pipeline import partial_path

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_default_output_name_and_summary(tmp_path, capsys):
    src = make_clip(tmp_path / "clip.mp4", frames=5, audio_tracks=1)
    assert main([str(src), "--model", "bicubic-x2", "--device", "cpu", "-q"]) == 0
    out = tmp_path / "clip_bicubic-x2.mp4"
    info = read_video(out)
    assert (info["width"], info["height"], len(info["pts"])) == (128, 96, 5)
    printed = capsys.readouterr().out
    assert "5 frames" in printed and "bound by" in printed and str(out) in printed


def test_a_still_image_is_upscaled_as_an_image(tmp_path, capsys):
    # 'vidsr photo.png' wrote a one-frame photo_<model>.mkv, and '-o big.png' was refused
    import cv2

    import vidsr

    rgb = np.random.default_rng(3).integers(0, 256, (20, 30, 3), np.uint8)
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])
    assert main([str(photo), "--model", "esr-max-x2"]) == 0
    out = tmp_path / "photo_esr-max-k7c4-x2.png"
    assert out.is_file() and "->" in capsys.readouterr().out
    want = vidsr.upscale_image(cv2.imread(str(photo))[..., ::-1], vidsr.load_model("esr-max-x2"))
    assert np.array_equal(cv2.imread(str(out))[..., ::-1], want)  # what 'vidsr image' writes
    assert main([str(photo), "-o", str(tmp_path / "big.webp"), "--model", "esr-max-x2"]) == 0
    assert cv2.imread(str(tmp_path / "big.webp")).shape == (40, 60, 3)
    assert main([str(photo), "--model", "esr-max-x2"]) == 1  # refused as the image command does
    assert "exists" in capsys.readouterr().err
    # a video asked for, by its name or by a video option, is still a video
    assert main([str(photo), "-o", str(tmp_path / "one.mkv"), "--model", "esr-max-x2",
                 "-q"]) == 0
    assert main([str(photo), "--crf", "20", "--model", "esr-max-x2", "-q"]) == 0
    for name in ("one.mkv", "photo_esr-max-k7c4-x2.mkv"):
        info = read_video(tmp_path / name)
        assert (info["width"], info["height"], len(info["pts"])) == (60, 40, 1)
    assert main([str(make_clip(tmp_path / "clip.mp4", frames=2)), "--model", "esr-max-x2",
                 "-q"]) == 0
    assert (tmp_path / "clip_esr-max-k7c4-x2.mp4").is_file()  # a video is untouched by this


def test_progress_bar_shows_frames_rate_and_eta(tmp_path, capsys):
    """The bar on stderr counts frames against the total with a rate and an ETA; -q hides it."""
    import re

    src = make_clip(tmp_path / "clip.mp4", frames=12)
    assert main([str(src), "-o", str(tmp_path / "a.mp4"), "--model", "bicubic-x2",
                 "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "upscaling" in err and "12/12" in err, err
    # tqdm's "[elapsed<remaining, rate]": the ETA and frames per second
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d, +[\d.]+(frame/s|s/frame)\]", err), err
    assert main([str(src), "-o", str(tmp_path / "b.mp4"), "--model", "bicubic-x2",
                 "--device", "cpu", "-q"]) == 0
    assert "upscaling" not in capsys.readouterr().err

def test_options_reach_the_encoder(tmp_path, capsys):
    src = make_clip(tmp_path / "clip.mp4", frames=4)
    dst = tmp_path / "o.mkv"
    rc = main(["upscale", str(src), "-o", str(dst), "-m", "bicubic-x2", "--codec", "libx265",
               "--crf", "30", "--preset", "ultrafast", "--pix-fmt", "yuv444p", "--start", "0.05",
               "--duration", "0:00.1", "-q"])
    assert rc == 0
    info = read_video(dst)
    # the cut [0.05, 0.15) s holds the frames at 2/24 and 3/24 s
    assert (info["codec"], info["pix_fmt"], len(info["pts"])) == ("hevc", "yuv444p", 2)



def test_crf_and_preset_reach_libx264(tmp_path):
    """libx264 writes its settings into the stream (an SEI message): the CRF and the preset's
    entropy coder are the ones asked for, and a lower CRF spends more bits."""
    src = make_clip(tmp_path / "clip.mp4", frames=6)
    sizes = {}
    for crf, preset, cabac in ((12, "ultrafast", b"cabac=0"), (40, "medium", b"cabac=1")):
        dst = tmp_path / f"crf{crf}.mp4"
        assert main([str(src), "-o", str(dst), "-m", "bicubic-x2", "--crf", str(crf),
                     "--preset", preset, "-q"]) == 0
        data = dst.read_bytes()
        assert f"crf={crf}.0".encode() in data and cabac in data
        sizes[crf] = len(data)
    assert sizes[12] > 1.5 * sizes[40]


def test_overwrite_fp32_and_auto_device(tmp_path, capsys):
    """--overwrite replaces an existing output; --device auto picks the CPU without CUDA;
    --fp32 keeps ECBSR in fp32 where the CPU would run it in bf16 by default."""
    from vidsr.engine.cpu import bf16_supported

    src = make_clip(tmp_path / "clip.mp4", frames=3)
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"old")
    printed = {}
    for flags in ([], ["--fp32"]):
        assert main([str(src), "-o", str(dst), "-m", "ecbsr-m4c16-x2", "--device", "auto",
                     "--overwrite", "-q", *flags]) == 0
        info = read_video(dst)
        assert (info["width"], info["height"], len(info["pts"])) == (128, 96, 3)
        printed[bool(flags)] = capsys.readouterr().out
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert all(f"with ecbsr-m4c16-x2 on {device}" in out for out in printed.values())
    if device == "cpu":
        assert "bfloat16" not in printed[True]
        assert ("bfloat16" in printed[False]) == bf16_supported()


def _unwritable(tmp_path: Path) -> Path:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    return folder / "out.mp4"


CASES = {
    "missing": lambda t: t / "nope.mp4",
    "directory": lambda t: t,
    "not_media": lambda t: make_not_media(t / "x.mp4"),
    "audio_only": lambda t: make_audio_only(t / "a.m4a"),
    "zero_frames": lambda t: make_zero_frames(t / "z.mkv"),
    "truncated": lambda t: truncate(make_clip(t / "t.mkv", frames=40), t / "tt.mkv", 0.6),
    "corrupt": lambda t: corrupt(make_clip(t / "c.mkv", frames=40), t / "cc.mkv"),
    "pix_fmt": lambda t: make_clip(t / "p.mkv", codec="ffv1", pix_fmt="yuv444p16le", frames=2),
    "interlaced": lambda t: make_clip(t / "i.mp4", frames=4,
                                      options={"x264-params": "interlaced=1:tff=1"}),
    # a cut-off MP4 header: the video stream's codec parameters lost (was a traceback)
    "header_cut": lambda t: truncate(make_clip(t / "h.mp4", frames=72, audio_tracks=1),
                                     t / "hh.mp4", 0.95),
}


def _fifo(t: Path) -> Path:
    os.mkfifo(t / "pipe.ts")  # a pipe lost frames silently (read twice) or blocked for ever
    return t / "pipe.ts"



@pytest.mark.parametrize("case", [*CASES, "no_folder", "folder_is_file", "unwritable",
                                  "proc", "exists", "bad_model", "bad_suffix", "no_cuda",
                                  "start_past_end", "crf_range", "crf_nan", "bad_preset",
                                  "odd_pix_fmt", "unreadable", "pipe", "partial_name",
                                  "crf_ignored", "bogus_pix_fmt", "yuvj_limited"])
def test_bad_input_one_line_no_output(tmp_path, capsys, case):
    work = tmp_path / "w"
    work.mkdir()
    src = CASES[case](work) if case in CASES else make_clip(work / "ok.mp4", frames=3)
    dst = tmp_path / "out.mp4"
    args = ["-m", "bicubic-x2"]
    if case == "no_folder":
        dst = tmp_path / "missing" / "out.mp4"
    elif case == "folder_is_file":
        dst = src / "out.mp4"
    elif case == "unwritable":
        if os.geteuid() == 0:
            pytest.skip("root can write into a read-only folder")
        dst = _unwritable(tmp_path)
    elif case == "proc":  # a folder nobody, root included, can create files in
        if not Path("/proc/self").is_dir():
            pytest.skip("needs Linux /proc")
        dst = Path("/proc/vidsr-test-out.mp4")
    elif case == "exists":
        dst.write_bytes(b"old")
    elif case == "bad_model":
        args = ["-m", "no-such-model-x2"]
    elif case == "bad_suffix":
        dst = tmp_path / "out.xyz"
    elif case == "start_past_end":
        args += ["--start", "100"]
    elif case == "crf_range":  # x264 stops at 51 (it took 100 without a word)
        args += ["--crf", "60"]
    elif case == "crf_nan":
        args += ["--crf", "nan"]
    elif case == "bad_preset":  # x264 printed its own line before vidsr's
        args += ["--preset", "warpspeed"]
    elif case == "odd_pix_fmt":  # 33x17 x3 is 99x51, which 4:2:0 cannot hold
        src = make_clip(work / "odd.mkv", width=33, height=17, codec="ffv1", frames=2)
        args = ["-m", "bicubic-x3", "--pix-fmt", "yuv420p"]
    elif case == "crf_ignored":  # mpeg4 has no crf: it was dropped without a word
        args += ["--codec", "mpeg4", "--crf", "10"]
    elif case == "bogus_pix_fmt":  # rawvideo lists no formats: a ValueError traceback
        dst = tmp_path / "out.mkv"
        args += ["--codec", "rawvideo", "--pix-fmt", "bogus"]
    elif case == "yuvj_limited":  # kept the limited codes, tagged full range
        args += ["--pix-fmt", "yuvj420p"]
    elif case == "pipe":
        src = _fifo(work)
    elif case == "partial_name":  # an earlier run's leftover name: the input was removed
        src = (tmp_path / "out.mp4").with_name(partial_path(dst).name)
        make_clip(src, frames=3)
    elif case == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file")
        src.chmod(0)
    elif case == "no_cuda":
        if torch.cuda.is_available():
            pytest.skip("checks the error without a GPU")
        args += ["--device", "cuda"]
    before = (src.read_bytes(), src.stat().st_mtime_ns) \
        if src.is_file() and case != "unreadable" else None
    rc = main([str(src), "-o", str(dst), *args])
    err = capsys.readouterr().err
    assert rc == 1
    errors = [line for line in err.splitlines() if "vidsr: error:" in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    said = {"crf_range": "outside libx264's range, 0 to 51", "crf_nan": "--crf must be",
            "bad_preset": "libx264 takes ultrafast", "odd_pix_fmt": "needs an even width and "
            "height", "unreadable": "permission denied", "pipe": "is a pipe",
            "partial_name": "temporary file", "header_cut": "truncated or corrupt",
            "crf_ignored": "no constant-quality setting", "bogus_pix_fmt": "not a pixel format",
            "yuvj_limited": "is full range (JPEG)"}
    assert said.get(case, "") in errors[0]
    if case == "exists":
        assert dst.read_bytes() == b"old"
    else:
        assert not dst.exists()
    assert case == "partial_name" or not partial_path(dst).exists()
    if before is not None:
        assert (src.read_bytes(), src.stat().st_mtime_ns) == before


@contextlib.contextmanager
def _ctrl_c_as_in_a_terminal() -> Iterator[None]:
    """Start children with SIGINT at its default, so that Python installs its KeyboardInterrupt
    handler in them even where this test run inherited SIGINT ignored (a job started in the
    background by a non-interactive shell, as `cmd &` in a script does): a handled signal is
    reset to the default across exec, an ignored one stays ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("signum", "status", "word"), [
    (signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")])
def test_signal_stops_and_removes_partial(tmp_path, signum, status, word):
    src = make_clip(tmp_path / "long.mp4", frames=300, width=160, height=120)
    dst = tmp_path / "out.mp4"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with _ctrl_c_as_in_a_terminal():
        proc = subprocess.Popen(
            [sys.executable, "-m", "vidsr", str(src), "-o", str(dst), "-m", "ecbsr-m4c16-x2",
             "--device", "cpu", "-q"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not partial_path(dst).exists() and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "finished before it could be interrupted"
        time.sleep(0.3)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, err  # SIGTERM killed it outright, leaving the partial
    assert word in err and len(err.strip().splitlines()) == 1, err
    assert not dst.exists() and not partial_path(dst).exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_while_starting_up_is_one_line(tmp_path):
    # Ctrl-C during the imports (torch takes a second or two) ended in a KeyboardInterrupt
    # traceback from inside an import, and death by the signal
    src = make_clip(tmp_path / "a.mp4", frames=3)
    with _ctrl_c_as_in_a_terminal():
        proc = _start_interrupted_at_startup(src, tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "vidsr: interrupted", err
    assert not (tmp_path / "o.mp4").exists()
    # and the console script's own import (before main's handler exists) leaves torch for later
    check = "import sys, vidsr.cli.main; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", check], cwd=REPO).returncode == 0


def _start_interrupted_at_startup(src: Path, tmp_path: Path) -> subprocess.Popen:
    """The main command with a SIGINT raised 10 ms after the interpreter started."""
    return subprocess.Popen(
        # the handler before the timer: the other way round, a timer that fired first (a
        # loaded machine) killed the child with SIGALRM
        [sys.executable, "-c", "import signal, time, vidsr.cli.main as m; "
         "signal.signal(signal.SIGALRM, lambda *_: signal.raise_signal(signal.SIGINT)); "
         "signal.setitimer(signal.ITIMER_REAL, 0.01); "
         "raise SystemExit(m.main(['" + str(src) + "', '-o', '" + str(tmp_path / "o.mp4")
         + "', '--device', 'cpu']))"],
        cwd=REPO, stderr=subprocess.PIPE, text=True)


def test_output_paths_are_checked_where_the_file_is_written(tmp_path, capsys):
    src = make_clip(tmp_path / "a.mp4", frames=3)
    (tmp_path / "outdir").mkdir()
    for dst, message in ((tmp_path / "outdir", "is a directory; give an output file name"),
                         (tmp_path / "nowhere" / ".." / "o.mp4", "output folder does not exist")):
        assert main([str(src), "-o", str(dst), "--device", "cpu", "-q"]) == 1
        assert message in capsys.readouterr().err
    link = tmp_path / "link.mp4"  # a dangling link is replaced by the output, not followed
    link.symlink_to(tmp_path / "missing-folder" / "x.mp4")
    assert main([str(src), "-o", str(link), "--device", "cpu", "-q"]) == 0
    assert not link.is_symlink() and link.is_file()


def _times(path: Path) -> list[float]:
    info = read_video(path)
    return [float(p * info["time_base"]) for p in info["pts"]]


def test_start_and_duration_count_from_the_first_frame(tmp_path):
    # an MPEG-TS whose video starts at 10 s had no frames in --duration 1 (the window was
    # taken from 0); seeking in MPEG-TS landed on a keyframe past --start and lost frames;
    # a raw H.264 stream could not be read at all (a traceback from its rewind)
    from fractions import Fraction

    late = make_clip(tmp_path / "late.ts", frames=72, time_base=Fraction(1, 90000),
                     pts=[900000 + i * 3750 for i in range(72)], options={"g": "12"})
    plain = make_clip(tmp_path / "plain.ts", frames=72, options={"g": "12"})
    raw = make_clip(tmp_path / "raw.h264", frames=24)
    long_gop = make_clip(tmp_path / "gop.ts", frames=72, options={"g": "24"})
    for src, args, count in [(late, ["--duration", "1"], 24),
                             (late, ["--start", "1", "--duration", "1"], 24),
                             (plain, ["--start", "1", "--duration", "1"], 24),
                             (plain, ["--start", "1.5"], 36),
                             (raw, [], 24),
                             (raw, ["--start", "0.5", "--duration", "0.25"], 6),
                             (long_gop, ["--start", "0.2", "--duration", "0.5"], 12)]:
        dst = tmp_path / f"out-{src.stem}-{len(args)}.mkv"
        dst.unlink(missing_ok=True)
        assert main([str(src), "-o", str(dst), "-m", "bicubic-x2", "-q", *args]) == 0, args
        times = _times(dst)
        assert len(times) == count, (src.name, args, len(times))
        steps = np.diff(times)
        assert np.allclose(steps, steps[0], atol=2e-3), (src.name, args)  # no frame missing
    from vidsr.io.reader import VideoReader

    with VideoReader(long_gop) as reader:  # a seek into the first GOP landed on the second
        for seconds, count in [(0.0, 72), (0.2, 67), (0.9, 50), (1.5, 36)]:
            reader.seek(seconds)
            assert len(list(reader)) == count, seconds


@pytest.mark.parametrize("codec,vfr", [("mpeg2video", False), ("mpeg4", False),
                                       ("mpeg4", True)])
def test_encoders_that_count_frames_keep_the_timestamps(tmp_path, codec, vfr):
    # MPEG-1/2 took the source's time base for a frame rate, MPEG-4 part 2 refused a
    # denominator above 65535 (a raw stream's 1/1200000): neither could start. A VFR source
    # keeps its timestamps in MPEG-4 (its own time base where the encoder takes it).
    from fractions import Fraction

    src = make_clip(tmp_path / "clip.mp4", frames=8, pts=[0, 10, 20, 30, 1000, 2000, 3000, 4000],
                    time_base=Fraction(1, 1000)) if vfr else \
        make_clip(tmp_path / "clip.mp4", frames=6, time_base=Fraction(1, 1200000))
    dst = tmp_path / f"{codec}.mkv"
    assert main([str(src), "-o", str(dst), "-m", "bicubic-x2", "--codec", codec, "-q"]) == 0
    info = read_video(dst)
    assert info["codec"] == codec and (info["width"], info["height"]) == (128, 96)
    assert np.allclose(_times(dst), _times(src), atol=1e-3)


def test_audio_without_packet_durations_keeps_its_last_packet(tmp_path):
    # Matroska packets carry no duration; the MP4 muxer dropped the last ALAC packet
    from media import packets_of

    src = make_clip(tmp_path / "alac.mkv", frames=12, audio_tracks=1, audio_codec="alac")
    dst = tmp_path / "out.mp4"
    assert main([str(src), "-o", str(dst), "-m", "bicubic-x2", "-q"]) == 0
    before, after = packets_of(src, "audio"), packets_of(dst, "audio")
    assert [b for _, b in after[0]] == [b for _, b in before[0]]
