"""Starting the desktop app, and its scripted mode for demonstrations and tests."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from workbench import __version__
from workbench.core.architecture import Architecture
from workbench.core.data import datasets
from workbench.core.errors import WorkbenchError
from workbench.core.training.config import TrainConfig
from workbench.core.training.devices import resolve_device
from workbench.resources import resource_dir
from workbench.ui.main_window import DEFAULT_DATASET, MainWindow
from workbench.ui.settings import APPLICATION, ORGANISATION
from workbench.ui.signals import SIGNALLED, CloseOnSignals

SETTLE_MS = 400
DESKTOP_ID = "io.github.workbench.Workbench"
WORK_OPTIONS = (
    "preset",
    "arch",
    "dataset",
    "image_size",
    "channels",
    "epochs",
    "train_size",
    "val_size",
    "batch_size",
    "seed",
    "lr",
    "optimizer",
    "augment",
    "device",
    "start",
)


def run_app(args: argparse.Namespace) -> int:
    """Open the window; with ``--start`` train, with ``--screenshot`` save a PNG, with ``--quit-when-done`` exit.

    What the command line asks for and the window cannot do (a damaged ``--arch`` file, a dataset that is not
    there, an unknown tab or device) is left at the window's defaults and said: started by hand, in a dialog over
    the window, which opens anyway (and does not ``--start``); with ``--quit-when-done``, on stderr, and the
    window does not open.

    Returns the exit status: 0, or 2 when the scripted run could not start or failed, or 130 / 143 when Ctrl+C or
    SIGTERM closed the window (see :mod:`workbench.ui.signals`).
    """
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(DESKTOP_ID)  # Wayland and the task bar match the window to the installed .desktop file
    icon = resource_dir("icons", "workbench.svg")
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    scripted = args.quit_when_done
    # Scripted runs (demonstrations, tests, screenshots) neither read nor write the user's remembered settings.
    window = MainWindow(
        interactive=not scripted, runs_out=args.out, remember=not scripted, restore_work=not names_work(args)
    )
    problems = _apply_arguments(window, args)
    if problems and scripted:
        for title, message in problems:
            print(f"workbench: {title}: {message}", file=sys.stderr)
        return 2
    window.show()
    for title, message in problems:  # once the window is on the screen, each in its own dialog
        QTimer.singleShot(0, lambda title=title, message=message: window.report_problem(title, message))
    outcome = {"status": 0}

    def finish(status: str | None = None) -> None:
        if status == "failed":
            outcome["status"] = 2
        if args.tab:
            window.show_tab(args.tab)
        if args.screenshot:
            window.plots.flush()
            window.gradient_plots.flush()
            for _ in range(3):  # a page that rearranges itself for its new size (Evaluation) settles in a few passes
                app.processEvents()
            if not window.grab().save(str(args.screenshot)):
                print(f"workbench: cannot write the screenshot {args.screenshot}", file=sys.stderr)
                outcome["status"] = 2
        if scripted:
            window.close()
            app.exit(outcome["status"])

    if args.start and not problems:
        window.runFinished.connect(lambda status: QTimer.singleShot(SETTLE_MS, lambda: finish(status)))
        QTimer.singleShot(0, window.start_training)
    elif args.screenshot or scripted:
        QTimer.singleShot(SETTLE_MS, finish)
    CloseOnSignals(app, window)
    code = app.exec()
    return code if code > SIGNALLED else outcome["status"]


def names_work(args: argparse.Namespace) -> bool:
    """Whether the command line says what to train (network, dataset or a setting): the window then starts
    from the defaults with those, as the README's examples expect, not from the last session's work."""
    values = [getattr(args, option, None) for option in WORK_OPTIONS]
    return any(value is not None and value is not False for value in values)


def _select_dataset(window: MainWindow, name: str, image_size: int | None, channels: int | None) -> None:
    """Select the dataset ``name``; an image folder first gets its entry with ``image_size`` and ``channels``."""
    config = TrainConfig(dataset=name, image_size=image_size, channels=channels)
    config.check()  # image options for a registered dataset are refused with the core's message
    datasets.get_info(config.dataset, image_size, channels)  # so are unknown names and bad folders
    if datasets.is_folder(config.dataset):
        window.panel.add_folder(config.dataset, image_size, channels)
    window.load_dataset(config.dataset)


def _apply_arguments(window: MainWindow, args: argparse.Namespace) -> list[tuple[str, str]]:
    """Set the window up as the command line says. Each part it cannot follow is left as the window has it and
    returned as ``(title, message)`` (the title names the file, dataset, tab or device); the others still apply."""
    problems: list[tuple[str, str]] = []

    def attempt(title: str, step: Callable[[], object]) -> None:
        try:
            step()
        except WorkbenchError as error:
            problems.append((title, str(error)))

    if args.arch:
        attempt(
            f"Cannot open the architecture file {args.arch}",
            lambda: window.session.set_architecture(Architecture.load(args.arch)),
        )
    elif args.preset:
        window.load_preset(args.preset)
    window.builder.undo_stack.setClean()
    if args.tab and not window.show_tab(args.tab):
        problems.append(
            (f"No tab '{args.tab}'", f"There is no tab '{args.tab}'; the tabs are: {', '.join(window.tab_names())}.")
        )
    panel = window.panel
    if args.dataset or args.image_size is not None or args.channels is not None:
        name = args.dataset or DEFAULT_DATASET
        attempt(
            f"Cannot use the dataset {name}",
            lambda: _select_dataset(window, name, args.image_size, args.channels),
        )
    for option, spin in (
        ("epochs", panel.epochs),
        ("train_size", panel.train_size),
        ("val_size", panel.val_size),
        ("batch_size", panel.batch_size),
        ("seed", panel.seed),
    ):
        value = getattr(args, option)
        if value is not None:
            spin.setValue(value)
    if args.lr is not None:
        panel.lr.setValue(args.lr)
    if args.optimizer is not None:
        panel.optimizer.setCurrentIndex(panel.optimizer.findData(args.optimizer))
    if args.augment is not None:
        attempt("Cannot augment so", lambda: panel.set_augment(args.augment))
    if args.device is not None:
        attempt(f"Cannot use the device {args.device}", lambda: _select_device(window, args.device))
    return problems


def _select_device(window: MainWindow, device: str) -> None:
    """Select ``device`` ("auto", or one :func:`resolve_device` finds on this machine) in the training panel."""
    chosen = device if device == "auto" else str(resolve_device(device))
    window.panel.device.setCurrentIndex(window.panel.device.findData(chosen))
