"""Tests for search.data: readers, validation errors, splits and the tf.data pipeline."""

from __future__ import annotations

import hashlib
import io
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from hpo32.search import data
from hpo32.search.data import (
    CIFAR10_URL,
    DataError,
    Dataset,
    load_cifar10,
    load_dataset,
    load_folder,
    load_imagenet32,
    make_splits,
    make_tf_dataset,
    normalize,
    resolve_data_dir,
    stratified_subset,
)
from tests.fixtures import (
    cifar_batch_bytes,
    imagenet_wnid,
    make_images,
    to_rows,
    write_cifar10,
    write_class_folders,
    write_imagenet32,
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Points the Keras cache at an empty folder and forbids any network access."""
    home = tmp_path_factory.mktemp("keras_home")
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.delenv("HPO32_DATA_DIR", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("tests must not touch the network")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    return home


def _one_sentence(exc: pytest.ExceptionInfo[DataError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and "Traceback" not in msg
    assert msg.endswith(".")
    return msg


def _sorted_rows(x: np.ndarray) -> np.ndarray:
    rows = x.reshape(x.shape[0], -1)
    return rows[np.lexsort(rows.T[::-1])]


# ----------------------------------------------------------------------------- CIFAR-10


def test_cifar10_folder_round_trip(tmp_path: Path) -> None:
    w = write_cifar10(tmp_path, n_per_batch=20, batches=5, n_test=10)
    ds = load_cifar10(tmp_path, download=False)
    assert ds.name == "cifar10"
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape == (100, 32, 32, 3)
    assert ds.y_train.dtype == np.int32 and ds.y_test.dtype == np.int32
    np.testing.assert_array_equal(ds.x_train, w.x_train)
    np.testing.assert_array_equal(ds.y_train, w.y_train)
    np.testing.assert_array_equal(ds.x_test, w.x_test)
    np.testing.assert_array_equal(ds.y_test, w.y_test)
    assert ds.class_ids == [str(i) for i in range(10)]
    assert ds.class_names[0] == "airplane" and ds.class_names[9] == "truck"
    assert ds.num_classes == 10


def test_cifar10_channel_major_conversion(tmp_path: Path) -> None:
    # One image whose R, G and B planes are distinguishable: pixel (r, c) of plane p = p*100+r+c.
    planes = np.stack([p * 100 + np.add.outer(np.arange(32), np.arange(32)) for p in range(3)])
    row = planes.astype(np.uint8).reshape(1, 3072)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "test_batch"):
        obj = {b"data": row, b"labels": [3]}
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))
    ds = load_cifar10(tmp_path, download=False)
    img = ds.x_train[0]
    assert img[0, 0].tolist() == [0, 100, 200]
    assert img[2, 5].tolist() == [7, 107, 207]
    assert ds.class_names[3] == "cat"  # default names without batches.meta


def test_cifar10_from_archive_without_extracting(tmp_path: Path) -> None:
    w = write_cifar10(tmp_path, n_per_batch=10, batches=2, n_test=10, folder=False, archive=True)
    before = sorted(p.name for p in tmp_path.iterdir())
    ds = load_cifar10(tmp_path, download=False)
    np.testing.assert_array_equal(ds.x_train, w.x_train)
    np.testing.assert_array_equal(ds.y_test, w.y_test)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_cifar10_root_is_batches_folder(tmp_path: Path) -> None:
    w = write_cifar10(tmp_path, n_per_batch=10, batches=1, n_test=10)
    ds = load_cifar10(w.files["folder"], download=False)
    np.testing.assert_array_equal(ds.x_train, w.x_train)


def test_cifar10_missing_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_cifar10(tmp_path, download=False)
    msg = _one_sentence(exc)
    assert str(tmp_path) in msg and "cifar-10-python.tar.gz" in msg and "--data-dir" in msg


def test_cifar10_download_lands_in_keras_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _isolated_cache: Path
) -> None:
    w = write_cifar10(
        tmp_path / "src", n_per_batch=10, batches=1, n_test=10, folder=False, archive=True
    )
    raw = w.files["archive"].read_bytes()
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return io.BytesIO(raw)

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    monkeypatch.setattr(data, "CIFAR10_SHA256", hashlib.sha256(raw).hexdigest())
    empty = tmp_path / "empty"
    empty.mkdir()
    ds = load_cifar10(empty, download=True)
    assert calls == [CIFAR10_URL]
    cached = _isolated_cache / "datasets" / "cifar-10-python.tar.gz"
    assert cached.read_bytes() == raw
    assert [p.name for p in cached.parent.iterdir()] == ["cifar-10-python.tar.gz"]
    np.testing.assert_array_equal(ds.x_train, w.x_train)
    # The second call finds the cached archive and does not download again.
    load_cifar10(empty, download=True)
    assert len(calls) == 1


def test_cifar10_download_failure_and_bad_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _isolated_cache: Path
) -> None:
    def failing(url, timeout=None):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr("urllib.request.urlopen", failing)
    with pytest.raises(DataError) as exc:
        load_cifar10(tmp_path, download=True)
    msg = _one_sentence(exc)
    assert "CIFAR-10 not found" in msg and "no route to host" in msg

    monkeypatch.setattr("urllib.request.urlopen", lambda url, timeout=None: io.BytesIO(b"junk"))
    with pytest.raises(DataError, match="checksum"):
        load_cifar10(tmp_path, download=True)
    cache = _isolated_cache / "datasets"
    assert not cache.exists() or list(cache.iterdir()) == []  # no partial file left behind


def _cifar_folder(tmp_path: Path) -> Path:
    return write_cifar10(tmp_path, n_per_batch=10, batches=2, n_test=10).files["folder"]


def test_cifar10_truncated_pickle(tmp_path: Path) -> None:
    folder = _cifar_folder(tmp_path)
    raw = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError) as exc:
        load_cifar10(tmp_path, download=False)
    msg = _one_sentence(exc)
    assert "data_batch_2" in msg and "truncated or corrupt" in msg


def test_cifar10_pickle_that_is_not_a_batch(tmp_path: Path) -> None:
    folder = _cifar_folder(tmp_path)
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"labels": [1, 2]}, protocol=2))
    with pytest.raises(DataError) as exc:
        load_cifar10(tmp_path, download=False)
    assert "data_batch_1" in _one_sentence(exc) and "not a CIFAR-10 batch" in str(exc.value)


def test_cifar10_label_out_of_range(tmp_path: Path) -> None:
    folder = _cifar_folder(tmp_path)
    x = make_images(np.zeros(4, int), 10)
    (folder / "test_batch").write_bytes(cifar_batch_bytes(x, [0, 1, 10, 2]))
    with pytest.raises(DataError) as exc:
        load_cifar10(tmp_path, download=False)
    msg = _one_sentence(exc)
    assert "test_batch" in msg and "label 10" in msg


def test_cifar10_wrong_shape_and_length_mismatch(tmp_path: Path) -> None:
    folder = _cifar_folder(tmp_path)
    bad = {b"data": np.zeros((4, 3000), np.uint8), b"labels": [0, 1, 2, 3]}
    (folder / "data_batch_1").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DataError) as exc:
        load_cifar10(tmp_path, download=False)
    assert "(4, 3000)" in _one_sentence(exc) and "32x32x3" in str(exc.value)

    bad = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2]}
    (folder / "data_batch_1").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DataError, match="4 images but 3 labels"):
        load_cifar10(tmp_path, download=False)


def test_cifar10_missing_test_batch_and_corrupt_archive(tmp_path: Path) -> None:
    folder = _cifar_folder(tmp_path / "a")
    (folder / "test_batch").unlink()
    with pytest.raises(DataError, match="lacks test_batch"):
        load_cifar10(tmp_path / "a", download=False)

    w = write_cifar10(
        tmp_path / "b", n_per_batch=10, batches=1, n_test=10, folder=False, archive=True
    )
    raw = w.files["archive"].read_bytes()
    w.files["archive"].write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError) as exc:
        load_cifar10(tmp_path / "b", download=False)
    assert "cifar-10-python.tar.gz" in _one_sentence(exc)


# ----------------------------------------------------------------------------- ImageNet32


def test_imagenet32_round_trip_with_map(tmp_path: Path) -> None:
    w = write_imagenet32(tmp_path, n_classes=5, n_per_class=4, batches=3)
    ds = load_imagenet32(tmp_path)
    assert ds.name == "imagenet32"
    np.testing.assert_array_equal(ds.x_train, w.x_train)
    np.testing.assert_array_equal(ds.y_train, w.y_train)
    np.testing.assert_array_equal(ds.x_test, w.x_test)
    np.testing.assert_array_equal(ds.y_test, w.y_test)
    assert ds.y_train.dtype == np.int32 and ds.x_train.dtype == np.uint8
    assert ds.class_ids == [imagenet_wnid(c) for c in range(1, 6)]
    assert ds.class_names[0] == "class 1 thing"  # underscores became spaces


def test_imagenet32_batches_sorted_numerically(tmp_path: Path) -> None:
    w = write_imagenet32(tmp_path, n_classes=2, n_per_class=11, batches=11)
    ds = load_imagenet32(tmp_path)
    np.testing.assert_array_equal(ds.x_train, w.x_train)  # batch 10 after 9, not after 1


def test_imagenet32_without_map_uses_label_numbers(tmp_path: Path) -> None:
    write_imagenet32(tmp_path, n_classes=4, map_file=False)
    ds = load_imagenet32(tmp_path)
    assert ds.class_ids == ["1", "2", "3", "4"] and ds.class_names == ds.class_ids
    with pytest.raises(DataError, match="map_clsloc.txt"):
        load_imagenet32(tmp_path, classes=["n01443537"])


def test_imagenet32_class_subsets(tmp_path: Path) -> None:
    w = write_imagenet32(tmp_path, n_classes=6, n_per_class=3, batches=2)
    first = load_imagenet32(tmp_path, classes=3)
    assert first.class_ids == w.class_ids[:3]
    keep = w.y_train < 3
    np.testing.assert_array_equal(first.x_train, w.x_train[keep])
    np.testing.assert_array_equal(first.y_train, w.y_train[keep])
    assert set(first.y_test.tolist()) == {0, 1, 2}

    # 1-based labels, remapped in the given order: label 5 -> 0, label 2 -> 1.
    by_label = load_imagenet32(tmp_path, classes=[5, 2])
    assert by_label.class_ids == [w.class_ids[4], w.class_ids[1]]
    keep = np.isin(w.y_train, [4, 1])
    np.testing.assert_array_equal(by_label.x_train, w.x_train[keep])
    np.testing.assert_array_equal(by_label.y_train, np.where(w.y_train[keep] == 4, 0, 1))

    by_wnid = load_imagenet32(tmp_path, classes=[imagenet_wnid(5), imagenet_wnid(2)])
    np.testing.assert_array_equal(by_wnid.y_train, by_label.y_train)
    assert by_wnid.class_names == ["class 5 thing", "class 2 thing"]

    assert load_imagenet32(tmp_path, classes="3").class_ids == first.class_ids
    as_text = load_imagenet32(tmp_path, classes=f"5,{imagenet_wnid(2)}")
    np.testing.assert_array_equal(as_text.y_train, by_label.y_train)

    with pytest.raises(DataError, match="not one of"):
        load_imagenet32(tmp_path, classes=["n99999999"])
    with pytest.raises(DataError, match="out of range"):
        load_imagenet32(tmp_path, classes=7)
    with pytest.raises(DataError, match="twice"):
        load_imagenet32(tmp_path, classes=[1, 1])


def test_imagenet32_tiny200_subfolder(tmp_path: Path) -> None:
    w = write_imagenet32(tmp_path / "imagenet32-tiny200", n_classes=3)
    ds = load_imagenet32(tmp_path)
    np.testing.assert_array_equal(ds.x_train, w.x_train)


def test_imagenet32_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_imagenet32(tmp_path)
    msg = _one_sentence(exc)
    assert "train_data_batch_1.npz" in msg and "val_data.npz" in msg
    assert "https://image-net.org/download-images" in msg

    w = write_imagenet32(tmp_path, n_classes=3)
    w.files["val"].unlink()
    with pytest.raises(DataError, match="no val_data.npz"):
        load_imagenet32(tmp_path)


def test_imagenet32_corrupt_files(tmp_path: Path) -> None:
    w = write_imagenet32(tmp_path, n_classes=3, batches=2)
    path = w.files["train_2"]
    good = path.read_bytes()

    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError) as exc:
        load_imagenet32(tmp_path)
    assert "train_data_batch_2.npz" in _one_sentence(exc)

    np.savez(path, data=np.zeros((2, 3000), np.uint8), labels=[1, 2])
    with pytest.raises(DataError, match=r"\(2, 3000\)"):
        load_imagenet32(tmp_path)

    np.savez(path, data=np.zeros((2, 3072), np.uint8))
    with pytest.raises(DataError, match="'data' and 'labels'"):
        load_imagenet32(tmp_path)

    np.savez(path, data=np.zeros((2, 3072), np.uint8), labels=[0, 1])
    with pytest.raises(DataError, match="label 0"):
        load_imagenet32(tmp_path)

    np.savez(path, data=np.zeros((2, 3072), np.uint8), labels=[1, 4])  # map lists 3 classes
    with pytest.raises(DataError) as exc:
        load_imagenet32(tmp_path)
    assert "label 4" in _one_sentence(exc)

    np.savez(path, data=np.zeros((2, 3072), np.uint8), labels=[1, 2, 3])
    with pytest.raises(DataError, match="2 images but 3 labels"):
        load_imagenet32(tmp_path)

    w.files["map"].unlink()
    np.savez(path, data=np.zeros((2, 3072), np.uint8), labels=[1, 1001])
    with pytest.raises(DataError, match="label 1001"):
        load_imagenet32(tmp_path)


# ----------------------------------------------------------------------------- class folders


def test_folder_train_test_round_trip_with_words(tmp_path: Path) -> None:
    w = write_class_folders(
        tmp_path, classes=["n02", "n01", "n03"], n_per_class=4, with_test=True, words=True
    )
    ds = load_folder(tmp_path)
    assert ds.name == f"folder:{tmp_path.resolve()}"
    assert ds.class_ids == ["n01", "n02", "n03"]
    assert ds.class_names == [
        "thing n01, other n01",
        "thing n02, other n02",
        "thing n03, other n03",
    ]
    np.testing.assert_array_equal(ds.x_train, w.x_train)
    np.testing.assert_array_equal(ds.y_train, w.y_train)
    np.testing.assert_array_equal(ds.x_test, w.x_test)
    np.testing.assert_array_equal(ds.y_test, w.y_test)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int32


def test_folder_resizes_and_holds_out_test(tmp_path: Path) -> None:
    w = write_class_folders(tmp_path, classes=["a", "b"], n_per_class=10, size=(48, 40), fmt="jpg")
    ds = load_folder(tmp_path)
    assert ds.x_train.shape == (16, 32, 32, 3) and ds.x_test.shape == (4, 32, 32, 3)
    assert np.bincount(ds.y_test).tolist() == [2, 2]
    assert ds.class_names == ["a", "b"]
    # Resized class colours survive: class means of the loaded images stay far apart.
    mean = [ds.x_train[ds.y_train == c].reshape(-1, 3).mean(axis=0) for c in range(2)]
    want = [w.x_train[w.y_train == c].reshape(-1, 3).mean(axis=0) for c in range(2)]
    np.testing.assert_allclose(mean, want, atol=4)
    # Deterministic hold-out.
    again = load_folder(tmp_path)
    np.testing.assert_array_equal(again.x_test, ds.x_test)


def test_folder_holdout_is_exact_partition(tmp_path: Path) -> None:
    w = write_class_folders(tmp_path, classes=["x", "y", "z"], n_per_class=5)
    ds = load_folder(tmp_path)
    both = np.concatenate([ds.x_train, ds.x_test])
    np.testing.assert_array_equal(_sorted_rows(both), _sorted_rows(w.x_train))
    assert np.bincount(ds.y_test).tolist() == [1, 1, 1]


def test_folder_tiny_imagenet_layout(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "tiny-imagenet-200"
    w = write_class_folders(
        root / "train", classes=["n01", "n02"], n_per_class=3, nested=True, fmt="JPEG"
    )
    (root / "words.txt").write_text("n01\tgoldfish, Carassius auratus\nn02\tshark\n")
    val = root / "val"
    (val / "images").mkdir(parents=True)
    lines = []
    for i, (cls, label) in enumerate([("n02", 1), ("n01", 0), ("n02", 1)]):
        img = make_images(np.array([label]), 2, size=(64, 64))[0]
        Image.fromarray(img).save(val / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{cls}\t0\t0\t10\t10\n")
    (val / "val_annotations.txt").write_text("".join(lines))
    (root / "test" / "images").mkdir(parents=True)  # unlabelled, not class folders
    ds = load_folder(root)
    assert ds.x_train.shape == (6, 32, 32, 3)
    assert ds.y_test.tolist() == [1, 0, 1]
    assert ds.class_names == ["goldfish, Carassius auratus", "shark"]
    assert len(w.y_train) == 6


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_folder(tmp_path / "nope")
    assert "does not exist" in _one_sentence(exc)

    write_class_folders(tmp_path / "one", classes=["only"], n_per_class=2)
    with pytest.raises(DataError) as exc:
        load_folder(tmp_path / "one")
    assert "1 class folder" in _one_sentence(exc)

    write_class_folders(tmp_path / "bad", classes=["a", "b"], n_per_class=2)
    (tmp_path / "bad" / "b" / "img_001.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError) as exc:
        load_folder(tmp_path / "bad")
    assert "img_001.png" in _one_sentence(exc)

    write_class_folders(tmp_path / "empty", classes=["a", "b"], n_per_class=2)
    (tmp_path / "empty" / "c").mkdir()
    with pytest.raises(DataError, match="has no images"):
        load_folder(tmp_path / "empty")


# ----------------------------------------------------------------------------- entry points


def test_resolve_data_dir_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _isolated_cache: Path
) -> None:
    assert resolve_data_dir(None) == _isolated_cache / "datasets"
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir(None) == tmp_path / "home" / ".keras" / "datasets"
    monkeypatch.setenv("HPO32_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"


def test_load_dataset_dispatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError) as exc:
        load_dataset("mnist")
    msg = _one_sentence(exc)
    assert "'mnist'" in msg and "cifar10" in msg and "imagenet32" in msg and "folder:PATH" in msg

    write_cifar10(tmp_path / "c", n_per_batch=10, batches=1, n_test=10)
    ds = load_dataset("cifar10", data_dir=str(tmp_path / "c"), download=False)
    assert ds.x_train.shape == (10, 32, 32, 3)
    monkeypatch.setenv("HPO32_DATA_DIR", str(tmp_path / "c"))
    sub = load_dataset("cifar10", classes=["3", 1], download=False)
    assert sub.class_names == ["cat", "automobile"]
    assert set(sub.y_train.tolist()) <= {0, 1}

    write_imagenet32(tmp_path / "i", n_classes=4)
    ds = load_dataset("imagenet32", data_dir=str(tmp_path / "i"), classes=2)
    assert ds.num_classes == 2

    write_class_folders(tmp_path / "f", classes=["a", "b", "c"], n_per_class=3)
    ds = load_dataset(f"folder:{tmp_path / 'f'}", classes=["c", "a"])
    assert ds.class_ids == ["c", "a"] and ds.name.startswith("folder:")


# ----------------------------------------------------------------------------- splits


def _toy_dataset(n_per_class=(30, 20, 10), n_test: int = 7) -> Dataset:
    y = np.concatenate([np.full(n, c, np.int32) for c, n in enumerate(n_per_class)])
    x = np.zeros((y.size, 32, 32, 3), np.uint8)
    x[:, 0, 0, 0] = np.arange(y.size) % 256  # identifies each image
    x[:, 0, 0, 1] = np.arange(y.size) // 256
    k = len(n_per_class)
    return Dataset(
        name="toy",
        x_train=x,
        y_train=y,
        x_test=make_images(np.arange(n_test) % k, k),
        y_test=(np.arange(n_test) % k).astype(np.int32),
        class_ids=[str(i) for i in range(k)],
        class_names=[f"c{i}" for i in range(k)],
    )


def _ids(x: np.ndarray) -> set[int]:
    return set((x[:, 0, 0, 0].astype(int) + 256 * x[:, 0, 0, 1].astype(int)).tolist())


def test_make_splits_stratified_and_disjoint() -> None:
    ds = _toy_dataset()
    s = make_splits(ds, val_fraction=0.1, seed=0)
    assert np.bincount(s.y_val).tolist() == [3, 2, 1]
    assert np.bincount(s.y_train).tolist() == [27, 18, 9]
    assert not _ids(s.x_train) & _ids(s.x_val)
    assert _ids(s.x_train) | _ids(s.x_val) == set(range(60))
    assert s.x_test is ds.x_test
    np.testing.assert_array_equal(s.y_test, ds.y_test)
    assert s.x_train.dtype == np.uint8 and s.x_val.dtype == np.uint8
    assert s.y_train.dtype == np.int32 and s.y_val.dtype == np.int32
    assert s.num_classes == 3 and s.input_shape == (32, 32, 3)
    assert s.class_names == ["c0", "c1", "c2"] and s.name == "toy"
    # Labels follow their images.
    for x, y in ((s.x_train, s.y_train), (s.x_val, s.y_val)):
        np.testing.assert_array_equal(ds.y_train[x[:, 0, 0, 0].astype(int)], y)


def test_make_splits_limits_and_determinism() -> None:
    ds = _toy_dataset((40, 40, 40, 2))
    s = make_splits(ds, val_fraction=0.25, train_limit=20, val_limit=8, seed=3)
    assert len(s.y_train) == 20 and len(s.y_val) == 8
    assert set(s.y_train.tolist()) == {0, 1, 2, 3}  # even the tiny class keeps one
    assert set(s.y_val.tolist()) == {0, 1, 2, 3}
    counts = np.bincount(s.y_train)
    assert counts[:3].max() - counts[:3].min() <= 1
    assert not _ids(s.x_train) & _ids(s.x_val)
    again = make_splits(ds, val_fraction=0.25, train_limit=20, val_limit=8, seed=3)
    np.testing.assert_array_equal(again.x_train, s.x_train)
    np.testing.assert_array_equal(again.x_val, s.x_val)
    other = make_splits(ds, val_fraction=0.25, train_limit=20, val_limit=8, seed=4)
    assert _ids(other.x_train) != _ids(s.x_train)
    neg = make_splits(ds, val_fraction=0.25, seed=-1)
    assert len(neg.y_val) == 30  # round(0.25 * 122)
    # Limits larger than the split change nothing.
    full = make_splits(ds, val_fraction=0.25, train_limit=10_000, seed=3)
    assert len(full.y_train) + len(full.y_val) == len(ds.y_train)


def test_make_splits_rejects_bad_arguments() -> None:
    ds = _toy_dataset()
    for frac in (0.0, 1.0, -0.1):
        with pytest.raises(DataError):
            make_splits(ds, val_fraction=frac)
    with pytest.raises(DataError):
        make_splits(ds, train_limit=0)


def test_stratified_subset() -> None:
    y = np.repeat(np.arange(4), [50, 30, 15, 5])
    idx = stratified_subset(y, 20, seed=1)
    assert idx.dtype == np.int64 and len(idx) == 20 and len(set(idx.tolist())) == 20
    assert np.all(np.diff(idx) > 0)
    assert np.bincount(y[idx], minlength=4).tolist() == [10, 6, 3, 1]
    np.testing.assert_array_equal(idx, stratified_subset(y, 20, seed=1))
    assert not np.array_equal(idx, stratified_subset(y, 20, seed=2))
    # Every class keeps one when possible, even when proportions would round it away.
    small = stratified_subset(np.repeat(np.arange(3), [98, 1, 1]), 5, seed=0)
    assert set(np.repeat(np.arange(3), [98, 1, 1])[small].tolist()) == {0, 1, 2}
    # Fewer slots than classes: one each for as many classes as fit.
    few = stratified_subset(np.repeat(np.arange(5), 4), 3, seed=0)
    assert len(set(np.repeat(np.arange(5), 4)[few].tolist())) == 3
    np.testing.assert_array_equal(stratified_subset(y, 1000, seed=0), np.arange(100))


# ----------------------------------------------------------------------------- pipeline


def test_normalize_numpy_and_tf() -> None:
    import tensorflow as tf

    x = np.array([[0, 51, 255]], np.uint8)
    out = normalize(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.0, 0.2, 1.0]])
    t = normalize(tf.constant(x))
    assert t.dtype == tf.float32
    np.testing.assert_allclose(t.numpy(), [[0.0, 0.2, 1.0]])


def _pipeline_data(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    y = (np.arange(n) % 4).astype(np.int32)
    return make_images(y, 4, seed=5), y


def test_tf_dataset_eval_shapes_and_values() -> None:
    x, y = _pipeline_data(40)
    ds = make_tf_dataset(x, y, 16, training=False, num_classes=4)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [16, 16, 8]
    xb, yb = batches[0]
    assert xb.dtype.name == "float32" and yb.dtype.name == "int32"
    assert tuple(xb.shape[1:]) == (32, 32, 3)
    got = np.concatenate([b[0].numpy() for b in batches])
    np.testing.assert_allclose(got, normalize(x))  # no shuffle, no augmentation
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y)
    assert got.min() >= 0.0 and got.max() <= 1.0
    with pytest.raises(ValueError):
        make_tf_dataset(x, y, 16, training=False, num_classes=3)


def test_tf_dataset_training_shuffles_deterministically() -> None:
    x, y = _pipeline_data(40)
    x = x.copy()
    x[:, 0, 0, 0] = np.arange(40)  # identifies each image

    def epoch(ds):
        return np.concatenate([np.rint(b[0].numpy()[:, 0, 0, 0] * 255) for b in ds]).astype(int)

    ds = make_tf_dataset(x, y, 8, training=True, seed=7)
    first, second = epoch(ds), epoch(ds)
    assert sorted(first.tolist()) == list(range(40))
    assert first.tolist() != list(range(40)) and first.tolist() != second.tolist()
    again = make_tf_dataset(x, y, 8, training=True, seed=7)
    assert epoch(again).tolist() == first.tolist()
    # Labels stay with their images.
    for xb, yb in make_tf_dataset(x, y, 8, training=True, seed=7):
        ids = np.rint(xb.numpy()[:, 0, 0, 0] * 255).astype(int)
        np.testing.assert_array_equal(y[ids], yb.numpy())


def test_tf_dataset_flip_and_crop() -> None:
    n = 64
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    y = np.zeros(n, np.int32)

    out = np.concatenate(
        [b[0].numpy() for b in make_tf_dataset(x, y, 16, training=False, augment_flip=True)]
    )
    np.testing.assert_allclose(out, normalize(x))  # eval: never augmented

    flipped = 0
    ds = make_tf_dataset(x, y, 16, training=True, augment_flip=True, seed=1)
    originals = {x[i].tobytes(): i for i in range(n)}
    mirrors = {x[i, :, ::-1].tobytes(): i for i in range(n)}
    for xb, _ in ds:
        for img in np.rint(xb.numpy() * 255).astype(np.uint8):
            key = img.tobytes()
            assert key in originals or key in mirrors
            flipped += key in mirrors
    assert 0 < flipped < n

    ds = make_tf_dataset(x, y, 16, training=True, augment_crop=True, seed=2)
    padded = np.pad(x, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="reflect")
    moved = 0
    for xb, _ in ds:
        assert tuple(xb.shape[1:]) == (32, 32, 3)
        for img in np.rint(xb.numpy() * 255).astype(np.uint8):
            # Each output is some 32x32 window of its own reflect-padded image.
            hits = [
                (i, r, c)
                for i in range(n)
                for r in range(9)
                for c in range(9)
                if padded[i, r, c, 0] == img[0, 0, 0]
                and np.array_equal(padded[i, r : r + 32, c : c + 32], img)
            ]
            assert hits
            moved += hits[0][1:] != (4, 4)
    assert moved > n // 2

    def run() -> list[np.ndarray]:
        ds = make_tf_dataset(x, y, 16, training=True, augment_crop=True, augment_flip=True, seed=5)
        return [xb.numpy() for xb, _ in ds]

    first, second = run(), run()
    assert len(first) == len(second) == 4
    for u, v in zip(first, second, strict=True):
        np.testing.assert_array_equal(u, v)
    ds = make_tf_dataset(x, y, 64, training=True, augment_crop=True, augment_flip=True, seed=5)
    epoch1, epoch2 = (next(iter(ds))[0].numpy() for _ in range(2))
    assert not np.array_equal(epoch1, epoch2)  # fresh augmentation every epoch


@pytest.mark.parametrize("augment", [False, True])
def test_pipeline_runs_without_tf_data_autotuning(augment) -> None:
    # Autotuning's thread sleeps with a back-off of up to a minute, and freeing a half-read
    # iterator (every trial's, when fit stops) waited for it: 0-34 s a trial. The pipeline
    # sets its parallelism and prefetch itself instead.
    x = np.zeros((64, 32, 32, 3), np.uint8)
    ds = data.make_tf_dataset(
        x, np.zeros(64, np.int64), 16, training=True, augment_flip=augment, augment_crop=augment
    )
    assert ds.options().autotune.enabled is False
    assert sum(1 for _ in ds) == 4


def test_pipeline_keeps_no_copy_of_the_images() -> None:
    from hpo32.search.training import current_rss_mb

    x = np.zeros((80_000, 32, 32, 3), dtype=np.uint8)  # 246 MB
    x[::7] = 200
    y = np.arange(len(x)) % 10
    make_tf_dataset(x[:64], y[:64], 32, training=True)  # TensorFlow's own start-up memory
    before = current_rss_mb()
    ds = make_tf_dataset(x, y, 256, training=True, augment_flip=True, seed=1)
    batches = list(ds.take(3))
    grown = current_rss_mb() - before
    assert grown < 100, f"the pipeline added {grown:.0f} MB for 246 MB of images"
    assert batches[0][0].shape == (256, 32, 32, 3)
    assert {round(float(v), 3) for v in np.unique(batches[0][0])} <= {0.0, round(200 / 255, 3)}


def test_rows_helper_matches_channel_major() -> None:
    x = make_images(np.array([0, 1]), 2)
    rows = to_rows(x)
    assert rows.shape == (2, 3072)
    assert rows[0, 0] == x[0, 0, 0, 0] and rows[0, 1024] == x[0, 0, 0, 1]


@pytest.mark.parametrize(
    "options",
    [
        {"train_limit": 30, "val_limit": 8},
        {"train_limit": 7},
        {"val_limit": 5, "classes": [4, 2, 6]},
        {},
    ],
)
@pytest.mark.parametrize("map_file", [True, False])
def test_load_splits_reads_only_the_chosen_imagenet32_images(tmp_path, options, map_file):
    write_imagenet32(tmp_path, n_classes=6, n_per_class=20, batches=3, map_file=map_file)
    options = dict(options)
    classes = options.pop("classes", None)
    whole = data.make_splits(
        data.load_dataset("imagenet32", data_dir=tmp_path, classes=classes), seed=3, **options
    )
    lean = data.load_splits("imagenet32", data_dir=tmp_path, classes=classes, seed=3, **options)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(lean, field), getattr(whole, field))
    assert lean.class_ids == whole.class_ids and lean.class_names == whole.class_names


def test_imagenet32_train_rows_load_only_those_rows(tmp_path):
    write_imagenet32(tmp_path, n_classes=4, n_per_class=10, batches=3)
    full = data.load_imagenet32(tmp_path)
    picked = np.array([0, 5, 17, 39])
    asked: list[np.ndarray] = []

    def rows(y):
        asked.append(y)
        return picked

    part = data.load_imagenet32(tmp_path, train_rows=rows)
    np.testing.assert_array_equal(asked[0], full.y_train)  # it chose from every label
    assert part.x_train.shape[0] == len(picked)
    np.testing.assert_array_equal(part.x_train, full.x_train[picked])
    np.testing.assert_array_equal(part.y_train, full.y_train[picked])
    np.testing.assert_array_equal(part.x_test, full.x_test)


def test_load_splits_of_cifar10_equals_make_splits(tmp_path):
    write_cifar10(tmp_path, n_per_batch=20, n_test=10)
    whole = data.make_splits(
        data.load_dataset("cifar10", data_dir=tmp_path, download=False), train_limit=25, seed=1
    )
    lean = data.load_splits("cifar10", data_dir=tmp_path, train_limit=25, seed=1, download=False)
    np.testing.assert_array_equal(lean.x_train, whole.x_train)
    np.testing.assert_array_equal(lean.y_val, whole.y_val)
