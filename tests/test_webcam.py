"""Live upscaling (``vidsr.webcam``) and ``vidsr webcam`` on a file-backed fake camera."""

from __future__ import annotations

import threading
import warnings
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from media import make_clip

from vidsr import webcam
from vidsr.cli.main import main
from vidsr.engine import Engine
from vidsr.errors import InputError, OutputError
from vidsr.metrics import psnr
from vidsr.webcam import (
    FrameSource,
    LiveUpscaler,
    VideoFileSource,
    draw_overlay,
    open_source,
    run_live,
)
from vidsr.webcam_record import Recorder

W, H = 64, 48
FRAMES = 12


@pytest.fixture(autouse=True)
def _quiet_untrained() -> None:
    warnings.filterwarnings("ignore", message="no trained weights")


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "cam.mp4", width=W, height=H, frames=FRAMES, fps=Fraction(24))


def test_file_source_behaves_like_a_camera(clip: Path) -> None:
    with VideoFileSource(clip) as src:
        assert isinstance(src, FrameSource)
        assert src.size == (W, H) and src.fps == pytest.approx(24)
        frames = []
        while (frame := src.read()) is not None:
            frames.append(frame)
    assert len(frames) == FRAMES
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    with open_source(str(clip), (32, 24), loop=True) as src:
        looped = [src.read() for _ in range(FRAMES + 3)]
    assert all(f is not None and f.shape == (24, 32, 3) for f in looped)


def test_live_bicubic_matches_a_plain_upscale(clip: Path) -> None:
    shown = []
    with VideoFileSource(clip) as src:
        stats = run_live(src, LiveUpscaler(Engine("bicubic-x2", device="cpu")),
                         on_frame=shown.append, overlay=False)
    assert stats.frames == len(shown) == FRAMES and stats.fps > 0
    assert [f.index for f in shown] == list(range(FRAMES))
    with VideoFileSource(clip) as src:
        first = src.read()
    frame = shown[0]
    assert frame.bgr.shape == (2 * H, 2 * W, 3)
    y, u, v = frame.planes
    assert y.shape == (2 * H, 2 * W) and u.shape == v.shape == (H, W)
    ref = cv2.resize(first, (2 * W, 2 * H), interpolation=cv2.INTER_CUBIC)
    assert psnr(frame.bgr.astype(float), ref.astype(float), 2) > 28


def test_live_model_sizes_stop_and_overlay(clip: Path) -> None:
    engine = Engine("esr-max-x3", device="cpu")
    shown = []
    with VideoFileSource(clip, loop=True) as src:
        stats = run_live(src, LiveUpscaler(engine), on_frame=shown.append, max_frames=4)
    assert stats.frames == 4 and len(stats.latencies_ms) == 4
    assert shown[-1].bgr.shape == (3 * H, 3 * W, 3)
    cancel = threading.Event()
    with VideoFileSource(clip, loop=True) as src:
        stats = run_live(src, LiveUpscaler(engine), cancel=cancel,
                         on_frame=lambda f: cancel.set() if f.index == 1 else None)
    assert stats.frames == 2
    img = np.zeros((96, 128, 3), np.uint8)
    draw_overlay(img, ["30.0 fps"])
    assert img.max() == 255 and img[60:].max() == 0


def test_a_stream_that_never_answers_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # a server that takes the connection and sends nothing held the open for OpenCV's 30 s
    # (the GUI's window could not close meanwhile)
    import socket
    import time

    monkeypatch.setattr(webcam, "STREAM_TIMEOUT_MS", 1000, raising=False)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held: list[object] = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(4)],
                     daemon=True).start()
    url = f"rtsp://127.0.0.1:{server.getsockname()[1]}/live"
    start = time.monotonic()
    try:
        with pytest.raises(InputError, match="cannot be opened or delivers no frames"):
            webcam.CameraSource(url)
    finally:
        server.close()
    assert time.monotonic() - start < 10


def test_a_missing_camera_lists_the_ones_that_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webcam, "list_cameras", lambda max_index=10: [0, 2])
    with pytest.raises(InputError, match=r"camera 9 cannot be opened.*: 0, 2"):
        webcam.CameraSource(9)
    assert webcam.parse_size("640x480") == (640, 480)
    with pytest.raises(InputError):
        webcam.parse_size("640")


def test_camera_names_and_a_stream_url(clip: Path, capfd: pytest.CaptureFixture) -> None:
    assert [webcam.is_camera(c) for c in (0, "1", "/dev/video2", "rtsp://h/s", "a.mp4", "1a",
                                          "\u00b2", "/dev/null", "/dev/shm/x.mp4")] \
        == [True, True, True, True, False, False, False, True, False]  # a device node; a file
    # a URL goes to OpenCV's FFmpeg as a stream (here file://), which keeps its own size
    with open_source(clip.resolve().as_uri(), None) as src:
        assert isinstance(src, webcam.CameraSource) and src.read().shape == (H, W, 3)
    assert main(["webcam", "--camera", clip.resolve().as_uri(), "--no-display", "--model",
                 "bicubic-x2", "--frames", "3"]) == 0
    assert f"{W}x{H} -> {2 * W}x{2 * H}" in capfd.readouterr().out
    # nothing listens on port 1: one line, FFmpeg's own "connection refused" silenced
    assert main(["webcam", "--camera", "http://127.0.0.1:1/live", "--no-display",
                 "--frames", "2"]) == 1
    err = capfd.readouterr().err.strip().splitlines()
    assert err == ["vidsr: error: http://127.0.0.1:1/live cannot be opened or delivers no "
                   "frames"], err


@pytest.mark.parametrize("ext", [".mp4", ".webm"])
def test_webcam_command_records_the_upscaled_video(clip: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture,
                                                   ext: str) -> None:
    # .webm failed whatever was asked: the default --preset was x264's "ultrafast" for VP9 too
    out = tmp_path / f"rec{ext}"
    assert main(["webcam", "--camera", str(clip), "--size", f"{W}x{H}", "--no-display",
                 "--model", "esr-max-x2", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fps end to end" in text and f"{W}x{H} -> {2 * W}x{2 * H}" in text
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        frames = list(c.decode(video=0))
    assert len(frames) == FRAMES
    assert (frames[0].width, frames[0].height) == (2 * W, 2 * H)
    assert cc.colorspace == 6 and cc.color_range == 1  # smpte170m (BT.601), limited range
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["cam.mp4", out.name])
    assert main(["webcam", "--camera", str(clip), "--no-display", "-o", str(out)]) == 1


def test_recorder_abort_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "x.mp4"
    rec = Recorder(out, (W, H), 30.0, 2)
    rec.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_live_recording_is_timed_by_capture_not_by_frame_count(tmp_path: Path) -> None:
    # a camera recording counted frames at the nominal rate: a camera delivering 10 of its
    # nominal 30 fps (or processing at 10) made 10 s of life a 3.3 s video, played 3x fast
    from vidsr.webcam import LiveFrame

    y = np.full((2 * H, 2 * W), 100, np.uint8)
    c = np.full((H, W), 128, np.uint8)
    captured = [50.0, 50.1, 50.2, 50.201, 50.5]  # the 4th: jitter onto the 3rd's tick

    def record(name: str, clock: bool) -> list[float]:
        rec = Recorder(tmp_path / name, (W, H), 30.0, 2, clock=clock)
        for i, t in enumerate(captured):
            rec.write(LiveFrame(i, np.zeros((2 * H, 2 * W, 3), np.uint8), (y, c, c), t, 1.0))
        with av.open(str(rec.close())) as f:
            return sorted(float(fr.time) for fr in f.decode(video=0))

    times = record("live.mp4", clock=True)
    assert times == pytest.approx([0.0, 0.1, 0.2, 0.2 + 1 / 30, 0.5], abs=1e-3)
    assert record("file.mp4", clock=False) == pytest.approx([i / 30 for i in range(5)],
                                                            abs=1e-3)


def test_a_file_that_is_not_video_is_one_line(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    bad = tmp_path / "notvideo.mp4"
    bad.write_text("not a video\n" * 20)
    assert main(["webcam", "--camera", str(bad), "--no-display", "--frames", "2"]) == 1
    err = capfd.readouterr().err.strip().splitlines()  # OpenCV's FFmpeg printed a line first
    assert len(err) == 1 and "cannot be opened as a video" in err[0], err


def test_a_file_keeps_its_shape(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # a portrait file was stretched to the camera default, 640x480, unasked
    from media import make_clip

    clip = make_clip(tmp_path / "tall.mp4", width=48, height=64, frames=3)
    assert main(["webcam", "--camera", str(clip), "--no-display", "--model", "bicubic-x2",
                 "--frames", "3"]) == 0
    assert "48x64 -> 96x128" in capsys.readouterr().out
    assert main(["webcam", "--camera", str(clip), "--no-display", "--model", "bicubic-x2",
                 "--frames", "3", "--size", "64x48"]) == 0  # a size asked for is kept
    assert "64x48 -> 128x96" in capsys.readouterr().out


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGTERM"), reason="POSIX signals")
def test_sigterm_ends_a_windowed_recording_and_keeps_it(tmp_path: Path) -> None:
    # in the Qt viewer SIGTERM raised inside Qt's loop: PyQt aborted (status 134), leaving
    # the partial recording
    import os
    import signal
    import subprocess
    import sys
    import time

    from media import make_clip

    from vidsr.pipeline import partial_path

    clip = make_clip(tmp_path / "cam.mp4", frames=48)
    out = tmp_path / "rec.mp4"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, "-m", "vidsr", "webcam", "--camera", str(clip),
                             "--loop", "--model", "bicubic-x2", "-o", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 60
        while not partial_path(out).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGTERM)
        stdout, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"recorded {out}" in stdout and out.exists() and not partial_path(out).exists()
    with av.open(str(out)) as c:
        assert len(list(c.decode(video=0))) > 0


def test_a_recording_refuses_its_own_source_and_an_empty_run(clip: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    # -o the file read as the camera replaced it (with --overwrite); a run that recorded no
    # frame was a traceback from the rename of a partial file never written
    before = clip.read_bytes()
    for camera in (str(clip), clip.resolve().as_uri()):
        assert main(["webcam", "--camera", camera, "--no-display", "--frames", "2",
                     "-o", str(clip), "--overwrite"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is the input file" in err[0], err
    assert clip.read_bytes() == before
    assert main(["webcam", "--camera", "", "--no-display", "--frames", "2"]) == 1
    assert "no camera given" in capsys.readouterr().err  # was "no such file: ."
    # --compile-after 0 meant never and -3 was taken, without a word
    for flag in ("--frames", "--compile-after", "--threads"):
        for value in ("0", "-5"):
            assert main(["webcam", "--camera", str(clip), "--no-display", "--frames", "2",
                         flag, value]) == 1
            assert f"{flag} must be at least 1, got {value}" in capsys.readouterr().err
    rec = Recorder(tmp_path / "none.mp4", (W, H), 30.0, 2)  # Ctrl-C before the first frame
    with pytest.raises(OutputError, match="no frames were recorded"):
        rec.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.mp4"]


def test_a_still_image_loops_as_a_camera(tmp_path: Path) -> None:
    # --loop on a still image played one frame: the capture could not seek back to it
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.full((H, W, 3), 90, np.uint8))
    source = webcam.VideoFileSource(still, loop=True)
    frames = [source.read() for _ in range(4)]
    source.close()
    assert all(f is not None and f.shape == (H, W, 3) for f in frames)


@pytest.mark.parametrize("name", ["rec.avi", "rec.txt", "rec", "rec.png"])
def test_a_recording_in_a_container_vidsr_does_not_write_is_refused_first(
        clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # .avi was recorded (the main command refuses it); .txt and no extension failed after the
    # model loaded and the camera opened with "cannot create a file in .: Could not determine
    # output format"; .png asked for a --codec and then for a --pix-fmt webcam does not have
    def no_camera(*args: object, **kwargs: object) -> None:
        raise AssertionError("the camera was opened before the output was checked")

    monkeypatch.setattr("vidsr.cli.cmd_webcam.open_source", no_camera)
    out = tmp_path / name
    assert main(["webcam", "--camera", str(clip), "--no-display", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vidsr writes .m4v, .mkv, .mov, .mp4, .webm files" in err[0], err
    with pytest.raises(OutputError, match="vidsr writes"):
        Recorder(out, (W, H), 30.0, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cam.mp4"]


def test_a_file_url_is_played_as_a_file(clip: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # --camera file:///clip.mp4 was opened as a live stream: timed by when each frame was
    # read, so a run slower than the file's 24 fps recorded it stretched, with gaps (and late
    # frames were dropped without -o), where the same file by its path keeps its pace
    import time

    process = LiveUpscaler.process

    def slow(self: LiveUpscaler, *args: object, **kwargs: object) -> object:
        time.sleep(0.1)  # 10 fps, below the clip's 24
        return process(self, *args, **kwargs)

    monkeypatch.setattr(LiveUpscaler, "process", slow)
    out = tmp_path / "rec.mkv"
    assert main(["webcam", "--camera", clip.resolve().as_uri(), "--no-display", "--model",
                 "bicubic-x2", "-o", str(out)]) == 0
    with av.open(str(out)) as c:
        times = sorted(float(f.time) for f in c.decode(video=0))
    assert times == pytest.approx([i / 24 for i in range(FRAMES)], abs=2e-3)


class Paced:
    """A live camera delivering ``frames`` gray frames at 25 fps, on the clock."""

    size, fps = (W, H), 25.0

    def __init__(self, frames: int) -> None:
        import time

        self.frames, self.n, self.t0 = frames, 0, time.perf_counter()

    def read(self) -> np.ndarray | None:
        import time

        if self.n == self.frames:
            return None
        time.sleep(max(0.0, self.t0 + self.n / self.fps - time.perf_counter()))
        self.n += 1
        return np.full((H, W, 3), 90, np.uint8)

    def close(self) -> None:
        pass


def test_the_fps_of_a_paced_source_is_its_rate(clip: Path) -> None:
    # 10 frames of a 25 fps camera read 27.7 fps: 10 frames counted over 9 intervals

    stats = run_live(Paced(10), LiveUpscaler(Engine("bicubic-x2", device="cpu")), overlay=False)
    assert stats.frames == 10 and stats.fps == pytest.approx(25, rel=0.04)


def test_dropped_audio_and_a_stream_that_stops_are_said(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # a camera file's audio was left out of the recording without a word, and a stream that
    # stopped mid-run ended the run as if asked to (only OpenCV's own "[ WARN:0@12.3] ...
    # Stream timeout triggered" line said anything)
    clip = make_clip(tmp_path / "talk.mp4", frames=6, audio_tracks=1)
    with caplog.at_level("WARNING"):
        assert main(["webcam", "--camera", str(clip), "--no-display", "--model",
                     "bicubic-x2", "-o", str(tmp_path / "rec.mp4")]) == 0
    assert "talk.mp4 has audio; the recording is video only" in caplog.text, caplog.text
    assert "stopped delivering" not in caplog.text  # a file ends; that is no news
    caplog.clear()
    # a stream URL that ends (here file://, which OpenCV's FFmpeg reads as a stream)
    with open_source(clip.resolve().as_uri(), None) as src, \
            pytest.MonkeyPatch.context() as mp, caplog.at_level("WARNING"):
        mp.setattr("vidsr.cli.cmd_webcam.open_source", lambda *a, **k: src)
        mp.setattr("vidsr.cli.cmd_webcam.camera_file", lambda camera: None)
        assert main(["webcam", "--camera", "rtsp://127.0.0.1/cam", "--no-display",
                     "--model", "bicubic-x2"]) == 0
    assert [r.getMessage() for r in caplog.records] == [
        "rtsp://127.0.0.1/cam stopped delivering frames after 6 frames"], caplog.text


def test_a_live_recording_slower_than_its_camera_drops_frames_not_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # with -o, a live camera's late frames were queued, not dropped: the capture waited on the
    # queue, each frame was stamped when it was finally read, and 1 s of a 25 fps camera
    # processed at 10 fps became a 2.5 s recording, in slow motion, its latency growing
    import time

    process = LiveUpscaler.process

    def slow(self: LiveUpscaler, *args: object, **kwargs: object) -> object:
        time.sleep(0.1)
        return process(self, *args, **kwargs)

    monkeypatch.setattr(LiveUpscaler, "process", slow)
    monkeypatch.setattr("vidsr.cli.cmd_webcam.open_source", lambda *a, **k: Paced(25))
    monkeypatch.setattr("vidsr.cli.cmd_webcam.camera_file", lambda camera: None)
    out = tmp_path / "live.mkv"
    assert main(["webcam", "--camera", "0", "--no-display", "--model", "bicubic-x2",
                 "-o", str(out)]) == 0
    with av.open(str(out)) as c:
        times = sorted(float(f.time) for f in c.decode(video=0))
    assert len(times) < 20 and times[-1] < 1.4, times  # the camera's 1 s, with gaps
