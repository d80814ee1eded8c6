"""Image views that share one zoom/pan state, so every pane shows the same region.

``ViewState`` holds the zoom (screen pixels per image pixel) and the image point at the view's
centre, or "fit to window". ``ImageView`` paints one image (or, in wipe mode, two images split
by a movable line) through that state; wheel zooms about the cursor, dragging pans.
"""

from __future__ import annotations

import cv2
import numpy as np
from PyQt6.QtCore import QObject, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QWheelEvent
from PyQt6.QtWidgets import QProxyStyle, QSizePolicy, QSlider, QStyle, QWidget


class _JumpStyle(QProxyStyle):
    """A left click on a slider's track puts the handle there (and starts a drag), as a
    player's seek bar does; the platform styles (Fusion included) move it a page instead."""

    def styleHint(self, hint, option=None, widget=None, returnData=None):  # noqa: ANN001, ANN201, N802, N803
        if hint == QStyle.StyleHint.SH_Slider_AbsoluteSetButtons:
            return Qt.MouseButton.LeftButton.value
        return super().styleHint(hint, option, widget, returnData)


def jump_slider(parent: QWidget | None = None) -> QSlider:
    """A horizontal 0-1000 slider whose track jumps to a click."""
    slider = QSlider(Qt.Orientation.Horizontal, parent)
    style = _JumpStyle()
    style.setParent(slider)  # kept alive, and freed, with the slider
    slider.setStyle(style)
    slider.setRange(0, 1000)
    return slider

MIN_ZOOM, MAX_ZOOM = 1 / 16, 32.0


def wrap_qimage(rgb: np.ndarray) -> QImage:
    """A QImage over a C-contiguous ``H x W x 3`` uint8 RGB array, without a copy: the caller
    keeps the array alive as long as the image is used."""
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, rgb.strides[0], QImage.Format.Format_RGB888)


class ViewState(QObject):
    """Zoom and pan shared by all panes. ``center`` is in image pixels; ``fit`` overrides zoom
    by fitting the whole image into each view. ``pixel_aspect`` stretches the image's width
    for display (anamorphic video: a pixel ``pixel_aspect`` times as wide as high); the zoom
    counts screen pixels per image pixel vertically."""

    changed = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        self.fit = True
        self.zoom = 1.0
        self.center = QPointF(0.0, 0.0)
        self.image_size: tuple[int, int] = (0, 0)
        self.pixel_aspect = 1.0

    def set_pixel_aspect(self, aspect: float) -> None:
        aspect = float(aspect) if aspect > 0 else 1.0
        if aspect != self.pixel_aspect:
            self.pixel_aspect = aspect
            self.changed.emit()

    def set_image_size(self, w: int, h: int) -> None:
        if (w, h) != self.image_size:
            ow, oh = self.image_size
            # the same part of the picture stays in view: another scale (x2 -> x4) makes the
            # same frame bigger, and resetting to the middle lost a zoomed-in detail
            self.center = QPointF(self.center.x() * w / ow, self.center.y() * h / oh) \
                if ow and oh else QPointF(w / 2, h / 2)
            self.image_size = (w, h)
            self.center = self._clamped(self.center)
            self.changed.emit()

    def effective_zoom(self, view_w: float, view_h: float) -> float:
        """Screen pixels per image pixel (``view_w``, ``view_h``: the view in screen pixels)."""
        w, h = self.image_size
        if self.fit and w and h:
            return max(min(view_w / (w * self.pixel_aspect), view_h / h), 1e-3)
        return self.zoom

    def set_fit(self) -> None:
        w, h = self.image_size
        self.fit = True
        self.center = QPointF(w / 2, h / 2)
        self.changed.emit()

    def set_zoom(self, zoom: float, anchor_image: QPointF | None = None,
                 anchor_offset: QPointF | None = None) -> None:
        """Set the zoom (screen pixels per image pixel: 1 is 1:1), keeping ``anchor_image`` (an
        image point) at ``anchor_offset`` (its offset from the view centre in screen pixels)
        when both are given."""
        self.fit = False
        self.zoom = float(np.clip(zoom, MIN_ZOOM, MAX_ZOOM))
        if anchor_image is not None and anchor_offset is not None:
            self.center = self._clamped(QPointF(
                anchor_image.x() - anchor_offset.x() / (self.zoom * self.pixel_aspect),
                anchor_image.y() - anchor_offset.y() / self.zoom))
        self.changed.emit()

    def pan(self, dx_screen: float, dy_screen: float, zoom: float) -> None:
        if self.fit:
            self.fit, self.zoom = False, zoom
        zx = zoom * self.pixel_aspect
        self.center = self._clamped(QPointF(self.center.x() - dx_screen / zx,
                                            self.center.y() - dy_screen / zoom))
        self.changed.emit()

    def _clamped(self, c: QPointF) -> QPointF:
        """``c`` kept on the image: panning stops with an edge at the views' centre instead of
        dragging the picture out of sight."""
        w, h = self.image_size
        return QPointF(min(max(c.x(), 0.0), float(w)), min(max(c.y(), 0.0), float(h)))


class ImageView(QWidget):
    """Paints an image through a shared ``ViewState``; with a second image, a wipe view."""

    split_changed = pyqtSignal(float)

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.image: QImage | None = None
        self.image_b: QImage | None = None
        self._arrays: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        self._scaled: dict[tuple[int, int, int], tuple[np.ndarray, QImage]] = {}
        self.split = 0.5  # wipe position as a fraction of the view's width
        self.placeholder = "no frame yet"
        self._drag: QPointF | None = None
        self._dragging_split = False
        self.setMinimumSize(80, 60)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        state.changed.connect(self.update)

    def set_images(self, a: np.ndarray | None, b: np.ndarray | None = None) -> None:
        """Show RGB array ``a`` (and ``b`` on the right of the wipe line); kept, not copied."""
        a = None if a is None else np.ascontiguousarray(a)
        b = None if b is None else np.ascontiguousarray(b)
        self._arrays = (a, b)
        self._scaled = {}
        self.image = None if a is None else wrap_qimage(a)
        self.image_b = None if b is None else wrap_qimage(b)
        if a is not None:
            self.state.set_image_size(a.shape[1], a.shape[0])
        self.update()

    def _shrunk(self, which: int, size: tuple[int, int]) -> QImage:
        """Image ``which`` area-averaged to ``size``: zoomed-out views are drawn from this,
        cheaper and cleaner than letting the painter filter a large frame on every paint."""
        key = (which, *size)
        if key not in self._scaled:
            if len(self._scaled) > 4:
                self._scaled = {}
            small = cv2.resize(self._arrays[which], size, interpolation=cv2.INTER_AREA)
            self._scaled[key] = (small, wrap_qimage(small))
        return self._scaled[key][1]

    # -- geometry ---------------------------------------------------------------------------
    # Zoom is in screen (device) pixels per image pixel, so 1:1 shows real pixels on a
    # high-DPI screen too; Qt's widget coordinates are logical pixels, ``dpr`` of them apart.
    def _dpr(self) -> float:
        return max(self.devicePixelRatioF(), 1e-3)

    def zoom(self) -> float:
        d = self._dpr()
        return self.state.effective_zoom(self.width() * d, self.height() * d)

    def _scale(self) -> float:
        """Logical pixels per image pixel."""
        return self.zoom() / self._dpr()

    def target_rect(self) -> QRectF:
        """Where the whole image lands in widget coordinates."""
        w, h = self.state.image_size
        z = self._scale()
        zx = z * self.state.pixel_aspect
        c = self.state.center
        x0 = self.width() / 2 - c.x() * zx
        y0 = self.height() / 2 - c.y() * z
        return QRectF(x0, y0, w * zx, h * z)

    def image_point(self, pos: QPointF) -> QPointF:
        z = self._scale()
        c = self.state.center
        return QPointF(c.x() + (pos.x() - self.width() / 2) / (z * self.state.pixel_aspect),
                       c.y() + (pos.y() - self.height() / 2) / z)

    # -- painting ---------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: ANN001, N802 - Qt override
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 24, 24))
        if self.image is None:
            p.setPen(QColor(150, 150, 150))
            # wrapped inside a margin: a long error was cut off at both sides
            p.drawText(QRectF(self.rect().adjusted(8, 8, -8, -8)),
                       int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                       self.placeholder)
            return
        # Magnified views use nearest neighbour so 1:1 and zoomed-in views show the real pixels.
        target = self.target_rect()
        d = self._dpr()
        shrink = self.zoom() < 1.0 and target.width() >= 1 and target.height() >= 1
        size = (max(1, round(target.width() * d)), max(1, round(target.height() * d)))

        def draw(which: int, image: QImage) -> None:
            if shrink:  # drawn at its own size in screen pixels
                small = self._shrunk(which, size)
                small.setDevicePixelRatio(d)
                p.drawImage(QPointF(round(target.x() * d) / d, round(target.y() * d) / d),
                            small)
            else:
                p.drawImage(target, image)

        if self.image_b is None:
            draw(0, self.image)
            return
        split_x = self.split * self.width()
        p.save()
        p.setClipRect(QRectF(0, 0, split_x, self.height()))
        draw(0, self.image)
        p.setClipRect(QRectF(split_x, 0, self.width() - split_x, self.height()))
        draw(1, self.image_b)
        p.restore()
        p.setPen(QPen(QColor(255, 210, 0), 2))
        p.drawLine(QPointF(split_x, 0), QPointF(split_x, self.height()))

    # -- interaction ------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if not steps or self.image is None:
            return
        pos = event.position()
        anchor = self.image_point(pos)
        d = self._dpr()
        offset = QPointF((pos.x() - self.width() / 2) * d, (pos.y() - self.height() / 2) * d)
        self.state.set_zoom(self.zoom() * (1.25 ** steps), anchor, offset)
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        self._dragging_split = (self.image_b is not None
                                and abs(pos.x() - self.split * self.width()) < 8)
        self._drag = pos

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        if self.image_b is not None and self._drag is None:
            near = abs(pos.x() - self.split * self.width()) < 8
            self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.OpenHandCursor)
        if self._drag is None:
            return
        if self._dragging_split:
            self.set_split(pos.x() / max(self.width(), 1))
        else:
            delta = (pos - self._drag) * self._dpr()
            self.state.pan(delta.x(), delta.y(), self.zoom())
        self._drag = pos

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._drag = None
        self._dragging_split = False

    def set_split(self, fraction: float) -> None:
        self.split = float(np.clip(fraction, 0.0, 1.0))
        self.split_changed.emit(self.split)
        self.update()
