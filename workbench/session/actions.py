"""Every menu action declared once, as data: id, title, shortcut, menu, what it calls, when it is enabled.

The window builds its menus from :data:`ACTIONS` (see :mod:`workbench.ui.actions`) and re-evaluates each
``enabled`` rule whenever the session's phase or contents change; nothing else enables or disables them.
``command`` names a method of the window: most open a dialog first, then call the session.

App-model (napari's) was considered: its rules are string expressions over a context dictionary, and it
brings pydantic. Here a rule is a typed predicate on the :class:`Session`, checked by mypy and tested
without Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from workbench.core.presets import load_preset, preset_names
from workbench.session.phase import Phase
from workbench.session.session import Session


@dataclass(frozen=True)
class ActionSpec:
    """One action: ``shortcut`` is a Qt key sequence ("Ctrl+R") or a standard key's name ("std:Open")."""

    id: str
    title: str
    menu: str
    command: str
    enabled: Callable[[Session], bool]
    shortcut: tuple[str, ...] = ()
    tooltip: str = ""
    argument: str | None = None
    separator_before: bool = False


def always(session: Session) -> bool:
    """Enabled whatever the session holds."""
    return True


def can_edit(session: Session) -> bool:
    """The network and its files can change: no run is training on them."""
    return not session.phase.running


def can_start(session: Session) -> bool:
    """Start: idle (or loading data, when the run waits for it) and the network fits."""
    return session.phase in (Phase.IDLE, Phase.LOADING_DATA) and session.report.ok


def can_stop(session: Session) -> bool:
    """Stop: a run is training or paused."""
    return session.phase.running


def can_evaluate(session: Session) -> bool:
    """Evaluate: idle, with a network that fits on show."""
    network = session.network
    return session.phase is Phase.IDLE and network is not None and network.model is not None


def can_predict(session: Session) -> bool:
    """Predict images: idle, with a network that fits on show (trained or not)."""
    return can_evaluate(session) and session.dataset is not None


def can_export(session: Session) -> bool:
    """Export: idle, with a trained network from a run or bundle on show."""
    return session.phase is Phase.IDLE and session.network is not None and session.network.exportable


def can_hand_off(session: Session) -> bool:
    """Run on a cluster: the network fits."""
    return session.report.ok


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("file.new", "&New network", "&File", "new_network", can_edit, ("std:New",)),
    ActionSpec("file.open", "&Open architecture…", "&File", "open_architecture", can_edit, ("std:Open",)),
    ActionSpec("file.save", "&Save architecture", "&File", "save_architecture", always, ("std:Save",)),
    ActionSpec("file.save_as", "Save architecture &as…", "&File", "save_architecture_as", always, ("std:SaveAs",)),
    ActionSpec(
        "file.open_trained", "Open &trained model…", "&File", "open_trained_model", can_edit, separator_before=True
    ),
    ActionSpec(
        "file.predict",
        "&Predict images…",
        "&File",
        "predict_images",
        can_predict,
        tooltip="What the network on show makes of your own image files (they can also be dropped on the gallery)",
    ),
    ActionSpec("file.export", "&Export trained model…", "&File", "export_current", can_export),
    ActionSpec(
        "file.export_diagram",
        "Export &diagram…",
        "&File",
        "export_diagram",
        always,
        tooltip="Save the Diagram tab's picture of the network as SVG or PNG, for a report",
    ),
    ActionSpec(
        "file.runs_folder",
        "Runs &Folder…",
        "&File",
        "choose_runs_folder",
        always,
        tooltip="Choose the folder new runs are saved in and the Runs tab lists",
    ),
    ActionSpec("file.quit", "&Quit", "&File", "close", always, ("std:Quit",), separator_before=True),
    ActionSpec("train.start", "&Start", "&Train", "start_training", can_start, ("Ctrl+R",)),
    ActionSpec("train.stop", "S&top", "&Train", "stop_training", can_stop, ("Ctrl+.",)),
    ActionSpec(
        "train.evaluate",
        "&Evaluate on the test set",
        "&Train",
        "evaluate_current",
        can_evaluate,
        ("Ctrl+E",),
        separator_before=True,
    ),
    ActionSpec(
        "train.search",
        "S&earch the settings…",
        "&Train",
        "search_settings",
        can_start,
        tooltip="An Optuna search over ranges of the settings, its trials shown on the Experiments tab",
    ),
    ActionSpec("train.continue", "&Continue a run…", "&Train", "show_runs", always),
    ActionSpec("train.cluster", "Run on a c&luster…", "&Train", "run_on_cluster", can_hand_off),
    ActionSpec("view.runs", "&Run history", "&View", "show_runs", always, separator_before=True),
    ActionSpec("view.clear_overlays", "&Clear overlaid runs", "&View", "clear_overlays", always),
    ActionSpec("view.reset_layout", "Reset &layout", "&View", "reset_layout", always, separator_before=True),
    ActionSpec("help.guide", "&User guide", "&Help", "show_user_guide", always, ("std:HelpContents",)),
    ActionSpec("help.about", "&About workbench", "&Help", "show_about", always),
)


def preset_actions() -> tuple[ActionSpec, ...]:
    """One action per bundled preset, in the Presets menu, with the preset's description as its tooltip."""
    presets = [load_preset(name) for name in preset_names()]
    return tuple(
        ActionSpec(
            f"presets.{preset.name}",
            preset.name,
            "&Presets",
            "load_preset",
            can_edit,
            tooltip=preset.description,
            argument=preset.name,
        )
        for preset in presets
    )
