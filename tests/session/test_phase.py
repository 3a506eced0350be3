"""The phases and their legal transitions, without Qt."""

import pytest

from workbench.core.errors import WorkbenchError
from workbench.session.phase import Phase, PhaseError, can_enter, check_editable, check_transition

LEGAL = {
    (Phase.IDLE, Phase.LOADING_DATA),
    (Phase.IDLE, Phase.TRAINING),
    (Phase.IDLE, Phase.EVALUATING),
    (Phase.IDLE, Phase.EXPORTING),
    (Phase.LOADING_DATA, Phase.IDLE),
    (Phase.TRAINING, Phase.PAUSED),
    (Phase.TRAINING, Phase.IDLE),
    (Phase.PAUSED, Phase.TRAINING),
    (Phase.PAUSED, Phase.IDLE),
    (Phase.EVALUATING, Phase.IDLE),
    (Phase.EXPORTING, Phase.IDLE),
    (Phase.IDLE, Phase.FINDING_LR),
    (Phase.FINDING_LR, Phase.IDLE),
}


@pytest.mark.parametrize("current", list(Phase))
@pytest.mark.parametrize("target", list(Phase))
def test_exactly_the_legal_transitions_are_allowed(current, target):
    assert can_enter(current, target) == ((current, target) in LEGAL)
    if (current, target) in LEGAL:
        check_transition(current, target)
    else:
        with pytest.raises(PhaseError) as refused:
            check_transition(current, target)
        assert isinstance(refused.value, WorkbenchError), "the CLI and the window show it like any user error"
        assert str(refused.value).startswith("Cannot ") and str(refused.value).endswith(".")


def test_the_refusals_say_what_is_going_on_and_what_to_do():
    with pytest.raises(PhaseError, match=r"^Cannot start training while an export is being written: wait until"):
        check_transition(Phase.EXPORTING, Phase.TRAINING)
    with pytest.raises(PhaseError, match=r"while a run is training: stop the run, or wait until it has finished"):
        check_transition(Phase.TRAINING, Phase.EXPORTING)
    with pytest.raises(PhaseError, match=r"Cannot evaluate while a run is paused: resume or stop the run first"):
        check_transition(Phase.PAUSED, Phase.EVALUATING)


def test_the_network_is_editable_unless_a_run_holds_it():
    for phase in (Phase.IDLE, Phase.LOADING_DATA, Phase.EVALUATING, Phase.EXPORTING):
        check_editable(phase)
    for phase in (Phase.TRAINING, Phase.PAUSED):
        with pytest.raises(PhaseError, match="Cannot change the network or the settings while a run is"):
            check_editable(phase)


def test_busy_and_running():
    assert [phase for phase in Phase if not phase.busy] == [Phase.IDLE]
    assert [phase for phase in Phase if phase.running] == [Phase.TRAINING, Phase.PAUSED]
