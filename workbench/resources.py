"""Where the bundled resources (presets, icons, desktop files) are, installed or in a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def resource_dir(*parts: str) -> Path:
    """The folder ``resources/<parts>`` shipped with the package.

    The wheel and editable installs map the repository's ``resources/`` folder onto the
    ``workbench.resources_data`` package (see pyproject.toml), so one look-up serves both.
    """
    return Path(str(resources.files("workbench.resources_data").joinpath(*parts)))
