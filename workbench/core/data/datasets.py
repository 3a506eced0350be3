"""The datasets workbench trains on: what each one is, where its files are, and loading them as tensors.

Files are searched in three roots, in this order: the data folder the user names (``--data-dir``, else
``$WORKBENCH_DATA_DIR``), the per-user folder that downloads go into, and the system folder that
Debian's dataset packages install into. Inside a root, the IDX datasets (Fashion-MNIST, MNIST, KMNIST)
may sit in ``<root>/<name>/`` (Debian's layout) or ``<root>/<TorchvisionClass>/raw/`` (torchvision's);
CIFAR-10 sits in ``<root>/cifar-10-batches-py/``. Because the three IDX datasets share their file names,
files lying directly in a root are accepted only in the data folder the user named, where they are
taken to be whichever dataset was asked for.

Besides the registered datasets, ``folder:PATH`` names the user's own images: PATH holds one sub-folder
per class (see :mod:`workbench.core.data.image_folders`).
"""

from __future__ import annotations

import contextlib
import difflib
import gzip
import io
import math
import os
import zlib
from pathlib import Path

import numpy as np
import platformdirs
import torch

from workbench.core.data.catalog import (
    CIFAR_FILES,
    CIFAR_FOLDER,
    DATA_DIR_VARIABLE,
    DATASETS,
    FOLDER_PREFIX,
    IDX_FILES,
    SYSTEM_ROOT,
    DatasetInfo,
    LoadedDataset,
    Location,
    as_labels,
    canonical_name,
    dataset_names,
    dims,
    folder_name,
    folder_path,
    is_folder,
    normalise,
    one_line,
)
from workbench.core.errors import DatasetError

__all__ = [
    "CIFAR_FILES",
    "CIFAR_FOLDER",
    "DATA_DIR_VARIABLE",
    "DATASETS",
    "FOLDER_PREFIX",
    "IDX_FILES",
    "SYSTEM_ROOT",
    "DatasetInfo",
    "LoadedDataset",
    "Location",
    "canonical_name",
    "dataset_names",
    "describe",
    "folder_name",
    "folder_path",
    "get_info",
    "is_folder",
    "load",
    "locate",
    "read_idx",
    "search_roots",
    "split",
    "split_indices",
    "user_root",
]

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double"}


_NAME_WIDTH = max(len(info.name) for info in DATASETS.values())
_TITLE_WIDTH = max(len(info.title) for info in DATASETS.values())
_SHAPE_WIDTH = max(len(dims(info.input_shape)) for info in DATASETS.values())


def get_info(name: str, image_size: int | None = None, channels: int | None = None) -> DatasetInfo:
    """The :class:`DatasetInfo` registered as ``name``; a :class:`DatasetError` suggesting the closest name if none.

    For an image folder (``folder:PATH``) the info comes from the folder's layout, made into images of
    ``image_size`` and ``channels`` (see :func:`workbench.core.data.image_folders.describe_folder`: its mean and
    std are known only once loaded); a :class:`DatasetError` if the layout is wrong. ``image_size`` and
    ``channels`` are refused for registered datasets, whose images are what they are.
    """
    if is_folder(name):
        from workbench.core.data.image_folders import describe_folder

        return describe_folder(canonical_name(name), image_size, channels)
    _refuse_image_options(name, image_size, channels)
    if name in DATASETS:
        return DATASETS[name]
    closest = difflib.get_close_matches(str(name).lower(), DATASETS, n=1)
    suggestion = f" Did you mean '{closest[0]}'?" if closest else ""
    raise DatasetError(
        f"There is no dataset called '{name}'.{suggestion} Known datasets: {', '.join(DATASETS)}, "
        f"or folder:PATH for your own images (one sub-folder per class)."
    )


def _refuse_image_options(name: str, image_size: int | None, channels: int | None) -> None:
    if image_size is not None or channels is not None:
        raise DatasetError(
            f"An image size and channel count can be chosen for image folders (folder:PATH) only, "
            f"not for the dataset '{name}'."
        )


def user_root() -> Path:
    """The per-user folder datasets are downloaded into."""
    return Path(platformdirs.user_data_dir("workbench")) / "datasets"


def search_roots(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The ``(origin, root)`` pairs searched, in order: the data folder if any, the user folder, the system folder.

    The data folder is ``data_dir`` if given, else ``$WORKBENCH_DATA_DIR`` if set; a :class:`DatasetError`
    if it is not an existing folder.
    """
    roots = [("user", user_root()), ("system", SYSTEM_ROOT)]
    chosen = _data_dir(data_dir)
    return [("data-dir", chosen), *roots] if chosen else roots


def _data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    if data_dir is not None and os.fspath(data_dir):
        value, given_by = data_dir, "--data-dir"
    elif os.environ.get(DATA_DIR_VARIABLE):
        value, given_by = os.environ[DATA_DIR_VARIABLE], DATA_DIR_VARIABLE
    else:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DatasetError(f"The data folder {path} (given by {given_by}) does not exist or is not a folder.")
    return path


def locate(name: str, data_dir: str | os.PathLike | None = None) -> Location | None:
    """The first place, in :func:`search_roots` order, holding all of the dataset's files; None if there is none.

    An image folder is where its name says (``data_dir`` plays no part); a :class:`DatasetError` if its
    layout is wrong.
    """
    if is_folder(name):
        from workbench.core.data.image_folders import scan

        return Location(scan(canonical_name(name)).root, "folder")
    info = get_info(name)
    if info.source == "embedded":
        return Location(None, "embedded")
    return _find(info, search_roots(data_dir))


def _find(info: DatasetInfo, roots: list[tuple[str, Path]]) -> Location | None:
    for origin, root in roots:
        for folder in _candidate_folders(info, origin, root):
            if _has_files(info, folder):
                return Location(folder, origin)
    return None


def _candidate_folders(info: DatasetInfo, origin: str, root: Path) -> list[Path]:
    if info.source == "cifar":
        return [root / CIFAR_FOLDER]
    folders = [root / info.name]
    if info.torchvision_class:
        folders.append(root / info.torchvision_class / "raw")
    return [*folders, root] if origin == "data-dir" else folders


def _has_files(info: DatasetInfo, folder: Path) -> bool:
    if info.source == "cifar":
        return all((folder / file_name).is_file() for file_name in CIFAR_FILES)
    return all(_idx_file(folder, file_name) for file_name in IDX_FILES)


def _idx_file(folder: Path, file_name: str) -> Path | None:
    """``folder/file_name``, else ``folder/file_name.gz``; the uncompressed one first because it reads faster."""
    for path in (folder / file_name, folder / f"{file_name}.gz"):
        if path.is_file():
            return path
    return None


def _required_idx_file(info: DatasetInfo, folder: Path, file_name: str) -> Path:
    path = _idx_file(folder, file_name)
    if path is None:
        raise DatasetError(
            f"The {info.title} files in {folder} are incomplete: {file_name} (or {file_name}.gz) is gone."
        )
    return path


_cache: dict[tuple[str, Path | None], LoadedDataset] = {}


def load(
    name: str,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    progress: bool = True,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    seed: int = 0,
) -> LoadedDataset:
    """Find the dataset (downloading it into :func:`user_root` if it is nowhere and ``download``), and load it.

    Images come back as ``(pixel / pixel_max - mean) / std``. Loads are cached for the life of the process:
    loading the same files again returns the same :class:`LoadedDataset`, whose tensors are shared, so
    callers must not modify them in place. ``progress`` shows torchvision's download bar on stderr.
    A :class:`DatasetError` if the files are nowhere and cannot be downloaded, or are damaged.

    An image folder (``folder:PATH``) is made into ``image_size`` × ``image_size`` images (default 28) of
    ``channels`` (1 or 3; default 3 if any image is in colour, else 1), and its test split is drawn with
    ``seed`` (see :func:`workbench.core.data.image_folders.load_folder`). The three are refused for registered
    datasets, except ``seed``, which their fixed test splits ignore.
    """
    if is_folder(name):
        from workbench.core.data.image_folders import load_folder

        return load_folder(canonical_name(name), image_size, channels, seed)
    _refuse_image_options(name, image_size, channels)
    info = get_info(name)
    location = locate(name, data_dir) or _fetch(info, download, progress)
    key = (info.name, location.path.resolve() if location.path else None)
    if key not in _cache:
        _cache[key] = _read(info, location)
    return _cache[key]


def _fetch(info: DatasetInfo, download: bool, progress: bool) -> Location:
    if not download:
        raise DatasetError(_not_found_message(info, "Downloading was turned off."))
    root = user_root()
    try:
        _download(info, root, progress)
    except Exception as error:  # no network, HTTP errors, bad checksums, a full disk: all mean "get it another way"
        raise DatasetError(_not_found_message(info, f"Downloading it failed: {one_line(error)}")) from error
    location = _find(info, [("user", root)])
    if location is None:
        raise DatasetError(_not_found_message(info, f"The download finished but the files are not in {root}."))
    return location


def _download(info: DatasetInfo, root: Path, progress: bool) -> None:
    import torchvision.datasets  # imported here: it takes a second and is needed only to download or read CIFAR-10

    if info.torchvision_class is None:
        raise DatasetError(f"{info.title} cannot be downloaded: torchvision does not offer it.")
    dataset_class = getattr(torchvision.datasets, info.torchvision_class)
    quiet = contextlib.nullcontext() if progress else contextlib.redirect_stderr(io.StringIO())
    with quiet:
        dataset_class(root=root, train=True, download=True)


def _not_found_message(info: DatasetInfo, why: str) -> str:
    if info.source == "cifar":
        files = f"the folder {CIFAR_FOLDER} (holding {', '.join(CIFAR_FILES)})"
        system_folder = SYSTEM_ROOT / CIFAR_FOLDER
    else:
        files = ", ".join(IDX_FILES) + " (each may be gzipped, ending in .gz)"
        system_folder = SYSTEM_ROOT / info.name
    if info.apt_package:
        system_way = f"On Debian or Ubuntu, install it with: sudo apt install {info.apt_package}"
    else:
        system_way = f"Put the files in {system_folder}, which is searched too."
    return (
        f"Could not find the {info.title} dataset. {why}\n"
        f"Get it in one of these ways:\n"
        f"  1. Pass --data-dir FOLDER (or set {DATA_DIR_VARIABLE}=FOLDER), where FOLDER holds {files}.\n"
        f"  2. {system_way}\n"
        f"  3. Connect to the internet and try again: it will be downloaded into {user_root()}."
    )


def _read(info: DatasetInfo, location: Location) -> LoadedDataset:
    if info.source == "embedded":
        parts = _read_digits(info)
    elif location.path is None:
        raise DatasetError(f"{info.title} is not embedded in the workbench: its files need a folder.")
    elif info.source == "cifar":
        parts = _read_cifar(info, location.path)
    else:
        parts = [_read_idx_split(info, location.path, prefix) for prefix in ("train", "t10k")]
    (train_images, train_labels), (test_images, test_labels) = parts
    return LoadedDataset(
        info,
        normalise(info, train_images),
        as_labels(train_labels),
        normalise(info, test_images),
        as_labels(test_labels),
        location,
    )


def _read_idx_split(info: DatasetInfo, folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images_path = _required_idx_file(info, folder, f"{prefix}-images-idx3-ubyte")
    labels_path = _required_idx_file(info, folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DatasetError(f"{images_path} should hold images (3 dimensions) but has {images.ndim} dimensions.")
    if labels.ndim != 1:
        raise DatasetError(f"{labels_path} should hold labels (1 dimension) but has {labels.ndim} dimensions.")
    images = images[:, np.newaxis]
    _check(info, images, labels, str(images_path), str(labels_path))
    return images, labels


def _read_cifar(info: DatasetInfo, folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    from torchvision.datasets import CIFAR10

    parts = []
    for train in (True, False):
        try:
            batches = CIFAR10(root=folder.parent, train=train)
        except Exception as error:  # a damaged pickle can raise almost anything
            raise DatasetError(
                f"The CIFAR-10 files in {folder} are damaged or incomplete ({one_line(error)}). "
                f"Replace them with an intact copy."
            ) from error
        images = batches.data.transpose(0, 3, 1, 2)
        labels = np.asarray(batches.targets, dtype=np.int64)
        source = f"{folder} ({'training' if train else 'test'} batches)"
        _check(info, images, labels, source, source)
        parts.append((images, labels))
    return parts


def _read_digits(info: DatasetInfo) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    train_x, test_x, train_y, test_y = train_test_split(
        digits.images[:, np.newaxis], digits.target, test_size=info.test_count, stratify=digits.target, random_state=0
    )
    return [(train_x, train_y), (test_x, test_y)]


def _check(info: DatasetInfo, images: np.ndarray, labels: np.ndarray, images_source: str, labels_source: str) -> None:
    """Images of the dataset's shape, one label per image, every label naming a class."""
    if images.shape[1:] != info.input_shape:
        raise DatasetError(
            f"{images_source} holds images of {dims(images.shape[1:])} but {info.title} images "
            f"are {dims(info.input_shape)}."
        )
    if len(labels) != len(images):
        raise DatasetError(
            f"{labels_source} holds {len(labels):,} labels but {images_source} holds "
            f"{len(images):,} images; the two must match."
        )
    classes = len(info.class_names)
    bad = labels[(labels < 0) | (labels >= classes)]
    if bad.size:
        raise DatasetError(
            f"{labels_source} holds the label {bad[0]}, but {info.title} has {classes} classes "
            f"(labels 0 to {classes - 1})."
        )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The uint8 array stored in an IDX file, raw or gzipped (told apart by the gzip signature, not the name).

    The array is a read-only view of the file's bytes. A :class:`DatasetError` naming the file if it is not
    an unsigned-byte IDX file or is damaged.
    """
    path = Path(path)
    data = _read_bytes(path)
    if not data:
        raise DatasetError(f"{path} is empty.")
    if len(data) < 4 or data[:2] != b"\0\0":
        raise DatasetError(
            f"{path} is not an IDX file: IDX files start with the bytes 00 00 08, "
            f"this one starts with {data[:4].hex(' ')}."
        )
    type_code, ndim = data[2], data[3]
    if type_code != 0x08:
        kind = _IDX_TYPES.get(type_code, "unknown")
        raise DatasetError(
            f"{path} holds {kind} values (IDX type code 0x{type_code:02X}); "
            f"only unsigned bytes (type code 0x08) are supported."
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(
            f"{path} is cut short: its header announces {ndim} dimensions but the file ends after {len(data)} bytes."
        )
    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected, found = math.prod(shape), len(data) - header
    if found != expected:
        what = "pixels" if ndim > 1 else "labels"
        raise DatasetError(f"{path} is damaged: expected {expected:,} bytes of {what}, found {found:,}.")
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DatasetError(f"Cannot read {path}: {error.strerror or error}.") from error
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise DatasetError(f"{path} is a damaged gzip file ({error}). Replace it with an intact copy.") from error


def split(
    dataset: LoadedDataset, train_size: int, val_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train_x, train_y, val_x, val_y)``: disjoint random subsets of the official training split.

    The same seed draws the same subsets. ``val_size`` may be 0. A :class:`DatasetError` if the sizes
    are out of range or add up to more images than the training split holds.
    """
    train_indices, val_indices = split_indices(dataset, train_size, val_size, seed)
    return (
        dataset.train_x[train_indices],
        dataset.train_y[train_indices],
        dataset.train_x[val_indices],
        dataset.train_y[val_indices],
    )


def split_indices(
    dataset: LoadedDataset, train_size: int, val_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The indices into the training split that :func:`split` draws, without copying any image.

    The messages name the sizes as "training images" and "validation images", which reads alike in the app
    (its settings of those names) and on the command line (``--train-size``, ``--val-size``).
    """
    available = len(dataset.train_y)
    has = f"{dataset.info.title} has {available:,} in its training split"
    if val_size < 0:
        raise DatasetError(f"You asked for {val_size:,} validation images; use 0 or more.")
    if train_size < 1 and val_size >= available:
        # The training size was left to take the rest (TrainConfig.sizes_for), and nothing is left.
        raise DatasetError(
            f"You asked for {val_size:,} validation images but {has}, which leaves none to train on: "
            f"ask for at most {available - 1:,} validation images."
        )
    if train_size < 1:
        raise DatasetError(f"You asked for {train_size:,} training images; at least 1 is needed.")
    if train_size + val_size > available:
        raise DatasetError(
            f"You asked for {train_size:,} training + {val_size:,} validation images but {has}: the two add up "
            f"to {train_size + val_size:,}; ask for at most {available:,} together."
        )
    order = torch.randperm(available, generator=torch.Generator().manual_seed(seed))
    return order[:train_size], order[train_size : train_size + val_size]


def describe(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """One line about the dataset for ``workbench datasets``: classes, image shape and where it is. Never downloads."""
    info = get_info(name)
    head = (
        f"{info.name:<{_NAME_WIDTH}}  {info.title:<{_TITLE_WIDTH}}  {len(info.class_names)} classes  "
        f"{dims(info.input_shape):<{_SHAPE_WIDTH}}"
    )
    if info.source == "embedded":
        return f"{head}  embedded (scikit-learn)"
    location = locate(name, data_dir)
    if location is None:
        return f"{head}  not found: downloadable into {user_root()}"
    return f"{head}  found: {location.path} ({location.origin})"
