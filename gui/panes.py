"""Comparison panes: a model picker, the model's measured cost, and a synchronised image view."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from vidsr.api import is_weights_path, resolve_spec
from vidsr.errors import VidsrError
from vidsr.registry import DEFAULTS, FAMILIES, ModelSpec, parse_name
from vidsr.weights import is_untrained, manifest

from .view import ImageView, ViewState, jump_slider
from .worker import PaneResult

# Order in the pickers: cheapest first, bicubic as the reference.
PICKER_FAMILIES = ("bicubic", "esr-max", "esr-tm", "esr-tr", "esr-cnn", "ecbsr")
DEFAULT_PANES = ("bicubic", "esr-max", "esr-tm", "ecbsr")
assert set(PICKER_FAMILIES) == set(FAMILIES)


def family_model(family: str, scale: int) -> str:
    """The name a picker uses for a family's default model at ``scale``."""
    return f"bicubic-x{scale}" if family == "bicubic" else f"{family}-x{scale}"


def model_choices(scale: int) -> list[tuple[str, str, bool]]:
    """``(model, canonical name, untrained)`` for every picker entry at ``scale``: each
    family's default model, then any other shipped weights of that scale."""
    entries = []
    for family in PICKER_FAMILIES:
        spec = ModelSpec(family, scale, dict(DEFAULTS[family]))
        entries.append((family_model(family, scale), spec))
    listed = {spec.name for _, spec in entries}
    for name in sorted(manifest()):
        spec = parse_name(name)
        if spec.scale == scale and name not in listed:
            entries.append((name, spec))
    return [(model, spec.name, is_untrained(spec)) for model, spec in entries]


def untrained_model(model: str) -> bool:
    """Whether ``model`` runs untrained, as its pane's badge will say: a name without shipped
    weights (a weights file is trained; a name that is no model is not marked, its pane says
    what is wrong)."""
    if is_weights_path(model):
        return False
    try:
        return is_untrained(resolve_spec(model))
    except VidsrError:
        return False


def rescale(model: str, scale: int) -> str:
    """The same model family and size at another scale (a weights file: its own scale's
    built-in sibling, since the file has one scale only)."""
    spec = resolve_spec(model)
    if is_weights_path(model):
        return model if spec.scale == scale else ModelSpec(spec.family, scale,
                                                           dict(spec.arch)).name
    other = ModelSpec(spec.family, scale, dict(spec.arch))
    return other.alias or other.name if model == spec.alias else other.name


class ModelPicker(QComboBox):
    """A combo box of the models available at one scale."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)

    def fill(self, scale: int, current: str) -> None:
        self.blockSignals(True)
        self.clear()
        names = []
        for model, name, untrained in model_choices(scale):
            self._add(name, model, untrained)
            names.append(name)
        index = self.findData(current)
        if index < 0 and not is_weights_path(current):  # a full name for a listed alias
            try:
                canonical = resolve_spec(current).name
            except VidsrError:  # not a model: listed as given, its pane shows the error
                canonical = ""
            index = names.index(canonical) if canonical in names else -1
        if index < 0:  # e.g. another scale's model, carried here without weights at this one
            self._add(current, current, untrained_model(current))
            index = self.count() - 1
        self.setCurrentIndex(index)
        self.blockSignals(False)

    def _add(self, text: str, model: str, untrained: bool) -> None:
        # marked as the pane's badge marks it: every untrained entry, listed or not
        self.addItem(f"{text} (untrained)" if untrained else text, model)
        if untrained:
            self.setItemData(self.count() - 1, "untrained: no shipped weights yet",
                             Qt.ItemDataRole.ToolTipRole)

    def model(self) -> str:
        return str(self.currentData())


COST_TIP = ("this model's luma SR + chroma upscale per frame (running average) and the frame "
            "rate that alone would allow; the rate shown with every pane computed is in the "
            "status bar")


def cost_text(result: PaneResult) -> str:
    """``12.3 ms/frame · 81.3 fps`` from a pane's running average."""
    if result.error:
        return "error"
    ms = result.ms_avg or result.ms
    fps = 1000.0 / ms if ms > 0 else 0.0
    return f"{ms:6.1f} ms/frame · {fps:6.1f} fps"


class Pane(QFrame):
    """One model's view: header (picker, name, ms/frame, fps, untrained badge) over an image."""

    model_changed = pyqtSignal(int, str)

    def __init__(self, index: int, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.picker = ModelPicker()
        self.picker.currentIndexChanged.connect(
            lambda _i: self.model_changed.emit(self.index, self.picker.model()))
        self.badge = QLabel("untrained")
        self.badge.setStyleSheet("background: #8a5a00; color: white; padding: 1px 5px;"
                                 " border-radius: 3px;")
        self.badge.setToolTip("no trained weights are shipped for this model yet: it runs with "
                              "a random initialisation, so its picture means nothing; its cost "
                              "is real")
        self.badge.hide()
        self.cost = QLabel("")
        self.cost.setStyleSheet("font-family: monospace;")
        self.cost.setToolTip(COST_TIP)
        self.cost.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        head = QHBoxLayout()
        head.setContentsMargins(4, 2, 4, 2)
        head.addWidget(self.picker)
        head.addWidget(self.badge)
        head.addStretch(1)
        head.addWidget(self.cost)
        self.view = ImageView(state)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addLayout(head)
        layout.addWidget(self.view, 1)

    def show_result(self, result: PaneResult) -> None:
        if result.error:
            self.badge.setVisible(False)  # an earlier untrained model's badge goes with it
            self.view.set_images(None)
            self.view.placeholder = result.error
            self.cost.setText("error")
            self.setToolTip(result.error)
            return
        self.badge.setVisible(result.untrained)
        self.cost.setText(cost_text(result))
        self.setToolTip(f"{result.name} on {result.backend or 'its engine'}")
        if result.rgb is not None:
            self.view.set_images(result.rgb)


class WipePane(QFrame):
    """Two models in one view, split by a line that the slider or a drag moves."""

    model_changed = pyqtSignal(int, str)  # side (0 left, 1 right), model

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.pickers = (ModelPicker(), ModelPicker())
        self.costs = (QLabel(""), QLabel(""))
        head = QHBoxLayout()
        head.setContentsMargins(4, 2, 4, 2)
        for side, (picker, cost) in enumerate(zip(self.pickers, self.costs, strict=True)):
            picker.currentIndexChanged.connect(
                lambda _i, s=side: self.model_changed.emit(s, self.pickers[s].model()))
            cost.setStyleSheet("font-family: monospace;")
            if side == 1:
                head.addStretch(1)
                head.addWidget(QLabel("right:"))
            else:
                head.addWidget(QLabel("left:"))
            head.addWidget(picker)
            head.addWidget(cost)
        self.view = ImageView(state)
        self.slider = jump_slider()
        self.slider.setValue(500)
        self.slider.valueChanged.connect(lambda v: self.view.set_split(v / 1000))
        self.view.split_changed.connect(self._sync_slider)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addLayout(head)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.slider)

    def _sync_slider(self, fraction: float) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(round(fraction * 1000))
        self.slider.blockSignals(False)

    def models(self) -> list[str]:
        return [p.model() for p in self.pickers]

    def show_results(self, left: PaneResult | None, right: PaneResult | None) -> None:
        for cost, result in zip(self.costs, (left, right), strict=True):
            if result is not None:
                badge = "  (untrained)" if result.untrained else ""
                cost.setText(cost_text(result) + badge)
                cost.setToolTip(result.error or COST_TIP)
        failed = [r for r in (left, right) if r is not None and r.error]
        if failed:  # say why instead of keeping the previous picture
            self.view.set_images(None)
            self.view.placeholder = "\n".join(f"{r.model}: {r.error}" for r in failed)
            self.view.update()
            return
        images = [r.rgb if r is not None else None for r in (left, right)]
        # a frame rendered before a side's model changed has no result for the new one: the
        # last picture stays until one with both comes (it showed the left model on both sides)
        if images[0] is not None and images[1] is not None:
            self.view.set_images(images[0], images[1])
