"""Build hook: besides ``resources/``, the wheel's ``workbench/resources_data`` carries the README (the app's
user guide, opened by Help → User guide) and the Linux desktop files of ``packaging/linux/``.

It also finds the packages: every package under ``workbench/``, and ``resources/`` installed as
``workbench.resources_data`` (pyproject.toml's ``packages.find`` cannot map a folder to another name).
Everything else is declared in pyproject.toml. These files live outside the package folders, which
``package-data`` cannot reach, so ``build_py`` copies them in. Editable installs skip the copy: there the
app finds the checkout's own README and ``packaging/`` folder.
"""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
EXTRA_FILES = [
    "README.md",
    "packaging/linux/io.github.workbench.Workbench.desktop",
    "packaging/linux/io.github.workbench.Workbench.metainfo.xml",
]


class BuildWithGuide(build_py):
    """``build_py`` that also copies :data:`EXTRA_FILES` into ``workbench/resources_data`` (flat)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib, "workbench", "resources_data")
        self.mkpath(str(target))
        for name in EXTRA_FILES:
            self.copy_file(str(ROOT / name), str(target / Path(name).name))


setup(
    packages=[*find_packages(include=["workbench", "workbench.*"]), "workbench.resources_data"],
    package_dir={"workbench.resources_data": "resources"},
    cmdclass={"build_py": BuildWithGuide},
)
