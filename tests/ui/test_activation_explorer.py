"""ActivationExplorer: the curves hold what the core computes, parameters redraw, notes follow the choice."""

import numpy as np
import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox

from workbench.core.inspect.activation_functions import ACTIVATIONS, NOTES, curve
from workbench.ui.views.activation_explorer import ActivationExplorer


@pytest.fixture
def explorer(qtbot):
    widget = ActivationExplorer()
    qtbot.addWidget(widget)
    return widget


def test_each_activation_plots_its_curve_and_derivative(explorer):
    for name in ACTIVATIONS:
        explorer.select(name)
        assert explorer.current() == name
        x, y, slope = curve(name)
        plotted = explorer.plotted()
        assert set(plotted) == {"function", "derivative"}
        for key, expected in (("function", y), ("derivative", slope)):
            plotted_x, plotted_y = plotted[key]
            assert len(plotted_x) == len(plotted_y) == 401
            np.testing.assert_array_equal(plotted_x, x)
            np.testing.assert_array_equal(plotted_y, expected)
        assert explorer.note_text().startswith(NOTES[name])


def test_changing_the_leaky_slope_redraws(explorer):
    explorer.select("LeakyReLU")
    explorer.findChild(QDoubleSpinBox, "negative_slope").setValue(0.2)
    assert explorer.params() == {"negative_slope": 0.2}
    x, y = explorer.plotted()["function"]
    assert y[x == -1.0] == pytest.approx(-0.2)
    np.testing.assert_array_equal(explorer.plotted()["derivative"][1], curve("LeakyReLU", {"negative_slope": 0.2})[2])


def test_parameters_are_kept_per_activation(explorer):
    explorer.select("ELU")
    explorer.findChild(QDoubleSpinBox, "alpha").setValue(2.0)
    assert "2.000 at x = 0.00" in explorer.note_text()
    explorer.select("Tanh")
    assert explorer.params() == {}
    explorer.select("ELU")
    np.testing.assert_array_equal(explorer.plotted()["function"][1], curve("ELU", {"alpha": 2.0})[1])


def test_gelu_approximation_is_a_choice(explorer):
    explorer.select("GELU")
    explorer.findChild(QComboBox, "approximate").setCurrentText("tanh")
    np.testing.assert_array_equal(explorer.plotted()["function"][1], curve("GELU", {"approximate": "tanh"})[1])


def test_the_note_gives_the_measured_largest_slope(explorer):
    explorer.select("Sigmoid")
    assert "0.25" in explorer.note_text()
    assert "Largest slope on this plot: 0.250 at x = 0.00." in explorer.note_text()
    explorer.select("ReLU")
    assert "1.000 for every x from 0.03 to 5.00" in explorer.note_text()


def test_the_sigmoid_comparison_shows_and_hides(explorer):
    explorer.select("ReLU")
    explorer.findChild(QCheckBox).setChecked(True)
    np.testing.assert_array_equal(explorer.plotted()["sigmoid_derivative"][1], curve("Sigmoid")[2])
    explorer.select("Sigmoid")
    assert "sigmoid_derivative" not in explorer.plotted()
    explorer.select("Tanh")
    assert "sigmoid_derivative" in explorer.plotted()
    explorer.findChild(QCheckBox).setChecked(False)
    assert "sigmoid_derivative" not in explorer.plotted()


def test_an_unknown_name_is_refused(explorer):
    with pytest.raises(ValueError, match="unknown activation"):
        explorer.select("Softmax")
