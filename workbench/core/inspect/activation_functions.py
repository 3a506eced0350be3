"""Activation functions as curves: each function and its derivative, as autograd computes it, with notes.

The explorer plots what the catalog's own torch classes compute, so what students see is what their
networks run. Softmax is left out: it maps a whole vector to probabilities that sum to 1, so each output
depends on every input and there is no single curve y = f(x) to draw.
"""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np
import torch

from workbench.core.errors import ArchitectureError
from workbench.core.layers import CATALOG, LayerType, layers_in_group

_FLAT = 1e-9

ACTIVATIONS: list[str] = [layer.name for layer in layers_in_group("Activation") if layer.name != "Softmax"]

NOTES: dict[str, str] = {
    "ReLU": (
        "max(0, x). Unbounded above, never below 0. Its derivative is 0 for x < 0 and 1 for x > 0, so it does "
        "not saturate on the positive side: gradients pass through active units unchanged, however deep the "
        "network. The price is the flat negative side: a unit whose input stays negative gets zero gradient, "
        "stops learning and may never recover (a dying ReLU)."
    ),
    "LeakyReLU": (
        "x for x > 0, negative_slope · x below (0.01 by default). Unbounded both ways. The derivative is 1 "
        "for x > 0 and negative_slope for x < 0: the small slope keeps a gradient flowing through units "
        "whose input is negative, so they cannot die the way ReLU units do. The slope is never more than 1."
    ),
    "ELU": (
        "x for x > 0, α(eˣ − 1) below. Unbounded above; below it saturates smoothly towards −α, so its "
        "derivative αeˣ shrinks to 0 for very negative inputs (but never reaches it: units do not die). "
        "Negative outputs pull the mean activation towards zero. With α = 1 the slope is continuous at 0 and "
        "at most 1; with a larger α it jumps from α just below 0 to 1 above."
    ),
    "GELU": (
        "x · Φ(x), with Φ the Gaussian cumulative distribution. A smooth ReLU that is not monotonic: it dips "
        "slightly below zero, to about −0.17 near x = −0.75, and its derivative is negative there. Unbounded "
        "above; for very negative x both the value and the derivative go to 0. Its slope peaks at about "
        "1.13 near x = 1.41, a little above 1, then settles to 1."
    ),
    "SiLU": (
        "x · sigmoid(x), also called swish. Like GELU, a smooth ReLU that is not monotonic: it dips below "
        "zero, to about −0.28 near x = −1.28. Unbounded above; for very negative x the value and the "
        "derivative go to 0. Its slope peaks at about 1.10 near x = 2.4, then settles to 1."
    ),
    "Sigmoid": (
        "1 / (1 + e⁻ˣ), squashes every input into (0, 1). Its derivative σ(x)(1 − σ(x)) peaks at 0.25 at x = 0 "
        "and saturates (goes to 0) for large |x|: already below 0.007 at |x| = 5. Backpropagation multiplies "
        "the gradient by this slope at every sigmoid layer, so each layer shrinks it at least 4× (before the "
        "weights act): through ten layers at most 0.25¹⁰ ≈ 10⁻⁶. Gradients vanish with depth."
    ),
    "Tanh": (
        "Squashes every input into (−1, 1), centred on zero (tanh(x) = 2·sigmoid(2x) − 1). Its derivative "
        "1 − tanh²(x) peaks at 1 at x = 0, four times sigmoid's, so gradients shrink less; but it still "
        "saturates for large |x|, where the derivative goes to 0 and gradients vanish."
    ),
}


def curve(
    name: str, params: dict[str, Any] | None = None, low: float = -5.0, high: float = 5.0, points: int = 401
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x``, ``f(x)`` and ``f'(x)`` at ``points`` evenly spaced inputs from ``low`` to ``high``.

    ``f`` is the catalog's torch class for ``name`` with its default parameters overlaid with ``params``;
    ``f'`` comes from autograd. Raises :class:`ArchitectureError` for an unknown activation or parameter.
    """
    module = _module(name, params or {})
    x = torch.from_numpy(np.linspace(low, high, points)).requires_grad_()
    y = module(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    return x.detach().numpy(), y.detach().numpy(), dy.numpy()


def summary(name: str, params: dict[str, Any] | None = None) -> dict[str, float]:
    """:func:`measure` of the plotted :func:`curve` of ``name`` with ``params``."""
    return measure(*curve(name, params))


def measure(x: np.ndarray, y: np.ndarray, dy: np.ndarray) -> dict[str, float]:
    """Numbers read off a curve: ``max_derivative``, ``min_value`` and ``max_value``, and the inputs where the
    derivative is largest, from ``max_derivative_from`` to ``max_derivative_to`` (one point for a peak, an
    interval for a flat top such as ReLU's)."""
    top = float(dy.max())
    at_top = x[dy >= top - _FLAT]
    return {
        "max_derivative": top,
        "max_derivative_from": float(at_top[0]),
        "max_derivative_to": float(at_top[-1]),
        "min_value": float(y.min()),
        "max_value": float(y.max()),
    }


def _module(name: str, params: dict[str, Any]) -> torch.nn.Module:
    if name not in ACTIVATIONS:
        raise ArchitectureError(
            f"No element-wise activation called '{name}'{_suggest(name, ACTIVATIONS)}; "
            f"choose one of {', '.join(ACTIVATIONS)}."
        )
    layer = CATALOG[name]
    for key, value in params.items():
        _check_param(layer, key, value)
    return layer.torch_class(**{**layer.defaults(), **params})


def _check_param(layer: LayerType, key: str, value: Any) -> None:
    spec = layer.param(key)
    if spec is None:
        known = ", ".join(p.name for p in layer.params) or "none"
        raise ArchitectureError(f"{layer.name} has no parameter '{key}'; its parameters: {known}.")
    if spec.choices:
        fits = value in spec.choices
    else:
        fits = isinstance(value, (int, float)) and not isinstance(value, bool) and spec.in_range(value)
    if not fits:
        raise ArchitectureError(f"{layer.name}'s {key} must be {spec.describe_range()}, not {value!r}.")


def _suggest(word: str, options: list[str]) -> str:
    lowered = {option.lower(): option for option in options}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""
