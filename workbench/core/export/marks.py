"""How the workbench recognises its own exports, so that an export may replace an earlier one but never a file a
user made.

Each format carries a mark: the Python module's first line (:data:`~workbench.core.export.python_source.MARK_LINE`),
its weights' safetensors metadata ``{"workbench-export": "python"}``, the ONNX model's ``metadata_props`` entry
``workbench-export: onnx``, the pt2 archive's extra file ``workbench-export``, and for a bundle its ``meta.json``
with nothing else in the folder. A link is never the workbench's: replacing it would not replace what it points to.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import safetensors

from workbench.core.export.python_source import MARK_LINE
from workbench.core.runs.folders import ARCHITECTURE_FILE, WEIGHTS_FILE
from workbench.core.runs.trained import BUNDLE_FORMAT, META_FILE

EXPORT_MARK = "workbench-export"
"""The key of every format's mark (ONNX metadata, safetensors metadata, the pt2 extra file); its value the format."""

_BUNDLE_FILES = {WEIGHTS_FILE, ARCHITECTURE_FILE, META_FILE}


def is_own_export(path: Path) -> bool:
    """Whether ``path`` is an export the workbench wrote (of any run, in any format), which an export may replace."""
    if path.is_symlink():
        return False
    if path.is_dir():
        try:
            names = {entry.name for entry in path.iterdir()}
        except OSError:
            return False
        return is_bundle(path) and names <= _BUNDLE_FILES
    return any(marked(path) for marked in (_marked_module, _marked_weights, _marked_pt2, _marked_onnx))


def is_bundle(path: Path) -> bool:
    """Whether ``path`` is a folder whose meta.json says it is a workbench bundle."""
    try:
        return json.loads((path / META_FILE).read_text(encoding="utf-8")).get("format") == BUNDLE_FORMAT
    except (OSError, ValueError, AttributeError, RecursionError):
        return False


def _marked_module(path: Path) -> bool:
    """A Python export: its first line is the mark."""
    try:
        with path.open("rb") as stream:
            return stream.readline(len(MARK_LINE) + 2).rstrip(b"\r\n") == MARK_LINE.encode()
    except OSError:
        return False


def _marked_weights(path: Path) -> bool:
    """A Python export's weights: their safetensors metadata holds the mark."""
    try:
        with safetensors.safe_open(path, framework="pt") as handle:
            return (handle.metadata() or {}).get(EXPORT_MARK) == "python"
    except Exception:  # not a safetensors file: safetensors fails on foreign files in several ways
        return False


def _marked_pt2(path: Path) -> bool:
    """A pt2 export: the archive holds the extra file ``workbench-export`` (``torch.export.save``'s
    ``extra_files``), a JSON document of format "pt2". Only the zip's directory and that file are read."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(f"/extra/{EXPORT_MARK}"):
                    document = json.loads(archive.read(name))
                    return isinstance(document, dict) and document.get("format") == "pt2"
    except (OSError, zipfile.BadZipFile, ValueError, RecursionError):
        return False
    return False


def _marked_onnx(path: Path) -> bool:
    """An ONNX export: the model's metadata holds ``workbench-export: onnx``. Read with the onnx package (the
    graph of a workbench network is small); anything it cannot parse as a model is not ours."""
    import onnx  # loaded only when a file that may be an ONNX model is looked at

    try:
        if path.stat().st_size >= 2**31:  # protobuf's limit: no ONNX model of one file is this large
            return False
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # protobuf raises its own DecodeError, and other errors on foreign files
        return False
    return any(entry.key == EXPORT_MARK and entry.value == "onnx" for entry in model.metadata_props)
