"""Writers of tiny datasets in the real on-disk formats, for tests.

Every writer makes class-dependent images (each class its own mean colour plus noise, so a model
can learn them), balanced labels, and returns a :class:`Written` holding exactly what a reader
should give back: uint8 HWC images and 0-based int32 labels in reading order.

* :func:`write_cifar10`: the official CIFAR-10 python pickles, extracted and/or as the tar.gz;
  :func:`cifar10_splits` reads such a folder back as a training run's splits.
* :func:`write_imagenet32`: ImageNet32 ``train_data_batch_K.npz`` / ``val_data.npz`` plus
  ``map_clsloc.txt``.
* :func:`write_class_folders`: one folder of PNG/JPEG/BMP files per class, optionally with a
  train/test split and a ``words.txt``.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CIFAR10_NAMES = [
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
]


@dataclass
class Written:
    """What a writer put on disk, as a reader should return it.

    Attributes:
        path: the main thing written (folder or archive).
        x_train: uint8 (N, 32, 32, 3) images in reading order (for class folders without a test
            folder: all images, before any hold-out).
        y_train: int32 (N,) 0-based labels.
        x_test: uint8 (M, 32, 32, 3) test images (empty when none were written).
        y_test: int32 (M,) labels.
        class_ids: ids of the classes in label order.
        class_names: names of the classes in label order.
        files: extra paths written, by role.
    """

    path: Path
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_ids: list[str]
    class_names: list[str]
    files: dict[str, Path] = field(default_factory=dict)


def class_colors(n_classes: int) -> np.ndarray:
    """Returns a distinct mean RGB colour per class, (n_classes, 3) float."""
    hues = np.arange(n_classes) / max(n_classes, 1)
    # A simple colour wheel: three phase-shifted cosines.
    phases = np.array([0.0, 1.0 / 3.0, 2.0 / 3.0])
    wheel = 0.5 + 0.5 * np.cos(2 * np.pi * (hues[:, None] - phases[None, :]))
    bright = 0.6 + 0.4 * (np.arange(n_classes) % 2)[:, None]
    return 30.0 + 195.0 * wheel * bright


def make_images(
    labels: np.ndarray,
    n_classes: int,
    seed: int = 0,
    size: tuple[int, int] = (32, 32),
    noise: float = 12.0,
) -> np.ndarray:
    """Makes class-dependent uint8 images: the class's colour plus Gaussian noise.

    Args:
        labels: 0-based class per image.
        n_classes: the number of classes (fixes the palette).
        seed: noise seed.
        size: (height, width).
        noise: noise standard deviation.

    Returns:
        uint8 images (len(labels), height, width, 3).
    """
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    colors = class_colors(n_classes)
    h, w = size
    base = colors[labels][:, None, None, :]
    pix = base + rng.normal(0.0, noise, size=(labels.size, h, w, 3))
    return np.clip(np.rint(pix), 0, 255).astype(np.uint8)


def balanced_labels(n: int, n_classes: int, seed: int = 0) -> np.ndarray:
    """Returns ``n`` labels cycling through the classes, shuffled."""
    labels = np.arange(n) % n_classes
    return np.random.default_rng(seed).permutation(labels).astype(np.int32)


def to_rows(images: np.ndarray) -> np.ndarray:
    """HWC uint8 images -> channel-major rows (N, 3072): R plane, G plane, B plane."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(images.shape[0], -1))


def _pickle_bytes(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=2)


def cifar_batch_bytes(
    images: np.ndarray, labels: Sequence[int], batch_label: str = "training batch"
) -> bytes:
    """Returns one CIFAR-10 batch pickle (bytes keys, channel-major data, list labels)."""
    obj = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": to_rows(images),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
    }
    return _pickle_bytes(obj)


def write_cifar10(
    root: Path | str,
    n_per_batch: int = 20,
    batches: int = 5,
    n_test: int = 20,
    *,
    folder: bool = True,
    archive: bool = False,
    meta: bool = True,
    seed: int = 0,
) -> Written:
    """Writes CIFAR-10 in the official python layout under ``root``.

    Args:
        root: the data folder (created).
        n_per_batch: images per ``data_batch_K``.
        batches: how many ``data_batch_K`` (1..batches).
        n_test: images in ``test_batch``.
        folder: write the extracted ``cifar-10-batches-py/`` folder.
        archive: write ``cifar-10-python.tar.gz`` (members under ``cifar-10-batches-py/``).
        meta: write ``batches.meta``.
        seed: image seed.

    Returns:
        The expected data; ``path`` is the folder if written, else the archive;
        ``files["archive"]`` / ``files["folder"]`` name both.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    members: dict[str, bytes] = {}
    xs, ys = [], []
    for k in range(1, batches + 1):
        y = balanced_labels(n_per_batch, 10, seed=seed + k)
        x = make_images(y, 10, seed=seed + 100 + k)
        members[f"data_batch_{k}"] = cifar_batch_bytes(x, y, f"training batch {k} of {batches}")
        xs.append(x)
        ys.append(y)
    y_test = balanced_labels(n_test, 10, seed=seed + 50)
    x_test = make_images(y_test, 10, seed=seed + 150)
    members["test_batch"] = cifar_batch_bytes(x_test, y_test, "testing batch 1 of 1")
    if meta:
        members["batches.meta"] = _pickle_bytes(
            {
                b"num_cases_per_batch": n_per_batch,
                b"label_names": [n.encode() for n in CIFAR10_NAMES],
                b"num_vis": 3072,
            }
        )
    files: dict[str, Path] = {}
    if folder:
        out = root / "cifar-10-batches-py"
        out.mkdir(parents=True, exist_ok=True)
        for name, raw in members.items():
            (out / name).write_bytes(raw)
        files["folder"] = out
    if archive:
        tar_path = root / "cifar-10-python.tar.gz"
        with tarfile.open(tar_path, "w:gz") as tar:
            for name, raw in members.items():
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
        files["archive"] = tar_path
    path = files.get("folder") or files.get("archive") or root
    return Written(
        path=path,
        x_train=np.concatenate(xs) if xs else np.zeros((0, 32, 32, 3), np.uint8),
        y_train=np.concatenate(ys).astype(np.int32) if ys else np.zeros(0, np.int32),
        x_test=x_test,
        y_test=y_test.astype(np.int32),
        class_ids=[str(i) for i in range(10)],
        class_names=list(CIFAR10_NAMES),
        files=files,
    )


def cifar10_splits(root: Path | str, n_per_batch: int = 40, n_test: int = 20):
    """Writes a tiny CIFAR-10 under ``root`` and returns its splits as hpo32 reads them
    (the real reader, a fifth held out for validation)."""
    from hpo32.search.data import load_dataset, make_splits

    write_cifar10(root, n_per_batch=n_per_batch, n_test=n_test)
    return make_splits(
        load_dataset("cifar10", data_dir=root, download=False), val_fraction=0.2, seed=0
    )


def imagenet_wnid(label: int) -> str:
    """A WNID-looking id for a 1-based label."""
    return f"n{1440000 + label:08d}"


def write_imagenet32(
    root: Path | str,
    n_classes: int = 5,
    n_per_class: int = 4,
    batches: int = 2,
    n_val_per_class: int = 2,
    *,
    map_file: bool = True,
    seed: int = 0,
) -> Written:
    """Writes ImageNet32 npz files (``train_data_batch_1..batches.npz``, ``val_data.npz``).

    Labels in the files are 1-based; ``map_clsloc.txt`` lines are "wnid label name_with_spaces"
    (underscores for spaces).

    Args:
        root: the folder (created).
        n_classes: the number of classes (labels 1..n_classes).
        n_per_class: training images per class, spread over the batches.
        batches: how many train batch files.
        n_val_per_class: validation (test) images per class.
        map_file: write ``map_clsloc.txt``.
        seed: image seed.

    Returns:
        The expected data (0-based labels, train in file order); ``files["map"]`` and
        ``files["val"]`` / ``files["train_1"]``.. name the files.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    y_all = balanced_labels(n_classes * n_per_class, n_classes, seed=seed)
    x_all = make_images(y_all, n_classes, seed=seed + 1)
    parts = np.array_split(np.arange(y_all.size), batches)
    files: dict[str, Path] = {}
    mean = x_all.reshape(-1, 3072).mean(axis=0) if y_all.size else np.zeros(3072)
    for k, idx in enumerate(parts, start=1):
        path = root / f"train_data_batch_{k}.npz"
        np.savez(path, data=to_rows(x_all[idx]), labels=(y_all[idx] + 1).tolist(), mean=mean)
        files[f"train_{k}"] = path
    y_val = balanced_labels(n_classes * n_val_per_class, n_classes, seed=seed + 2)
    x_val = make_images(y_val, n_classes, seed=seed + 3)
    files["val"] = root / "val_data.npz"
    np.savez(files["val"], data=to_rows(x_val), labels=(y_val + 1).tolist())
    ids = [imagenet_wnid(c) for c in range(1, n_classes + 1)]
    names = [f"class {c} thing" for c in range(1, n_classes + 1)]
    if map_file:
        files["map"] = root / "map_clsloc.txt"
        files["map"].write_text(
            "".join(
                f"{ids[c - 1]} {c} {names[c - 1].replace(' ', '_')}\n"
                for c in range(1, n_classes + 1)
            )
        )
    else:
        ids = [str(c) for c in range(1, n_classes + 1)]
        names = list(ids)
    return Written(
        path=root,
        x_train=x_all,
        y_train=y_all.astype(np.int32),
        x_test=x_val,
        y_test=y_val.astype(np.int32),
        class_ids=ids,
        class_names=names,
        files=files,
    )


def _save_image(img: np.ndarray, path: Path, fmt: str) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pil_format = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "bmp": "BMP"}[fmt.lower()]
    Image.fromarray(img, mode="RGB").save(path, format=pil_format)


def write_class_folders(
    root: Path | str,
    classes: Sequence[str] = ("n01443537", "n01629819", "n01641577"),
    n_per_class: int = 5,
    *,
    size: tuple[int, int] = (32, 32),
    fmt: str = "png",
    with_test: bool = False,
    n_test_per_class: int = 2,
    words: bool = False,
    nested: bool = False,
    seed: int = 0,
) -> Written:
    """Writes one folder of images per class.

    Without ``with_test``: ``root/<class>/img_XXX.<fmt>``. With it: ``root/train/<class>/...``
    and ``root/test/<class>/...``. ``nested`` puts the files one level deeper, in ``images/``
    (Tiny-ImageNet style). ``words`` writes ``root/words.txt`` ("id<TAB>name, other name").

    Args:
        root: the folder (created).
        classes: class folder names.
        n_per_class: training images per class.
        size: (width, height) of the written images.
        fmt: "png", "jpg", "jpeg" or "bmp" (also the file suffix).
        with_test: write a train/ + test/ split.
        n_test_per_class: test images per class when ``with_test``.
        words: write ``words.txt``.
        nested: put images under an ``images/`` sub-folder of each class folder.
        seed: image seed.

    Returns:
        The expected data with classes in sorted-name order and files in name order; images are
        as written (not resized), so compare pixels only for 32x32 PNG/BMP.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    order = sorted(classes)
    width, height = size
    train_root = root / "train" if with_test else root

    def write_split(base: Path, per_class: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for c, name in enumerate(order):
            y = np.full(per_class, c, dtype=np.int32)
            x = make_images(y, len(order), seed=seed + offset + c, size=(height, width))
            folder = base / name / "images" if nested else base / name
            for i, img in enumerate(x):
                _save_image(img, folder / f"img_{i:03d}.{fmt}", fmt)
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    x_train, y_train = write_split(train_root, n_per_class, 0)
    if with_test:
        x_test, y_test = write_split(root / "test", n_test_per_class, 1000)
    else:
        x_test = np.zeros((0, height, width, 3), np.uint8)
        y_test = np.zeros(0, np.int32)
    names = list(order)
    files: dict[str, Path] = {}
    if words:
        names = [f"thing {name}, other {name}" for name in order]
        files["words"] = root / "words.txt"
        files["words"].write_text(
            "n00000001\tentity\n"
            + "".join(f"{n}\t{t}\n" for n, t in zip(order, names, strict=True))
        )
    return Written(
        path=root,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_ids=list(order),
        class_names=names,
        files=files,
    )
