"""The wheel, installed for real: built from a copy of the sources with ``python -m build`` (the sdist, then the
wheel from the sdist), installed into a fresh venv (not editable), and run from there.

The fresh venv gets the wheel alone (``pip install --no-deps``). Its dependencies (torch is several GB) are
borrowed from the venv running the tests: a ``.pth`` file in the fresh venv's site-packages appends that venv's
site-packages to ``sys.path``. A ``.pth`` file only adds a folder, it does not run the folder's own ``.pth`` files,
so the editable install of the checkout there stays inert; and the fresh venv's own site-packages comes first, so
``import workbench`` finds the installed wheel. The test checks that it does (``workbench.__file__``), and that the
presets, icon, desktop files and user guide come from the installed ``workbench/resources_data``. The commands run
from a scratch folder, without PYTHONPATH, so the checkout is nowhere on the path.

About a minute on two cores; marked ``packaging`` (it runs with the rest, in CI too; ``-m "not packaging"``
leaves it out).
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from workbench import __version__

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "workbench", "resources", "packaging/linux"]
PRESETS = sorted(path.name for path in (ROOT / "resources" / "presets").glob("*.json"))
DATA = "workbench/resources_data"
EXTRA = [
    "README.md",
    "icons/workbench.svg",
    "io.github.workbench.Workbench.desktop",
    "io.github.workbench.Workbench.metainfo.xml",
]
PROBE = """
import json, workbench
from workbench.resources import resource_dir
from workbench.ui.help import user_guide_path
print(json.dumps({"package": workbench.__file__, "resources": str(resource_dir()), "guide": str(user_guide_path())}))
"""


def run(command: list, cwd: Path, env: dict | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert completed.returncode == 0, f"{command}\n{completed.stdout}\n{completed.stderr}"
    return completed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the sources (so the checkout gets no build/ or egg-info)."""
    if importlib.util.find_spec("build") is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs the 'build' package: it is in the dev extras (pip install -e '.[dev]')")
        pytest.skip("the 'build' package is not installed (pip install -e '.[dev]')")
    scratch = tmp_path_factory.mktemp("wheel")
    source = scratch / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    # --no-isolation: build with this venv's setuptools instead of downloading one.
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", scratch / "dist", source], cwd=scratch)
    [built] = (scratch / "dist").glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding the wheel, borrowing its dependencies from this venv; returns its bin folder."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv.parent)
    python = venv / "bin" / "python"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-index",
            wheel,
        ],
        cwd=venv.parent,
    )
    site = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=venv.parent).stdout.strip()
    )
    (site / "workbench_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return venv / "bin"


@pytest.fixture
def clean_env(tmp_path) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return dict(
        env,
        QT_QPA_PLATFORM="offscreen",
        WORKBENCH_RUNS_DIR=str(tmp_path / "runs"),
        WORKBENCH_CONFIG_DIR=str(tmp_path / "config"),
    )


def test_the_wheel_carries_the_presets_icons_desktop_files_and_user_guide(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"{DATA}/presets/{name}" for name in PRESETS} <= names
    assert {f"{DATA}/{name}" for name in EXTRA} <= names
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)


def test_the_installed_package_and_its_resources_come_from_the_fresh_venv(installed, tmp_path, clean_env):
    found = json.loads(run([installed / "python", "-c", PROBE], cwd=tmp_path, env=clean_env).stdout.splitlines()[-1])
    site = installed.parent / "lib"
    for key in ("package", "resources", "guide"):
        assert Path(found[key]).is_relative_to(site), (key, found[key])
    assert Path(found["resources"]).name == "resources_data"
    assert Path(found["guide"]) == Path(found["resources"]) / "README.md"


def test_the_installed_command_lists_the_presets(installed, tmp_path, clean_env):
    assert (
        run([installed / "workbench", "--version"], cwd=tmp_path, env=clean_env).stdout.strip()
        == f"workbench {__version__}"
    )
    lines = run([installed / "workbench", "presets"], cwd=tmp_path, env=clean_env).stdout.splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(Path(name).stem for name in PRESETS)


def test_the_installed_app_draws_its_window(installed, tmp_path, clean_env):
    png = tmp_path / "window.png"
    run(
        [installed / "workbench", "gui", "--dataset", "digits", "--screenshot", png, "--quit-when-done"],
        cwd=tmp_path,
        env=clean_env,
    )
    image = QImage(str(png))
    assert image.width() >= 1000 and image.height() >= 600
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) >= 20, "a real window, not a blank picture"
    assert not (tmp_path / "config").exists(), "the scripted mode writes no settings"
