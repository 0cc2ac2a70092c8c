"""CIFAR-10: the official python pickles, as the extracted folder or read in place from the
archive; downloaded into the Keras cache when missing."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from hpo32.search.data.checks import (
    _READ_ERRORS,
    DataError,
    Dataset,
    _check_count,
    _check_labels,
    _check_rows,
    _concat,
    _describe,
    _keras_datasets_dir,
)

log = logging.getLogger("hpo32.search.data")

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


def _cifar_missing(root: Path, extra: str = "", hint: str = ", or pass --data-dir") -> DataError:
    return DataError(
        f"CIFAR-10 not found in {root}{extra}: put {CIFAR10_ARCHIVE} (from {CIFAR10_PAGE}) or its "
        f"extracted {CIFAR10_FOLDER}/ folder there{hint}."
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

    def __enter__(self) -> _CifarSource:
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


def _archive_sha256() -> str | None:
    """The checksum the download must have: ``hpo32.search.data.CIFAR10_SHA256``, read from the
    package when downloading, so that setting it there (as the tests do) still takes effect."""
    from hpo32.search import data

    return data.CIFAR10_SHA256


def load_cifar10(root: Path, download: bool = True, only_root: bool = False) -> Dataset:
    """Loads CIFAR-10 from the official python batches.

    Looks in ``root`` for the extracted ``cifar-10-batches-py/`` folder, then for
    ``cifar-10-python.tar.gz`` (read in place, not extracted), and accepts ``root`` being the
    batches folder itself; Keras's own cache layout is recognised too. When nothing is found
    there and ``only_root`` is false, the Keras cache is searched too. Still missing, and with
    ``download`` true, the archive is downloaded: into ``root`` when ``only_root``, else into
    the Keras cache. The training images are whatever ``data_batch_K`` exist (normally
    1..5); ``test_batch`` is the test split.

    Args:
        root: the data folder.
        download: whether to download the archive when it is missing.
        only_root: ``root`` is a folder the user named: look nowhere else.

    Returns:
        The dataset; class ids "0".."9", names from ``batches.meta``.

    Raises:
        DataError: when the data is missing (and not downloadable) or a file is corrupt.
    """
    root = Path(root).expanduser()
    found = _find_cifar(root)
    cache = root if only_root else _keras_datasets_dir()
    if found is None and cache.resolve() != root.resolve():
        found = _find_cifar(cache)
    if found is None:
        if not download:
            if only_root:
                raise _cifar_missing(root, hint=" or add --download to fetch it into that folder")
            raise _cifar_missing(root)
        target = cache / CIFAR10_ARCHIVE
        log.info("Downloading CIFAR-10 from %s to %s", CIFAR10_URL, target)
        try:
            _download(CIFAR10_URL, target, _archive_sha256())
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
