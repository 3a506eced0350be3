"""The builder's edits of networks with blocks: addressed by the numbers it shows, never changing the old network."""

import copy

import pytest

from tests.helpers import BLOCKS_DIGITS
from workbench.core import network_edits
from workbench.core.architecture import Architecture, Layer, validate
from workbench.core.network_edits import EditError, Slot


def _network() -> Architecture:
    return Architecture.from_dict(copy.deepcopy(BLOCKS_DIGITS))


def _types(architecture: Architecture) -> list[tuple[str, str]]:
    return [(number, layer.type) for number, _, layer in architecture.walk()]


def test_a_slot_names_the_list_and_the_place_a_number_points_at():
    assert Slot.of("6.b2.1") == Slot("6.b2.", 0)
    assert Slot.of("3") == Slot("", 2)
    assert Slot("5.", 1).number == "5.2"
    for bad in ("", "0", "3.", "b2", "3.x"):
        with pytest.raises(EditError):
            Slot.of(bad)


def test_layers_inside_blocks_and_branches_are_found_by_their_number():
    network = _network()
    assert network_edits.layer_at(network, "3.1").params["stride"] == 2
    assert network_edits.layer_at(network, "4.b2.2").type == "ReLU"
    assert network_edits.layer_at(network, "6.3").params["out_features"] == 128
    for missing in ("8", "3.4", "4.b3.1", "2.1", "4.1"):
        with pytest.raises(EditError):
            network_edits.layer_at(network, missing)


def test_an_edit_returns_a_new_network_and_shares_what_it_did_not_touch():
    network = _network()
    before = network.to_dict()
    edited = network_edits.insert(network, Slot("3.", 3), Layer("BatchNorm2d"))
    assert network.to_dict() == before, "the old network is kept as it was, for undo"
    assert network_edits.layer_at(edited, "3.4").type == "BatchNorm2d"
    assert edited.layers[0] is network.layers[0] and edited.layers[5] is network.layers[5]
    assert edited.layers[2] is not network.layers[2], "the block on the way to the edit is a new object"
    assert validate(edited).ok


def test_removing_a_block_removes_everything_in_it_and_renumbers_what_follows():
    network = _network()
    edited, removed = network_edits.remove(network, "3")
    assert removed.type == "Residual" and len(removed.layers) == 3
    assert [number for number, _ in _types(edited)][:4] == ["1", "2", "3", "3.b1.1"]
    assert network_edits.layer_at(edited, "3").type == "Parallel"
    assert len(list(edited.walk())) == len(list(network.walk())) - 4


def test_moving_a_layer_into_a_later_block_counts_the_block_after_the_layer_left():
    network = _network()
    edited, number = network_edits.move(network, "2", Slot("3.", 0))  # the ReLU into Residual block 3
    assert number == "2.1", "block 3 is block 2 once the ReLU before it has gone"
    assert network_edits.layer_at(edited, number).type == "ReLU"
    assert [layer.type for layer in network_edits.sequence_at(edited, "2.")] == ["ReLU", "Conv2d", "ReLU", "Conv2d"]


def test_moving_within_a_block_and_out_of_it():
    network = _network()
    within, number = network_edits.move(network, "3.3", Slot("3.", 0))
    assert number == "3.1" and [layer.type for layer in within.layers[2].layers] == ["Conv2d", "Conv2d", "ReLU"]
    out, number = network_edits.move(network, "6.2", Slot("", 7))  # after the last layer
    assert number == "8" and out.layers[-1].type == "ReLU" and len(out.layers[5].layers) == 2


def test_a_block_cannot_move_into_itself():
    network = _network()
    with pytest.raises(EditError, match="into itself"):
        network_edits.move(network, "4", Slot("4.b1.", 0))
    with pytest.raises(EditError, match="into itself"):
        network_edits.move_into_new_branch(network, "4", "4", 2)


def test_every_move_keeps_every_layer_and_puts_the_moved_one_where_it_says():
    network = _network()
    containers = ["", "3.", "4.b1.", "4.b2.", "6."]
    count = len(list(network.walk()))
    for number, _, layer in network.walk():
        for container in containers:
            for index in range(len(network_edits.sequence_at(network, container)) + 1):
                destination = Slot(container, index)
                if container.startswith(f"{number}."):
                    continue
                edited, new_number = network_edits.move(network, number, destination)
                assert len(list(edited.walk())) == count, (number, destination)
                assert network_edits.layer_at(edited, new_number) is layer, (number, destination, new_number)


def test_a_layer_moved_into_a_new_branch_is_alone_there():
    network = _network()
    edited, number = network_edits.move_into_new_branch(network, "2", "4", 2)
    assert number == "3.b3.1"
    block = network_edits.layer_at(edited, "3")
    assert block.type == "Parallel" and [len(branch) for branch in block.branches] == [1, 2, 1]


def test_branches_are_added_and_removed_only_on_parallel_blocks():
    network = _network()
    added = network_edits.insert_branch(network, "4", 0, [Layer("Identity")])
    assert [branch[0].type for branch in network_edits.layer_at(added, "4").branches] == [
        "Identity",
        "Conv2d",
        "Conv2d",
    ]
    removed = network_edits.remove_branch(added, "4", 1)
    assert [len(branch) for branch in network_edits.layer_at(removed, "4").branches] == [1, 2]
    with pytest.raises(EditError, match="not a Parallel"):
        network_edits.remove_branch(network, "3", 0)
    with pytest.raises(EditError, match="no branch 5"):
        network_edits.remove_branch(network, "4", 4)
    one_branch = network_edits.remove_branch(network, "4", 1)
    assert not validate(one_branch).ok and "block 4 Parallel" in " ".join(validate(one_branch).errors)


def test_setting_and_clearing_a_blocks_shortcut_is_what_validation_sees():
    network = _network()
    identity = network_edits.clear_param(network, "3", "shortcut")
    result = validate(identity)
    assert not result.ok
    assert "block 3 Residual" in " ".join(result.errors) and "projection" in " ".join(result.errors)
    back = network_edits.set_param(identity, "3", "shortcut", "projection")
    assert validate(back).ok and back.to_dict() == network.to_dict()


def test_a_new_parallel_block_comes_with_two_branches_to_fill():
    block = network_edits.new_layer("Parallel")
    assert block.branches == [[], []]
    assert network_edits.new_layer("Residual").layers == []
    assert network_edits.new_layer("ReLU").params == {}
