"""Datasets by name and the splits a search trains on: a stratified validation split held out
of the training images, budgets on train and validation, and ImageNet32 read only as far as
the splits need."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hpo32.search.data.checks import (
    ClassSpec,
    DataError,
    Dataset,
    Splits,
    data_dir_named,
    resolve_data_dir,
    select_classes,
)
from hpo32.search.data.cifar10 import load_cifar10
from hpo32.search.data.folder import load_folder
from hpo32.search.data.imagenet32 import load_imagenet32
from hpo32.search.data.stratify import _holdout, _rng, _subset

#: The names load_dataset and load_splits accept for ImageNet32.
_IMAGENET32_NAMES = ("imagenet32", "imagenet-32")
DATASET_CHOICES = "cifar10, imagenet32 or folder:PATH"


def load_dataset(
    spec: str,
    data_dir: str | os.PathLike[str] | None = None,
    classes: ClassSpec | str = None,
    download: bool | None = None,
) -> Dataset:
    """Loads a dataset by name.

    Args:
        spec: "cifar10", "imagenet32" or "folder:PATH" (PATH with ``~`` expanded, relative to the
            working directory).
        data_dir: the data folder for cifar10 and imagenet32 (see :func:`resolve_data_dir`).
        classes: an optional class subset: for imagenet32 see :func:`load_imagenet32`, for the
            others see :func:`select_classes`.
        download: whether CIFAR-10 may be downloaded when missing; None: into the Keras
            cache when the user named no data folder, never into a named one (a named folder,
            see :func:`data_dir_named`, is the only place looked at).

    Returns:
        The dataset.

    Raises:
        DataError: on an unknown spec or any data problem.
    """
    text = str(spec).strip()
    key = text.lower()
    if key.startswith("folder:"):
        folder = text.split(":", 1)[1].strip()
        if not folder:
            raise DataError("Dataset 'folder:' names no folder: write folder:PATH.")
        return select_classes(load_folder(Path(folder)), classes)
    if key in ("cifar10", "cifar-10"):
        named = data_dir_named(data_dir)
        allowed = (not named) if download is None else download
        dataset = load_cifar10(resolve_data_dir(data_dir), download=allowed, only_root=named)
        return select_classes(dataset, classes)
    if key in _IMAGENET32_NAMES:
        return load_imagenet32(resolve_data_dir(data_dir), classes=classes)
    raise DataError(f"Unknown dataset {text!r}: choose {DATASET_CHOICES}.")


def make_splits(
    ds: Dataset,
    val_fraction: float = 0.1,
    train_limit: int | None = None,
    val_limit: int | None = None,
    seed: int = 0,
) -> Splits:
    """Holds out a stratified validation split from the training images and applies budgets.

    Args:
        ds: the dataset.
        val_fraction: the share of training images held out for validation, in (0, 1).
        train_limit: keep at most this many training images (stratified), or None.
        val_limit: keep at most this many validation images (stratified), or None.
        seed: the random seed; the same seed gives the same splits.

    Returns:
        The splits; the test split is ``ds``'s, untouched. Images stay uint8, labels int32.

    Raises:
        DataError: on a fraction outside (0, 1), a limit below 1, or too few training images.
    """
    keep, hold = split_indices(ds.y_train, val_fraction, train_limit, val_limit, seed, ds.name)
    return _splits_from(ds, keep, hold)


def split_indices(
    y: np.ndarray,
    val_fraction: float = 0.1,
    train_limit: int | None = None,
    val_limit: int | None = None,
    seed: int = 0,
    name: str = "the dataset",
) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the training and the validation images :func:`make_splits` takes.

    Raises:
        DataError: as :func:`make_splits`.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise DataError(f"val_fraction={val_fraction} must lie strictly between 0 and 1.")
    for label, limit in (("train_limit", train_limit), ("val_limit", val_limit)):
        if limit is not None and int(limit) < 1:
            raise DataError(f"{label}={limit} must be at least 1, or unset for no limit.")
    y = np.asarray(y).astype(np.int64, copy=False)
    if y.size < 2:
        raise DataError(
            f"Dataset {name} has {y.size} training image{'s' if y.size != 1 else ''}: at "
            "least 2 are needed to hold out a validation split."
        )
    keep, hold = _holdout(y, float(val_fraction), _rng(seed, 0))
    if train_limit is not None and keep.size > train_limit:
        keep = keep[_subset(y[keep], int(train_limit), _rng(seed, 1))]
    if val_limit is not None and hold.size > val_limit:
        hold = hold[_subset(y[hold], int(val_limit), _rng(seed, 2))]
    return keep, hold


def load_splits(
    spec: str,
    data_dir: str | os.PathLike[str] | None = None,
    classes: ClassSpec | str = None,
    val_fraction: float = 0.1,
    train_limit: int | None = None,
    val_limit: int | None = None,
    seed: int = 0,
    download: bool | None = None,
) -> Splits:
    """``make_splits(load_dataset(spec, ...), ...)``, the same arrays, in less memory.

    For ImageNet32 the split is chosen from the labels alone and only the chosen training
    images are read, file by file: with ``train_limit`` and ``val_limit`` the full training set
    (3.9 GB for the 1.28M images) is never in memory, so the limits lower the peak memory and
    not only the time. Other datasets are small and are loaded whole, then split.

    Raises:
        DataError: as :func:`load_dataset` and :func:`make_splits`.
    """
    if str(spec).strip().lower() not in _IMAGENET32_NAMES:
        ds = load_dataset(spec, data_dir=data_dir, classes=classes, download=download)
        return make_splits(ds, val_fraction, train_limit, val_limit, seed)
    positions: dict[str, np.ndarray] = {}  # of keep and hold among the rows read

    def rows(y: np.ndarray) -> np.ndarray:
        keep, hold = split_indices(y, val_fraction, train_limit, val_limit, seed, "imagenet32")
        read = np.union1d(keep, hold)
        positions["keep"], positions["hold"] = (
            np.searchsorted(read, keep),
            np.searchsorted(read, hold),
        )
        return read

    ds = load_imagenet32(resolve_data_dir(data_dir), classes=classes, train_rows=rows)
    return _splits_from(ds, positions["keep"], positions["hold"])


def _splits_from(ds: Dataset, keep: np.ndarray, hold: np.ndarray) -> Splits:
    y_train = np.asarray(ds.y_train, dtype=np.int32)
    return Splits(
        x_train=ds.x_train[keep],
        y_train=y_train[keep],
        x_val=ds.x_train[hold],
        y_val=y_train[hold],
        x_test=ds.x_test,
        y_test=np.asarray(ds.y_test, dtype=np.int32),
        class_ids=list(ds.class_ids),
        class_names=list(ds.class_names),
        name=ds.name,
    )
