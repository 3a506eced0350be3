"""``printable``: names read from files, made safe to print on a terminal."""

from __future__ import annotations

import pytest

from workbench.core.text import printable


@pytest.mark.parametrize(
    "name, shown",
    [
        ("\x1b[31mred\u202e\x00", "?[31mred??"),  # an escape sequence, RIGHT-TO-LEFT OVERRIDE, NUL
        ("two\nlines\tand\rreturn", "two?lines?and?return"),
        ("del\x7f and csi\x9b", "del? and csi?"),  # DEL and a C1 control
        ("\u2066isolated\u2069 \u200fmark\u061c", "?isolated? ?mark?"),  # isolates, marks
        ("para\u2029line\u2028", "para?line?"),
    ],
)
def test_control_and_bidirectional_characters_become_question_marks(name, shown):
    assert printable(name) == shown


@pytest.mark.parametrize(
    "name",
    ["seed-relu-mlp", "Ångström café", "手書き 数字", "T-shirt/top", "👩\u200d💻 coder", "می\u200cخواهم", "a b"],
)
def test_other_text_is_unchanged(name):
    assert printable(name) == name
