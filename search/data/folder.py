"""Class folders: one folder of images per class (Tiny-ImageNet's layout included), resized to
32x32."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from hpo32.search.data.checks import _READ_ERRORS, DataError, Dataset, _describe
from hpo32.search.data.stratify import _holdout, _rng

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp"})


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
            rgb = rgb.resize((32, 32), Image.Resampling.BILINEAR)

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
