"""The comparison window (``vidsr_gui``) on a tiny generated clip, offscreen."""

from __future__ import annotations

import json
import os
import warnings
from fractions import Fraction
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")
from media import make_clip  # noqa: E402
from PyQt6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PyQt6.QtGui import QImage, QWheelEvent  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402
from vidsr_gui.window import MainWindow  # noqa: E402

W, H = 64, 48
TIMEOUT = 60_000  # ms; the CPU is shared, so be generous


@pytest.fixture(autouse=True)
def _quiet_untrained() -> None:
    warnings.filterwarnings("ignore", message="no trained weights")


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", width=W, height=H, frames=12, fps=Fraction(24))


@pytest.fixture
def window(qtbot) -> MainWindow:  # noqa: ANN001
    win = MainWindow(device="cpu")
    qtbot.addWidget(win)
    win.resize(900, 640)
    win.show()
    yield win
    win.close()


def open_and_wait(qtbot, win: MainWindow, clip: Path):  # noqa: ANN001, ANN201
    with qtbot.waitSignal(win.frame_shown, timeout=TIMEOUT) as blocker:
        win.open_file(clip)
    return blocker.args[0]


def pixels(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def test_default_panes_render_the_frame(qtbot, window: MainWindow, clip: Path) -> None:  # noqa: ANN001
    assert window.models == ["bicubic-x2", "esr-max-x2", "esr-tm-x2", "ecbsr-x2"]
    assert [p.picker.model() for p in window.panes] == window.models
    assert all(p.isVisible() for p in window.panes)
    frame = open_and_wait(qtbot, window, clip)
    assert frame.index == 0 and frame.source_size == (W, H)
    assert [r.model for r in frame.results] == window.models
    for pane in window.panes:
        img = pane.view.image
        assert img is not None and (img.width(), img.height()) == (2 * W, 2 * H)
        px = pixels(img)
        assert px.std() > 10, "pane shows a blank image"
        assert pane.cost.text().endswith("fps")
    bicubic = pixels(window.panes[0].view.image).astype(float)
    assert 40 < bicubic.mean() < 220  # the test pattern, not black or white


def test_switching_a_model_changes_only_that_pane(qtbot, window: MainWindow,  # noqa: ANN001
                                                  clip: Path) -> None:
    open_and_wait(qtbot, window, clip)
    before = [pixels(p.view.image) for p in window.panes]
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT) as blocker:
        window.panes[1].picker.setCurrentIndex(window.panes[1].picker.findData("esr-tr-x2"))
    assert window.models[1] == "esr-tr-x2"
    assert [r.model for r in blocker.args[0].results][1] == "esr-tr-x2"
    after = [pixels(p.view.image) for p in window.panes]
    assert not np.array_equal(before[1], after[1])
    for i in (0, 2, 3):
        assert np.array_equal(before[i], after[i])


def test_zoom_and_pan_stay_synchronised(qtbot, window: MainWindow, clip: Path) -> None:  # noqa: ANN001
    open_and_wait(qtbot, window, clip)
    views = [p.view for p in window.panes]
    assert window.state.fit
    view = views[2]
    centre = QPointF(view.width() / 2, view.height() / 2)
    wheel = QWheelEvent(centre, view.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    fitted = view.zoom()
    QApplication.sendEvent(view, wheel)
    assert not window.state.fit
    assert view.zoom() == pytest.approx(fitted * 1.25 ** 2)

    def shown() -> set[tuple[float, float, float]]:
        """Zoom and the image point at each view's centre (views differ in size by a pixel)."""
        out = set()
        for v in views:
            p = v.image_point(QPointF(v.width() / 2, v.height() / 2))
            out.add((round(v.zoom(), 6), round(p.x(), 6), round(p.y(), 6)))
        return out

    assert len(shown()) == 1
    before = views[0].target_rect()
    qtbot.mousePress(views[3], Qt.MouseButton.LeftButton, pos=QPoint(40, 40))
    qtbot.mouseMove(views[3], QPoint(70, 55))
    qtbot.mouseRelease(views[3], Qt.MouseButton.LeftButton, pos=QPoint(70, 55))
    moved = views[0].target_rect()
    assert (moved.x() - before.x(), moved.y() - before.y()) == pytest.approx((30, 15))
    assert len(shown()) == 1
    window.state.set_zoom(1.0)  # the 1:1 button
    assert all(v.target_rect().width() == 2 * W for v in views)
    window.state.set_fit()
    assert window.state.fit


def test_another_scale_keeps_the_zoomed_in_detail_in_view(qtbot, window: MainWindow,  # noqa: ANN001
                                                         clip: Path) -> None:
    # x2 -> x4 put the middle of the frame in view, wherever the panes had been panned to
    open_and_wait(qtbot, window, clip)
    window.state.set_zoom(2.0)
    view = window.panes[0].view
    window.state.pan(20, 10, 2.0)  # 10 x 5 output pixels towards the top left
    before = window.state.center
    assert (before.x(), before.y()) == pytest.approx((W - 10, H - 5))
    source_point = (before.x() / 2, before.y() / 2)  # in source pixels, at x2
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT):
        window.set_scale(4)
    assert window.state.image_size == (4 * W, 4 * H)
    after = window.state.center
    assert (after.x() / 4, after.y() / 4) == pytest.approx(source_point)
    assert not window.state.fit and view.zoom() == pytest.approx(2.0)


def test_the_seek_bar_starts_over_with_a_source_without_a_length(qtbot, window: MainWindow,  # noqa: ANN001
                                                               clip: Path,
                                                               tmp_path: Path) -> None:
    # after a video, a still image (or a camera) left the handle where the video had been,
    # enabled for an image though dragging it did nothing
    import cv2

    open_and_wait(qtbot, window, clip)
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT):
        window.seek(0.4)
    assert window.seek_slider.value() > 500
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.full((H, W, 3), 128, np.uint8))
    open_and_wait(qtbot, window, still)
    assert window.source.duration is None
    assert window.seek_slider.value() == 0 and not window.seek_slider.isEnabled()
    open_and_wait(qtbot, window, clip)
    assert window.seek_slider.value() == 0 and window.seek_slider.isEnabled()


def test_wipe_scale_and_step(qtbot, window: MainWindow, clip: Path) -> None:  # noqa: ANN001
    open_and_wait(qtbot, window, clip)
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT):
        window.set_mode("wipe")
    wipe = window.wipe.view
    assert wipe.image is not None and wipe.image_b is not None
    assert not np.array_equal(pixels(wipe.image), pixels(wipe.image_b))
    window.wipe.slider.setValue(250)
    assert wipe.split == pytest.approx(0.25)
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT) as blocker:
        window.set_scale(3)
    assert blocker.args[0].results[0].model == "bicubic-x3"
    assert (wipe.image.width(), wipe.image.height()) == (3 * W, 3 * H)
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT) as blocker:
        window.worker.step(2)
    assert blocker.args[0].index == 2


def test_a_bad_file_is_a_message_not_a_crash(qtbot, window: MainWindow,  # noqa: ANN001
                                             tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video\n" * 20)
    with qtbot.waitSignal(window.worker.failed, timeout=TIMEOUT):
        window.open_file(bad)
    assert window.status_label.text().startswith("error:")
    assert window.worker.isRunning()


def test_export_writes_a_file_and_cancel_removes_it(qtbot, window: MainWindow,  # noqa: ANN001
                                                    clip: Path, tmp_path: Path) -> None:
    pytest.importorskip("vidsr.pipeline")
    import av

    open_and_wait(qtbot, window, clip)
    out = tmp_path / "out.mp4"
    worker = window.start_export(out, "esr-max-x2")
    with qtbot.waitSignal(worker.done, timeout=TIMEOUT):
        pass
    worker.wait()
    with av.open(str(out)) as c:
        frames = [f for f in c.decode(video=0)]
    assert len(frames) == 12 and (frames[0].width, frames[0].height) == (2 * W, 2 * H)

    long_clip = make_clip(tmp_path / "long.mp4", width=W, height=H, frames=240)
    open_and_wait(qtbot, window, long_clip)
    cancelled = tmp_path / "cancelled.mp4"

    def cancel_at_first_progress(worker) -> None:  # noqa: ANN001
        # A direct connection runs in the export thread: the run is cancelled mid-way for sure.
        worker.progress.connect(lambda _p: worker.cancel(), Qt.ConnectionType.DirectConnection)
        worker.cancelled.connect(lambda: outcome.append("cancelled"))
        worker.done.connect(lambda _s: outcome.append("done"))

    outcome: list[str] = []
    window.export_started.connect(cancel_at_first_progress)
    worker = window.start_export(cancelled, "esr-max-x2")
    assert qtbot.waitUntil(lambda: not worker.isRunning(), timeout=TIMEOUT) is None
    qtbot.waitUntil(lambda: bool(outcome), timeout=5000)  # the queued signal
    assert outcome == ["cancelled"]
    assert not cancelled.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "long.mp4", "out.mp4"]
    assert "cancelled" in window.status_label.text()


def test_screenshot_command(qapp, clip: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from vidsr.cli.main import main

    out = tmp_path / "shot.png"
    assert main(["gui", str(clip), "--screenshot", str(out), "--at", "0.25", "--device", "cpu",
                 "--window-size", "900x500", "--panes", "2"]) == 0
    image = QImage(str(out))
    assert (image.width(), image.height()) == (900, 500)
    assert pixels(image).std() > 10


def test_webcam_window_without_opencv_gui(qapp, clip: Path,  # noqa: ANN001
                                          capsys: pytest.CaptureFixture) -> None:
    """``vidsr webcam`` shows frames in a Qt window when OpenCV is headless."""
    from vidsr_gui.viewer import run_with_window

    from vidsr.cli.main import main

    sizes = []

    def loop(show, cancel):  # noqa: ANN001, ANN202
        for i in range(3):
            frame = np.full((20, 30, 3), 60 * i, np.uint8)
            show(frame)
            sizes.append(frame.shape)
        return "done"

    value, skipped = run_with_window("test", loop)
    assert value == "done" and len(sizes) == 3 and 0 <= skipped <= 2
    assert main(["webcam", "--camera", str(clip), "--size", f"{W}x{H}", "--frames", "3",
                 "--model", "bicubic-x2"]) == 0
    assert "3 frames" in capsys.readouterr().out


def test_camera_source_and_preview_shrink(qtbot, clip: Path) -> None:  # noqa: ANN001
    """A camera (here a file played as one) plays by itself; the preview cap halves it."""
    from vidsr.webcam import VideoFileSource

    win = MainWindow(device="cpu", panes=2, max_height=H // 2)
    qtbot.addWidget(win)
    win.show()
    try:
        shown: list = []
        win.frame_shown.connect(shown.append)
        win.open_camera(VideoFileSource(clip, loop=True))
        qtbot.waitUntil(lambda: len(shown) >= 3, timeout=TIMEOUT)
        assert win.worker.playing and not win.source.seekable
        assert win.source.preview_size == (W // 2, H // 2)
        assert [i.index for i in shown[:3]] == [0, 1, 2]
        assert shown[-1].results[0].rgb.shape == (H, W, 3)  # x2 of the halved source
        assert [r.model for r in shown[-1].results] == ["bicubic-x2", "esr-max-x2"]
    finally:
        win.close()


@pytest.fixture
def two_panes(qtbot) -> tuple[MainWindow, list]:  # noqa: ANN001
    """A shown two-pane window and the list of frames it shows."""
    win = MainWindow(device="cpu", panes=2)
    qtbot.addWidget(win)
    win.show()
    shown: list = []
    win.frame_shown.connect(shown.append)
    yield win, shown
    win.close()


def test_the_camera_box_takes_a_stream_url(qtbot, two_panes, clip: Path) -> None:  # noqa: ANN001
    win, shown = two_panes
    win.camera_index.setCurrentText(clip.resolve().as_uri())
    win.camera_index.lineEdit().returnPressed.emit()  # Enter in the box
    qtbot.waitUntil(lambda: len(shown) >= 2, timeout=TIMEOUT)
    assert win.worker.playing and not win.source.seekable
    assert win.source.label == clip.resolve().as_uri()


def test_webcam_option_takes_a_stream_url(qapp, clip: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from vidsr.cli.main import main

    shot = tmp_path / "cam.png"
    assert main(["gui", "--webcam", clip.resolve().as_uri(), "--screenshot", str(shot),
                 "--device", "cpu", "--panes", "2"]) == 0
    assert shot.stat().st_size > 0
    assert main(["gui", "--webcam", "http://127.0.0.1:1/live", "--screenshot", str(shot),
                 "--device", "cpu", "--panes", "2"]) == 1


def test_bench_command(qapp, clip: Path, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    from vidsr.cli.main import main

    assert main(["gui", str(clip), "--bench", "4", "--device", "cpu", "--panes", "2"]) == 0
    out = capsys.readouterr().out
    assert "bicubic-x2" in out and "display with all 2 panes" in out
    report = json.loads(out.strip().splitlines()[-1])
    assert report["frames"] == 4  # exactly the frames asked for, not those still in flight


def test_export_dialog_defaults(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    from vidsr_gui.export_dialog import ExportDialog, default_output

    src = tmp_path / "clip.webm"
    dialog = ExportDialog(None, src, 2, ["bicubic-x2", "ecbsr-x2", "esr-max-x2"])
    qtbot.addWidget(dialog)
    assert dialog.model() == "ecbsr-x2"  # the first SR model shown, not the bicubic reference
    assert dialog.output() == tmp_path / "clip_ecbsr-m4c16-x2.mp4"
    dialog.picker.setCurrentIndex(dialog.picker.findData("esr-tm-x2"))
    assert dialog.output().name == "clip_esr-tm-k7c16-x2.mp4"
    assert default_output(tmp_path / "a.mkv", "bicubic-x3").name == "a_bicubic-x3.mkv"


def test_export_dialog_keeps_a_chosen_output_when_the_model_changes(qtbot,  # noqa: ANN001
                                                                     tmp_path: Path) -> None:
    # picking the model after the file (Browse…, or typed) put the default name beside the
    # source back, in place of the file chosen
    from vidsr_gui.export_dialog import ExportDialog

    dialog = ExportDialog(None, tmp_path / "clip.mp4", 2, ["bicubic-x2", "esr-max-x2"])
    qtbot.addWidget(dialog)
    chosen = tmp_path / "elsewhere" / "mine.mkv"
    dialog.path.setText(str(chosen))
    dialog.picker.setCurrentIndex(dialog.picker.findData("ecbsr-x2"))
    assert dialog.model() == "ecbsr-x2" and dialog.output() == chosen
    dialog.path.setText(str(tmp_path / "clip_ecbsr-m4c16-x2.mp4"))  # the default again
    dialog.picker.setCurrentIndex(dialog.picker.findData("esr-tm-x2"))
    assert dialog.output().name == "clip_esr-tm-k7c16-x2.mp4"  # follows the model once more


def test_an_unexpected_error_is_a_message_not_a_crash(qtbot, window: MainWindow,  # noqa: ANN001
                                                      clip: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug's exception (here a TypeError in the render path, a KeyError in the export)
    reaches the user as a message; the render thread survives and renders the next file."""
    import vidsr.pipeline

    def broken(*_args: object, **_kwargs: object) -> None:
        raise TypeError("a bug")

    monkeypatch.setattr(window.worker, "_show", broken)
    with qtbot.waitSignal(window.worker.failed, timeout=TIMEOUT) as blocker:
        window.open_file(clip)
    assert blocker.args[0] == "render failed unexpectedly: TypeError: a bug"
    assert window.status_label.text() == "error: " + blocker.args[0]
    assert window.worker.isRunning()
    monkeypatch.undo()
    open_and_wait(qtbot, window, clip)

    def broken_export(*_args: object, **_kwargs: object) -> None:
        raise KeyError("codec")

    monkeypatch.setattr(vidsr.pipeline, "upscale_video", broken_export)
    failed: list[str] = []  # connected before the thread starts: it fails at once
    window.export_started.connect(lambda worker: worker.failed.connect(failed.append))
    window.start_export(tmp_path / "out.mp4", "esr-max-x2")
    qtbot.waitUntil(lambda: bool(failed), timeout=TIMEOUT)
    assert failed == ["export failed unexpectedly: KeyError: 'codec'"]
    assert window.status_label.text() == "error: " + failed[0]
    assert not (tmp_path / "out.mp4").exists()


def test_an_exception_escaping_a_slot_is_shown(qapp) -> None:  # noqa: ANN001
    """The app's excepthook relays an exception from any thread to the window."""
    import sys
    import threading
    import time

    from vidsr_gui.errors import ErrorRelay

    shown: list[str] = []
    before = sys.excepthook
    with ErrorRelay(shown.append):
        assert sys.excepthook is not before
        thread = threading.Thread(target=lambda: sys.excepthook(
            ZeroDivisionError, ZeroDivisionError("division by zero"), None))
        thread.start()
        thread.join()
        deadline = time.monotonic() + 5
        while not shown and time.monotonic() < deadline:
            qapp.processEvents()
    assert sys.excepthook is before
    assert shown == ["unexpected error: ZeroDivisionError: division by zero"]


def test_seek_step_back_play_pane_count_and_wipe_models(qtbot, window: MainWindow,  # noqa: ANN001
                                                        clip: Path) -> None:
    open_and_wait(qtbot, window, clip)
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT) as blocker:
        window.seek(0.25)  # 12 frames at 24 fps: frame 6 starts at 0.25 s
    assert blocker.args[0].index == 6
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT) as blocker:
        window.worker.step(-1)
    assert blocker.args[0].index == 5
    assert window.time_label.text().startswith("0:00.2")

    shown: list = []
    window.frame_shown.connect(shown.append)
    window.toggle_play()
    assert window.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: len(shown) >= 2, timeout=TIMEOUT)
    window.toggle_play()
    assert window.play_button.text() == "Play" and not window.worker.playing
    assert [f.index for f in shown[:2]] == [6, 7]

    def models_are(*names: str):  # noqa: ANN202 - a frame in flight may still show the old ones
        return lambda frame: [r.model for r in frame.results] == list(names)

    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT,
                          check_params_cb=models_are(*window.models[:3])):
        window.set_pane_count(3)
    assert [p.isVisible() for p in window.panes] == [True, True, True, False]

    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT):
        window.set_mode("wipe")
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT,
                          check_params_cb=models_are(window.wipe_models[0], "esr-tm-x2")
                          ) as blocker:
        window.set_wipe_model(1, "esr-tm-x2")
    by_model = {r.model: r for r in blocker.args[0].results}
    wipe = window.wipe.view
    assert np.array_equal(pixels(wipe.image_b), by_model["esr-tm-x2"].rgb)
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT,
                          check_params_cb=models_are("bicubic-x4", "esr-tm-x4")):
        window.set_scale(4)
    assert (wipe.image.width(), wipe.image.height()) == (4 * W, 4 * H)


def test_lighter_preview_without_cuda_and_the_entry_point(qapp, clip: Path,  # noqa: ANN001
                                                          tmp_path: Path) -> None:
    import torch
    from vidsr_gui.app import CPU_PREVIEW_HEIGHT, main, preview_height

    assert preview_height(None, "cpu") == CPU_PREVIEW_HEIGHT
    assert preview_height(0, "cpu") is None and preview_height(120, "auto") == 120
    assert preview_height(None, "auto") == (None if torch.cuda.is_available()
                                            else CPU_PREVIEW_HEIGHT)
    out = tmp_path / "shot.png"
    assert main(["--screenshot", str(out), str(clip), "--device", "cpu", "--panes", "2",
                 "--window-size", "900x500"]) == 0
    assert (QImage(str(out)).width(), QImage(str(out)).height()) == (900, 500)
    assert main([str(tmp_path / "missing.mp4"), "--screenshot", str(out)]) == 1
    # a time past the end waited 300 s for a frame; a negative one or zoom 0 were taken
    import time

    t0 = time.monotonic()
    for extra in (["--at", "999"], ["--at", "-1"], ["--zoom", "0"]):
        assert main([str(clip), "--screenshot", str(tmp_path / "x.png"), "--device", "cpu",
                     *extra]) == 1, extra
    assert time.monotonic() - t0 < 60 and not (tmp_path / "x.png").exists()
    # the very end of the video (after the last frame starts) shows the last frame
    import av

    with av.open(str(clip)) as c:
        end = float(c.duration / 1e6) if c.duration else None
    if end:
        assert main([str(clip), "--screenshot", str(tmp_path / "end.png"), "--device", "cpu",
                     "--at", f"{end:.3f}"]) == 0
        assert time.monotonic() - t0 < 90


def test_screenshot_shows_the_frame_at_the_time_asked(qapp, qtbot, clip: Path,  # noqa: ANN001
                                                      tmp_path: Path) -> None:
    from vidsr_gui.offscreen import screenshot

    win = MainWindow(device="cpu", panes=2)
    qtbot.addWidget(win)
    win.show()
    try:
        win.open_file(clip)
        assert screenshot(qapp, win, tmp_path / "at.png", at=0.25) == 0
        assert win.last.index == 6 and win.last.time == pytest.approx(0.25)  # 24 fps
        assert QImage(str(tmp_path / "at.png")).width() == win.width()
    finally:
        win.close()


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGTERM") or os.name != "posix",
                    reason="POSIX signals")
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_window_closes_on_a_signal(tmp_path, signame):
    # Qt's loop never ran Python's handlers: SIGTERM killed the app outright, and an exception
    # raised from a handler inside a slot aborts PyQt; now the window closes and the status
    # says which signal
    import signal
    import subprocess
    import sys
    import time

    src = make_clip(tmp_path / "a.mp4", frames=48)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([sys.executable, "-m", "vidsr", "gui", str(src), "--models",
                             "bicubic-x2"], env=env, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        time.sleep(4)  # torch and Qt imported, the window up
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        signum = getattr(signal, signame)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err, err


def test_pane_plan_follows_the_models_given() -> None:
    from vidsr_gui.app import pane_plan

    from vidsr.errors import InputError

    # x3 models showed as their x2 siblings, and two models gave four panes
    assert pane_plan("esr-max-x3,bicubic-x3", None, None) == (["esr-max-x3", "bicubic-x3"], 3, 2)
    assert pane_plan(None, None, None) == (None, 2, 4)
    assert pane_plan("ecbsr-x2", None, 3) == (["ecbsr-x2"], 2, 3)
    shipped = str(Path(__file__).resolve().parents[1] / "vidsr" / "weights"
                  / "esr-max-k7c4-x3.safetensors")  # a weights file, as every command takes
    assert pane_plan(f"bicubic-x3,{shipped}", None, None) == (["bicubic-x3", shipped], 3, 2)
    for models, scale in [("esr-max-x3,bicubic-x2", None), ("esr-max-x3", 2)]:
        with pytest.raises(InputError, match="one scale|mixes scales"):
            pane_plan(models, scale, None)


def test_a_rotated_video_is_shown_upright(qtbot, window: MainWindow,  # noqa: ANN001
                                          tmp_path: Path) -> None:
    # a phone's portrait video (coded landscape, display matrix 90 degrees) was shown sideways
    import cv2

    rotated = make_clip(tmp_path / "rot.mp4", width=W, height=H, frames=2, rotation=90,
                        options={"crf": "0"})
    frame = open_and_wait(qtbot, window, rotated)
    assert frame.source_size == (H, W) and window.source.size == (H, W)
    got = frame.results[0].rgb  # bicubic x2, upright
    assert got.shape == (2 * W, 2 * H, 3)
    ok, upright = cv2.VideoCapture(str(rotated)).read()  # OpenCV applies the display matrix
    want = cv2.resize(upright, (2 * H, 2 * W), interpolation=cv2.INTER_CUBIC)[..., ::-1]
    assert np.abs(got.astype(int) - want).mean() < 12  # upright; sideways cannot match


# --- found by a user's walk through the window ---------------------------------------------

def test_the_keys_work_from_the_start(qtbot, window: MainWindow, clip: Path) -> None:  # noqa: ANN001
    from PyQt6.QtTest import QTest

    assert window.focusWidget() is window.panes[0].view  # not the camera number box
    open_and_wait(qtbot, window, clip)
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT) as blocker:
        QTest.keyClick(window.focusWidget(), Qt.Key.Key_Right)
    assert blocker.args[0].index == 1


def test_a_file_that_fails_to_open_leaves_the_video_on_screen(qtbot, window: MainWindow,  # noqa: ANN001
                                                             clip: Path, tmp_path: Path) -> None:
    open_and_wait(qtbot, window, clip)
    label = window.source_label.text()
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    window.open_file(bad)
    qtbot.waitUntil(lambda: bool(window.errors), timeout=TIMEOUT)
    assert "notes.mp4" in window.errors[-1]
    assert window.source_path == clip and window.source_label.text() == label
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT) as blocker:
        window.worker.step(1)  # the old source is still open and plays on
    assert blocker.args[0].index == 1
    assert window.export_action.isEnabled()


def test_play_with_nothing_open_does_nothing(window: MainWindow) -> None:
    window.toggle_play()
    assert window.play_button.text() == "Play" and not window.worker.playing


def test_seeking_to_the_end_shows_the_last_frame_and_play_restarts(  # noqa: ANN001
        qtbot, window: MainWindow, clip: Path) -> None:
    open_and_wait(qtbot, window, clip)
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT) as blocker:
        window.seek(window.source.duration)  # the slider's far end: past the last frame
    assert blocker.args[0].index == 11
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT) as blocker:
        window.toggle_play()  # at the end: from the start again
    assert blocker.args[0].index == 0
    window.worker.pause()


def test_a_click_on_the_seek_track_seeks(qtbot, window: MainWindow, clip: Path) -> None:  # noqa: ANN001
    open_and_wait(qtbot, window, clip)
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT) as blocker:
        window.seek_slider.setValue(750)  # what a page step or a click on the track does
    assert blocker.args[0].time == pytest.approx(0.75 * window.source.duration, abs=0.05)


def test_a_step_while_playing_shows_play_again(qtbot, window: MainWindow, clip: Path) -> None:  # noqa: ANN001
    open_and_wait(qtbot, window, clip)
    window.toggle_play()
    assert window.play_button.text() == "Pause"
    window.worker.step(1)
    qtbot.waitUntil(lambda: window.play_button.text() == "Play", timeout=TIMEOUT)


def test_wipe_compares_the_two_models_given(qtbot) -> None:  # noqa: ANN001
    win = MainWindow(["bicubic-x2", "esr-tm-x2"], device="cpu")
    qtbot.addWidget(win)
    try:
        assert win.wipe_models == ["bicubic-x2", "esr-tm-x2"]
    finally:
        win.close()


def test_a_full_name_is_not_listed_twice(qtbot) -> None:  # noqa: ANN001
    from vidsr_gui.panes import ModelPicker

    picker = ModelPicker()
    qtbot.addWidget(picker)
    picker.fill(2, "esr-max-k7c4-x2")
    texts = [picker.itemText(i) for i in range(picker.count())]
    assert texts.count("esr-max-k7c4-x2") == 1
    assert picker.currentText() == "esr-max-k7c4-x2"


def test_wipe_says_why_a_model_failed(qtbot, window: MainWindow, clip: Path) -> None:  # noqa: ANN001
    open_and_wait(qtbot, window, clip)
    window.set_mode("wipe")
    window.set_wipe_model(0, "nosuchmodel-x2")
    qtbot.waitUntil(lambda: window.wipe.view.placeholder.startswith("nosuchmodel-x2: "),
                    timeout=TIMEOUT)
    assert window.wipe.view.image is None


def test_errors_share_one_box_that_does_not_block(window: MainWindow) -> None:
    from PyQt6.QtWidgets import QMessageBox

    window.show_error("first")
    window.show_error("second")
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1 and boxes[0].text() == "second"
    assert boxes[0].windowModality() == Qt.WindowModality.NonModal
    assert window.errors == ["first", "second"]


def test_export_dialog_asks_before_replacing_a_file(qtbot, tmp_path: Path,  # noqa: ANN001
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from vidsr_gui.export_dialog import ExportDialog

    dialog = ExportDialog(None, tmp_path / "clip.mp4", 2, ["esr-max-x2"])
    qtbot.addWidget(dialog)
    taken = tmp_path / "taken.mp4"
    taken.write_bytes(b"x")
    asked: list[Path] = []
    monkeypatch.setattr(dialog, "confirm_replace", lambda p: asked.append(p) or False)
    dialog.path.setText(str(taken))
    dialog.accept()
    assert asked == [taken] and dialog.result() != dialog.DialogCode.Accepted
    dialog.path.setText("  ")
    assert not dialog.ok.isEnabled()
    dialog.path.setText(str(tmp_path / "new.mp4"))
    assert dialog.ok.isEnabled()
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted


def test_export_dialog_refuses_a_bad_output_before_it_closes(qtbot, tmp_path: Path,  # noqa: ANN001
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             ) -> None:
    # the export refused these only after the dialog had closed: model and name to enter again
    from vidsr_gui.export_dialog import ExportDialog

    src = tmp_path / "clip.mp4"
    src.write_bytes(b"x")
    dialog = ExportDialog(None, src, 2, ["esr-max-x2"])
    qtbot.addWidget(dialog)
    asked: list[Path] = []
    monkeypatch.setattr(dialog, "confirm_replace", lambda p: asked.append(p) or True)
    dialog.show()
    for name, said in [("out.avi", "vidsr writes"), ("out.gif", "vidsr writes"),
                       ("out", "vidsr writes"), ("missing/out.mp4", "folder does not exist"),
                       ("clip.mp4", "is the input file")]:
        dialog.path.setText(str(tmp_path / name))
        dialog.accept()
        assert dialog.isVisible() and dialog.result() != dialog.DialogCode.Accepted, name
        assert dialog.problem.isVisible() and said in dialog.problem.text(), name
    assert asked == []  # the input is refused, not offered for replacing
    dialog.path.setText(str(tmp_path / "out.mkv"))  # a name being fixed: the message goes
    assert not dialog.problem.isVisible()
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted and not dialog.isVisible()


def test_a_file_cut_short_says_so_at_its_end_after_a_seek(qtbot, window: MainWindow,  # noqa: ANN001
                                                          clip: Path, tmp_path: Path) -> None:
    # a faststart MP4 cut in the middle keeps its index and length: played on from a seek, it
    # stopped at the cut with a plain "end of video" beside the full length (the command line
    # refuses it as truncated; played from the start the reader says so itself)
    from media import faststart, truncate

    cut = truncate(faststart(make_clip(tmp_path / "f.mp4", width=W, height=H, frames=40),
                             tmp_path / "fs.mp4"), tmp_path / "cut.mp4", 0.6)
    for path, said in ((cut, "end of video: cut.mp4 is truncated or corrupt: video stops at "),
                       (clip, "end of video")):
        open_and_wait(qtbot, window, path)
        with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT):
            window.seek(0.1)
        window.worker.realtime = False
        with qtbot.waitSignal(window.worker.ended, timeout=TIMEOUT):
            window.worker.play(restart=False)
        qtbot.waitUntil(lambda: window.status_label.text().startswith("end of video"),
                        timeout=TIMEOUT)
        text = window.status_label.text()
        assert text.startswith(said) and (path == cut or text == said), text
    assert not window.errors


def test_a_failed_seek_puts_the_handle_back_at_the_frame_shown(qtbot, window: MainWindow,  # noqa: ANN001
                                                               tmp_path: Path) -> None:
    # the handle stayed where the track was clicked, the picture at the earlier frame
    from media import corrupt

    bad = corrupt(make_clip(tmp_path / "c.mp4", width=W, height=H, frames=40),
                  tmp_path / "damaged.mp4")
    first = open_and_wait(qtbot, window, bad)
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT):
        window.seek(0.1)  # before the damage
    shown = window.last
    assert shown.index > first.index
    slider = window.seek_slider
    at = slider.value()
    with qtbot.waitSignal(window.worker.failed, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(slider, Qt.MouseButton.LeftButton,
                         pos=QPoint(int(slider.width() * 0.8), slider.height() // 2))
    assert "corrupt" in blocker.args[0]
    qtbot.waitUntil(lambda: bool(window.errors), timeout=TIMEOUT)
    assert window.last is shown and at > 0
    assert slider.value() == at == round(shown.time / window.source.duration * 1000)


def test_a_model_untrained_at_another_scale_is_marked_in_its_picker(qtbot, clip: Path) -> None:  # noqa: ANN001
    # ecbsr-m4c8 has weights at x2 only: at x3 the pane's badge said "untrained" while its
    # picker showed the plain name, unlike the picker's other untrained entries
    win = MainWindow(["bicubic-x2", "ecbsr-m4c8-x2"], device="cpu", panes=2)
    qtbot.addWidget(win)
    win.show()
    try:
        open_and_wait(qtbot, win, clip)
        pane = win.panes[1]
        assert pane.picker.currentText() == "ecbsr-m4c8-x2" and not pane.badge.isVisible()
        with qtbot.waitSignal(win.frame_shown, timeout=TIMEOUT,
                              check_params_cb=lambda f: f.results[1].model == "ecbsr-m4c8-x3"):
            win.set_scale(3)
        assert pane.badge.isVisible()
        assert pane.picker.currentText() == "ecbsr-m4c8-x3 (untrained)"
        assert pane.picker.model() == "ecbsr-m4c8-x3"
        tip = pane.picker.itemData(pane.picker.currentIndex(), Qt.ItemDataRole.ToolTipRole)
        assert tip == "untrained: no shipped weights yet"
        assert win.panes[0].picker.currentText() == "bicubic-x3"  # trained entries unmarked
        with qtbot.waitSignal(win.frame_shown, timeout=TIMEOUT,
                              check_params_cb=lambda f: f.results[1].model == "ecbsr-m4c8-x2"):
            win.set_scale(2)
        assert pane.picker.currentText() == "ecbsr-m4c8-x2" and not pane.badge.isVisible()
    finally:
        win.close()


def test_a_screenshot_of_a_bad_file_fails_at_once(tmp_path: Path,  # noqa: ANN001
                                                  capsys: pytest.CaptureFixture, qapp) -> None:
    import time

    from vidsr.cli.main import main

    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    t0 = time.monotonic()
    assert main(["gui", str(bad), "--screenshot", str(tmp_path / "s.png"),
                 "--device", "cpu"]) == 1
    assert time.monotonic() - t0 < 60  # it waited 300 s for a frame before the error
    assert "notes.mp4" in capsys.readouterr().err


def test_no_display_rate_while_paused(qtbot, window: MainWindow, clip: Path) -> None:  # noqa: ANN001
    open_and_wait(qtbot, window, clip)
    for _ in range(2):
        with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT) as blocker:
            window.worker.step(1)
        assert blocker.args[0].display_fps == 0.0  # a step is not playback
    assert "shown at" not in window.status_label.text()


def test_one_to_one_is_screen_pixels_on_a_high_dpi_screen(qtbot, window: MainWindow,  # noqa: ANN001
                                                          clip: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    open_and_wait(qtbot, window, clip)
    view = window.panes[0].view
    monkeypatch.setattr(view, "devicePixelRatioF", lambda: 2.0)
    window.state.set_zoom(1.0)
    rect = view.target_rect()  # logical pixels: half the image's size, i.e. one screen pixel each
    assert (rect.width(), rect.height()) == (W * 2 / 2, H * 2 / 2)
    window.state.set_fit()
    fit = view.zoom()  # in screen pixels per image pixel
    assert fit == pytest.approx(min(view.width() * 2 / (2 * W), view.height() * 2 / (2 * H)))


def test_three_panes_take_the_grid_that_shows_them_largest(qtbot, window: MainWindow,  # noqa: ANN001
                                                           clip: Path) -> None:
    open_and_wait(qtbot, window, clip)
    window.set_pane_count(3)
    window.resize(900, 640)   # 4:3 video in a squarish window: two rows, a cell left empty
    qtbot.waitUntil(lambda: window._cols == 2, timeout=TIMEOUT)
    window.resize(1900, 420)  # a wide, low window: one row
    qtbot.waitUntil(lambda: window._cols == 3, timeout=TIMEOUT)
    assert all(p.isVisible() for p in window.panes[:3]) and not window.panes[3].isVisible()


def test_play_for_n_frames_pauses_by_itself(qtbot, window: MainWindow, clip: Path) -> None:  # noqa: ANN001
    open_and_wait(qtbot, window, clip)
    shown: list[object] = []
    window.frame_shown.connect(shown.append)
    window.worker.realtime = False
    with qtbot.waitSignal(window.worker.playing_changed, timeout=TIMEOUT,
                          check_params_cb=lambda playing: not playing):
        window.worker.play(3)
    qtbot.wait(200)  # nothing more comes
    assert [f.index for f in shown] == [1, 2, 3] and not window.worker.playing


def test_the_first_frame_after_a_pause_is_no_interval(qtbot, window: MainWindow,  # noqa: ANN001
                                                      clip: Path) -> None:
    open_and_wait(qtbot, window, clip)
    qtbot.wait(300)  # a pause before Play
    shown: list[object] = []
    window.frame_shown.connect(shown.append)
    window.worker.play(4)
    qtbot.waitUntil(lambda: len(shown) >= 4, timeout=TIMEOUT)
    rates = [f.display_fps for f in shown]
    assert rates[0] == 0.0 and all(r > 2 for r in rates[1:]), rates  # was 0.45 after 1 s paused


def test_the_display_rate_averages_intervals_not_rates() -> None:
    # a 24 fps clip read 34.8 fps while an export ran: a late frame and the catch-up frame
    # shown 1 ms after it averaged as 1/83 ms and 1/1 ms
    from vidsr_gui.worker import display_rate

    fps = 0.0
    for gap in [1 / 24] * 20 + [0.083, 0.001] * 10:  # late, catch-up: still 24 frames a second
        fps = display_rate(fps, gap)
    assert 20 < fps < 30, fps  # an average of the rates: 450-560
    assert display_rate(0.0, 0.5) == pytest.approx(2.0)


def test_a_signal_closes_the_window_during_an_export(window: MainWindow,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    class Running:
        cancelled = False
        ended = False

        def isRunning(self) -> bool:  # noqa: N802 - QThread's name
            return not self.cancelled

        def cancel(self) -> None:
            self.cancelled = True

        def wait(self, _ms: int = -1) -> bool:
            return True

    window.export_worker = Running()
    monkeypatch.setattr(window, "confirm_stop_export", lambda: False)
    assert not window.close()  # the close button asks, and "No" keeps the window
    window.force_close = True  # what Ctrl-C / SIGTERM set
    assert window.close() and window.export_worker.cancelled


def test_closing_hides_the_window_before_waiting_for_its_threads(window: MainWindow,  # noqa: ANN001
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  ) -> None:
    # the window (and an error box over it) stayed on screen, frozen, while a slow render
    # thread or export stopped
    seen: list[tuple[str, bool, bool]] = []

    def shown(what: str) -> None:
        seen.append((what, window.isVisible(), window._error_box.isVisible()))

    class Export:  # an export that has ended, its thread closing
        ended = True

        def isRunning(self) -> bool:  # noqa: N802 - QThread's name
            return True

        def wait(self, _ms: int = -1) -> bool:
            shown("export")
            return True

    window.show_error("a message left open")
    window.export_worker = Export()
    stop = window.worker.stop
    monkeypatch.setattr(window.worker, "stop", lambda: (shown("render"), stop()))
    assert window.isVisible() and window._error_box.isVisible()
    assert window.close()
    assert seen == [("export", False, False), ("render", False, False)]


def test_bench_refuses_a_start_past_the_end(qapp, clip: Path, capsys) -> None:  # noqa: ANN001
    from vidsr.cli.main import main

    assert main(["gui", str(clip), "--bench", "3", "--at", "100", "--device", "cpu"]) == 1
    assert "past the end" in capsys.readouterr().err


def test_panning_stops_at_the_picture_edge(qtbot, window: MainWindow, clip: Path) -> None:  # noqa: ANN001
    open_and_wait(qtbot, window, clip)
    window.state.set_zoom(4.0)
    window.state.pan(1e6, -1e6, 4.0)  # far right and up: the picture's left-bottom corner stays
    c = window.state.center
    assert (c.x(), c.y()) == (0.0, float(2 * H))


def test_the_preview_limit_counts_lines_as_shown(tmp_path: Path) -> None:
    from vidsr_gui.sources import FileFrames

    # coded 96 wide x 64 high, shown portrait (64 wide x 96 high): a 48-line limit halves it
    rotated = make_clip(tmp_path / "rot.mp4", width=96, height=64, frames=1, rotation=90)
    plain = make_clip(tmp_path / "plain.mp4", width=64, height=96, frames=1)
    for path in (rotated, plain):
        src = FileFrames(path, max_height=48)
        try:
            frame = src.next()
        finally:
            src.close()
        shown = frame.size[::-1] if frame.quarter_turns % 2 else frame.size
        assert shown == (32, 48), path.name


def test_playback_keeps_the_frame_rate_when_frames_take_time(monkeypatch) -> None:  # noqa: ANN001
    # the next frame was due one period after the previous one had been computed and shown,
    # so the compute time was added to every period (24 fps played at 19)
    import time

    from vidsr_gui.worker import RenderWorker

    class Source:
        fps, seekable, self_paced = 20.0, True, False

    worker = RenderWorker(["bicubic-x2"], device="cpu")
    worker._source, worker._playing = Source(), True
    period = 1 / Source.fps
    dues = []
    for _ in range(4):
        assert worker._pace()
        dues.append(worker._next_due)
        time.sleep(period / 4)  # the frame's compute, inside its period
    steps = np.diff(dues)
    assert np.allclose(steps, period), steps
    worker._pool.shutdown()


def test_export_with_a_weights_file_in_a_pane(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    # the dialog did not open: its default name took the weights path for a model name
    import shutil

    from vidsr_gui.export_dialog import ExportDialog

    import vidsr

    mine = tmp_path / "mine.safetensors"
    shutil.copy(Path(vidsr.__file__).parent / "weights" / "esr-max-k7c4-x2.safetensors", mine)
    dialog = ExportDialog(None, tmp_path / "clip.mp4", 2, [str(mine), "bicubic-x2"])
    qtbot.addWidget(dialog)
    assert dialog.model() == str(mine)
    assert dialog.output() == tmp_path / "clip_mine.mp4"
    assert dialog.note.text() == ""  # trained weights, not "untrained"
    other = ExportDialog(None, tmp_path / "clip.mp4", 2, ["no-such-model", "bicubic-x2"])
    qtbot.addWidget(other)
    assert other.output().name == "clip_no-such-model.mp4"  # its pane says what is wrong


def test_an_anamorphic_video_is_shown_at_its_display_aspect(qtbot, window: MainWindow,  # noqa: ANN001
                                                            tmp_path: Path) -> None:
    # a 2:1 sample aspect ratio was ignored: 32x48 coded, shown 64x48 by players, was squeezed
    clip = make_clip(tmp_path / "sar.mp4", width=32, height=48, frames=3,
                     color={"sample_aspect_ratio": Fraction(2, 1)})
    frame = open_and_wait(qtbot, window, clip)
    assert window.source.pixel_aspect == 2.0 and window.source.display_size == (64, 48)
    assert "32x48 shown 64x48" in window.source_label.text()
    assert frame.results[0].rgb.shape == (96, 64, 3)  # the model sees the coded pixels
    rect = window.panes[0].view.target_rect()
    assert rect.width() / rect.height() == pytest.approx(64 / 48)
    view = window.panes[0].view  # a point on screen maps back to the same image point
    point = view.image_point(QPointF(rect.x() + rect.width() * 0.25, rect.y() + rect.height() / 2))
    assert (point.x(), point.y()) == pytest.approx((64 * 0.25, 48))


def test_a_screenshot_past_the_end_of_a_still_fails_at_once(qapp, tmp_path: Path,  # noqa: ANN001
                                                           capsys: pytest.CaptureFixture) -> None:
    # a source without a length (a still image) and --at > 0 waited 300 s for a frame
    import time

    import cv2

    from vidsr.cli.main import main

    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.full((24, 32, 3), 128, np.uint8))
    shot = tmp_path / "s.png"
    t0 = time.monotonic()
    assert main(["gui", str(still), "--screenshot", str(shot), "--at", "0.5",
                 "--device", "cpu", "--panes", "2"]) == 1
    assert time.monotonic() - t0 < 60
    assert "past the end of the video" in capsys.readouterr().err and not shot.exists()
    assert main(["gui", str(still), "--screenshot", str(shot), "--device", "cpu",
                 "--panes", "2"]) == 0


def test_gui_options_out_of_range_are_one_line(qapp, clip: Path, tmp_path: Path,  # noqa: ANN001
                                              capsys: pytest.CaptureFixture) -> None:
    from vidsr.cli.main import main

    shot = str(tmp_path / "s.png")
    for args, said in [(["--threads", "-1"], "--threads"), (["--preview-height", "-5"],
                                                            "--preview-height"),
                       (["--bench", "0"], "--bench")]:
        assert main(["gui", str(clip), "--screenshot", shot, *args]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], err


def test_a_step_back_on_a_camera_does_nothing(qtbot, two_panes, clip: Path) -> None:  # noqa: ANN001
    # Left paused a live camera (and showed nothing)
    from vidsr.webcam import VideoFileSource

    win, shown = two_panes
    win.open_camera(VideoFileSource(clip, loop=True))
    qtbot.waitUntil(lambda: len(shown) >= 2, timeout=TIMEOUT)
    qtbot.keyClick(win, Qt.Key.Key_Left)
    count = len(shown)
    qtbot.waitUntil(lambda: len(shown) >= count + 2, timeout=TIMEOUT)
    assert win.worker.playing and win.play_button.text() == "Pause"


def test_a_file_as_the_camera_plays_at_its_frame_rate(qtbot, clip: Path) -> None:  # noqa: ANN001
    # a file (or file:// URL) opened as a camera played flat out: frames came as fast as the
    # CPU allowed (the worker paces sources that are not self-paced, as in the test above)
    from vidsr_gui.sources import CameraFrames

    for camera in (str(clip), clip.resolve().as_uri()):
        source = CameraFrames(camera)
        assert not source.self_paced and source.fps == 24
        source.close()


def test_a_weights_file_comes_back_with_its_scale(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    # x2 -> x3 -> x2 turned a weights-file pane into the built-in model of its family
    import shutil

    import vidsr

    mine = str(tmp_path / "mine.safetensors")
    shutil.copy(Path(vidsr.__file__).parent / "weights" / "esr-max-k7c4-x2.safetensors", mine)
    win = MainWindow([mine, "bicubic-x2", "ecbsr-x2"], device="cpu", panes=3)
    qtbot.addWidget(win)
    win.set_scale(3)
    assert win.models[:3] == ["esr-max-k7c4-x3", "bicubic-x3", "ecbsr-x3"]
    win.set_pane_model(2, "esr-tm-x3")  # changed at x3: carried to x2 as its sibling
    win.set_scale(2)
    assert win.models[:3] == [mine, "bicubic-x2", "esr-tm-x2"]
    assert win.panes[0].picker.model() == mine
    win.close()


def test_a_step_that_comes_with_a_seek_or_an_open_is_kept(qtbot, two_panes, clip: Path) -> None:  # noqa: ANN001
    # the loop took every pending command at once and did only the first: a step made while a
    # seek or an open waited was lost
    win, shown = two_panes
    with win.worker._cond:  # both pending when the loop next looks
        win.worker.open_file(str(clip))
        win.worker.step(2)
    qtbot.waitUntil(lambda: bool(shown), timeout=TIMEOUT)
    qtbot.wait(300)
    assert [f.index for f in shown] == [2]  # only the frame they end on is computed
    for seconds, step, want in ((0.25, 1, 7), (0.25, -1, 5)):
        count = len(shown)
        with win.worker._cond:
            win.worker.seek(seconds)
            win.worker.step(step)
        qtbot.waitUntil(lambda c=count: len(shown) > c, timeout=TIMEOUT)
        qtbot.wait(300)
        assert [f.index for f in shown[count:]] == [want]


def test_a_model_that_fails_to_load_is_not_reloaded_every_frame(qtbot, two_panes, clip: Path,  # noqa: ANN001
                                                                 tmp_path: Path) -> None:
    win, shown = two_panes
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    messages: list[str] = []
    win.worker.message.connect(messages.append)
    win.open_file(clip)
    qtbot.waitUntil(lambda: bool(shown), timeout=TIMEOUT)
    assert len({r.model for r in shown[-1].results}) == 2
    qtbot.waitUntil(lambda: "SR of both panes" in win.status_label.text(),  # "all 2 panes"
                    timeout=TIMEOUT)
    win.set_pane_model(1, str(bad))
    qtbot.waitUntil(lambda: win.panes[1].cost.text() == "error", timeout=TIMEOUT)
    count = len(shown)
    win.worker.play(frames=4)
    qtbot.waitUntil(lambda: len(shown) >= count + 4, timeout=TIMEOUT)
    assert sum(m.startswith(f"loading {bad}") for m in messages) == 1
    assert "not a readable safetensors file" in shown[-1].results[1].error
    # the status counts what was computed: one model, not the failed pane
    assert "SR of 1 model in 2 panes" in win.status_label.text()
    win.set_pane_model(1, win.models[0])  # the same model in both panes: computed once
    qtbot.waitUntil(lambda: not shown[-1].results[1].error, timeout=TIMEOUT)
    assert "SR of 1 model in 2 panes" in win.status_label.text()


def test_a_click_on_a_slider_track_jumps_there(qtbot, window: MainWindow, clip: Path) -> None:  # noqa: ANN001
    # the style moved the handle a page (10 of 1000) towards the click
    open_and_wait(qtbot, window, clip)
    slider = window.seek_slider
    with qtbot.waitSignal(window.frame_shown, timeout=TIMEOUT) as blocker:
        qtbot.mouseClick(slider, Qt.MouseButton.LeftButton,
                         pos=QPoint(int(slider.width() * 0.8), slider.height() // 2))
    assert 700 < slider.value() < 900
    assert blocker.args[0].time > 0.6 * window.source.duration
    wipe = window.wipe.slider
    window.set_mode("wipe")
    qtbot.mouseClick(wipe, Qt.MouseButton.LeftButton,
                     pos=QPoint(int(wipe.width() * 0.2), wipe.height() // 2))
    assert 100 < wipe.value() < 300


def test_a_file_as_the_camera_is_timed_by_its_frames(clip: Path) -> None:
    # its frames took wall-clock times: a slow model made the time label run ahead of the video
    import time

    from vidsr_gui.sources import CameraFrames

    source = CameraFrames(str(clip))
    try:
        times = []
        for _ in range(3):
            times.append(source.next().time)
            time.sleep(0.1)
        assert times == pytest.approx([0, 1 / 24, 2 / 24])
    finally:
        source.close()


def test_an_export_started_as_the_last_one_ends_is_not_refused(qtbot, window: MainWindow,  # noqa: ANN001
                                                               clip: Path, tmp_path: Path) -> None:
    # Export was enabled again at "done" while the export thread still ran, and a quick
    # click was refused with "an export is already running"
    pytest.importorskip("vidsr.pipeline")
    open_and_wait(qtbot, window, clip)
    first = window.start_export(tmp_path / "a.mp4", "bicubic-x2")
    held: list = []

    def hold_the_thread(_summary: object) -> None:  # runs in the export thread, as it ends
        assert window.exporting is False and window.export_worker.isRunning()
        held.append(True)

    first.done.connect(hold_the_thread, Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(first.done, timeout=TIMEOUT):
        pass
    second = window.start_export(tmp_path / "b.mp4", "bicubic-x2")
    with qtbot.waitSignal(second.done, timeout=TIMEOUT):
        pass
    second.wait()
    assert held == [True] and (tmp_path / "b.mp4").is_file()


def test_the_panes_leave_a_core_to_the_window(qtbot, clip: Path) -> None:  # noqa: ANN001
    # --threads reached torch only: every pane's CPU engine ran a band worker per core
    for threads, want in ((None, max(1, (os.cpu_count() or 1) - 1)), (1, 1)):
        win = MainWindow(["bicubic-x2", "esr-max-x2"], panes=2, device="cpu", threads=threads)
        qtbot.addWidget(win)
        try:
            with qtbot.waitSignal(win.frame_shown, timeout=TIMEOUT):
                win.open_file(clip)
            engines = [engine for engine, _ in win.worker._engines.values()]
            assert len(engines) == 2 and all(e.threads == want for e in engines)
        finally:
            win.close()


def test_wipe_keeps_its_picture_until_both_sides_have_one(qtbot) -> None:  # noqa: ANN001
    # a frame rendered before the right model changed has no result for it: the left model's
    # picture was shown on both sides
    from vidsr_gui.panes import WipePane
    from vidsr_gui.view import ViewState
    from vidsr_gui.worker import PaneResult

    pane = WipePane(ViewState())
    qtbot.addWidget(pane)
    a, b, a2 = (np.full((8, 12, 3), v, np.uint8) for v in (10, 200, 30))
    pane.show_results(PaneResult("x", rgb=a), PaneResult("y", rgb=b))
    pane.show_results(PaneResult("x", rgb=a2), None)
    assert pixels(pane.view.image_b)[0, 0, 0] == 200 and pixels(pane.view.image)[0, 0, 0] == 10
    pane.show_results(PaneResult("x", rgb=a2), PaneResult("z", rgb=a))
    assert pixels(pane.view.image)[0, 0, 0] == 30 and pixels(pane.view.image_b)[0, 0, 0] == 10


class _ClockCamera:
    """A live camera: frame ``i`` (every pixel ``i``) becomes available at ``i / fps`` s."""

    def __init__(self, fps: float = 100.0) -> None:
        import time

        self.size, self.fps, self._i, self._t0 = (32, 24), fps, 0, time.perf_counter()

    def read(self) -> np.ndarray:
        import time

        time.sleep(max(0.0, self._t0 + self._i / self.fps - time.perf_counter()))
        self._i += 1
        return np.full((24, 32, 3), (self._i - 1) % 256, np.uint8)

    def close(self) -> None:
        pass


def test_a_live_camera_shows_its_newest_frame_when_a_pane_is_slow() -> None:
    # read in turn, the frames a slow pane had no time for queued up in the stream: after 15 s
    # of a 25 fps MJPEG stream with a 150 ms pane the window showed the stream's frame 68 of
    # some 370 (and a pause came back as the moment it was paused)
    import time

    from vidsr_gui.sources import CameraFrames

    source = CameraFrames(_ClockCamera(100.0))
    try:
        first = source.next()
        time.sleep(0.5)  # a slow pane (or a pause): some 50 frames arrive meanwhile
        later = source.next()
        seen = round(float(later.y.mean() - 16) * 255 / 219)  # BT.601 limited range back
        assert seen >= 30, f"frame {seen} shown 0.5 s into a 100 fps camera"
        assert later.time - first.time == pytest.approx(seen / 100, abs=0.05)
        assert source.dropped >= 25
    finally:
        source.close()


def test_a_screenshot_of_a_still_image_as_the_camera(qapp, tmp_path: Path) -> None:  # noqa: ANN001
    # the still's one frame ended the camera before the warm-up frames were waited for, and
    # that end was forgotten: `vidsr gui --webcam still.png --screenshot` waited its 300 s,
    # then failed with "no frame was rendered"
    import cv2
    from vidsr_gui.offscreen import screenshot

    still, shot = tmp_path / "still.png", tmp_path / "shot.png"
    cv2.imwrite(str(still), np.full((H, W, 3), 128, np.uint8))
    win = MainWindow(device="cpu", panes=2)
    win.show()
    try:
        win.open_camera(str(still))
        assert screenshot(qapp, win, shot, 0.0, timeout=20) == 0
        assert shot.stat().st_size > 0
    finally:
        win.close()


def test_options_nothing_would_read_are_refused(qapp, clip: Path, tmp_path: Path,  # noqa: ANN001
                                                capsys: pytest.CaptureFixture,
                                                monkeypatch) -> None:  # noqa: ANN001
    # --screenshot beside --bench waited 300 s after the bench for a frame, then failed;
    # --palette or --at without a screenshot, and --at on a camera, were silently ignored
    import vidsr_gui.app
    import vidsr_gui.offscreen

    from vidsr.cli.main import main

    ran: list[str] = []
    monkeypatch.setattr(vidsr_gui.app, "_exec_until_signalled", lambda *_a: ran.append("window"))
    monkeypatch.setattr(vidsr_gui.offscreen, "bench", lambda *_a, **_k: ran.append("bench"))
    monkeypatch.setattr(vidsr_gui.offscreen, "screenshot", lambda *_a, **_k: ran.append("shot"))
    shot = str(tmp_path / "s.png")
    for args, said in [([str(clip), "--screenshot", shot, "--bench", "3"], "--bench"),
                       ([str(clip), "--palette"], "--palette"),
                       ([str(clip), "--at", "3"], "--at"),
                       (["--webcam", str(clip), "--screenshot", shot, "--at", "1"], "--at")]:
        assert main(["gui", *args, "--device", "cpu", "--panes", "2"]) == 1, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], (args, err)
    assert ran == []
    assert main(["gui", str(clip), "--bench", "3", "--at", "0.1", "--device", "cpu",
                 "--panes", "2"]) == 0
    assert ran == ["bench"]


def test_a_device_that_cannot_be_used_is_refused_at_once(qapp, clip: Path, tmp_path: Path,  # noqa: ANN001
                                                         capsys: pytest.CaptureFixture) -> None:
    # every pane said "unsupported device" and the screenshot of that was saved, status 0
    import torch

    from vidsr.cli.main import main

    shot = tmp_path / "s.png"
    devices = ["bogus", "tpu"] + ([] if torch.cuda.is_available() else ["cuda"])
    for device in devices:
        assert main(["gui", str(clip), "--screenshot", str(shot), "--device", device,
                     "--panes", "2"]) == 1, device
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "device" in err[0], err
    assert not shot.exists()


def test_an_export_that_ends_while_playing_says_so(qtbot, window: MainWindow,  # noqa: ANN001
                                                   tmp_path: Path) -> None:
    # "exported out.mp4" went into the status text, which the next frame played replaced
    from PyQt6.QtWidgets import QLabel

    clip = make_clip(tmp_path / "long.mp4", width=W, height=H, frames=480)
    open_and_wait(qtbot, window, clip)
    window.toggle_play()
    worker = window.start_export(tmp_path / "out.mp4", "bicubic-x2")
    with qtbot.waitSignal(worker.done, timeout=TIMEOUT):
        pass
    shown: list = []
    window.frame_shown.connect(shown.append)
    qtbot.waitUntil(lambda: len(shown) >= 3, timeout=TIMEOUT)
    assert window.worker.playing
    said = [label.text() for label in window.statusBar().findChildren(QLabel)
            if label.isVisible()]
    assert any("exported out.mp4" in text for text in said), said
    window.worker.pause()


class _DyingCamera(_ClockCamera):
    """A camera that stops after ``frames`` frames (unplugged, or its stream gone)."""

    def __init__(self, frames: int) -> None:
        super().__init__(100.0)
        self.frames = frames

    def read(self) -> np.ndarray | None:
        return super().read() if self._i < self.frames else None


def test_a_camera_that_stops_says_so(qtbot, two_panes) -> None:  # noqa: ANN001
    # a stream that went away mid-run said "end of video"
    win, shown = two_panes
    with qtbot.waitSignal(win.worker.ended, timeout=TIMEOUT):
        win.open_camera(_DyingCamera(3))
    qtbot.waitUntil(lambda: "stopped sending frames" in win.status_label.text(),
                    timeout=5000)
    assert "_DyingCamera" in win.status_label.text()
    assert win.play_button.text() == "Play"
