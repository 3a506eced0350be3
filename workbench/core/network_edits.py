"""Edits of a network with blocks, addressed by the numbers the builder shows.

A layer is addressed by its number (``"3"``, ``"5.2"``, ``"6.b2.1"``: see :mod:`workbench.core.architecture`); a
place between layers by a :class:`Slot`: the list it is in (``""`` the network's own, ``"5."`` the layers of
Residual block 5, ``"6.b2."`` branch 2 of Parallel block 6) and a position in that list.

Every edit returns a new :class:`Architecture` and leaves its argument alone. The new network shares the layers
an edit did not touch with the old one (only the blocks on the way to the edit are new objects), so that a
builder may recognise a block across edits by identity (to keep it collapsed) and keep old networks for undo at
little cost. Nothing here mutates a :class:`Layer`; callers must not either.

Bad addresses (a number that names no layer, a slot outside its list, a block moved into itself) raise
:class:`EditError`, a ``ValueError``; the builder never offers them, so they are programming errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from workbench.core.architecture import Architecture, Layer
from workbench.core.blocks import PARALLEL, RESIDUAL

T = TypeVar("T")
_Change = Callable[[list[Layer]], list[Layer]]


class EditError(ValueError):
    """An edit addressed a layer, a place or a branch that is not there."""


@dataclass(frozen=True)
class Slot:
    """A place in one list of layers: ``container`` names the list (``""``, ``"5."``, ``"6.b2."``) and ``index``
    counts from 0 within it; inserting at a slot puts the new layer before the one now at ``index``."""

    container: str
    index: int

    @property
    def number(self) -> str:
        """The number a layer at this slot has: ``Slot("5.", 1).number == "5.2"``."""
        return f"{self.container}{self.index + 1}"

    @classmethod
    def of(cls, number: str) -> Slot:
        """The slot a numbered layer is in: ``Slot.of("6.b2.1") == Slot("6.b2.", 0)``."""
        container, _, last = number.rpartition(".")
        if not last.isdigit() or int(last) < 1:
            raise EditError(f"{number!r} is not a layer's number.")
        return cls(f"{container}." if container else "", int(last) - 1)


def new_layer(type_name: str) -> Layer:
    """A layer of ``type_name`` with its defaults; a new Parallel block comes with two empty branches to fill."""
    if type_name == PARALLEL:
        return Layer(PARALLEL, branches=[[], []])
    return Layer(type_name)


def layer_at(architecture: Architecture, number: str) -> Layer:
    """The layer numbered ``number`` (the object itself: do not change it)."""
    slot = Slot.of(number)
    layers = sequence_at(architecture, slot.container)
    if not 0 <= slot.index < len(layers):
        raise EditError(f"There is no layer {number}.")
    return layers[slot.index]


def sequence_at(architecture: Architecture, container: str) -> list[Layer]:
    """The list of layers ``container`` names (the list itself: do not change it)."""
    layers = architecture.layers
    for index, sequence in _steps(architecture, container):
        layers = layers[index].sequences()[sequence]
    return layers


def insert(architecture: Architecture, slot: Slot, layer: Layer) -> Architecture:
    """``architecture`` with ``layer`` inserted at ``slot`` (its index may be the list's length: at the end)."""

    def change(layers: list[Layer]) -> list[Layer]:
        if not 0 <= slot.index <= len(layers):
            raise EditError(f"There is no place {slot.number} to insert at.")
        return [*layers[: slot.index], layer, *layers[slot.index :]]

    return _changed(architecture, slot.container, change)


def remove(architecture: Architecture, number: str) -> tuple[Architecture, Layer]:
    """``architecture`` without the layer numbered ``number`` (a block goes with everything in it), and that layer."""
    removed = layer_at(architecture, number)
    slot = Slot.of(number)
    return _changed(architecture, slot.container, lambda layers: _without(layers, slot.index)), removed


def replace(architecture: Architecture, number: str, layer: Layer) -> Architecture:
    """``architecture`` with ``layer`` in place of the one numbered ``number``."""
    layer_at(architecture, number)
    slot = Slot.of(number)
    return _changed(architecture, slot.container, lambda layers: _with(layers, slot.index, layer))


def set_param(architecture: Architecture, number: str, name: str, value: object) -> Architecture:
    """``architecture`` with parameter ``name`` of layer ``number`` set to ``value``."""
    layer = layer_at(architecture, number)
    return replace(architecture, number, dataclasses.replace(layer, params={**layer.params, name: value}))


def clear_param(architecture: Architecture, number: str, name: str) -> Architecture:
    """``architecture`` with parameter ``name`` of layer ``number`` back to its default."""
    layer = layer_at(architecture, number)
    params = {key: value for key, value in layer.params.items() if key != name}
    return replace(architecture, number, dataclasses.replace(layer, params=params))


def move(architecture: Architecture, number: str, destination: Slot) -> tuple[Architecture, str]:
    """``architecture`` with layer ``number`` moved to ``destination`` (a slot counted before the layer is taken
    out), and the layer's new number. A block cannot move into itself."""
    if destination.container.startswith(f"{number}."):
        raise EditError(f"Block {number} cannot move into itself.")
    taken, layer = remove(architecture, number)
    slot = _after_removal(destination, Slot.of(number))
    return insert(taken, slot, layer), slot.number


def insert_branch(architecture: Architecture, number: str, branch: int, layers: list[Layer]) -> Architecture:
    """``architecture`` with a new branch holding ``layers`` before branch ``branch`` (counting from 0; the count
    of branches appends) of Parallel block ``number``."""
    block = _parallel(architecture, number)
    if not 0 <= branch <= len(block.branches):
        raise EditError(f"Block {number} has no place for a branch {branch + 1}.")
    branches = [*block.branches[:branch], list(layers), *block.branches[branch:]]
    return replace(architecture, number, dataclasses.replace(block, branches=branches))


def remove_branch(architecture: Architecture, number: str, branch: int) -> Architecture:
    """``architecture`` without branch ``branch`` (counting from 0) of Parallel block ``number``."""
    block = _parallel(architecture, number)
    if not 0 <= branch < len(block.branches):
        raise EditError(f"Block {number} has no branch {branch + 1}.")
    return replace(architecture, number, dataclasses.replace(block, branches=_without(block.branches, branch)))


def move_into_new_branch(
    architecture: Architecture, number: str, block_number: str, branch: int
) -> tuple[Architecture, str]:
    """``architecture`` with layer ``number`` taken out and put alone in a new branch of Parallel ``block_number``
    (numbers counted before the move), and the layer's new number."""
    if block_number == number or block_number.startswith(f"{number}."):
        raise EditError(f"Block {number} cannot move into itself.")
    taken, layer = remove(architecture, number)
    container = _after_removal(Slot(f"{block_number}.", 0), Slot.of(number)).container
    parallel = container.removesuffix(".")
    return insert_branch(taken, parallel, branch, [layer]), f"{parallel}.b{branch + 1}.1"


def _parallel(architecture: Architecture, number: str) -> Layer:
    block = layer_at(architecture, number)
    if block.type != PARALLEL:
        raise EditError(f"Layer {number} is not a Parallel block.")
    return block


def _after_removal(slot: Slot, removed: Slot) -> Slot:
    """``slot``, counted in the network before the layer at ``removed`` was taken out, counted after."""
    container = slot.container
    if container.startswith(removed.container) and container != removed.container:
        head, _, tail = container[len(removed.container) :].partition(".")
        if int(head) > removed.index + 1:
            container = f"{removed.container}{int(head) - 1}.{tail}"
    index = slot.index - 1 if container == removed.container and slot.index > removed.index else slot.index
    return Slot(container, index)


def _steps(architecture: Architecture, container: str) -> list[tuple[int, int]]:
    """The way to the list ``container``: for each block on the way, its index in its list and the index of the
    list inside it (0 for a Residual's layers, the branch for a Parallel's)."""
    steps: list[tuple[int, int]] = []
    layers = architecture.layers
    parts = [part for part in container.split(".") if part]
    position = 0
    while position < len(parts):
        part = parts[position]
        if not part.isdigit() or not 1 <= int(part) <= len(layers):
            raise EditError(f"There is no list of layers {container!r}.")
        block = layers[int(part) - 1]
        if block.type == RESIDUAL:
            sequence, position = 0, position + 1
        elif block.type == PARALLEL and position + 1 < len(parts) and parts[position + 1].startswith("b"):
            sequence, position = int(parts[position + 1][1:]) - 1, position + 2
            if not 0 <= sequence < len(block.branches):
                raise EditError(f"There is no list of layers {container!r}.")
        else:
            raise EditError(f"There is no list of layers {container!r}.")
        steps.append((int(part) - 1, sequence))
        layers = block.sequences()[sequence]
    return steps


def _changed(architecture: Architecture, container: str, change: _Change) -> Architecture:
    layers = _changed_within(architecture.layers, _steps(architecture, container), change)
    return dataclasses.replace(architecture, layers=layers)


def _changed_within(layers: list[Layer], steps: list[tuple[int, int]], change: _Change) -> list[Layer]:
    if not steps:
        return change(layers)
    (index, sequence), rest = steps[0], steps[1:]
    block = layers[index]
    inner = _changed_within(block.sequences()[sequence], rest, change)
    if block.type == RESIDUAL:
        rebuilt = dataclasses.replace(block, layers=inner)
    else:
        rebuilt = dataclasses.replace(block, branches=_with(block.branches, sequence, inner))
    return _with(layers, index, rebuilt)


def _with(items: list[T], index: int, item: T) -> list[T]:
    return [*items[:index], item, *items[index + 1 :]]


def _without(items: list[T], index: int) -> list[T]:
    return [*items[:index], *items[index + 1 :]]
