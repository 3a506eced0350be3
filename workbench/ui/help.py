"""The Help menu's content: the versions the About dialog lists, and where the user guide is."""

from __future__ import annotations

import html
import platform
from pathlib import Path

import PySide6
import torch
from PySide6.QtCore import qVersion

from workbench import __version__
from workbench.core.training.devices import available_devices
from workbench.resources import resource_dir

GUIDE_FILE = "README.md"


def versions() -> list[tuple[str, str]]:
    """``(what, version)`` for the app, PyTorch, Qt, PySide6 and Python, and the devices it can train on."""
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU build"
    return [
        ("Workbench", __version__),
        ("PyTorch", f"{torch.__version__} ({build})"),
        ("Qt", qVersion()),
        ("PySide6", PySide6.__version__),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("Training devices", ", ".join(description for _, description in available_devices())),
    ]


def about_html() -> str:
    """The About dialog's text: what the app is, then :func:`versions` as a table."""
    rows = "".join(
        f"<tr><td>{html.escape(what)}&nbsp;&nbsp;</td><td>{html.escape(version)}</td></tr>"
        for what, version in versions()
    )
    return f"<h3>Workbench</h3><p>Build, train and export small image-classification networks.</p><table>{rows}</table>"


def about_text() -> str:
    """:func:`versions` as plain text, one ``what: version`` a line (for the clipboard and bug reports)."""
    return "\n".join(f"{what}: {version}" for what, version in versions())


def user_guide_path() -> Path | None:
    """The user guide (the README): the copy an installed wheel or bundle carries in its resources, else the
    checkout's own (a source checkout or an editable install); None if neither is there."""
    checkout = Path(__file__).resolve().parent.parent.parent / GUIDE_FILE
    for candidate in (resource_dir(GUIDE_FILE), checkout):
        if candidate.is_file():
            return candidate
    return None
