"""What the readers share: DataError, the Dataset and Splits records, where data lives, and the
checks of pixel rows, labels and class subsets that turn a bad file into a one-sentence error."""

from __future__ import annotations

import os
import pickle
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_PIXELS = 32 * 32 * 3
_READ_ERRORS = (
    EOFError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
    ImportError,
    OSError,
    MemoryError,
)

ClassSpec = int | Sequence[int | str] | None


class DataError(ValueError):
    """A user-fixable data problem; ``str(e)`` is one sentence naming the file or folder and fix."""


@dataclass
class Dataset:
    """A labelled image dataset with a train and a test split.

    Attributes:
        name: "cifar10", "imagenet32" or "folder:<path>".
        x_train: uint8 images, shape (N, 32, 32, 3).
        y_train: int32 labels, shape (N,), in 0..num_classes-1.
        x_test: uint8 images, shape (M, 32, 32, 3).
        y_test: int32 labels, shape (M,).
        class_ids: one stable id per class (WNIDs, folder names, "0".."9" for CIFAR-10).
        class_names: one human-readable name per class.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_ids: list[str]
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.class_ids)


@dataclass
class Splits:
    """What a search trains on: train, validation (held out from train) and test arrays.

    Attributes:
        x_train: uint8 images (N, 32, 32, 3); y_train: int32 labels (N,).
        x_val: uint8 images (V, 32, 32, 3); y_val: int32 labels (V,).
        x_test: uint8 images (M, 32, 32, 3); y_test: int32 labels (M,).
        class_ids: one stable id per class.
        class_names: one human-readable name per class.
        name: the dataset's name.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_ids: list[str]
    class_names: list[str]
    name: str

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.class_ids)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape of one image, (32, 32, 3)."""
        h, w, c = self.x_train.shape[1:]
        return (int(h), int(w), int(c))


def _keras_datasets_dir() -> Path:
    """Returns the Keras dataset cache: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".keras"
    return base / "datasets"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """Returns the folder that datasets are read from.

    The first that is set wins: ``data_dir`` (the ``--data-dir`` flag), the environment variable
    ``HPO32_DATA_DIR``, the Keras cache (``$KERAS_HOME/datasets`` if ``KERAS_HOME`` is set, else
    ``~/.keras/datasets``). The folder is not created.

    Args:
        data_dir: an explicit folder, or None.

    Returns:
        The folder, with ``~`` expanded.
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get("HPO32_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return _keras_datasets_dir()


def data_dir_named(data_dir: str | os.PathLike[str] | None) -> bool:
    """Whether the user named the data folder (``--data-dir`` or ``HPO32_DATA_DIR``): then
    it is the only place a dataset is looked for."""
    return bool(data_dir is not None and str(data_dir) != "") or bool(
        os.environ.get("HPO32_DATA_DIR")
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".")
    if len(text) > 120:
        text = text[:117] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_rows(data: Any, where: str, refetch: str) -> np.ndarray:
    """Checks channel-major pixel rows (N, 3072) and returns them as HWC images.

    Args:
        data: pixel rows, R plane then G plane then B plane, each 32x32 row-major.
        where: the file named in error messages.
        refetch: the end of the error sentence (how to fix the file).

    Returns:
        uint8 images (N, 32, 32, 3), a view of ``data`` when it is already uint8.

    Raises:
        DataError: on a wrong shape, dtype or pixel range.
    """
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != _PIXELS:
        raise DataError(
            f"{where} holds data of shape {tuple(data.shape)} instead of (N, {_PIXELS}), so its "
            f"images are not 32x32x3: {refetch}."
        )
    if data.dtype != np.uint8:
        if not np.issubdtype(data.dtype, np.integer) or (
            data.size and (data.min() < 0 or data.max() > 255)
        ):
            raise DataError(
                f"{where} holds pixels of type {data.dtype} that are not bytes 0..255: {refetch}."
            )
        data = data.astype(np.uint8)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def _check_labels(labels: Any, where: str, refetch: str) -> np.ndarray:
    """Checks that ``labels`` is a flat list of integers; returns them as int64 (N,).

    Raises:
        DataError: when they are not one integer per image.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and 1 in labels.shape:
        labels = labels.reshape(-1)
    if labels.ndim != 1:
        raise DataError(
            f"{where} holds labels of shape {tuple(labels.shape)} instead of one per image: "
            f"{refetch}."
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        as_int = labels.astype(np.int64) if np.issubdtype(labels.dtype, np.number) else None
        if as_int is None or not np.array_equal(as_int, labels):
            raise DataError(f"{where} holds labels that are not integers: {refetch}.")
        labels = as_int
    return labels.astype(np.int64, copy=False)


def _check_count(images: int, labels: int, where: str, refetch: str) -> None:
    if images != labels:
        raise DataError(f"{where} has {images} images but {labels} labels: {refetch}.")


def _concat(parts: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    if not parts:
        return np.zeros((0, *shape), dtype=dtype)
    return np.ascontiguousarray(np.concatenate(parts, axis=0), dtype=dtype)


def _normalize_class_spec(classes: ClassSpec | str) -> ClassSpec:
    """Turns a command-line string into a class spec: "10" -> 10, "3,n01443537" -> a list."""
    if isinstance(classes, bytes):
        classes = classes.decode()
    if isinstance(classes, str):
        text = classes.strip()
        if text.isdigit():
            return int(text)
        return [c.strip() for c in text.split(",") if c.strip()]
    return classes


def _resolve_class_spec(
    classes: ClassSpec | str,
    known: Sequence[str],
    lookup: Callable[[int | str], int | None],
    what: str,
) -> list[int]:
    """Turns a class subset into positions in ``known``.

    Args:
        classes: None (all), N (the first N) or a list of entries resolved by ``lookup``.
        known: the ids of all classes, in order.
        lookup: maps one entry to a position in ``known``, or None when unknown.
        what: the dataset named in error messages.

    Returns:
        Positions in ``known``, in the requested order.

    Raises:
        DataError: on an empty, out-of-range, unknown or repeated entry.
    """
    classes = _normalize_class_spec(classes)
    if classes is None:
        return list(range(len(known)))
    if isinstance(classes, bool):
        raise DataError(f"classes={classes!r} is not a class count or list for {what}.")
    if isinstance(classes, (int, np.integer)):
        count = int(classes)
        if not 1 <= count <= len(known):
            raise DataError(
                f"classes={count} is out of range for {what}, which has {len(known)} classes: "
                f"pass a number from 1 to {len(known)}."
            )
        return list(range(count))
    entries = list(classes)
    if not entries:
        raise DataError(f"The class list for {what} is empty: name at least one class.")
    picked: list[int] = []
    for entry in entries:
        pos = lookup(entry)
        if pos is None:
            raise DataError(
                f"Class {entry!r} is not one of the {len(known)} classes of {what}: pass a valid "
                "label, id or name."
            )
        if pos in picked:
            raise DataError(f"Class {entry!r} is listed twice for {what}: name each class once.")
        picked.append(pos)
    return picked


def select_classes(ds: Dataset, classes: ClassSpec | str) -> Dataset:
    """Keeps only some classes of a loaded dataset, relabelled 0..k-1 in the given order.

    Args:
        ds: the dataset.
        classes: None (all), N (the first N classes), or a list whose entries are matched against
            ``ds.class_ids`` first (ints as their decimal string, so for CIFAR-10 they are the
            0-based labels) and then against ``ds.class_names``. A string is read as a
            command-line value: "N" is a count, otherwise a comma-separated list.

    Returns:
        ``ds`` itself when all classes are kept in order, else a new dataset.

    Raises:
        DataError: on an unknown or repeated class or a count out of range.
    """
    ids = list(ds.class_ids)
    by_id = {cid: i for i, cid in enumerate(ids)}
    by_name: dict[str, int] = {}
    for i, name in enumerate(ds.class_names):
        by_name.setdefault(name, i)

    def lookup(entry: int | str) -> int | None:
        key = str(int(entry)) if isinstance(entry, (int, np.integer)) else str(entry).strip()
        if key in by_id:
            return by_id[key]
        return by_name.get(key)

    picked = _resolve_class_spec(classes, ids, lookup, ds.name)
    if picked == list(range(len(ids))):
        return ds
    remap = np.full(len(ids), -1, dtype=np.int64)
    remap[np.asarray(picked)] = np.arange(len(picked))

    def cut(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        new = remap[y]
        keep = new >= 0
        return x[keep], new[keep].astype(np.int32)

    x_train, y_train = cut(ds.x_train, ds.y_train)
    x_test, y_test = cut(ds.x_test, ds.y_test)
    return Dataset(
        name=ds.name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_ids=[ids[i] for i in picked],
        class_names=[ds.class_names[i] for i in picked],
    )
