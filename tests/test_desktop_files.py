"""The Linux desktop integration: the .desktop entry and AppStream metainfo pass their validators, agree with each
other and with the project, and ``make install-desktop`` installs them for the user under $XDG_DATA_HOME.

The validators come from Debian's desktop-file-utils and appstream (.ci/run installs them): elsewhere the tests
that need them skip, in CI they fail, as the fashion_mnist fixture does.
"""

import configparser
import os
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from workbench import __version__

ROOT = Path(__file__).resolve().parents[1]
APP_ID = "io.github.workbench.Workbench"
DESKTOP_FILE = ROOT / "packaging" / "linux" / f"{APP_ID}.desktop"
METAINFO_FILE = ROOT / "packaging" / "linux" / f"{APP_ID}.metainfo.xml"
ICON = ROOT / "resources" / "icons" / "workbench.svg"


def tool(name: str, package: str) -> str:
    """The path of a validator; skip without it, except in CI, which must have it."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs {name}: apt-get install {package}")
        pytest.skip(f"{name} is not installed (Debian package {package})")
    return path


def desktop_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(path, encoding="utf-8")
    return parser["Desktop Entry"]


def validate_desktop(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("desktop-file-validate", "desktop-file-utils"), str(path)], capture_output=True, text=True, timeout=60
    )


def test_the_desktop_file_is_valid():
    completed = validate_desktop(DESKTOP_FILE)
    assert completed.returncode == 0 and not completed.stdout.strip(), completed.stdout + completed.stderr


def test_the_metainfo_is_valid_without_reaching_the_network():
    completed = subprocess.run(
        [tool("appstreamcli", "appstream"), "validate", "--no-net", str(METAINFO_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    problems = [line for line in completed.stdout.splitlines() if line.startswith(("E:", "W:"))]
    assert not problems, completed.stdout


def test_the_desktop_file_starts_the_workbench_with_its_icon():
    entry = desktop_entry(DESKTOP_FILE)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert entry["Exec"].split()[0] in scripts
    assert entry["Icon"] == APP_ID
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"


def test_the_metainfo_describes_this_app():
    component = ElementTree.parse(METAINFO_FILE).getroot()
    assert component.get("type") == "desktop-application"
    assert component.findtext("id") == APP_ID
    assert component.find("launchable").text == DESKTOP_FILE.name
    assert component.find("launchable").get("type") == "desktop-id"
    assert [binary.text for binary in component.iter("binary")] == ["workbench"]
    assert component.find("content_rating").get("type").startswith("oars-")
    assert component.find("releases/release").get("version") == __version__
    assert len(component.findtext("description/p").split()) > 20


def test_the_metainfo_screenshots_are_the_repository_pictures():
    component = ElementTree.parse(METAINFO_FILE).getroot()
    urls = [image.text for image in component.iter("image")]
    assert urls and all(url.startswith("https://") for url in urls)
    for url in urls:
        assert "/docs/screenshots/" in url
        assert (ROOT / "docs" / "screenshots" / url.rsplit("/", 1)[1]).is_file(), url


def test_the_icon_is_a_scalable_svg():
    root = ElementTree.parse(ICON).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox")


def test_make_install_desktop_installs_for_the_user_under_xdg_data_home(tmp_path):
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    data_home = tmp_path / "share"
    env = dict(os.environ, XDG_DATA_HOME=str(data_home))
    completed = subprocess.run(
        [make, "-s", "-C", str(ROOT), "install-desktop"], capture_output=True, text=True, env=env, timeout=60
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    installed = data_home / "applications" / DESKTOP_FILE.name
    assert (data_home / "metainfo" / METAINFO_FILE.name).read_bytes() == METAINFO_FILE.read_bytes()
    assert (data_home / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg").read_bytes() == ICON.read_bytes()
    exec_line = desktop_entry(installed)["Exec"]
    assert exec_line == f'"{ROOT / ".venv" / "bin" / "workbench"}" gui'
    if shutil.which("desktop-file-validate"):
        completed = validate_desktop(installed)
        assert completed.returncode == 0 and not completed.stdout.strip(), completed.stdout

    completed = subprocess.run(
        [make, "-s", "-C", str(ROOT), "uninstall-desktop"], capture_output=True, text=True, env=env, timeout=60
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert not installed.exists() and not (data_home / "metainfo" / METAINFO_FILE.name).exists()
