"""Text read from files (run names, network names, class names, folder names) made safe to print on a terminal.

Such text is kept as it is in the files; only what is printed changes. A name holding an escape sequence
(``ESC [31m``) would recolour or rewrite the user's terminal, a NUL cuts some terminals' lines short, and a
bidirectional control (U+202E RIGHT-TO-LEFT OVERRIDE and its kin) makes text read in another order than it
is stored, e.g. a file name whose end shows at its start.
"""

from __future__ import annotations

import unicodedata

REPLACEMENT = "?"
"""What each unprintable character becomes: visible, so that two names differing by one still look different."""

BIDI_CONTROLS = frozenset(
    "\u061c"  # ARABIC LETTER MARK
    "\u200e\u200f"  # LEFT-TO-RIGHT and RIGHT-TO-LEFT MARK
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings, POP DIRECTIONAL FORMATTING, overrides
    "\u2066\u2067\u2068\u2069"  # isolates and POP DIRECTIONAL ISOLATE
)
"""Unicode's Bidi_Control characters: they reorder the text printed after them."""

_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


def unprintable(character: str) -> bool:
    """Whether ``character`` is one :func:`printable` replaces: a control character (Unicode category Cc: the C0
    controls such as NUL, ESC, tab and newline, DEL, the C1 controls), a line or paragraph separator
    (U+2028, U+2029) or a bidirectional control (:data:`BIDI_CONTROLS`)."""
    return character in BIDI_CONTROLS or unicodedata.category(character) in _UNPRINTABLE_CATEGORIES


def printable(text: str) -> str:
    """``text`` with every character :func:`unprintable` says is unsafe on a terminal replaced by
    :data:`REPLACEMENT` ('?'), so that a name prints on one line, in the order it is stored and in the
    terminal's own colours.

    Other format characters stay: the zero-width joiner and non-joiner are parts of emoji and of words in
    several scripts, and print harmlessly. Text without such characters comes back unchanged.
    """
    if text.isprintable():  # the common case, in one pass in C; it is stricter than the test below
        return text
    return "".join(REPLACEMENT if unprintable(character) else character for character in text)
