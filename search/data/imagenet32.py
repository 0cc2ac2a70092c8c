"""ImageNet32: the official downsampled-ImageNet npz files, optionally restricted to a class
subset (and to chosen training rows) while reading, file by file. Never downloaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hpo32.search.data.checks import (
    _READ_ERRORS,
    ClassSpec,
    DataError,
    Dataset,
    _check_count,
    _check_labels,
    _check_rows,
    _describe,
    _normalize_class_spec,
    _resolve_class_spec,
)

IMAGENET_URL = "https://image-net.org/download-images"
IMAGENET32_MAX_LABEL = 1000
_IMAGENET_REFETCH = f"download it again from {IMAGENET_URL}"


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

    labels = _ClassMap(folder, root, classes)
    seen: list[int] = []  # largest label + 1 of each file, before any row selection
    x_train, y_train = _read_split(train_files, labels, seen, train_rows)
    x_test, y_test = _read_split([val_file], labels, seen)
    ids, names = labels.ids_and_names(seen)

    return Dataset(
        name="imagenet32",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_ids=ids,
        class_names=names,
    )


class _ClassMap:
    """The classes an ImageNet32 load keeps, and how the files' 1-based labels map to them.

    Built from ``map_clsloc.txt`` (next to the files or in ``root``) when present, else from the
    label numbers 1..1000; the class subset is resolved and checked here, before any file is read.

    Raises:
        DataError: on a bad map_clsloc.txt, WNIDs without one, or an invalid class subset.
    """

    def __init__(self, folder: Path, root: Path, classes: ClassSpec | str) -> None:
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
        picked = _resolve_class_spec(
            classes, [str(lbl) for lbl in known_labels], lookup, "imagenet32"
        )
        self.mapping = mapping
        self.where_map = where_map
        self.max_label = max_label
        self.subset = classes is not None
        self.remap = np.full(max_label + 1, -1, dtype=np.int64)
        self.picked_labels = [known_labels[i] for i in picked]
        self.remap[np.asarray(self.picked_labels)] = np.arange(len(self.picked_labels))
        self.valid = np.zeros(max_label + 1, dtype=bool)
        self.valid[np.asarray(known_labels)] = True

    def read_labels(self, path: Path) -> np.ndarray:
        """Returns the new labels of one file, -1 for images of classes not kept."""
        mapping, max_label, where_map = self.mapping, self.max_label, self.where_map
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
            if mapping is not None and not self.valid[labels].all():
                bad = int(labels[~self.valid[labels]][0])
                raise DataError(
                    f"{path} has label {bad} that {where_map} does not list: use the "
                    "map_clsloc.txt that belongs to these files."
                )
        return self.remap[labels]

    def ids_and_names(self, seen: list[int]) -> tuple[list[str], list[str]]:
        """The kept classes' ids and names; ``seen``: largest label + 1 of each file read."""
        picked_labels = self.picked_labels
        if self.mapping is None and not self.subset:
            # Ids are the label numbers up to the largest label that occurs.
            seen_max = max(seen or [1])
            picked_labels = list(range(1, seen_max + 1))
        if self.mapping is not None:
            ids = [self.mapping[label][0] for label in picked_labels]
            names = [self.mapping[label][1] for label in picked_labels]
        else:
            ids = [str(label) for label in picked_labels]
            names = list(ids)
        return ids, names


def _read_split(
    paths: list[Path],
    labels: _ClassMap,
    seen: list[int],
    rows: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reads the kept images of some npz files (and of those only ``rows`` chooses, if given).

    Labels first (small), so the images go straight into one preallocated array and at most one
    file's pixels are in memory besides it. Appends each file's largest label + 1 to ``seen``.
    """
    news = [labels.read_labels(path) for path in paths]
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
