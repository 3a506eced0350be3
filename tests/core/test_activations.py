"""Activation curves: the catalog's own modules, derivatives from autograd, the facts the class teaches."""

import numpy as np
import pytest

from workbench.core.errors import ArchitectureError
from workbench.core.inspect.activation_functions import ACTIVATIONS, NOTES, curve, summary
from workbench.core.layers import layers_in_group

SMOOTH = ["ELU", "GELU", "SiLU", "Sigmoid", "Tanh"]


def test_every_element_wise_activation_of_the_catalog_in_order():
    catalog = [layer.name for layer in layers_in_group("Activation")]
    assert ACTIVATIONS == [name for name in catalog if name != "Softmax"]
    assert set(NOTES) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_a_curve_is_401_points_from_minus_5_to_5(name):
    x, y, slope = curve(name)
    assert x.shape == y.shape == slope.shape == (401,)
    assert (x[0], x[-1], x[200]) == (-5.0, 5.0, 0.0)


@pytest.mark.parametrize("name", SMOOTH)
def test_autograd_derivatives_match_finite_differences(name):
    x, y, slope = curve(name)
    step = 1e-5
    _, above, _ = curve(name, low=-5.0 + step, high=5.0 + step)
    _, below, _ = curve(name, low=-5.0 - step, high=5.0 - step)
    np.testing.assert_allclose(slope, (above - below) / (2 * step), atol=1e-3)


def test_sigmoid_slope_peaks_at_a_quarter_at_zero():
    numbers = summary("Sigmoid")
    assert numbers["max_derivative"] == pytest.approx(0.25, abs=1e-3)
    assert numbers["max_derivative_from"] == numbers["max_derivative_to"] == 0.0
    assert 0 < numbers["min_value"] < numbers["max_value"] < 1


def test_tanh_slope_peaks_at_one():
    numbers = summary("Tanh")
    assert numbers["max_derivative"] == pytest.approx(1.0, abs=1e-3)
    assert -1 < numbers["min_value"] < 0 < numbers["max_value"] < 1


def test_relu_slope_is_exactly_zero_below_and_one_above():
    x, y, slope = curve("ReLU")
    assert np.all(slope[x < 0] == 0.0) and np.all(slope[x > 0] == 1.0)
    np.testing.assert_array_equal(y, np.maximum(x, 0.0))
    numbers = summary("ReLU")
    assert (numbers["max_derivative_from"], numbers["max_derivative_to"]) == (pytest.approx(0.025), 5.0)


def test_gelu_and_silu_dip_below_zero():
    assert summary("GELU")["min_value"] == pytest.approx(-0.170, abs=1e-3)
    assert summary("SiLU")["min_value"] == pytest.approx(-0.278, abs=1e-3)


def test_params_overlay_the_defaults():
    x, y, slope = curve("LeakyReLU", {"negative_slope": 0.2})
    assert y[x == -1.0] == pytest.approx(-0.2)
    assert np.all(slope[x < 0] == pytest.approx(0.2))
    assert curve("LeakyReLU")[1][x == -1.0] == pytest.approx(-0.01)
    assert summary("ELU", {"alpha": 2.0})["min_value"] == pytest.approx(-2.0 * (1 - np.exp(-5.0)))


def test_gelu_tanh_approximation_is_close_but_not_equal():
    exact, approximate = curve("GELU")[1], curve("GELU", {"approximate": "tanh"})[1]
    assert not np.array_equal(exact, approximate)
    np.testing.assert_allclose(exact, approximate, atol=1e-3)


@pytest.mark.parametrize(
    "name, words", [("relu", "did you mean 'ReLU'"), ("Softmax", "element-wise"), ("Swish", "choose one of ReLU")]
)
def test_an_unknown_activation_is_an_architecture_error(name, words):
    with pytest.raises(ArchitectureError, match=words):
        curve(name)


@pytest.mark.parametrize(
    "name, params, words",
    [
        ("ELU", {"beta": 1.0}, "no parameter 'beta'; its parameters: alpha"),
        ("ELU", {"alpha": 100.0}, "alpha must be a number from 0.01 to 10"),
        ("GELU", {"approximate": "fast"}, "one of 'none', 'tanh'"),
        ("ReLU", {"inplace": True}, "its parameters: none"),
    ],
)
def test_a_bad_parameter_is_an_architecture_error(name, params, words):
    with pytest.raises(ArchitectureError, match=words):
        curve(name, params)


def test_the_notes_state_the_facts_the_class_teaches():
    assert "0.25" in NOTES["Sigmoid"] and "vanish" in NOTES["Sigmoid"]
    assert "dying ReLU" in NOTES["ReLU"]
    assert "1" in NOTES["Tanh"] and "zero" in NOTES["Tanh"]
