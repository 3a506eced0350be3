"""The user's own images as a dataset: a folder holding one sub-folder per class (torchvision's ImageFolder layout).

A folder dataset is named ``folder:PATH`` (see :func:`workbench.core.data.datasets.folder_name`). Its classes are
the sorted names of PATH's sub-folders, its images the files in them that torchvision's ``ImageFolder``
would take (``.png``, ``.jpg``, ...). Every image is decoded once with Pillow: turned upright as its EXIF
orientation says, transparent pixels made white, converted to grayscale or colour and resized, whole and
without cropping, to a square of ``image_size`` pixels. Decoded folders are kept for the life of the process.

A folder has no official test split, so one is drawn with the run's seed: :data:`TEST_FRACTION` of each
class, at least one image. The rest is the training portion, from which the run draws its training and
validation subsets as for any dataset, and on which the normalisation (mean and std per channel) is measured.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from workbench.core.architecture import MAX_CLASSES, MIN_CLASSES
from workbench.core.data.catalog import (
    DatasetInfo,
    LoadedDataset,
    Location,
    as_labels,
    folder_path,
    image_shape,
    normalise,
    one_line,
)
from workbench.core.errors import DatasetError

DEFAULT_IMAGE_SIZE = 28
TEST_FRACTION = 0.15
RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 3.0
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_PEEKED_PER_CLASS = 3
_SHOWN_PROBLEMS = 5
_STATS_CHUNK = 4096


@dataclass(frozen=True)
class Layout:
    """What a folder holds: its class names and, for each image file, its path and class index; ``notes`` say what
    was skipped (see :func:`scan`)."""

    root: Path
    classes: tuple[str, ...]
    files: tuple[str, ...]
    labels: np.ndarray
    notes: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return f"Image folder {self.root.name} ({len(self.classes)} classes, {len(self.files):,} images)"

    def split_counts(self) -> tuple[int, int]:
        """``(training portion, test split)`` sizes; they do not depend on the seed."""
        test = sum(_test_count(int(count)) for count in np.bincount(self.labels, minlength=len(self.classes)))
        return len(self.files) - test, test


@dataclass(frozen=True)
class _Decoded:
    layout: Layout
    images: np.ndarray  # uint8 (N, C, S, S)


_decoded: dict[tuple[str, int, int | None], _Decoded] = {}
_loaded: dict[tuple[str, int, int | None, int], LoadedDataset] = {}


def scan(name: str) -> Layout:
    """The classes and image files of the folder dataset ``name``, without reading any image.

    A :class:`DatasetError` saying what is expected if the folder is missing, has no class sub-folders or more
    than :data:`~workbench.core.architecture.MAX_CLASSES` of them (checked before any class is read), has a
    class without images, has a single class, or has a class with a single image (which could not be both
    trained on and tested).

    Symbolic links are followed, to files and to folders, only where their target lies inside the dataset
    folder, and every file is counted once, however many ways lead to it (files are told apart by device and
    inode, so hard links are one file too):

    - a link leading outside the dataset folder is skipped unread: its images are not the dataset's. So is a
      link leading nowhere (its target is missing, or it is part of a circle of links). The layout's
      :attr:`Layout.notes` say how many links were skipped, naming the first;
    - a link to the dataset folder or to a folder already read for the class (a loop, such as a link to the
      class folder or to the folder above it) is skipped without a note: no image behind it is missing;
    - a file reached several ways (a link to an image of another class, a link to another class's folder) is
      counted once, under the class whose folder holds the file itself; a file that no class folder holds
      (e.g. one in a hidden folder of the dataset folder) is counted under the first class leading to it.

    Without links the files and their order are those of torchvision's ``make_dataset``, so a folder's test
    split stays what it was.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

    root = folder_path(name)
    if not root.is_dir():
        raise DatasetError(f"The image folder {root} does not exist or is not a folder. {_expected(root)}")
    walk = _Walk(root, lambda file_name: has_file_allowed_extension(file_name, IMG_EXTENSIONS))
    with os.scandir(root) as listing:
        entries = sorted(listing, key=lambda entry: entry.name)
    classes = [entry.name for entry in entries if not _hidden(entry.name) and walk.kind(entry, False) == _FOLDER]
    if not classes:
        loose = any(has_file_allowed_extension(entry.name, IMG_EXTENSIONS) for entry in entries)
        where = "its images lie directly in it, but " if loose else ""
        raise DatasetError(f"{root} has no class sub-folders: {where}{_expected(root)}")
    if len(classes) > MAX_CLASSES:
        raise DatasetError(
            f"{root} holds {len(classes):,} class sub-folders, but the workbench trains networks of at most "
            f"{MAX_CLASSES:,} classes: merge or remove class folders until at most {MAX_CLASSES:,} are left."
        )
    for label, class_name in enumerate(classes):
        walk.read_class(label, os.path.join(root, class_name))
    files, labels = walk.counted()
    _check_classes(root, classes, np.bincount(labels, minlength=len(classes)), IMG_EXTENSIONS)
    return Layout(root, tuple(classes), tuple(files), labels, walk.notes())


def _hidden(name: str) -> bool:
    return name.startswith(".")


_FOLDER, _FILE = "folder", "file"


@dataclass(frozen=True)
class _Found:
    """One way to an image: its class, the path it was found at, the file's ``(st_dev, st_ino)``, and whether
    the path passes no link (it is where the file itself lies)."""

    label: int
    path: str
    identity: tuple[int, int]
    direct: bool


class _Walk:
    """The image files under a dataset folder's class folders, following only the links that stay inside it.

    Each class is read with :meth:`read_class`; :meth:`counted` then keeps each file once (see :func:`scan`).
    """

    def __init__(self, root: Path, image_name: Callable[[str], bool]):
        self.root = root
        self.real_root = os.path.realpath(root)
        self.image_name = image_name
        root_status = os.stat(root)
        self.root_identity = (root_status.st_dev, root_status.st_ino)
        self.found: list[_Found] = []
        self.outside: list[str] = []
        self.nowhere: list[str] = []
        self.unreadable: list[str] = []

    def read_class(self, label: int, folder: str) -> None:
        """Add the images under ``folder`` (a class folder) as ``label``, in ``make_dataset``'s order: folders by
        path, the files of each by name."""
        listed: list[tuple[str, list[_Found]]] = []
        read = {self.root_identity}
        pending = [(folder, os.path.islink(folder))]
        while pending:
            directory, linked = pending.pop()
            try:
                status = os.stat(directory)
            except OSError:
                self.unreadable.append(directory)
                continue
            if (status.st_dev, status.st_ino) in read:
                continue  # the dataset folder, a loop, or a second way into a folder read already
            read.add((status.st_dev, status.st_ino))
            try:
                with os.scandir(directory) as listing:
                    entries = sorted(listing, key=lambda entry: entry.name)
            except OSError:
                self.unreadable.append(directory)
                continue
            images = []
            for entry in entries:
                image = self._is_image(entry.name)
                kind = self.kind(entry, image)
                through_link = linked or entry.is_symlink()
                if kind == _FOLDER:
                    pending.append((entry.path, through_link))
                elif kind == _FILE and image:
                    try:
                        file_status = entry.stat()  # follows a link, which kind() found inside the dataset folder
                    except OSError:
                        continue  # removed meanwhile
                    identity = (file_status.st_dev, file_status.st_ino)
                    images.append(_Found(label, entry.path, identity, not through_link))
            listed.append((directory, images))
        for _, images in sorted(listed, key=lambda item: item[0]):
            self.found.extend(images)

    def kind(self, entry: os.DirEntry[str], image: bool) -> str | None:
        """:data:`_FOLDER`, :data:`_FILE`, or None for an entry not to follow: a link leading outside the dataset
        folder or nowhere, noted if it would have counted (a folder, or a file named as an image: ``image``)."""
        if not entry.is_symlink():
            try:
                return _FOLDER if entry.is_dir(follow_symlinks=False) else _FILE
            except OSError:
                return None
        try:
            target = os.stat(entry.path)
        except OSError:  # a missing target, a circle of links, no permission
            if image:
                self.nowhere.append(entry.path)
            return None
        folder = stat.S_ISDIR(target.st_mode)
        if os.path.commonpath([self.real_root, os.path.realpath(entry.path)]) != self.real_root:
            if folder or image:
                self.outside.append(entry.path)
            return None
        return _FOLDER if folder else _FILE

    def _is_image(self, file_name: str) -> bool:
        # Hidden files are skipped: macOS leaves "._name.jpg" companions next to photos that are not images.
        return self.image_name(file_name) and not _hidden(file_name)

    def counted(self) -> tuple[list[str], np.ndarray]:
        """The paths and labels of the files, each once and in the order found: where no link leads to it if
        it was found there, else where it was found first."""
        chosen: dict[tuple[int, int], int] = {}
        for index, found in enumerate(self.found):
            first = chosen.get(found.identity)
            if first is None or (found.direct and not self.found[first].direct):
                chosen[found.identity] = index
        kept = [self.found[index] for index in sorted(chosen.values())]
        return [found.path for found in kept], np.array([found.label for found in kept], dtype=np.int64)

    def notes(self) -> tuple[str, ...]:
        """A sentence for each kind of link or folder skipped, naming the first."""
        notes = []
        if self.outside:
            notes.append(
                f"{_skipped(self.root, self.outside, 'link', 'leads', 'lead')} outside it: only images inside the "
                f"dataset folder are read; copy the images there to train on them."
            )
        if self.nowhere:
            notes.append(
                f"{_skipped(self.root, self.nowhere, 'link', 'leads', 'lead')} nowhere (to a missing file, or in a "
                f"circle of links)."
            )
        if self.unreadable:
            notes.append(
                f"{_skipped(self.root, self.unreadable, 'folder', 'cannot', 'cannot')} be opened: check the "
                f"permissions."
            )
        return tuple(notes)


def _skipped(root: Path, paths: list[str], noun: str, verb: str, verb_plural: str) -> str:
    """E.g. "Skipped 2 links in ROOT (the first: cat/up) that lead"."""
    if len(paths) == 1:
        return f"Skipped 1 {noun} in {root}, {os.path.relpath(paths[0], root)}, that {verb}"
    return f"Skipped {len(paths):,} {noun}s in {root} (the first: {os.path.relpath(paths[0], root)}) that {verb_plural}"


def _expected(root: Path) -> str:
    return f"{root} must hold one sub-folder per class, e.g. {root / 'cat'}/*.png, {root / 'dog'}/*.png."


def _check_classes(root: Path, classes: list[str], counts: np.ndarray, extensions: tuple[str, ...]) -> None:
    if not counts.sum():
        raise DatasetError(f"{root} holds no images (files ending in {', '.join(extensions)}). {_expected(root)}")
    empty = [name for name, count in zip(classes, counts) if count == 0]
    if empty:
        raise DatasetError(
            f"The class folder(s) {_names(empty)} in {root} hold no images: add images "
            f"({', '.join(extensions)}) or remove those folders."
        )
    if len(classes) < MIN_CLASSES:
        raise DatasetError(
            f"{root} holds a single class ('{classes[0]}'): a classifier needs at least two classes. {_expected(root)}"
        )
    lonely = [name for name, count in zip(classes, counts) if count == 1]
    if lonely:
        raise DatasetError(
            f"The class(es) {_names(lonely)} in {root} have a single image; each class needs at "
            f"least 2, one to train on and one to test on."
        )


def _names(names: list[str]) -> str:
    shown = ", ".join(f"'{name}'" for name in names[:_SHOWN_PROBLEMS])
    return shown + (f" and {len(names) - _SHOWN_PROBLEMS} more" if len(names) > _SHOWN_PROBLEMS else "")


def describe_folder(name: str, image_size: int | None = None, channels: int | None = None) -> DatasetInfo:
    """What the folder dataset ``name`` is, from its layout alone, without decoding its images.

    With ``channels`` None the channel count is guessed from the first few images of each class (the
    loaded dataset decides on every image). The mean and std are measured on the training portion when
    the images are loaded, so they are empty here: use the :class:`LoadedDataset`'s info to normalise.
    """
    layout = scan(name)
    size = image_size or DEFAULT_IMAGE_SIZE
    channels = channels or (3 if _peek_colour(layout) else 1)
    train_count, test_count = layout.split_counts()
    return DatasetInfo(
        name,
        layout.title,
        layout.classes,
        (channels, size, size),
        (),
        (),
        train_count,
        test_count,
        "folder",
        notes=layout.notes,
    )


def _peek_colour(layout: Layout) -> bool:
    """Whether any of the first few images of each class is stored in colour; opening reads only the header."""
    for label in range(len(layout.classes)):
        for index in np.flatnonzero(layout.labels == label)[:_PEEKED_PER_CLASS]:
            try:
                with Image.open(layout.files[index]) as image:
                    if _is_colour(image):
                        return True
            except Exception:  # an unreadable file is named when the images are loaded
                continue
    return False


def _is_colour(image: Image.Image) -> bool:
    return image.mode not in _GREY_MODES


def load_folder(name: str, image_size: int | None = None, channels: int | None = None, seed: int = 0) -> LoadedDataset:
    """The folder dataset ``name`` in memory, its test split drawn with ``seed``; cached for the process.

    ``channels`` None takes 3 if any image is stored in colour, else 1. A :class:`DatasetError` naming
    the files that cannot be read as images, or saying what is wrong with the folder's layout.
    """
    size = image_size or DEFAULT_IMAGE_SIZE
    key = (name, size, channels, seed)
    if key not in _loaded:
        decoded_key = (name, size, channels)
        if decoded_key not in _decoded:
            _decoded[decoded_key] = _decode(scan(name), size, channels)
        _loaded[key] = _split(name, _decoded[decoded_key], seed)
    return _loaded[key]


def forget() -> None:
    """Drop every decoded and loaded folder, e.g. after the files changed on disk."""
    _decoded.clear()
    _loaded.clear()


def _decode(layout: Layout, size: int, channels: int | None) -> _Decoded:
    mode = "L" if channels == 1 else "RGB"
    # Pillow releases the GIL while decoding and resizing, so threads use every core.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = list(pool.map(lambda path: _read_one(path, size, mode), layout.files))
    problems = [(path, result) for path, result in zip(layout.files, results) if isinstance(result, str)]
    if problems:
        raise DatasetError(_unreadable_message(layout, problems))
    read = [result for result in results if not isinstance(result, str)]
    pixels = np.stack([result[0] for result in read])
    if mode == "L":
        images = pixels[:, np.newaxis]
    elif channels is None and not any(colour for _, colour in read):
        images = np.ascontiguousarray(pixels[..., 0])[:, np.newaxis]  # grey images made RGB repeat their grey
    else:
        images = pixels.transpose(0, 3, 1, 2)
    return _Decoded(layout, np.ascontiguousarray(images))


def _read_one(path: str, size: int, mode: str) -> tuple[np.ndarray, bool] | str:
    """``(pixels (S, S) or (S, S, 3), stored in colour)``, or why the file cannot be read."""
    try:
        return image_pixels(path, size, mode)
    except UnidentifiedImageError:
        return "not an image Pillow can read"
    except Exception as error:  # damaged files fail inside Pillow in many ways (OSError, SyntaxError...)
        return one_line(error)


def image_pixels(path: str | os.PathLike, size: int, mode: str) -> tuple[np.ndarray, bool]:
    """The image in ``path`` as uint8 pixels of ``mode`` ("L" or "RGB"), ``size`` × ``size``, and whether it
    was stored in colour.

    The image is turned upright as its EXIF orientation says, transparent pixels become white, 16-bit
    grey keeps each value's high byte, and the whole picture is resized (squeezed, not cropped) with
    Lanczos, first shrinking large pictures by a whole factor (``reducing_gap``) for speed.
    """
    with Image.open(path) as image:
        image.load()
        colour = _is_colour(image)
        upright = flatten_image(ImageOps.exif_transpose(image)).convert(mode)
    if upright.size != (size, size):
        upright = upright.resize((size, size), RESAMPLE, reducing_gap=REDUCING_GAP)
    return np.asarray(upright, dtype=np.uint8), colour


def flatten_image(image: Image.Image) -> Image.Image:
    """``image`` on a white background if it has transparency, with 16-bit grey made 8-bit; else as it is."""
    if image.mode.startswith("I;16"):
        # Pillow clips 16-bit values at 255 when converting to "L"; keep each value's high byte instead.
        return Image.fromarray((np.asarray(image) >> 8).astype(np.uint8))
    if not image.has_transparency_data:
        return image
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)


def _unreadable_message(layout: Layout, problems: list[tuple[str, str]]) -> str:
    if len(problems) == 1:
        path, reason = problems[0]
        return f"The image {path} cannot be read ({reason}). Remove or replace it."
    shown = "; ".join(f"{os.path.relpath(path, layout.root)} ({reason})" for path, reason in problems[:_SHOWN_PROBLEMS])
    more = f"; and {len(problems) - _SHOWN_PROBLEMS} more" if len(problems) > _SHOWN_PROBLEMS else ""
    return (
        f"{len(problems)} of the {len(layout.files):,} images in {layout.root} cannot be read: {shown}{more}. "
        f"Remove or replace them."
    )


def _test_count(class_size: int) -> int:
    """Images of a class drawn for the test split: a fraction, at least one, never all of them."""
    return min(max(1, round(TEST_FRACTION * class_size)), class_size - 1)


def held_out_mask(labels: np.ndarray, classes: int, seed: int) -> np.ndarray:
    """Which images form the test split: :func:`_test_count` of each class, drawn with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for label in range(classes):
        members = np.flatnonzero(labels == label)
        order = torch.randperm(len(members), generator=generator).numpy()
        mask[members[order[: _test_count(len(members))]]] = True
    return mask


def _split(name: str, decoded: _Decoded, seed: int) -> LoadedDataset:
    layout, images = decoded.layout, decoded.images
    test = held_out_mask(layout.labels, len(layout.classes), seed)
    train_images, test_images = images[~test], images[test]
    mean, std = pixel_stats(train_images)
    info = DatasetInfo(
        name,
        layout.title,
        layout.classes,
        image_shape(images.shape[1:]),
        mean,
        std,
        len(train_images),
        len(test_images),
        "folder",
        notes=layout.notes,
    )
    return LoadedDataset(
        info,
        normalise(info, train_images),
        as_labels(layout.labels[~test]),
        normalise(info, test_images),
        as_labels(layout.labels[test]),
        Location(layout.root, "folder"),
    )


def pixel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images ``(N, C, H, W)`` scaled to [0, 1], rounded to 4 decimals."""
    pixels = torch.from_numpy(images)
    sums = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(sums)
    for start in range(0, len(pixels), _STATS_CHUNK):  # in chunks: a float64 copy of every image could be large
        chunk = pixels[start : start + _STATS_CHUNK].to(torch.float64) / 255
        sums += chunk.sum(dim=(0, 2, 3))
        squares += chunk.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = sums / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    # A channel that never varies (e.g. blank images) would be divided by zero.
    std = std.clamp_min(1 / 255)
    return tuple(round(float(value), 4) for value in mean), tuple(round(float(value), 4) for value in std)
