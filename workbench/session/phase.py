"""What the application is busy with, and which changes of business are allowed."""

from __future__ import annotations

from enum import StrEnum

from workbench.core.errors import WorkbenchError


class Phase(StrEnum):
    """One thing at a time: idle, or loading data, training (or paused), evaluating, exporting, finding a
    learning rate."""

    IDLE = "idle"
    LOADING_DATA = "loading data"
    TRAINING = "training"
    PAUSED = "paused"
    EVALUATING = "evaluating"
    EXPORTING = "exporting"
    FINDING_LR = "finding a learning rate"

    @property
    def busy(self) -> bool:
        """Whether background work is under way (a paused run counts: it still holds its thread)."""
        return self is not Phase.IDLE

    @property
    def running(self) -> bool:
        """Whether a run is training or paused."""
        return self in (Phase.TRAINING, Phase.PAUSED)


class PhaseError(WorkbenchError):
    """Something was asked that the current phase does not allow; the message says what to wait for."""


_LEGAL: dict[Phase, frozenset[Phase]] = {
    Phase.IDLE: frozenset({Phase.LOADING_DATA, Phase.TRAINING, Phase.EVALUATING, Phase.EXPORTING, Phase.FINDING_LR}),
    Phase.LOADING_DATA: frozenset({Phase.IDLE}),
    Phase.TRAINING: frozenset({Phase.PAUSED, Phase.IDLE}),
    Phase.PAUSED: frozenset({Phase.TRAINING, Phase.IDLE}),
    Phase.EVALUATING: frozenset({Phase.IDLE}),
    Phase.EXPORTING: frozenset({Phase.IDLE}),
    Phase.FINDING_LR: frozenset({Phase.IDLE}),
}

_WHAT_IS_GOING_ON = {
    Phase.LOADING_DATA: "a dataset is loading",
    Phase.TRAINING: "a run is training",
    Phase.PAUSED: "a run is paused",
    Phase.EVALUATING: "the network is being evaluated on the test set",
    Phase.EXPORTING: "an export is being written",
    Phase.FINDING_LR: "the learning-rate range test runs",
}

_WHAT_WAS_ASKED = {
    Phase.IDLE: "go back to idle",
    Phase.LOADING_DATA: "load a dataset",
    Phase.TRAINING: "start training",
    Phase.PAUSED: "pause",
    Phase.EVALUATING: "evaluate",
    Phase.EXPORTING: "export",
    Phase.FINDING_LR: "find a learning rate",
}

_HOW_TO_GO_ON = {
    Phase.TRAINING: "stop the run, or wait until it has finished",
    Phase.PAUSED: "resume or stop the run first",
}


def can_enter(current: Phase, target: Phase) -> bool:
    """Whether the application may go from ``current`` to ``target``."""
    return target in _LEGAL[current]


def check_transition(current: Phase, target: Phase) -> None:
    """Raise :class:`PhaseError` with a sentence a user understands if ``current`` cannot become ``target``."""
    if can_enter(current, target):
        return
    if current is Phase.IDLE:
        raise PhaseError(f"Cannot {_WHAT_WAS_ASKED[target]}: nothing is running.")
    advice = _HOW_TO_GO_ON.get(current, "wait until it has finished")
    raise PhaseError(f"Cannot {_WHAT_WAS_ASKED[target]} while {_WHAT_IS_GOING_ON[current]}: {advice}.")


def check_editable(current: Phase) -> None:
    """Raise :class:`PhaseError` while a run trains on its snapshot: the network and settings stay as they are."""
    if current.running:
        raise PhaseError(
            f"Cannot change the network or the settings while {_WHAT_IS_GOING_ON[current]}: {_HOW_TO_GO_ON[current]}."
        )
