"""The Inspect tab: one image through every layer of the network, forward and back, and what it looked at.

Top: the image with the chosen attribution laid over it, the top-5 classes, the loss for the class sent back,
and the choosers (which class, which method). Below, one row per layer of the network list, in its numbering
(the layers inside blocks too, ``5.2 Conv2d``, indented under their block, whose row shows its sum or merge):
the layer's output for this image (feature maps as a grid of small images, a Linear layer's units as bars), a
histogram of its values, the gradient of the loss with respect to that output drawn the same way, and the numbers
(shape, range, zeros, saturation, gradient norms). Clicking a bar of a Linear layer shows that unit's sum
y = wᵀx + b with the actual numbers, and its weights as an image when the layer reads the pixels.

The view draws what the session's :class:`~workbench.session.inspector.Inspector` measured; it keeps nothing else.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)
from torch import nn

from workbench.core.architecture import module_path
from workbench.core.blocks import PARALLEL, RESIDUAL
from workbench.core.inspect.attribution import METHOD_TITLES
from workbench.core.inspect.one_image import LayerPass, UnitSum
from workbench.core.inspect.pictures import describe_gradient, describe_values, heat, image_pixels, map_grid, overlay
from workbench.core.numbering import earlier_numbers
from workbench.session.inspector import Inspected
from workbench.ui.images import scale_for, to_pixmap

PICTURE_HEIGHT = 96
PICTURE_WIDTH = 200
HISTOGRAM_BINS = 24
TOP_UNITS = 3
EMPTY_TEXT = (
    "Double-click an image in the gallery, the data browser or a confusion-matrix cell's images (or right-click → "
    "Inspect) to look inside the network at it: every layer's output, the error signal sent back through it, and "
    "what the network looked at."
)
BLOCK_OUTPUTS = {
    RESIDUAL: "its output: the input, through its shortcut, plus its layers' output",
    PARALLEL: "its output: its branches' outputs merged",
}
"""What a block's row shows, after its name."""
NESTED_INDENT = 16
"""Pixels a row's text is indented for each block around its layer."""
POSITIVE = QColor("#1f77b4")
NEGATIVE = QColor("#d62728")


def _grey_image(values: np.ndarray, symmetric: bool) -> QImage:
    """A 2-D array as an image: a diverging blue–white–red scale around 0 (``symmetric``), else black to white
    over its range; NaN (the grid's gaps) is light grey."""
    finite = values[np.isfinite(values)]
    rgb = np.full((*values.shape, 3), 200, dtype=np.uint8)
    if finite.size:
        if symmetric:
            limit = float(np.abs(finite).max()) or 1.0
            scaled = np.clip(np.nan_to_num(values) / limit, -1, 1)
            red = np.where(scaled > 0, 255, 255 * (1 + scaled))
            blue = np.where(scaled < 0, 255, 255 * (1 - scaled))
            green = 255 * (1 - np.abs(scaled))
            colour = np.stack([red, green, blue], axis=-1)
        else:
            low, high = float(finite.min()), float(finite.max())
            scaled = (np.nan_to_num(values, nan=low) - low) / ((high - low) or 1.0)
            colour = np.repeat((255 * scaled)[..., None], 3, axis=-1)
        mask = np.isfinite(values)
        rgb[mask] = np.round(colour[mask]).astype(np.uint8)
    height, width = values.shape
    buffer = np.ascontiguousarray(rgb)
    return QImage(buffer.data, width, height, width * 3, QImage.Format.Format_RGB888).copy()


def map_pixmap(values: np.ndarray, symmetric: bool) -> QPixmap:
    """A ``(C, H, W)`` output as its grid of feature maps, enlarged to about :data:`PICTURE_HEIGHT` pixels."""
    grid, _ = map_grid(values)
    image = _grey_image(grid, symmetric)
    scale = max(1, min(PICTURE_HEIGHT // max(1, image.height()), PICTURE_WIDTH // max(1, image.width())))
    return QPixmap.fromImage(image.scaled(image.width() * scale, image.height() * scale))


def bars_pixmap(values: np.ndarray, width: int = PICTURE_WIDTH, height: int = PICTURE_HEIGHT) -> QPixmap:
    """A flat output as bars from a zero line, blue up and red down, scaled to the largest magnitude."""
    pixmap = QPixmap(width, height)
    pixmap.fill(QColor("white"))
    painter = QPainter(pixmap)
    limit = float(np.abs(values).max()) if values.size else 0.0
    low = float(min(values.min(), 0.0)) if values.size else 0.0
    high = float(max(values.max(), 0.0)) if values.size else 0.0
    span = (high - low) or 1.0
    zero = height * high / span
    step = width / max(1, len(values))
    for index, value in enumerate(values):
        top = zero - height * float(value) / span
        painter.fillRect(
            QRectF(index * step, min(top, zero), max(step - (1 if step > 3 else 0), 1), abs(top - zero)),
            POSITIVE if value >= 0 else NEGATIVE,
        )
    painter.setPen(QPen(QColor("#888888")))
    painter.drawLine(QPointF(0, zero), QPointF(width, zero))
    if limit == 0:
        painter.drawText(pixmap.rect(), Qt.AlignmentFlag.AlignCenter, "all 0")
    painter.end()
    return pixmap


def histogram_pixmap(values: np.ndarray, width: int = 100, height: int = PICTURE_HEIGHT) -> QPixmap:
    """A histogram of ``values`` with its range written under it."""
    pixmap = QPixmap(width, height)
    pixmap.fill(QColor("white"))
    painter = QPainter(pixmap)
    flat = values.ravel()
    low, high = float(flat.min()), float(flat.max())
    counts, _ = np.histogram(flat, bins=HISTOGRAM_BINS, range=(low, high if high > low else low + 1))
    text_height = painter.fontMetrics().height()
    plot = height - text_height - 2
    top = counts.max() or 1
    step = width / HISTOGRAM_BINS
    for index, count in enumerate(counts):
        bar = plot * count / top
        painter.fillRect(QRectF(index * step, plot - bar, step - 1, bar), QColor("#7f7f7f"))
    painter.setPen(QPen(QColor("#333333")))
    painter.drawText(QRectF(0, plot, width, text_height + 2), Qt.AlignmentFlag.AlignLeft, f"{low:.2g}")
    painter.drawText(QRectF(0, plot, width, text_height + 2), Qt.AlignmentFlag.AlignRight, f"{high:.2g}")
    painter.end()
    return pixmap


def top_units(values: np.ndarray, count: int = TOP_UNITS) -> str:
    """``"top units: 17 (3.2), 4 (2.9), 80 (2.1)"``: the largest outputs of a flat layer, by index."""
    order = np.argsort(-values, kind="stable")[:count]
    return "top units: " + ", ".join(f"{int(k)} ({values[k]:.3g})" for k in order)


class UnitBars(QLabel):
    """A Linear layer's units as bars; a click on a bar asks for that unit's numbers (``unitClicked``)."""

    unitClicked = Signal(int, int)  # the layer's row (LayerPass.index, from 1), unit (from 0)

    def __init__(self, layer: int, units: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.layer, self.units = layer, units
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click a unit to see its sum y = wᵀx + b with the actual numbers")

    def unit_at(self, x: float) -> int:
        """The unit under the horizontal position ``x`` of the picture."""
        width = self.pixmap().width() if not self.pixmap().isNull() else self.width()
        return min(self.units - 1, max(0, int(x * self.units / max(1, width))))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.unitClicked.emit(self.layer, self.unit_at(event.position().x()))
        super().mousePressEvent(event)


class InspectView(QWidget):
    """See the module's docstring. ``targetChosen`` (a class index, or -1 for the true class), ``methodChosen`` and
    ``unitClicked`` are the user's requests; the binding passes them to the session."""

    targetChosen = Signal(int)
    methodChosen = Signal(str)
    unitClicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.shown: Inspected | None = None
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(168, 168)
        self.image.setFrameShape(QFrame.Shape.Box)
        self.source = QLabel()
        self.source.setWordWrap(True)
        self.prediction = QLabel()
        self.prediction.setTextFormat(Qt.TextFormat.RichText)
        self.loss = QLabel()
        self.status = QLabel(EMPTY_TEXT)
        self.status.setWordWrap(True)
        self.target = QComboBox()
        self.target.setToolTip("The class whose loss is sent back through the network")
        self.method = QComboBox()
        self.method.setToolTip("How to show what the network looked at (Captum)")
        for combo in (self.target, self.method):  # "the true class (T-shirt/top)" is read whole
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.unit = QLabel("Click a bar of a Linear layer to see that unit's sum in numbers.")
        self.unit.setWordWrap(True)
        self.unit.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.unit.setFont(QFont("monospace"))
        self.unit_weights = QLabel()
        self.rows = QWidget()
        self.grid = QGridLayout(self.rows)
        self.grid.setHorizontalSpacing(10)
        self.layer_widgets: list[dict[str, QLabel]] = []
        self._build()
        self.target.activated.connect(self._target_chosen)
        self.method.activated.connect(self._method_chosen)

    def _build(self) -> None:
        choosers = QGridLayout()
        choosers.addWidget(QLabel("Loss sent back:"), 0, 0)
        choosers.addWidget(self.target, 0, 1)
        choosers.addWidget(QLabel("What it looked at:"), 1, 0)
        choosers.addWidget(self.method, 1, 1)
        about = QVBoxLayout()
        about.addWidget(self.source)
        about.addWidget(self.prediction)
        about.addWidget(self.loss)
        about.addLayout(choosers)
        about.addStretch(1)
        unit_box = QVBoxLayout()
        unit_title = QLabel("<b>One unit, in numbers</b>")
        unit_box.addWidget(unit_title)
        unit_box.addWidget(self.unit)
        unit_box.addWidget(self.unit_weights)
        unit_box.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.image, 0, Qt.AlignmentFlag.AlignTop)
        top.addLayout(about, 1)
        top.addLayout(unit_box, 1)
        scroll = QScrollArea()
        scroll.setWidget(self.rows)
        scroll.setWidgetResizable(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(scroll, 1)
        for column, title in enumerate(("Layer", "Forward: its output", "Values", "Backward: ∂loss/∂output")):
            header = QLabel(f"<b>{title}</b>")
            self.grid.addWidget(header, 0, column)

    # ---- drawing -------------------------------------------------------------------------------------------

    def show_waiting(self, text: str) -> None:
        """A line above the layers: measuring, or why there is nothing to show."""
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def show_inspected(self, inspected: Inspected | None) -> None:
        """Draw an inspection (None: the empty view)."""
        self.shown = inspected
        if inspected is None:
            self._clear_rows()
            self.image.clear()
            self.source.setText("")
            self.prediction.setText("")
            self.loss.setText("")
            self.target.clear()
            self.method.clear()
            self.show_waiting(EMPTY_TEXT)
            return
        self.show_waiting("")
        inspection, subject = inspected.inspection, inspected.subject
        pixels = image_pixels(inspection.image, subject.mean, subject.std)
        rgb = overlay(pixels, inspected.attribution)
        self.image.setPixmap(to_pixmap(rgb, scale_for(rgb.shape[0], rgb.shape[1], 160)))
        self.image.setToolTip(f"{METHOD_TITLES[inspected.method]} over the image: brighter counted more")
        truth = subject.label
        names = inspection.class_names
        known = f"true class {names[truth]}" if 0 <= truth < len(names) else "class unknown"
        self.source.setText(f"<b>{subject.source}</b> — {known}<br>Network: {inspected.network_label}")
        rows = []
        for index, name, probability in inspection.top():
            mark = " ✓" if index == truth else ""
            rows.append(f"<tr><td>{name}{mark}</td><td align='right'>&nbsp;{probability:.1%}</td></tr>")
        self.prediction.setText("<table>" + "".join(rows) + "</table>")
        self.loss.setText(f"Loss for {names[inspection.target]}: {inspection.loss:.4g} (−log p)")
        if not np.any(heat(inspected.attribution) > 0):
            self.show_waiting(
                f"{METHOD_TITLES[inspected.method]} found nothing that counted for {names[inspection.target]} in "
                f"this image (no pixel's attribution is above 0), so nothing is laid over it: try another method."
            )
        self._fill_choosers(inspected)
        self._draw_rows(inspected)

    def _fill_choosers(self, inspected: Inspected) -> None:
        names = inspected.inspection.class_names
        truth = inspected.subject.label
        self.target.blockSignals(True)
        self.target.clear()
        if 0 <= truth < len(names):
            self.target.addItem(f"the true class ({names[truth]})", -1)
        else:
            self.target.addItem("the predicted class", -1)
        for index, name in enumerate(names):
            self.target.addItem(name, index)
        chosen = inspected.inspection.target
        asked_truth = self._asked_truth(inspected)
        self.target.setCurrentIndex(0 if asked_truth else chosen + 1)
        self.target.blockSignals(False)
        self.method.blockSignals(True)
        self.method.clear()
        for method in inspected.methods:
            self.method.addItem(METHOD_TITLES[method], method)
        self.method.setCurrentIndex(max(0, self.method.findData(inspected.method)))
        self.method.blockSignals(False)

    @staticmethod
    def _asked_truth(inspected: Inspected) -> bool:
        return inspected.target_asked is None

    def _clear_rows(self) -> None:
        for widgets in self.layer_widgets:
            for widget in widgets.values():
                self.grid.removeWidget(widget)
                widget.deleteLater()
        self.layer_widgets = []

    def _draw_rows(self, inspected: Inspected) -> None:
        self._clear_rows()
        for row, layer in enumerate(inspected.inspection.layers, start=1):
            widgets = self._layer_row(layer)
            for column, key in enumerate(("text", "forward", "values", "backward")):
                self.grid.addWidget(widgets[key], row, column, Qt.AlignmentFlag.AlignTop)
            self.layer_widgets.append(widgets)
        self.grid.setRowStretch(len(inspected.inspection.layers) + 1, 1)

    def _layer_row(self, layer: LayerPass) -> dict[str, QLabel]:
        heading = f"<b>{layer.label()}</b>" + (f" ({BLOCK_OUTPUTS[layer.type]})" if layer.type in BLOCK_OUTPUTS else "")
        text = QLabel(f"{heading}<br>{describe_values(layer)}<br>{describe_gradient(layer)}")
        text.setWordWrap(True)
        text.setContentsMargins(NESTED_INDENT * layer.depth, 0, 0, 0)
        text.setMinimumWidth(200)
        text.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        if layer.output.ndim == 3:
            forward = QLabel()
            forward.setPixmap(map_pixmap(layer.output, symmetric=False))
            forward.setToolTip(f"The first {min(16, layer.output.shape[0])} of {layer.output.shape[0]} feature maps")
        else:
            flat = layer.output.ravel()
            forward = UnitBars(layer.index, len(flat)) if layer.type == "Linear" else QLabel()
            forward.setPixmap(bars_pixmap(flat))
            if isinstance(forward, UnitBars):
                forward.unitClicked.connect(self.unitClicked.emit)
            text.setText(text.text() + "<br>" + top_units(flat))
        backward = QLabel()
        if layer.output_gradient.ndim == 3:
            backward.setPixmap(map_pixmap(layer.output_gradient, symmetric=True))
        else:
            backward.setPixmap(bars_pixmap(layer.output_gradient.ravel()))
        values = QLabel()
        values.setPixmap(histogram_pixmap(layer.output))
        return {"text": text, "forward": forward, "values": values, "backward": backward}

    def show_unit(self, numbers: UnitSum, weights: np.ndarray | None) -> None:
        """One unit's sum, and its weights as an image when it reads the pixels (``(H, W)`` or None)."""
        self.unit.setText("\n".join(numbers.lines()))
        if weights is None:
            self.unit_weights.clear()
            self.unit_weights.setToolTip("")
            return
        image = _grey_image(weights, symmetric=True)
        scale = max(1, 112 // max(1, image.height()))
        self.unit_weights.setPixmap(QPixmap.fromImage(image.scaled(image.width() * scale, image.height() * scale)))
        self.unit_weights.setToolTip("The unit's weights, one per pixel: blue adds to its sum, red takes away")

    def _method_chosen(self, index: int) -> None:
        self.methodChosen.emit(str(self.method.itemData(index)))

    def _target_chosen(self, index: int) -> None:
        self.targetChosen.emit(int(self.target.itemData(index)))


def weights_image(inspected: Inspected, layer_index: int, unit: int) -> np.ndarray | None:
    """The unit's weights as an ``(H, W)`` image when the Linear layer in row ``layer_index`` (from 1) reads the
    image's pixels directly (only a Flatten or an Identity before it, inside blocks too), else None."""
    number = inspected.inspection.layers[layer_index - 1].number or str(layer_index)
    layers = {entry: layer for entry, _, layer in inspected.architecture.walk()}
    if any(layers[earlier].type not in ("Flatten", "Identity") for earlier in earlier_numbers(number)):
        return None
    channels, height, width = inspected.architecture.input_shape
    module = inspected.model.get_submodule(module_path(number))
    assert isinstance(module, nn.Linear), "a unit's numbers come from a Linear layer"
    weights = module.weight.detach()[unit].cpu().numpy()
    if weights.size != channels * height * width:
        return None
    return weights.reshape(channels, height, width).mean(axis=0)
