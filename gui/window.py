"""The comparison window: 2-4 panes (or a wipe view) of one source frame upscaled by different
models, transport controls, zoom/pan shared by all panes, and export."""

from __future__ import annotations

import logging
from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence, QPainter
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from .export import ExportWorker, progress_fraction, progress_text
from .export_dialog import ExportDialog, ask
from .panes import DEFAULT_PANES, Pane, WipePane, family_model, rescale
from .sources import SourceInfo
from .view import ViewState, jump_slider
from .worker import Rendered, RenderWorker

log = logging.getLogger(__name__)

VIDEO_FILTER = "Videos (*.mp4 *.mkv *.mov *.webm *.avi *.m4v *.ts *.y4m);;All files (*)"


def _time(seconds: float) -> str:
    m, s = divmod(max(seconds, 0.0), 60)
    return f"{int(m)}:{s:05.2f}"


class ElidedLabel(QLabel):
    """A one-line label that shows what fits with "…" at the end (the whole text in its
    tooltip) and never makes the window wider."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.setMinimumWidth(40)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        super().setText(text)
        self.setToolTip(text)

    def paintEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        painter = QPainter(self)
        shown = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight,
                                              self.contentsRect().width())
        painter.drawText(self.contentsRect(), int(self.alignment()), shown)


class MainWindow(QMainWindow):
    """vidsr's comparison window. ``frame_shown`` fires after the panes show a new render."""

    frame_shown = pyqtSignal(object)
    export_started = pyqtSignal(object)  # the ExportWorker, just before it starts

    def __init__(self, models: list[str] | None = None, scale: int = 2, panes: int = 4,
                 device: str = "auto", max_height: int | None = None,
                 threads: int | None = None) -> None:
        super().__init__()
        self.setWindowTitle("vidsr — compare super-resolution models")
        self.scale = scale
        self.device = device
        models = list(models or [family_model(f, scale) for f in DEFAULT_PANES])
        given = min(len(models), 4)  # the wipe compares the first and last of these
        while len(models) < 4:
            models.append(family_model(DEFAULT_PANES[len(models)], scale))
        self.models = [rescale(m, scale) for m in models[:4]]
        self.wipe_models = [self.models[0], self.models[max(given, 2) - 1]]
        self._at_scale: dict[int, tuple[list[str], list[str]]] = {}  # the models at each scale
        self.pane_count = max(2, min(4, panes))
        self.mode = "grid"
        self.source: SourceInfo | None = None
        self.source_path: Path | None = None
        self.last: Rendered | None = None
        self._shown_at = 0.0  # seconds: the current source's frame on screen
        self.export_worker: ExportWorker | None = None
        self.errors: list[str] = []  # every error shown, in order (the offscreen runs read it)
        self.force_close = False  # set: closing stops a running export without asking
        self._error_box: QMessageBox | None = None

        self.state = ViewState()
        self.worker = RenderWorker(self._active_models(), device, max_height, threads)
        self.worker.opened.connect(self._on_opened)
        self.worker.rendered.connect(self._on_rendered)
        self.worker.playing_changed.connect(self._on_playing)
        self.worker.message.connect(self._status)
        self.worker.failed.connect(self.show_error)
        # a seek that fails (corrupt data there) shows no frame: the handle goes back to the
        # frame on screen, not left where it was clicked
        self.worker.failed.connect(lambda _text: self._show_position())

        self._build_toolbar()
        self._build_central()
        self._build_statusbar()
        self._refill_pickers()
        self._layout_panes()
        # The keys (Space, arrows, W, F, 1) act on the picture: it has the focus at the start,
        # and a click on it takes it back from a toolbar box, which would eat them.
        for view in [p.view for p in self.panes] + [self.wipe.view]:
            view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        for box in (self.camera_index, self.scale_box, self.count_box):
            box.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.panes[0].view.setFocus()
        self.worker.start()

    # -- construction -----------------------------------------------------------------------
    def _build_toolbar(self) -> None:
        bar = QToolBar("main")
        bar.setMovable(False)
        self.addToolBar(bar)
        act = QAction("Open…", self, shortcut=QKeySequence.StandardKey.Open)
        act.triggered.connect(self._choose_file)
        bar.addAction(act)
        bar.addWidget(QLabel(" camera "))
        # an index, a device path or a stream URL, as `vidsr webcam --camera` takes
        self.camera_index = QComboBox()
        self.camera_index.setEditable(True)
        self.camera_index.addItems([str(i) for i in range(10)])
        self.camera_index.setMinimumContentsLength(4)
        self.camera_index.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.camera_index.setToolTip("a camera index, a device path (/dev/video2) or a stream "
                                     "URL (rtsp://…); Enter opens it")
        self.camera_index.lineEdit().returnPressed.connect(self._open_chosen_camera)
        bar.addWidget(self.camera_index)
        act = QAction("Open camera", self)
        act.triggered.connect(self._open_chosen_camera)
        bar.addAction(act)
        bar.addSeparator()
        bar.addWidget(QLabel(" scale "))
        self.scale_box = QComboBox()
        self.scale_box.addItems(["x2", "x3", "x4"])
        self.scale_box.setCurrentText(f"x{self.scale}")
        self.scale_box.currentTextChanged.connect(lambda t: self.set_scale(int(t[1:])))
        bar.addWidget(self.scale_box)
        bar.addWidget(QLabel(" panes "))
        self.count_box = QComboBox()
        self.count_box.addItems(["2", "3", "4"])
        self.count_box.setCurrentText(str(self.pane_count))
        self.count_box.currentTextChanged.connect(lambda t: self.set_pane_count(int(t)))
        bar.addWidget(self.count_box)
        self.wipe_action = QAction("Wipe", self, checkable=True, shortcut="W")
        self.wipe_action.toggled.connect(lambda on: self.set_mode("wipe" if on else "grid"))
        bar.addAction(self.wipe_action)
        bar.addSeparator()
        act = QAction("Fit", self, shortcut="F")
        act.triggered.connect(self.state.set_fit)
        bar.addAction(act)
        act = QAction("1:1", self, shortcut="1")
        act.triggered.connect(lambda: self.state.set_zoom(1.0))
        bar.addAction(act)
        self.zoom_label = QLabel(" zoom: fit ")
        self.zoom_label.setMinimumWidth(self.zoom_label.fontMetrics().horizontalAdvance(
            " zoom: 1600% "))
        bar.addWidget(self.zoom_label)
        self.state.changed.connect(self._on_view_changed)
        bar.addSeparator()
        self.export_action = QAction("Export…", self)
        self.export_action.triggered.connect(self._choose_export)
        bar.addAction(self.export_action)

    def _build_central(self) -> None:
        self.panes = [Pane(i, self.state) for i in range(4)]
        for pane in self.panes:
            pane.model_changed.connect(self.set_pane_model)
        self.grid = QWidget()
        self.grid_layout = QGridLayout(self.grid)
        self.grid_layout.setContentsMargins(0, 0, 0, 0)
        self.grid_layout.setSpacing(3)
        self.wipe = WipePane(self.state)
        self.wipe.model_changed.connect(self.set_wipe_model)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.grid)
        self.stack.addWidget(self.wipe)

        self.play_button = QPushButton("Play")
        self.play_button.clicked.connect(self.toggle_play)
        back = self.back_button = QPushButton("◀ frame")
        back.clicked.connect(lambda: self.worker.step(-1))
        fwd = QPushButton("frame ▶")
        fwd.clicked.connect(lambda: self.worker.step(1))
        self.seek_slider = jump_slider()
        self.seek_slider.sliderReleased.connect(self._on_seek_released)
        # a click on the track or a key moves the handle without a drag: seek there too
        self.seek_slider.valueChanged.connect(
            lambda _v: None if self.seek_slider.isSliderDown() else self._on_seek_released())
        self.time_label = QLabel("0:00.00 / 0:00.00")
        self.time_label.setStyleSheet("font-family: monospace;")
        transport = QHBoxLayout()
        for w in (self.play_button, back, fwd):
            transport.addWidget(w)
        transport.addWidget(self.seek_slider, 1)
        transport.addWidget(self.time_label)
        for key, slot in (("Space", self.toggle_play), ("Right", lambda: self.worker.step(1)),
                          ("Left", lambda: self.worker.step(-1))):
            act = QAction(self, shortcut=key)
            act.triggered.connect(slot)
            self.addAction(act)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.stack, 1)
        layout.addLayout(transport)
        self.setCentralWidget(central)

    def _build_statusbar(self) -> None:
        self.status_label = ElidedLabel("open a video file or a camera")
        self.source_label = QLabel("")
        self.export_bar = QProgressBar()
        # wide enough for "frame 1234/5678 · 12.3 fps · ETA 1:23" on one line
        self.export_bar.setMinimumWidth(self.export_bar.fontMetrics().horizontalAdvance(
            "frame 00000/00000 · 000.0 fps · ETA 00:00:00") + 24)
        self.export_cancel = QPushButton("Cancel export")
        self.export_cancel.clicked.connect(self.cancel_export)
        # how the last export ended, kept in view: in the status text the next frame played
        # replaced it at once, and an export finished without a word while the video played
        self.export_note = QLabel("")
        bar = self.statusBar()
        bar.addWidget(self.status_label, 1)
        bar.addPermanentWidget(self.source_label)
        bar.addPermanentWidget(self.export_note)
        bar.addPermanentWidget(self.export_bar)
        bar.addPermanentWidget(self.export_cancel)
        self.export_bar.hide()
        self.export_cancel.hide()
        self.export_note.hide()

    # -- layout and models ------------------------------------------------------------------
    def _active_models(self) -> list[str]:
        return list(self.wipe_models) if self.mode == "wipe" else self.models[:self.pane_count]

    def _columns(self) -> int:
        """Grid columns for the panes: 2 for 2 and 4; for 3, one row or two rows (a cell
        left empty), whichever shows the source larger in the window's current shape."""
        if self.pane_count != 3:
            return 2
        w, h = max(self.stack.width(), 1), max(self.stack.height(), 1)
        sw, sh = self.source.preview_size if self.source else (16, 9)
        if self.source:
            sw *= self.source.pixel_aspect  # an anamorphic picture is shown wider

        def fitted(cols: int) -> float:
            rows = -(-3 // cols)
            return min(w / cols / sw, h / rows / sh)

        return 3 if fitted(3) >= fitted(2) else 2

    def resizeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        super().resizeEvent(event)
        if self.pane_count == 3 and self._columns() != getattr(self, "_cols", None):
            self._layout_panes()

    def _layout_panes(self) -> None:
        for pane in self.panes:
            self.grid_layout.removeWidget(pane)
            pane.hide()
        cols = self._cols = self._columns()
        for i in range(self.pane_count):
            self.grid_layout.addWidget(self.panes[i], i // cols, i % cols)
            self.panes[i].show()

    def _refill_pickers(self) -> None:
        for pane, model in zip(self.panes, self.models, strict=True):
            pane.picker.fill(self.scale, model)
        for picker, model in zip(self.wipe.pickers, self.wipe_models, strict=True):
            picker.fill(self.scale, model)

    def _send_models(self) -> None:
        self.worker.set_models(self._active_models())

    def set_pane_model(self, index: int, model: str) -> None:
        """Show ``model`` in pane ``index`` (only that pane is recomputed)."""
        self.models[index] = model
        if self.panes[index].picker.model() != model:
            self.panes[index].picker.fill(self.scale, model)
        self._send_models()

    def set_wipe_model(self, side: int, model: str) -> None:
        self.wipe_models[side] = model
        if self.wipe.pickers[side].model() != model:
            self.wipe.pickers[side].fill(self.scale, model)
        self._send_models()

    def set_scale(self, scale: int) -> None:
        if scale == self.scale:
            return
        self._at_scale[self.scale] = (list(self.models), list(self.wipe_models))
        before, self.scale = self.scale, scale
        earlier = self._at_scale.get(scale)

        def moved(current: list[str], had: list[str] | None) -> list[str]:
            # a pane not changed since it was at this scale gets back what it had there (a
            # weights file has one scale: x2 -> x3 -> x2 brings the file back, not its sibling)
            return [old if old is not None and rescale(old, before) == m else rescale(m, scale)
                    for m, old in zip(current, had or [None] * len(current), strict=True)]

        self.models = moved(self.models, earlier and earlier[0])
        self.wipe_models = moved(self.wipe_models, earlier and earlier[1])
        self.scale_box.setCurrentText(f"x{scale}")
        self._refill_pickers()
        self._send_models()

    def set_pane_count(self, count: int) -> None:
        self.pane_count = max(2, min(4, count))
        self.count_box.setCurrentText(str(self.pane_count))
        self._layout_panes()
        self._send_models()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.wipe_action.setChecked(mode == "wipe")
        self.stack.setCurrentWidget(self.wipe if mode == "wipe" else self.grid)
        self._send_models()

    # -- sources and transport --------------------------------------------------------------
    def open_file(self, path: str | Path) -> None:
        """Open a video file; what is on screen stays until it has opened."""
        self.worker.open_file(str(path))

    def open_camera(self, index_or_source: object) -> None:
        self.worker.open_camera(index_or_source)

    def _open_chosen_camera(self) -> None:
        text = self.camera_index.currentText().strip()
        if text:
            self.open_camera(int(text) if text.isdecimal() else text)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", "", VIDEO_FILTER)
        if path:
            self.open_file(path)

    def toggle_play(self) -> None:
        if self.source is None:
            return
        if self.worker.playing:
            self.worker.pause()
        else:
            self.worker.play()
        self._on_playing(self.worker.playing)

    def seek(self, seconds: float) -> None:
        self.worker.seek(seconds)

    def _on_seek_released(self) -> None:
        if self.source is not None and self.source.duration:
            self.seek(self.seek_slider.value() / 1000 * self.source.duration)

    def _on_playing(self, playing: bool) -> None:
        self.play_button.setText("Pause" if playing else "Play")

    def _on_opened(self, info: SourceInfo) -> None:
        self.source = info
        self.source_path = Path(info.path) if info.path else None
        self.state.set_pixel_aspect(info.pixel_aspect)
        if self.pane_count == 3:  # the best grid depends on the picture's shape
            self._layout_panes()
        shrink = "" if info.preview_size == info.size else \
            f" (preview {info.preview_size[0]}x{info.preview_size[1]})"
        shown = "" if info.display_size == info.size else \
            f" shown {info.display_size[0]}x{info.display_size[1]}"  # anamorphic
        self.source_label.setText(f"{info.label}: {info.size[0]}x{info.size[1]}{shown}{shrink} "
                                  f"@ {info.fps:.3g} fps")
        # a new source starts at its start; a still image or a raw stream has no length to
        # seek along (the handle stayed where the last video had been, and moved nothing)
        self._shown_at = 0.0
        self.seek_slider.blockSignals(True)
        self.seek_slider.setValue(0)
        self.seek_slider.blockSignals(False)
        self.seek_slider.setEnabled(info.seekable and bool(info.duration))
        self.back_button.setEnabled(info.seekable)  # a camera has no frame before this one
        self.export_action.setEnabled(info.seekable and not self.exporting)

    def _on_rendered(self, frame: Rendered) -> None:
        self.last = frame
        by_model = {r.model: r for r in frame.results}
        if self.mode == "wipe":
            self.wipe.show_results(by_model.get(self.wipe_models[0]),
                                   by_model.get(self.wipe_models[1]))
        else:
            for pane, model in zip(self.panes[:self.pane_count], self.models, strict=False):
                if model in by_model:
                    pane.show_result(by_model[model])
        duration = self.source.duration if self.source else None
        self._shown_at = frame.time
        self._show_position()
        if duration:
            self.time_label.setText(f"{_time(frame.time)} / {_time(duration)}")
        else:
            self.time_label.setText(_time(frame.time))
        # a model in several panes is computed once a frame; a pane showing an error costs none
        computed = {r.model: r for r in frame.results if not r.error}.values()
        sr_ms = sum(r.ms_avg or r.ms for r in computed)
        shown = f" · shown at {frame.display_fps:.1f} fps" if frame.display_fps else ""
        panes = len(frame.results)
        which = ("both panes" if len(computed) == panes == 2 else "the pane" if
                 len(computed) == panes == 1 else f"all {panes} panes" if len(computed) == panes
                 else f"{len(computed)} model{'s' if len(computed) != 1 else ''} "
                      f"in {panes} panes")
        self.status_label.setText(f"frame {frame.index} · SR of {which} "
                                  f"{sr_ms:.0f} ms/frame{shown}")
        self.frame_shown.emit(frame)

    def _show_position(self) -> None:
        """Put the seek handle at the frame on screen (unless it is being dragged)."""
        duration = self.source.duration if self.source else None
        if duration and not self.seek_slider.isSliderDown():
            self.seek_slider.blockSignals(True)  # showing the position is not a seek
            self.seek_slider.setValue(round(self._shown_at / duration * 1000))
            self.seek_slider.blockSignals(False)

    def _on_view_changed(self) -> None:
        view = (self.wipe if self.mode == "wipe" else self.panes[0]).view
        self.zoom_label.setText(" zoom: fit " if self.state.fit
                                else f" zoom: {view.zoom() * 100:.0f}% ")

    # -- messages -----------------------------------------------------------------------------
    def _status(self, text: str) -> None:
        self.status_label.setText(text)

    def show_error(self, text: str) -> None:
        """Show an error without blocking: status text plus a non-modal message box (one box:
        a new error replaces the text of one still open)."""
        self.errors.append(text)
        self.status_label.setText(f"error: {text}")
        if self._error_box is None:  # one box for the window's life, hidden when dismissed
            self._error_box = QMessageBox(QMessageBox.Icon.Warning, "vidsr", text, parent=self)
            self._error_box.setWindowModality(Qt.WindowModality.NonModal)
        self._error_box.setText(text)
        self._error_box.show()

    # -- export -------------------------------------------------------------------------------
    def _choose_export(self) -> None:
        if self.source_path is None:
            self.show_error("export needs a video file as the source")
            return
        if self.exporting:
            self.show_error("an export is already running; cancel it or wait for it to finish")
            return
        dialog = ExportDialog(self, self.source_path, self.scale, self._active_models())
        if dialog.exec():
            self.start_export(dialog.output(), dialog.model())

    def start_export(self, dst: str | Path, model: str) -> ExportWorker:
        """Upscale the open file to ``dst`` with ``model`` in the background."""
        if self.exporting:
            raise RuntimeError("an export is already running")
        if self.source_path is None:
            raise RuntimeError("export needs a video file as the source")
        if self.export_worker is not None:  # ended, its thread closing: let it go first
            self.export_worker.wait()
        worker = ExportWorker(self.source_path, dst, model, self.device)
        worker.progress.connect(self._on_export_progress)
        worker.done.connect(lambda s: self._export_finished(f"exported {Path(dst).name}"))
        worker.failed.connect(lambda m: (self._export_finished(""), self.show_error(m)))
        worker.cancelled.connect(
            lambda: self._export_finished("export cancelled; partial output removed"))
        self.export_worker = worker
        self.export_note.hide()
        self.export_bar.setRange(0, 0)
        self.export_bar.setToolTip(f"exporting {dst} with {model}")
        self.export_bar.show()
        self.export_cancel.show()
        self.export_action.setEnabled(False)
        self._status(f"exporting {Path(dst).name} with {model}…")
        self.export_started.emit(worker)
        worker.start()
        return worker

    def cancel_export(self) -> None:
        if self.export_worker is not None:
            self.export_worker.cancel()
            self._status("cancelling export…")

    def _on_export_progress(self, progress: object) -> None:
        fraction = progress_fraction(progress)
        if fraction is not None:
            self.export_bar.setRange(0, 1000)
            self.export_bar.setValue(round(fraction * 1000))
        self.export_bar.setFormat(progress_text(progress))
        self.export_bar.setTextVisible(True)

    def _export_finished(self, text: str) -> None:
        self.export_bar.hide()
        self.export_cancel.hide()
        self.export_action.setEnabled(self.source_path is not None)
        self.export_note.setText(text)
        self.export_note.setVisible(bool(text))
        if text:
            self._status(text)

    # -- shutdown -----------------------------------------------------------------------------
    @property
    def exporting(self) -> bool:
        """An export runs and has not said how it ended (Export is enabled again once it has,
        while its thread may take a moment more to close)."""
        return (self.export_worker is not None and self.export_worker.isRunning()
                and not self.export_worker.ended)

    def confirm_stop_export(self) -> bool:
        """Ask whether closing may stop the running export (its partial file is removed)."""
        return ask(self, "An export is still running. Stop it (the partial file is removed) "
                   "and close?")

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        if self.exporting:
            if not self.force_close and not self.confirm_stop_export():
                event.ignore()
                return
            self.export_worker.cancel()
        # closing: off the screen at once, not a window frozen while the threads stop (a long
        # frame or a slow export's end can take seconds); an error box open over it goes too
        if self._error_box is not None:
            self._error_box.hide()
        self.hide()
        if self.export_worker is not None:
            self.export_worker.wait()  # the pipeline stops after the frame in hand
        self.worker.stop()
        super().closeEvent(event)
