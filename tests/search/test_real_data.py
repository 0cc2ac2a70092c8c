"""Slow: the real readers on the real datasets of ../shared/data (official layouts rebuilt by
its build_datasets.py). Skips, saying why, where that data is absent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hpo32.search.data import load_dataset, make_splits

ROOT = Path(__file__).resolve().parents[2]
BUILDER = ROOT.parent / "shared" / "data" / "build_datasets.py"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hpo32" / "real-data"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_dir() -> Path:
    env = os.environ.get("HPO32_REAL_DATA")
    if env:
        return Path(env)
    if (CACHE / "cifar-10-batches-py").is_dir() and (CACHE / "imagenet32-tiny200").is_dir():
        return CACHE
    if not BUILDER.is_file():
        pytest.skip(f"no real data: set HPO32_REAL_DATA or provide {BUILDER}")
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, str(BUILDER), str(CACHE)], check=True, capture_output=True, timeout=900
    )
    return CACHE


def test_real_cifar10(real_dir):
    ds = load_dataset("cifar10", data_dir=str(real_dir), download=False)
    assert ds.x_train.shape == (50_000, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10_000, 32, 32, 3)
    assert np.bincount(ds.y_train).tolist() == [5000] * 10
    assert ds.class_names[3] == "cat"
    splits = make_splits(ds, train_limit=5000, val_limit=1000, seed=0)
    assert len(splits.x_train) == 5000 and np.bincount(splits.y_train).tolist() == [500] * 10


def test_real_imagenet32_200_classes(real_dir):
    ds = load_dataset("imagenet32", data_dir=str(real_dir / "imagenet32-tiny200"), classes=200)
    assert ds.x_train.shape == (100_000, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.num_classes == 200 and ds.x_test.shape == (10_000, 32, 32, 3)
    assert all(c.startswith("n") for c in ds.class_ids)
    first10 = load_dataset("imagenet32", data_dir=str(real_dir / "imagenet32-tiny200"), classes=10)
    assert first10.num_classes == 10 and len(first10.x_train) == 5000
    assert first10.class_ids == ds.class_ids[:10]


def test_one_short_trial_of_airbench94_learns_far_above_chance(real_dir):
    from hpo32.search.data import load_splits
    from hpo32.search.space import AIRBENCH94_CONFIG
    from hpo32.search.training import train_config

    splits = load_splits(
        "cifar10", data_dir=str(real_dir), train_limit=10_000, val_limit=1000, seed=0
    )
    result = train_config(dict(AIRBENCH94_CONFIG), splits, epochs=2)
    assert result.stopped_by is None and result.lr_final_factor < 0.01
    assert result.value > 0.35  # chance is 0.1; about 0.5 after these 40 steps here
