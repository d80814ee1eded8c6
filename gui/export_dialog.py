"""The "Export…" dialog: which model, and where the upscaled video goes."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QWidget,
)

from vidsr.api import is_weights_path, resolve_spec
from vidsr.errors import OutputError, VidsrError
from vidsr.pipeline import check_video_output

from .panes import ModelPicker, untrained_model


def default_output(src: Path, model: str) -> Path:
    """``clip.mp4`` -> ``clip_<model>.mp4`` beside it (mp4 unless the source is mkv/mov); a
    weights file's stem stands for the model (``clip_mine.mp4`` for ``mine.safetensors``)."""
    suffix = src.suffix if src.suffix.lower() in (".mp4", ".mkv", ".mov") else ".mp4"
    try:
        name = Path(model).stem if is_weights_path(model) else resolve_spec(model).name
    except VidsrError:  # not a model (its pane shows why): named as given
        name = Path(model).name
    return src.with_name(f"{src.stem}_{name}{suffix}")


def ask(parent: QWidget | None, question: str) -> bool:
    """A Yes/No question, No the default; True for Yes."""
    answer = QMessageBox.question(parent, "vidsr", question,
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


class ExportDialog(QDialog):
    """Pick a model (default: the first model shown) and an output file."""

    def __init__(self, parent: QWidget | None, src: Path, scale: int, models: list[str]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export upscaled video")
        self.src = src
        self.picker = ModelPicker()
        # Bicubic is the reference, not usually what one exports: prefer the first SR model.
        preferred = next((m for m in models if not m.startswith("bicubic")), models[0])
        self.picker.fill(scale, preferred)
        self._default = str(default_output(src, preferred))  # what the model picked
        self.path = QLineEdit(self._default)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.note = QLabel("")
        # why the output cannot be written, shown in the dialog (it stays open to fix the name)
        self.problem = QLabel("")
        self.problem.setStyleSheet("color: #b00020;")
        self.problem.setWordWrap(True)
        self.problem.hide()
        self.picker.currentIndexChanged.connect(self._model_changed)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("Source", QLabel(str(src)))
        form.addRow("Model", self.picker)
        form.addRow("Output", row)
        form.addRow("", self.problem)
        form.addRow("", self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.path.textChanged.connect(lambda t: self.ok.setEnabled(bool(t.strip())))
        self.path.textChanged.connect(lambda _t: self._show_problem(""))  # being fixed
        self.path.setMinimumWidth(self.path.fontMetrics().horizontalAdvance("x" * 60))
        form.addRow(buttons)
        self._model_changed()

    def accept(self) -> None:  # noqa: D102 - QDialog override
        out = self.output()
        if not self.path.text().strip():
            return
        # the export's own check (container, folder, the input itself), made here: refused
        # after the dialog had closed, everything chosen in it had to be entered again
        try:  # an existing file is asked about below, as --overwrite
            check_video_output(self.src, out, overwrite=True)
        except OutputError as exc:
            self._show_problem(str(exc))
            return
        if out.exists() and not out.is_dir() and not self.confirm_replace(out):
            return  # back to the dialog to pick another name
        super().accept()

    def _show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.setVisible(bool(text))

    def confirm_replace(self, out: Path) -> bool:
        """Ask before an existing file is replaced (as the command line's --overwrite)."""
        return ask(self, f"{out.name} exists in {out.parent}. Replace it?")

    def _model_changed(self) -> None:
        model = self.model()
        # the name follows the model while it is the one the model gave; a name typed or
        # browsed to stays (another model replaced it with the default beside the source)
        default = str(default_output(self.src, model))
        if self.path.text().strip() in ("", self._default):
            self.path.setText(default)
        self._default = default
        self.note.setText("this model has no trained weights yet (random initialisation)"
                          if untrained_model(model) else "")

    def _browse(self) -> None:
        # the file dialog asks about an existing file itself; accept() would ask again
        path, _ = QFileDialog.getSaveFileName(
            self, "Export to", self.path.text(), "Videos (*.mp4 *.mkv *.mov)",
            options=QFileDialog.Option.DontConfirmOverwrite)
        if path:
            self.path.setText(path)

    def model(self) -> str:
        return self.picker.model()

    def output(self) -> Path:
        return Path(self.path.text())
