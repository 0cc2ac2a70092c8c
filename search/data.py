"""Datasets of 32x32 RGB images: readers, train/validation/test splits and the tf.data pipeline.

Three sources are supported, all giving the same :class:`Dataset` of uint8 HWC images:

* ``cifar10``: the official python pickles, as the extracted ``cifar-10-batches-py/`` folder or
  straight out of ``cifar-10-python.tar.gz``; downloaded into the Keras cache when missing.
* ``imagenet32``: the official downsampled-ImageNet npz files (``train_data_batch_K.npz`` and
  ``val_data.npz``), optionally restricted to a class subset while reading, batch by batch.
  It is never downloaded (it needs an image-net.org login).
* ``folder:PATH``: one folder of images per class (Tiny-ImageNet's layout included), resized to
  32x32.

:func:`make_splits` carves a stratified validation split out of the training images and can cut
train and validation down to a budget; :func:`make_tf_dataset` turns arrays into a batched,
shuffled, optionally augmented ``tf.data.Dataset``. Every user-fixable problem raises
:class:`DataError` whose message is one sentence naming the file or folder and the fix.

This module imports no ML framework at import time; TensorFlow is imported inside the functions
that need it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

__all__ = [
    "CIFAR10_CLASS_NAMES",
    "CIFAR10_URL",
    "IMAGENET_URL",
    "IMAGE_EXTENSIONS",
    "DataError",
    "Dataset",
    "Splits",
    "load_cifar10",
    "load_dataset",
    "load_folder",
    "load_imagenet32",
    "load_splits",
    "make_splits",
    "make_tf_dataset",
    "normalize",
    "resolve_data_dir",
    "select_classes",
    "split_indices",
    "stratified_subset",
]

log = logging.getLogger(__name__)

#: The names load_dataset and load_splits accept for ImageNet32.
_IMAGENET32_NAMES = ("imagenet32", "imagenet-32")

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
#: SHA-256 of the official archive; the download is rejected when it differs (None: no check).
CIFAR10_SHA256: str | None = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
IMAGENET_URL = "https://image-net.org/download-images"
IMAGENET32_MAX_LABEL = 1000
_IMAGENET_REFETCH = f"download it again from {IMAGENET_URL}"
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
DATASET_CHOICES = "cifar10, imagenet32 or folder:PATH"

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


# ----------------------------------------------------------------------------- locations


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


# ----------------------------------------------------------------------------- shared helpers


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


# ----------------------------------------------------------------------------- CIFAR-10


def _cifar_missing(root: Path, extra: str = "") -> DataError:
    return DataError(
        f"CIFAR-10 not found in {root}{extra}: put {CIFAR10_ARCHIVE} (from {CIFAR10_PAGE}) or its "
        f"extracted {CIFAR10_FOLDER}/ folder there, or pass --data-dir."
    )


def _unpickle(raw: bytes, where: str) -> Any:
    try:
        return pickle.loads(raw, encoding="bytes")
    except _READ_ERRORS as exc:
        raise DataError(
            f"CIFAR-10 file {where} is truncated or corrupt ({_describe(exc)}): re-download "
            f"{CIFAR10_ARCHIVE} from {CIFAR10_PAGE} and extract it again."
        ) from None


def _cifar_batch(obj: Any, where: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    refetch = f"re-download {CIFAR10_ARCHIVE} from {CIFAR10_PAGE}"
    if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
        raise DataError(
            f"{where} is not a CIFAR-10 batch (a pickled dict with b'data' and b'labels'): "
            f"{refetch}."
        )
    images = _check_rows(obj[b"data"], where, refetch)
    labels = _check_labels(obj[b"labels"], where, refetch)
    _check_count(images.shape[0], labels.shape[0], where, refetch)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = int(labels.max()) if labels.max() >= num_classes else int(labels.min())
        raise DataError(f"{where} has label {bad} outside 0..{num_classes - 1}: {refetch}.")
    return images, labels


def _cifar_label_names(obj: Any, where: str) -> list[str]:
    names = obj.get(b"label_names") if isinstance(obj, dict) else None
    if not isinstance(names, (list, tuple)) or not names:
        raise DataError(
            f"{where} is not a CIFAR-10 batches.meta (a pickled dict with b'label_names'): "
            f"re-download {CIFAR10_ARCHIVE} from {CIFAR10_PAGE}."
        )
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names]


class _CifarSource:
    """Reads the named members of a CIFAR-10 folder or tar archive as bytes."""

    def __init__(self, location: Path, is_archive: bool) -> None:
        self.location = location
        self.is_archive = is_archive
        self._members: dict[str, tarfile.TarInfo] = {}
        self._tar: tarfile.TarFile | None = None

    def __enter__(self) -> Self:
        if self.is_archive:
            try:
                self._tar = tarfile.open(self.location, mode="r:*")
                for member in self._tar.getmembers():
                    if member.isfile():
                        self._members.setdefault(member.name.rsplit("/", 1)[-1], member)
            except _READ_ERRORS as exc:
                if self._tar is not None:
                    self._tar.close()
                raise DataError(
                    f"CIFAR-10 archive {self.location} is truncated or corrupt "
                    f"({_describe(exc)}): delete it and download {CIFAR10_ARCHIVE} again from "
                    f"{CIFAR10_PAGE}."
                ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tar is not None:
            self._tar.close()

    def where(self, name: str) -> str:
        if self.is_archive:
            return f"{self.location}:{name}"
        return str(self.location / name)

    def has(self, name: str) -> bool:
        if self.is_archive:
            return name in self._members
        return (self.location / name).is_file()

    def read(self, name: str) -> bytes:
        try:
            if self.is_archive:
                assert self._tar is not None
                handle = self._tar.extractfile(self._members[name])
                if handle is None:
                    raise OSError("not a regular file")
                with handle:
                    return handle.read()
            return (self.location / name).read_bytes()
        except _READ_ERRORS as exc:
            raise DataError(
                f"CIFAR-10 file {self.where(name)} could not be read ({_describe(exc)}): "
                f"re-download {CIFAR10_ARCHIVE} from {CIFAR10_PAGE}."
            ) from None


def _find_cifar(root: Path) -> tuple[Path, bool] | None:
    """Returns (location, is_archive) of CIFAR-10 under ``root``, or None."""
    if (root / "data_batch_1").is_file() or (root / "test_batch").is_file():
        return root, False
    for folder in (
        root / CIFAR10_FOLDER,
        root / "cifar-10-batches-py-target" / CIFAR10_FOLDER,
        root / "cifar-10-batches-py_extracted" / CIFAR10_FOLDER,
    ):
        if folder.is_dir():
            return folder, False
    for archive in (
        root / CIFAR10_ARCHIVE,
        root / "cifar-10-batches-py-target_archive",
        root / "cifar-10-batches-py_archive",
    ):
        if archive.is_file():
            return archive, True
    if root.is_file() and root.name.endswith((".tar.gz", ".tgz", ".tar")):
        return root, True
    return None


def _download(url: str, dest: Path, sha256: str | None) -> None:
    """Downloads ``url`` to a temporary file next to ``dest`` and renames it into place.

    Raises:
        OSError: on a network or disk problem (urllib errors are OSErrors).
        ValueError: when the checksum differs.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                digest.update(chunk)
                out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise ValueError("SHA-256 checksum mismatch")
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_cifar10(root: Path, download: bool = True) -> Dataset:
    """Loads CIFAR-10 from the official python batches.

    Looks in ``root`` for the extracted ``cifar-10-batches-py/`` folder, then for
    ``cifar-10-python.tar.gz`` (read in place, not extracted), and accepts ``root`` being the
    batches folder itself; Keras's own cache layout is recognised too. When nothing is found the
    Keras cache is searched and, if ``download`` is true, the archive is downloaded there.
    The training images are whatever ``data_batch_K`` exist (normally 1..5); ``test_batch`` is
    the test split.

    Args:
        root: the data folder.
        download: whether to download the archive when it is missing.

    Returns:
        The dataset; class ids "0".."9", names from ``batches.meta``.

    Raises:
        DataError: when the data is missing (and not downloadable) or a file is corrupt.
    """
    root = Path(root).expanduser()
    found = _find_cifar(root)
    cache = _keras_datasets_dir()
    if found is None and cache.resolve() != root.resolve():
        found = _find_cifar(cache)
    if found is None:
        if not download:
            raise _cifar_missing(root)
        target = cache / CIFAR10_ARCHIVE
        log.info("Downloading CIFAR-10 from %s to %s", CIFAR10_URL, target)
        try:
            _download(CIFAR10_URL, target, CIFAR10_SHA256)
        except (OSError, ValueError, urllib.error.URLError) as exc:
            raise _cifar_missing(
                root, f" and downloading {CIFAR10_URL} failed ({_describe(exc)})"
            ) from None
        found = (target, True)
    location, is_archive = found

    with _CifarSource(location, is_archive) as src:
        train_names = sorted(
            (n for n in (f"data_batch_{k}" for k in range(1, 100)) if src.has(n)),
            key=lambda n: int(n.rsplit("_", 1)[1]),
        )
        missing = [n for n in ("test_batch",) if not src.has(n)]
        if not train_names:
            missing.insert(0, "data_batch_1..5")
        if missing:
            raise DataError(
                f"CIFAR-10 in {location} lacks {' and '.join(missing)}: put the complete "
                f"{CIFAR10_ARCHIVE} from {CIFAR10_PAGE} (or all of its extracted files) there."
            )
        names = list(CIFAR10_CLASS_NAMES)
        if src.has("batches.meta"):
            names = _cifar_label_names(
                _unpickle(src.read("batches.meta"), src.where("batches.meta")),
                src.where("batches.meta"),
            )
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        for member in train_names:
            where = src.where(member)
            x, y = _cifar_batch(_unpickle(src.read(member), where), where, len(names))
            xs.append(x)
            ys.append(y)
        where = src.where("test_batch")
        x_test, y_test = _cifar_batch(_unpickle(src.read("test_batch"), where), where, len(names))

    return Dataset(
        name="cifar10",
        x_train=_concat(xs, (32, 32, 3), np.uint8),
        y_train=_concat(ys, (), np.int32),
        x_test=np.ascontiguousarray(x_test),
        y_test=y_test.astype(np.int32),
        class_ids=[str(i) for i in range(len(names))],
        class_names=names,
    )


# ----------------------------------------------------------------------------- ImageNet32


def _imagenet_missing(root: Path) -> DataError:
    return DataError(
        f"ImageNet32 not found in {root}: put train_data_batch_1.npz .. train_data_batch_10.npz "
        f"(Imagenet32_train_npz.zip) and val_data.npz (Imagenet32_val_npz.zip), downloaded from "
        f"{IMAGENET_URL} after logging in, into {root} or {root / 'imagenet32-tiny200'}, or pass "
        "--data-dir."
    )


def _train_batch_number(path: Path) -> int | None:
    stem = path.name[: -len(".npz")]
    tail = stem[len("train_data_batch_") :]
    return int(tail) if tail.isdigit() else None


def _find_imagenet32(root: Path) -> tuple[Path, list[Path], Path | None]:
    """Returns (folder, train files sorted by K, val file or None) of ImageNet32 under root."""
    for folder in (root, root / "imagenet32", root / "imagenet32-tiny200"):
        if not folder.is_dir():
            continue
        numbered = [
            (k, p)
            for p in folder.glob("train_data_batch_*.npz")
            if (k := _train_batch_number(p)) is not None and p.is_file()
        ]
        val = folder / "val_data.npz"
        if numbered or val.is_file():
            trains = [p for _, p in sorted(numbered)]
            return folder, trains, (val if val.is_file() else None)
    raise _imagenet_missing(root)


def _read_map_clsloc(path: Path) -> dict[int, tuple[str, str]]:
    """Reads ``map_clsloc.txt``: lines "wnid label name" -> {label: (wnid, name)}."""
    out: dict[int, tuple[str, str]] = {}
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DataError(
            f"Could not read {path} ({_describe(exc)}): check its permissions."
        ) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[1].isdigit() or int(parts[1]) < 1:
            raise DataError(
                f"Line {number} of {path} is not 'wnid label name' with a label from 1: fix or "
                "delete the file."
            )
        label = int(parts[1])
        if label in out:
            raise DataError(
                f"Line {number} of {path} repeats label {label}: each label must appear once."
            )
        wnid = parts[0]
        name = parts[2].strip().replace("_", " ") if len(parts) > 2 else wnid
        out[label] = (wnid, name)
    if not out:
        raise DataError(f"{path} lists no classes: fix or delete the file.")
    return out


def _read_npz(path: Path, key: str) -> np.ndarray:
    """Reads one array of an ImageNet32 npz file (npz members load independently).

    Raises:
        DataError: when the file is corrupt or lacks 'data' or 'labels'.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if "data" not in keys or "labels" not in keys:
                raise DataError(
                    f"{path} is not an ImageNet32 batch (an npz with 'data' and 'labels'; it has "
                    f"{', '.join(sorted(keys)) or 'nothing'}): {_IMAGENET_REFETCH}."
                )
            return npz[key]
    except DataError:
        raise
    except _READ_ERRORS as exc:
        raise DataError(
            f"ImageNet32 file {path} is truncated or corrupt ({_describe(exc)}): "
            f"{_IMAGENET_REFETCH}."
        ) from None


def load_imagenet32(
    root: Path,
    classes: ClassSpec | str = None,
    train_rows: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Dataset:
    """Loads ImageNet32 (downsampled ImageNet, 32x32) from the official npz files.

    Reads every ``train_data_batch_K.npz`` in ``root`` (or ``root/imagenet32/`` or
    ``root/imagenet32-tiny200/``) in order of K as the training split and ``val_data.npz`` as the
    test split. Labels in the files are 1-based. Class ids and names come from
    ``map_clsloc.txt`` (next to the files or in ``root``) when present, else the ids are the
    label numbers "1".."K". With a class subset only those images are kept, file by file, so the
    full dataset is never in memory at once. Never downloads.

    Args:
        root: the data folder.
        classes: None (all), N (labels 1..N, i.e. the first N classes), or a list of 1-based
            labels (ints or digit strings) and/or WNIDs; the kept classes are relabelled 0..k-1
            in the given order. A string is read as a command-line value: "N" is a count,
            otherwise a comma-separated list.
        train_rows: given the training labels (after the class subset), returns the sorted
            positions of the training images to load; the others are never held in memory
            (see :func:`load_splits`).

    Returns:
        The dataset.

    Raises:
        DataError: on missing or corrupt files, bad shapes, labels out of range, or an invalid
            class subset.
    """
    root = Path(root).expanduser()
    folder, train_files, val_file = _find_imagenet32(root)
    if not train_files:
        raise DataError(
            f"ImageNet32 in {folder} has val_data.npz but no train_data_batch_K.npz: put "
            f"train_data_batch_1.npz .. train_data_batch_10.npz (from Imagenet32_train_npz.zip at "
            f"{IMAGENET_URL}, which needs a login) there."
        )
    if val_file is None:
        raise DataError(
            f"ImageNet32 in {folder} has train_data_batch_K.npz but no val_data.npz: put "
            f"val_data.npz (from Imagenet32_val_npz.zip at {IMAGENET_URL}, which needs a login) "
            "there."
        )

    map_path = next(
        (p for p in (folder / "map_clsloc.txt", root / "map_clsloc.txt") if p.is_file()), None
    )
    mapping = _read_map_clsloc(map_path) if map_path is not None else None
    where_map = f"{map_path}" if map_path is not None else "map_clsloc.txt"

    if mapping is not None:
        known_labels = sorted(mapping)
        max_label = known_labels[-1]
    else:
        known_labels = list(range(1, IMAGENET32_MAX_LABEL + 1))
        max_label = IMAGENET32_MAX_LABEL
    label_pos = {label: i for i, label in enumerate(known_labels)}
    wnid_pos = {mapping[label][0]: i for i, label in enumerate(known_labels)} if mapping else {}

    def lookup(entry: int | str) -> int | None:
        if isinstance(entry, (int, np.integer)) and not isinstance(entry, bool):
            return label_pos.get(int(entry))
        text = str(entry).strip()
        if text.isdigit():
            return label_pos.get(int(text))
        return wnid_pos.get(text)

    classes = _normalize_class_spec(classes)
    by_wnid = isinstance(classes, (list, tuple)) and any(
        isinstance(c, str) and not c.strip().isdigit() for c in classes
    )
    if by_wnid and mapping is None:
        raise DataError(
            f"ImageNet32 classes were given by WNID but {folder} has no map_clsloc.txt: put "
            "map_clsloc.txt next to the npz files or give the classes as 1-based labels."
        )
    picked = _resolve_class_spec(classes, [str(lbl) for lbl in known_labels], lookup, "imagenet32")
    subset = classes is not None
    remap = np.full(max_label + 1, -1, dtype=np.int64)
    picked_labels = [known_labels[i] for i in picked]
    remap[np.asarray(picked_labels)] = np.arange(len(picked_labels))
    valid = np.zeros(max_label + 1, dtype=bool)
    valid[np.asarray(known_labels)] = True

    def read_labels(path: Path) -> np.ndarray:
        """Returns the new labels of one file, -1 for images of classes not kept."""
        labels = _check_labels(_read_npz(path, "labels"), str(path), _IMAGENET_REFETCH)
        if labels.size:
            low, high = int(labels.min()), int(labels.max())
            if low < 1 or high > max_label:
                bad = low if low < 1 else high
                limit = f"the {max_label} classes of {where_map}" if mapping else "1..1000"
                raise DataError(
                    f"{path} has label {bad} outside {limit}: use the matching map_clsloc.txt or "
                    f"download the file again from {IMAGENET_URL}."
                )
            if mapping is not None and not valid[labels].all():
                bad = int(labels[~valid[labels]][0])
                raise DataError(
                    f"{path} has label {bad} that {where_map} does not list: use the "
                    "map_clsloc.txt that belongs to these files."
                )
        return remap[labels]

    def read_split(paths: list[Path], rows=None) -> tuple[np.ndarray, np.ndarray]:
        # Labels first (small), so the images go straight into one preallocated array and at
        # most one file's pixels are in memory besides it.
        news = [read_labels(path) for path in paths]
        seen.extend(int(new.max()) + 1 for new in news if new.size)
        if rows is not None:  # keep only the chosen positions among the kept images
            kept = np.concatenate([new[new >= 0] for new in news])
            chosen = np.zeros(kept.size, dtype=bool)
            chosen[np.asarray(rows(kept), dtype=np.int64)] = True
            start = 0
            for new in news:
                mine = new >= 0
                count = int(np.count_nonzero(mine))
                drop = np.flatnonzero(mine)[~chosen[start : start + count]]
                new[drop] = -1
                start += count
        total = sum(int(np.count_nonzero(new >= 0)) for new in news)
        x = np.empty((total, 32, 32, 3), dtype=np.uint8)
        y = np.empty(total, dtype=np.int32)
        pos = 0
        for path, new in zip(paths, news, strict=True):
            images = _check_rows(_read_npz(path, "data"), str(path), _IMAGENET_REFETCH)
            _check_count(images.shape[0], new.shape[0], str(path), _IMAGENET_REFETCH)
            keep = new >= 0
            count = int(np.count_nonzero(keep))
            if count == new.shape[0]:
                x[pos : pos + count] = images
                y[pos : pos + count] = new
            elif count:
                x[pos : pos + count] = images[keep]
                y[pos : pos + count] = new[keep]
            pos += count
            del images
        return x, y

    seen: list[int] = []  # largest label + 1 of each file, before any row selection
    x_train, y_train = read_split(train_files, train_rows)
    x_test, y_test = read_split([val_file])

    if mapping is None and not subset:
        # Ids are the label numbers up to the largest label that occurs.
        seen_max = max(seen or [1])
        picked_labels = list(range(1, seen_max + 1))
    if mapping is not None:
        ids = [mapping[label][0] for label in picked_labels]
        names = [mapping[label][1] for label in picked_labels]
    else:
        ids = [str(label) for label in picked_labels]
        names = list(ids)

    return Dataset(
        name="imagenet32",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_ids=ids,
        class_names=names,
    )


# ----------------------------------------------------------------------------- class folders


def _is_visible(path: Path) -> bool:
    return not path.name.startswith((".", "__"))


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_dir() and _is_visible(p)), key=lambda p: p.name
    )


def _image_files(folder: Path) -> list[Path]:
    found = [
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        and all(_is_visible(part) for part in p.relative_to(folder).parents if part.name)
        and _is_visible(p)
    ]
    return sorted(found)


def _read_words(paths: Iterable[Path]) -> dict[str, str]:
    for path in paths:
        if not path.is_file():
            continue
        out: dict[str, str] = {}
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise DataError(
                f"Could not read {path} ({_describe(exc)}): check its permissions."
            ) from None
        for line in text.splitlines():
            key, sep, name = line.partition("\t")
            if sep and key.strip() and name.strip():
                out.setdefault(key.strip(), name.strip())
        return out
    return {}


def _load_image(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            rgb = img.convert("RGB")
        if rgb.size != (32, 32):
            rgb = rgb.resize((32, 32), Image.BILINEAR)
        arr = np.asarray(rgb, dtype=np.uint8)
    except (*_READ_ERRORS, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"Image {path} could not be read ({_describe(exc)}): delete or replace it."
        ) from None
    return arr


def _load_images(paths: Sequence[Path]) -> np.ndarray:
    out = np.empty((len(paths), 32, 32, 3), dtype=np.uint8)
    if not paths:
        return out
    from concurrent.futures import ThreadPoolExecutor

    workers = max(1, min(8, os.cpu_count() or 1, len(paths) // 64 + 1))
    if workers == 1:
        for i, p in enumerate(paths):
            out[i] = _load_image(p)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, arr in enumerate(pool.map(_load_image, paths)):
            out[i] = arr
    return out


def _folder_split(
    root: Path, class_index: dict[str, int], allow_unknown: bool
) -> tuple[list[Path], list[int]] | None:
    """Lists (files, labels) of the class folders under ``root``.

    Returns None when ``allow_unknown`` and none of the sub-folders is a known class (the folder is
    not laid out by class, like Tiny-ImageNet's val/ and test/).
    """
    dirs = _class_dirs(root)
    known = [d for d in dirs if d.name in class_index]
    if allow_unknown:
        if not known:
            return None
        unknown = [d.name for d in dirs if d.name not in class_index and _image_files(d)]
        if unknown:
            raise DataError(
                f"Test folder {root} has class folder '{unknown[0]}' that the training folder "
                "lacks: give both the same class folders."
            )
    files: list[Path] = []
    labels: list[int] = []
    for d in known:
        imgs = _image_files(d)
        files.extend(imgs)
        labels.extend([class_index[d.name]] * len(imgs))
    return files, labels


def _annotated_split(
    folder: Path, class_index: dict[str, int]
) -> tuple[list[Path], list[int]] | None:
    """Reads Tiny-ImageNet's ``val/val_annotations.txt`` + ``val/images/`` layout, if present."""
    ann = folder / f"{folder.name}_annotations.txt"
    if not ann.is_file() or not (folder / "images").is_dir():
        return None
    files: list[Path] = []
    labels: list[int] = []
    try:
        lines = ann.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DataError(
            f"Could not read {ann} ({_describe(exc)}): check its permissions."
        ) from None
    for number, line in enumerate(lines, start=1):
        parts = line.split("\t")
        if len(parts) < 2:
            if line.strip():
                raise DataError(
                    f"Line {number} of {ann} is not 'file<TAB>class': fix or delete the file."
                )
            continue
        image, cls = parts[0].strip(), parts[1].strip()
        if cls not in class_index:
            raise DataError(
                f"Line {number} of {ann} names class '{cls}' that the training folder lacks: "
                "give both the same classes."
            )
        path = folder / "images" / image
        if not path.is_file():
            raise DataError(
                f"{path}, listed on line {number} of {ann}, does not exist: restore it."
            )
        files.append(path)
        labels.append(class_index[cls])
    return (files, labels) if files else None


def load_folder(path: Path) -> Dataset:
    """Loads images from one folder per class.

    ``path/<class>/**/*.{png,jpg,jpeg,bmp}`` (any letter case, searched recursively, so
    Tiny-ImageNet's ``train/<wnid>/images/`` works). If ``path/train/`` exists it holds the class
    folders and ``path/test/`` or ``path/val/`` with the same class folders (or Tiny-ImageNet's
    ``val/val_annotations.txt`` + ``val/images/``) is the test split; otherwise 20% of each class
    is held out as the test split (stratified, seed 0). Images are converted to RGB and resized
    to 32x32 (bilinear). Class ids are the folder names (sorted); names come from a
    ``words.txt`` ("id<TAB>name") in ``path`` or its parent when present.

    Args:
        path: the folder.

    Returns:
        The dataset, named "folder:<absolute path>".

    Raises:
        DataError: when the folder is missing, has fewer than 2 classes, a class without images,
            or an image that cannot be read.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise DataError(
            f"Image folder {path} does not exist: pass folder:PATH with one sub-folder of images "
            "per class."
        )
    train_root = path / "train" if (path / "train").is_dir() else path
    class_dirs = _class_dirs(train_root)
    if len(class_dirs) < 2:
        raise DataError(
            f"Image folder {train_root} has {len(class_dirs)} class folder"
            f"{'' if len(class_dirs) == 1 else 's'}: it needs one sub-folder of images per class, "
            "at least 2."
        )
    class_index = {d.name: i for i, d in enumerate(class_dirs)}
    files, labels = _folder_split(train_root, class_index, allow_unknown=False) or ([], [])
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_dirs))
    empty = [class_dirs[i].name for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(
            f"Class folder {train_root / empty[0]} has no images "
            f"({', '.join(sorted(IMAGE_EXTENSIONS))}): add images or remove the folder."
        )

    test: tuple[list[Path], list[int]] | None = None
    if train_root is not path:
        for name in ("test", "val"):
            candidate = path / name
            if candidate.is_dir():
                test = _folder_split(candidate, class_index, allow_unknown=True)
                if test is None or not test[0]:
                    test = _annotated_split(candidate, class_index)
                if test is not None and test[0]:
                    break
                test = None

    y_all = np.asarray(labels, dtype=np.int32)
    if test is None:
        keep, hold = _holdout(y_all, 0.2, _rng(0))
        x_all = _load_images(files)
        x_train, y_train = x_all[keep], y_all[keep]
        x_test, y_test = x_all[hold], y_all[hold]
    else:
        x_train, y_train = _load_images(files), y_all
        x_test, y_test = _load_images(test[0]), np.asarray(test[1], dtype=np.int32)

    words = _read_words([path / "words.txt", path.parent / "words.txt"])
    ids = [d.name for d in class_dirs]
    return Dataset(
        name=f"folder:{path.resolve()}",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_ids=ids,
        class_names=[words.get(cid, cid) for cid in ids],
    )


# ----------------------------------------------------------------------------- entry point


def load_dataset(
    spec: str,
    data_dir: str | os.PathLike[str] | None = None,
    classes: ClassSpec | str = None,
    download: bool = True,
) -> Dataset:
    """Loads a dataset by name.

    Args:
        spec: "cifar10", "imagenet32" or "folder:PATH" (PATH with ``~`` expanded, relative to the
            working directory).
        data_dir: the data folder for cifar10 and imagenet32 (see :func:`resolve_data_dir`).
        classes: an optional class subset: for imagenet32 see :func:`load_imagenet32`, for the
            others see :func:`select_classes`.
        download: whether CIFAR-10 may be downloaded when missing.

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
        return select_classes(load_cifar10(resolve_data_dir(data_dir), download=download), classes)
    if key in _IMAGENET32_NAMES:
        return load_imagenet32(resolve_data_dir(data_dir), classes=classes)
    raise DataError(f"Unknown dataset {text!r}: choose {DATASET_CHOICES}.")


# ----------------------------------------------------------------------------- splits


def _allocate(
    counts: np.ndarray, total: int, rng: np.random.Generator, caps: np.ndarray | None = None
) -> np.ndarray:
    """Splits ``total`` items over classes in proportion to ``counts``.

    Each class gets at most its cap (default: its count); every class with room gets at least one
    when ``total`` allows; otherwise the largest classes win, ties broken at random.

    Args:
        counts: items per class.
        total: how many to hand out.
        rng: breaks ties.
        caps: the most each class may get.

    Returns:
        int64 allocation per class, summing to min(total, caps.sum()).
    """
    counts = np.asarray(counts, dtype=np.int64)
    caps = counts.copy() if caps is None else np.minimum(np.asarray(caps, dtype=np.int64), counts)
    caps = np.maximum(caps, 0)
    total = int(min(max(total, 0), caps.sum()))
    alloc = np.zeros_like(counts)
    tiebreak = rng.permutation(len(counts))
    remaining = total
    while remaining > 0:
        room = caps - alloc
        active = room > 0
        weights = np.where(active, counts, 0).astype(np.float64)
        share = remaining * weights / weights.sum()
        add = np.minimum(np.floor(share).astype(np.int64), room)
        if add.sum() == 0:
            frac = np.where(active, share, -1.0)
            order = np.lexsort((tiebreak, -frac))
            add[order[:remaining]] = 1
        alloc += add
        remaining -= int(add.sum())
    # Every class with room gets at least one, taken from the currently largest allocation.
    needy = np.flatnonzero((alloc == 0) & (caps > 0))
    for cls in needy[np.argsort(tiebreak[needy])]:
        donor = int(np.argmax(alloc))
        if alloc[donor] <= 1:
            break
        alloc[donor] -= 1
        alloc[cls] += 1
    return alloc


def _pick(
    y: np.ndarray, alloc: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (picked, rest) sorted indices: ``alloc[c]`` random indices of each class c."""
    order = np.argsort(y, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(y[order], minlength=len(alloc)))])
    picked: list[np.ndarray] = []
    rest: list[np.ndarray] = []
    for cls in range(len(alloc)):
        idx = order[bounds[cls] : bounds[cls + 1]]
        if idx.size == 0:
            continue
        perm = rng.permutation(idx)
        picked.append(perm[: alloc[cls]])
        rest.append(perm[alloc[cls] :])
    empty = np.zeros(0, dtype=np.int64)
    return (
        np.sort(np.concatenate(picked)) if picked else empty,
        np.sort(np.concatenate(rest)) if rest else empty,
    )


def _rng(*parts: int) -> np.random.Generator:
    """A generator seeded by integers (negative ones too)."""
    return np.random.default_rng(np.random.SeedSequence([int(p) % 2**64 for p in parts]))


def _subset(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    alloc = _allocate(_class_counts(y), n, rng)
    picked, _ = _pick(y, alloc, rng)
    return picked


def _class_counts(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0):
        raise ValueError("labels must be non-negative integers")
    return np.bincount(y.astype(np.int64, copy=False), minlength=1)


def _holdout(
    y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (keep, hold) index arrays: a stratified ``fraction`` of ``y`` held out.

    Every class keeps at least one item; every class with at least two gives at least one when the
    hold-out size allows.
    """
    y = np.asarray(y)
    counts = _class_counts(y)
    n_hold = round(fraction * y.size)
    n_hold = min(max(n_hold, 1 if y.size > 1 else 0), max(y.size - 1, 0))
    alloc = _allocate(counts, n_hold, rng, caps=counts - 1)
    hold, keep = _pick(y, alloc, rng)
    return keep, hold


def stratified_subset(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Picks at most ``n`` indices of ``y`` keeping the class proportions.

    Every class keeps at least one index when ``n`` is at least the number of classes present.
    Deterministic for a seed.

    Args:
        y: integer labels, shape (N,).
        n: the most indices to return.
        seed: the random seed.

    Returns:
        Sorted int64 indices into ``y``; all of them when ``n >= len(y)``.

    Raises:
        ValueError: when ``n`` is negative.
    """
    y = np.asarray(y).reshape(-1)
    if n < 0:
        raise ValueError(f"subset size must be non-negative, got {n}")
    if n >= y.size:
        return np.arange(y.size, dtype=np.int64)
    return _subset(y.astype(np.int64, copy=False), int(n), _rng(seed))


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
    download: bool = True,
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


# ----------------------------------------------------------------------------- tf pipeline


def normalize(x: Any) -> Any:
    """Scales uint8 pixels to float32 in [0, 1].

    Args:
        x: a numpy array or a TensorFlow tensor of pixels 0..255.

    Returns:
        The same kind of object, float32, divided by 255.
    """
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        return np.asarray(x).astype(np.float32) / np.float32(255.0)
    import tensorflow as tf

    return tf.cast(x, tf.float32) / 255.0


def _row_gatherer(x: np.ndarray) -> Callable[[Any], Any]:
    """Returns ``gather(idx)``: the uint8 rows ``x[idx]`` as a tensor, read from ``x`` itself.

    The images stay in the one NumPy array the splits hold: converting them to a TensorFlow
    constant would keep a second and, while converting, a third copy (measured: 600 MB of
    tensor memory for 300 MB of images), which for the full ImageNet32 (3.9 GB) is the
    difference between fitting in memory or not. Each batch is a NumPy fancy index (tens of
    microseconds for 256 images) run by ``tf.data``'s parallel map.
    """
    import tensorflow as tf

    row_shape = list(x.shape[1:])

    def gather(idx: Any) -> Any:
        rows = tf.numpy_function(lambda i: x[i], [idx], tf.uint8, stateful=False)
        rows.set_shape([None, *row_shape])
        return rows

    return gather


#: Batches the input pipeline prepares ahead of the training step.
PREFETCH_BATCHES = 4


def _map_parallelism() -> int:
    """Batches gathered and augmented at once: the CPUs this process may use, at most 8."""
    from hpo32.search.hardware import cpu_count

    return max(1, min(8, cpu_count()))


def _alternating_flips(n_images: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """Returns ``mirror(idx)``: whether each drawn image is flipped this time, at random on its
    first draw and the opposite of its last draw after that (one bool of state per image)."""
    rng = np.random.default_rng(seed)
    last = rng.random(n_images) < 0.5
    seen = np.zeros(n_images, dtype=bool)

    def mirror(idx: np.ndarray) -> np.ndarray:
        out = np.where(seen[idx], ~last[idx], last[idx])
        last[idx] = out
        seen[idx] = True
        return out

    return mirror


def make_tf_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    training: bool,
    augment_flip: bool = False,
    augment_crop: bool = False,
    seed: int = 0,
    num_classes: int | None = None,
    flip_mode: str = "random",
    crop_pixels: int = 4,
) -> tf.data.Dataset:
    """Builds a batched ``tf.data`` pipeline of (float32 images in [0, 1], int32 labels).

    The images stay in the caller's uint8 array (no copy); the pipeline shuffles index
    batches (training only, reshuffled every epoch), gathers each batch at once and augments it
    vectorised: a left-right flip with probability 0.5 per image, and a random 32x32 crop of the
    image padded by ``crop_pixels`` (reflect) with per-image offsets. With ``flip_mode``
    ``alternating`` an image is flipped at random the first time it is drawn and the other way
    each time after (airbench's alternating flip: every two epochs show both sides).
    Augmentation applies only when ``training``. Shuffling and augmentation are deterministic
    given ``seed``.

    Args:
        x: uint8 images (N, H, W, C).
        y: integer labels (N,); emitted sparse as int32.
        batch_size: images per batch (the last batch may be smaller).
        training: shuffle and augment.
        augment_flip: random left-right flips.
        augment_crop: random pad-and-crop.
        seed: the random seed.
        flip_mode: ``random`` or ``alternating``.
        crop_pixels: the largest shift of the crop, in pixels.
        num_classes: if given, the labels are checked to lie in 0..num_classes-1.

    Returns:
        A ``tf.data.Dataset`` of ``(images (B, H, W, C) float32, labels (B,) int32)``.

    Raises:
        ValueError: on mismatched lengths, a bad batch size or labels out of range.
    """
    import tensorflow as tf

    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    y_np = np.asarray(y).reshape(-1)
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, C), got {x.shape}")
    if x.shape[0] != y_np.shape[0]:
        raise ValueError(f"{x.shape[0]} images but {y_np.shape[0]} labels")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if num_classes is not None and y_np.size and (y_np.min() < 0 or y_np.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")

    n = int(x.shape[0])
    height, width = int(x.shape[1]), int(x.shape[2])
    images = _row_gatherer(x)
    with tf.device("/CPU:0"):
        labels = tf.constant(y_np.astype(np.int32))
    flip = bool(training and augment_flip)
    crop = bool(training and augment_crop)
    pad = int(crop_pixels)
    if flip_mode not in ("random", "alternating"):
        raise ValueError(f"unknown flip_mode '{flip_mode}'; use random or alternating.")
    alternate = _alternating_flips(int(x.shape[0]), seed) if flip_mode == "alternating" else None

    def transform(idx: tf.Tensor, rand_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = images(idx)
        count = tf.shape(idx)[0]
        if flip:
            if flip_mode == "alternating":
                mirror = tf.numpy_function(alternate, [idx], tf.bool, stateful=True)
                mirror.set_shape([None])
            else:
                mirror = tf.random.stateless_uniform([count], seed=rand_seed[0]) < 0.5
            batch = tf.where(mirror[:, None, None, None], tf.reverse(batch, axis=[2]), batch)
        if crop:
            padded = tf.pad(batch, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
            offsets = tf.random.stateless_uniform(
                [2, count], seed=rand_seed[1], minval=0, maxval=2 * pad + 1, dtype=tf.int32
            )
            rows = offsets[0][:, None] + tf.range(height)[None, :]
            cols = offsets[1][:, None] + tf.range(width)[None, :]
            batch = tf.gather(padded, rows, axis=1, batch_dims=1)
            batch = tf.gather(batch, cols, axis=2, batch_dims=1)
        return normalize(batch), tf.gather(labels, idx)

    ds = tf.data.Dataset.range(n)
    if training:
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size))
    if flip or crop:
        # One pair of stateless seeds per batch, different every epoch, fixed by ``seed``.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(4)
        seeds = seeds.map(lambda s: tf.reshape(s, [2, 2]))
        ds = tf.data.Dataset.zip((ds, seeds))
        ds = ds.map(transform, num_parallel_calls=_map_parallelism(), deterministic=True)
    else:
        ds = ds.map(
            lambda idx: (normalize(images(idx)), tf.gather(labels, idx)),
            num_parallel_calls=_map_parallelism(),
            deterministic=True,
        )
    # The pipeline is already batched and vectorised; tf.data's default graph rewrites gain it
    # nothing and cost time on every first iteration.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    # No autotuning either: its background thread sleeps with a back-off that grows to a
    # minute, and freeing the iterator at the end of ``fit`` waited for it to wake (measured:
    # 0-34 s per trial, 20% of a 10-minute search). A fixed parallelism and a prefetch of a
    # few batches keep the CPU as busy.
    options.autotune.enabled = False
    return ds.prefetch(PREFETCH_BATCHES).with_options(options)
