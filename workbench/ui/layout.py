"""Where the window's widgets go: the Network and Training docks, the tabs, the notice and the status bar."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.core.errors import WorkbenchError
from workbench.core.training.engine import EpochMetrics
from workbench.session.session import Session
from workbench.ui.panels.layer_builder import LayerBuilder
from workbench.ui.panels.training_panel import TrainingPanel
from workbench.ui.views.activation_explorer import ActivationExplorer
from workbench.ui.views.data_browser import DataBrowser
from workbench.ui.views.evaluation import EvaluationView
from workbench.ui.views.experiments_view import ExperimentsView
from workbench.ui.views.gallery import Gallery
from workbench.ui.views.gradient_plots import GradientPlots
from workbench.ui.views.inspect_view import InspectView
from workbench.ui.views.network_diagram import NetworkDiagram
from workbench.ui.views.plots import LivePlots
from workbench.ui.views.run_history import RunHistory
from workbench.ui.views.weights_view import WeightsView

DEFAULT_SIZE = (1600, 1000)
NOTICE_STYLE = "background: #fff4ce; color: #5c4400; padding: 6px; border: 1px solid #e0c060;"
ALARM_STYLE = "background: #fdecea; color: #611a15; padding: 6px; border: 1px solid #e0a09a;"


def _scrolled(widget: QWidget) -> QScrollArea:
    scroll = QScrollArea()
    scroll.setWidget(widget)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    return scroll


class WindowLayout(QMainWindow):
    """The widgets of the window and their places; a base of :class:`~workbench.ui.main_window.MainWindow`.

    To add a tab: make its view in ``views/``, create it in :meth:`assemble` and add it to ``self.tabs``; bind it
    to the session's events in :class:`~workbench.ui.binding.ViewBinding`.
    """

    interactive: bool
    session: Session

    def attempt(self, title: str, function: Callable[..., Any], *args: Any) -> bool:
        """Call ``function``; a :class:`WorkbenchError` it raises is shown under ``title``. True if it did not."""
        try:
            function(*args)
        except WorkbenchError as error:
            self.report_problem(title, str(error))
            return False
        return True

    def report_problem(self, title: str, message: str) -> None:
        """Tell the user: a dialog when interactive, else the status bar and stderr."""
        window = self
        window.statusBar().showMessage(f"{title}: {message.splitlines()[0]}")
        if self.interactive:
            QMessageBox.warning(window, title, message)
        else:
            print(f"workbench: {title}: {message}", file=sys.stderr)

    def assemble(self) -> None:
        """Create the widgets and lay them out."""
        self.setWindowTitle("workbench")
        self.resize(*DEFAULT_SIZE)
        self.builder = LayerBuilder()
        self.panel = TrainingPanel()
        self.plots = LivePlots()
        self.gallery = Gallery(rows=3, columns=5)
        self.data_browser = DataBrowser()
        self.evaluation_view = EvaluationView()
        self.activation_explorer = ActivationExplorer()
        self.gradient_plots = GradientPlots()
        self.weights_view = WeightsView()
        self.inspect_view = InspectView()
        self.network_diagram = NetworkDiagram()
        self.run_history = RunHistory(self.session.runs_folder, interactive=self.interactive)
        self.experiments_view = ExperimentsView()
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(NOTICE_STYLE)
        self.notice.hide()
        self.alarms = QLabel()
        self.alarms.setObjectName("alarms")
        self.alarms.setWordWrap(True)
        self.alarms.setStyleSheet(ALARM_STYLE)
        self.alarms.setTextFormat(Qt.TextFormat.RichText)
        self.alarms.linkActivated.connect(lambda link: self.show_tab(link.removeprefix("tab:")))
        self.alarms.hide()
        self._dock_panels()
        self._make_tabs()
        self.follow_colour_scheme()

    def _dock_panels(self) -> None:
        window = self
        left = QDockWidget("Network", window)
        left.setObjectName("network-dock")
        left.setWidget(self.builder)
        left.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, left)
        right = QDockWidget("Training", window)
        right.setObjectName("training-dock")
        scroll = _scrolled(self.panel)
        scroll.setMinimumWidth(self.panel.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width())
        right.setWidget(scroll)
        right.setFeatures(left.features())
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, right)
        window.resizeDocks([left, right], [360, 340], Qt.Orientation.Horizontal)
        self.docks = (left, right)

    def _make_tabs(self) -> None:
        window = self
        training = QSplitter(Qt.Orientation.Vertical)
        training.addWidget(self.plots)
        training.addWidget(_scrolled(self.gallery))
        training.setSizes([460, 520])
        self.tabs = QTabWidget()
        self.tabs.addTab(training, "Training")
        self.tabs.addTab(self.network_diagram, "Diagram")
        self.tabs.addTab(_scrolled(self.evaluation_view), "Evaluation")
        self.tabs.addTab(self.gradient_plots, "Gradients")
        self.tabs.addTab(self.inspect_view, "Inspect")
        self.tabs.addTab(self.weights_view, "Weights")
        self.tabs.addTab(self.run_history, "Runs")
        self.tabs.addTab(self.experiments_view, "Experiments")
        self.tabs.addTab(self.data_browser, "Data")
        self.tabs.addTab(self.activation_explorer, "Activations")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.notice)
        layout.addWidget(self.alarms)
        layout.addWidget(self.tabs, 1)
        window.setCentralWidget(central)
        window.statusBar().showMessage("Ready")
        self.busy = QProgressBar()  # shown while an export or evaluation runs
        self.busy.setMaximumWidth(160)
        self.busy.setTextVisible(False)
        self.busy.setRange(0, 0)
        window.statusBar().addPermanentWidget(self.busy)
        self.busy.hide()

    def tab_names(self) -> list[str]:
        """The tabs' names in lower case, as ``workbench gui --tab`` takes them."""
        return [self.tabs.tabText(index).replace("&", "").lower() for index in range(self.tabs.count())]

    def show_tab(self, name: str) -> bool:
        """Bring the tab called ``name`` (any case) to the front; False if there is none."""
        names = self.tab_names()
        if name.lower() not in names:
            return False
        self.tabs.setCurrentIndex(names.index(name.lower()))
        return True

    def show_runs(self) -> None:
        """View → Run history."""
        self.run_history.refresh()
        self.tabs.setCurrentWidget(self.run_history)

    def clear_overlays(self) -> None:
        """View → Clear overlaid runs (the Training tab's and the Gradients tab's)."""
        self.plots.clear_overlays()
        self.gradient_plots.clear_overlays()

    def _overlay_runs(self, runs: list[tuple[str, list[EpochMetrics], Any]]) -> None:
        """The Runs tab's Overlay of ``(name, history, folder)`` (a Path): the runs' epoch curves on the Training
        tab, which comes to the front, and their recorded gradient norms (the folders' gradients.jsonl) on the
        Gradients tab."""
        from workbench.core.errors import RunError
        from workbench.core.runs.folders import read_gradients
        from workbench.core.training.gradients import GradientEpoch

        self.plots.show_overlays([(name, history) for name, history, _ in runs])
        gradients: list[tuple[str, list[GradientEpoch]]] = []
        problems = []
        for name, _, folder in runs:
            try:
                gradients.append((name, read_gradients(folder)))
            except RunError as error:
                problems.append(f"{name}: {error}")
        self.gradient_plots.show_overlays(gradients, problems)
        self.tabs.setCurrentIndex(0)
        self.statusBar().showMessage(
            f"Overlaid {len(runs)} run{'s' if len(runs) != 1 else ''}: epoch curves on the Training tab, "
            f"gradient norms on the Gradients tab."
        )

    def show_notice(self, text: str) -> None:
        """A lasting note above the tabs."""
        self.notice.setText(text)
        self.notice.show()

    def follow_colour_scheme(self) -> None:
        """Menus, docks, forms and dialogs follow the system's light or dark palette. The tabs' pages stay light
        paper in both, like the plots: their colours (green and red captions, matrix shades, weight images) are
        made for a white page."""
        dark = QApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128
        paper = paper_palette() if dark else QPalette()
        for index in range(self.tabs.count()):
            page = self.tabs.widget(index)
            if page is None:
                continue
            page.setPalette(paper)
            page.setAutoFillBackground(dark)


def paper_palette() -> QPalette:
    """A light palette, whatever the system's: black on white pages and light grey buttons, blue selection."""
    palette = QPalette(QColor("#efefef"), QColor("#ffffff"))
    palette.setColor(QPalette.ColorRole.AlternateBase, QColor("#f7f7f7"))
    palette.setColor(QPalette.ColorRole.Highlight, QColor("#308cc6"))
    palette.setColor(QPalette.ColorRole.PlaceholderText, QColor("#808080"))
    palette.setColor(QPalette.ColorRole.Link, QColor("#1f5fa8"))
    return palette
