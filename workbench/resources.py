"""Where the bundled resources (presets, icons, desktop files) are, installed or in a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def resource_dir(*parts: str) -> Path:
    """The folder ``resources/<parts>`` shipped with the package.

    Installs (wheel or editable) map the repository's ``resources/`` folder onto the package
    ``workbench.resources_data`` (see pyproject.toml); a checkout used without installing it
    (``PYTHONPATH=.``) finds the folder beside the package.
    """
    try:
        root = Path(str(resources.files("workbench.resources_data")))
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parent.parent / "resources"
    return root.joinpath(*parts)
