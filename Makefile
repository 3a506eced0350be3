PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run lint test bench wheel install-desktop uninstall-desktop bundle-test clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: venv
	$(BIN)/workbench

# ruff (lint and format), mypy and import-linter, configured in pyproject.toml.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python -m benchmarks.bench
	$(BIN)/python -m benchmarks.cpu_bench
	$(BIN)/python -m benchmarks.gui_bench
	$(BIN)/python -m benchmarks.inspect_bench
	$(BIN)/python -m benchmarks.sweep_bench
	$(BIN)/python -m benchmarks.augment_bench
	$(BIN)/python -m benchmarks.depth_bench --plain
	$(BIN)/python -m benchmarks.gpu_bench

# The wheel (and sdist) in dist/, built with this venv's setuptools: no download.
wheel: venv
	$(BIN)/python -m build --no-isolation --outdir dist

# The desktop entry, AppStream metainfo and icon, for the current user; the entry starts this checkout's venv.
APP_ID := io.github.workbench.Workbench
DATA_HOME := $(or $(XDG_DATA_HOME),$(HOME)/.local/share)
WORKBENCH_EXEC ?= $(abspath $(BIN)/workbench)

install-desktop:
	install -d "$(DATA_HOME)/applications" "$(DATA_HOME)/metainfo" "$(DATA_HOME)/icons/hicolor/scalable/apps"
	sed 's|^Exec=workbench |Exec="$(WORKBENCH_EXEC)" |' packaging/linux/$(APP_ID).desktop \
		> "$(DATA_HOME)/applications/$(APP_ID).desktop"
	install -m 644 packaging/linux/$(APP_ID).metainfo.xml "$(DATA_HOME)/metainfo/$(APP_ID).metainfo.xml"
	install -m 644 resources/icons/workbench.svg "$(DATA_HOME)/icons/hicolor/scalable/apps/$(APP_ID).svg"
	if command -v update-desktop-database >/dev/null; then update-desktop-database "$(DATA_HOME)/applications"; fi
	test -x "$(WORKBENCH_EXEC)" || echo "note: $(WORKBENCH_EXEC) does not exist yet: run make venv" >&2

uninstall-desktop:
	rm -f "$(DATA_HOME)/applications/$(APP_ID).desktop" "$(DATA_HOME)/metainfo/$(APP_ID).metainfo.xml" \
		"$(DATA_HOME)/icons/hicolor/scalable/apps/$(APP_ID).svg"
	if command -v update-desktop-database >/dev/null; then update-desktop-database "$(DATA_HOME)/applications"; fi

# Build the one-folder app with PyInstaller in dist/workbench/, then run its --version and its offscreen
# screenshot mode (about 6.5 GB and 5 minutes with torch's CUDA build; CI does not run it).
bundle-test: venv
	packaging/build.sh

clean:
	rm -rf $(VENV) build dist *.egg-info
