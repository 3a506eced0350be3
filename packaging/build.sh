#!/usr/bin/env bash
# The one-folder app: PyInstaller bundles Python, torch, Qt and the workbench into dist/workbench/, whose
# dist/workbench/workbench runs without any Python installed. Then the bundle is checked: its --version, and
# its scripted mode drawing the window offscreen into a screenshot.
#
#   packaging/build.sh              build, then check
#   packaging/build.sh --test-only  check the bundle already built
#
# PYTHON (default .venv/bin/python) is the environment that is bundled; PyInstaller is installed into it when
# missing (the project's "bundle" extra). With torch's CUDA build the folder takes about 6.5 GB and the build about
# 5 minutes on two cores: CI does not run it. `make bundle-test` runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
APP=dist/workbench/workbench

build() {
    "$PYTHON" -m PyInstaller --version >/dev/null 2>&1 || "$PYTHON" -m pip install --quiet 'pyinstaller>=6.10'
    # The data goes to resources/ beside the package, where workbench.resources.resource_dir looks when the
    # package workbench.resources_data (an install's mapping of resources/) is absent, as it is here.
    # Analysis imports some modules to inspect them: none of them may try to open a display.
    QT_QPA_PLATFORM=offscreen "$PYTHON" -m PyInstaller --noconfirm --clean --onedir --name workbench \
        --distpath dist --workpath build/pyinstaller --specpath build/pyinstaller \
        --paths "$PWD" --exclude-module workbench.resources_data --exclude-module tkinter \
        --add-data "$PWD/resources:resources" \
        --add-data "$PWD/README.md:resources" \
        --add-data "$PWD/packaging/linux:resources" \
        --collect-data sklearn.datasets \
        --collect-submodules workbench \
        packaging/workbench_main.py
}

check() {
    local scratch
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' RETURN
    "$APP" --version
    QT_QPA_PLATFORM=offscreen WORKBENCH_RUNS_DIR="$scratch/runs" \
        "$APP" gui --dataset digits --screenshot "$scratch/window.png" --quit-when-done
    test -s "$scratch/window.png"
    echo "bundle OK: $(du -sh dist/workbench | cut -f1) in dist/workbench"
}

if [ "${1:-}" != "--test-only" ]; then
    build
fi
check
