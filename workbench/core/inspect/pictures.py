"""Pictures of an inspection without Qt: the attribution laid over the image, and the sheet of every layer.

:func:`overlay` is what the app's views and ``workbench inspect`` both draw (an RGB array); :func:`layer_sheet`
draws the forward and backward pass of every layer on one page with matplotlib (``layers.png``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from workbench.core.architecture import format_shape
from workbench.core.inspect.one_image import Inspection, LayerPass

if TYPE_CHECKING:
    from matplotlib.axes import Axes

OVERLAY_OPACITY = 0.6
MAX_MAPS = 16
"""Feature maps drawn per layer on the sheet: enough to see what the layer does, few enough to see each one."""


def image_pixels(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """A normalised ``(C, H, W)`` input as pixels in [0, 1]: ``(H, W)`` for one channel, ``(H, W, 3)`` for three."""
    pixels = image * np.asarray(std, dtype=np.float32).reshape(-1, 1, 1) + np.asarray(mean, np.float32).reshape(
        -1, 1, 1
    )
    pixels = np.clip(pixels, 0.0, 1.0)
    return pixels[0] if pixels.shape[0] == 1 else np.transpose(pixels, (1, 2, 0))


def heat(values: np.ndarray) -> np.ndarray:
    """``values`` (``(H, W)``) scaled by their largest positive value to [0, 1] (negatives count as 0): the
    strength of "counted for the class" at each pixel. All zeros when nothing is positive."""
    positive = np.clip(np.nan_to_num(values.astype(np.float32)), 0.0, None)
    top = float(positive.max()) if positive.size else 0.0
    return positive / top if top > 0 else positive


def overlay(pixels: np.ndarray, attribution: np.ndarray, opacity: float = OVERLAY_OPACITY) -> np.ndarray:
    """The image (``(H, W)`` or ``(H, W, 3)`` in [0, 1]) in grey with the attribution laid over it in a
    black-red-yellow ramp where it is strong; ``(H, W, 3)`` uint8."""
    grey = pixels if pixels.ndim == 2 else pixels.mean(axis=2)
    base = np.repeat(grey[:, :, None], 3, axis=2) * 0.75
    strength = heat(attribution)
    colour = np.stack([np.clip(strength * 2, 0, 1), np.clip(strength * 2 - 1, 0, 1), np.zeros_like(strength)], axis=2)
    alpha = (opacity * strength)[:, :, None]
    blended = base * (1 - alpha) + colour * alpha
    return (np.clip(blended, 0, 1) * 255).round().astype(np.uint8)


def map_grid(values: np.ndarray, limit: int = MAX_MAPS) -> tuple[np.ndarray, int]:
    """The first ``limit`` channels of a ``(C, H, W)`` output side by side in a near-square grid with a one-pixel
    gap (NaN), and how many channels that is."""
    count = min(limit, values.shape[0])
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    height, width = values.shape[1:]
    grid = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan, dtype=np.float32)
    for k in range(count):
        row, column = divmod(k, columns)
        grid[row * (height + 1) : row * (height + 1) + height, column * (width + 1) : column * (width + 1) + width] = (
            values[k]
        )
    return grid, count


def describe_values(layer: LayerPass) -> str:
    """``"16×14×14 · −0.52…3.1 · 41% zero"``: the layer's output shape, range and dead/saturated shares."""
    stats = layer.activation
    parts = [format_shape(layer.output_shape), f"{stats.min:.3g}…{stats.max:.3g}", f"{stats.zero_fraction:.0%} zero"]
    if stats.saturated_fraction is not None:
        parts.append(f"{stats.saturated_fraction:.0%} saturated")
    return " · ".join(parts)


def describe_gradient(layer: LayerPass) -> str:
    """``"‖∂L/∂y‖ 0.012 · ‖∂L/∂w‖ 0.4"``: the error signal reaching the layer and its weights' gradient."""
    text = f"‖∂L/∂y‖ {layer.output_gradient_norm:.3g}"
    if layer.weight_gradient_norm is not None:
        text += f" · ‖∂L/∂w‖ {layer.weight_gradient_norm:.3g}"
    return text


def layer_sheet(inspection: Inspection, path: Path, pixels: np.ndarray, title: str) -> None:
    """Draw every layer's output (left) and the gradient of the loss with respect to it (right) on one page, one
    row per layer, under the image and its top classes; saved as PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot

    layers = inspection.layers
    figure, axes = pyplot.subplots(len(layers) + 1, 2, figsize=(9, 1.9 * (len(layers) + 1)), squeeze=False)
    axes[0][0].imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=1)
    axes[0][0].set_title("the image", fontsize=9)
    axes[0][0].axis("off")
    top = "\n".join(f"{name}: {probability:.1%}" for _, name, probability in inspection.top())
    target = inspection.class_names[inspection.target]
    axes[0][1].text(0.0, 0.5, f"{top}\n\nloss for {target}: {inspection.loss:.4g}", fontsize=9, va="center")
    axes[0][1].axis("off")
    for row, layer in zip(axes[1:], layers):
        _draw_values(row[0], layer.output, f"{layer.label()} forward: {describe_values(layer)}", "viridis")
        _draw_values(row[1], layer.output_gradient, f"backward: {describe_gradient(layer)}", "coolwarm")
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    pyplot.close(figure)


def _draw_values(axis: Axes, values: np.ndarray, title: str, colours: str) -> None:
    axis.set_title(title, fontsize=8, loc="left")
    if values.ndim == 3:
        grid, _ = map_grid(values)
        if colours == "coolwarm":
            limit = float(np.nanmax(np.abs(grid))) or 1.0
            axis.imshow(grid, cmap=colours, vmin=-limit, vmax=limit)
        else:
            axis.imshow(grid, cmap=colours)
        axis.axis("off")
        return
    flat = values.ravel()
    axis.bar(np.arange(len(flat)), flat, width=1.0, color="tab:red" if colours == "coolwarm" else "tab:blue")
    axis.set_xlabel("unit", fontsize=7)
    axis.set_ylabel("value" if colours != "coolwarm" else "∂L/∂y", fontsize=7)
    axis.tick_params(labelsize=6)
