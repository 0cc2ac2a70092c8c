"""train_config's precision and fidelity settings, on generated CIFAR-10 files."""

from __future__ import annotations

import ctypes
import sys

import keras
import pytest

from hpo32.search import training
from hpo32.search.space import default_space
from hpo32.search.training import resolve_precision, train_config
from tests.fixtures import cifar10_splits
from tests.search.engine_helpers import TINY_OVERRIDES


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return cifar10_splits(tmp_path_factory.mktemp("cifar"))


@pytest.fixture
def config():
    config = default_space().override(TINY_OVERRIDES).defaults()
    config["batch_size"] = 32
    return config


def _no_gpu(monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])


@pytest.mark.parametrize(
    ("native_bf16", "expected"), [(True, "mixed_bfloat16"), (False, "float32")]
)
def test_auto_precision_on_a_cpu_follows_its_bfloat16_support(monkeypatch, native_bf16, expected):
    _no_gpu(monkeypatch)
    monkeypatch.setattr(training, "cpu_has_bf16", lambda: native_bf16)
    assert resolve_precision("auto") == expected


def test_auto_precision_on_a_gpu_is_float16_from_volta_on(monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["gpu0"])
    for capability, expected in (
        ((8, 0), "mixed_float16"),
        ((7, 0), "mixed_float16"),
        ((6, 1), "float32"),
    ):
        monkeypatch.setattr(
            tf.config.experimental,
            "get_device_details",
            lambda device, c=capability: {"compute_capability": c},
        )
        assert resolve_precision("auto") == expected


def test_explicit_precisions_and_a_wrong_one():
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("bfloat16") == "mixed_bfloat16"
    assert resolve_precision("float16") == "mixed_float16"
    with pytest.raises(ValueError, match="unknown precision 'fp8'; use one of auto, float32"):
        resolve_precision("fp8")


def test_bfloat16_computes_in_bfloat16_keeps_float32_weights_and_restores_the_policy(
    splits, config
):
    result = train_config(config, splits, epochs=1, precision="bfloat16")
    try:
        convs = [layer for layer in result.model.layers if "conv" in layer.name]
        assert convs and all(layer.compute_dtype == "bfloat16" for layer in convs)
        assert all(w.dtype == "float32" for w in result.model.weights)
        assert result.model.output.dtype == "float32"  # the softmax and the loss
        assert result.dtype_policy == "mixed_bfloat16"
        assert result.attrs()["dtype_policy"] == "mixed_bfloat16"
        assert 0.0 <= result.value <= 1.0
    finally:
        result.release()
    assert keras.mixed_precision.global_policy().name == "float32"

    plain = train_config(config, splits, epochs=1, precision="float32")
    try:
        assert all(layer.compute_dtype == "float32" for layer in plain.model.layers)
    finally:
        plain.release()


def test_epoch_images_make_short_epochs(splits, config):
    assert len(splits.x_train) == 160
    result = train_config(config, splits, epochs=3, epoch_images=64, precision="float32")
    try:
        assert len(result.val_accuracy) == 3 and result.epochs_completed == 3
        assert result.images_trained == 3 * 64  # two batches of 32 an epoch
        assert len(result.history["loss"]) == 3
        assert len(result.epoch_seconds) == 3
        assert sum(result.epoch_seconds) == pytest.approx(result.train_seconds)
    finally:
        result.release()
    # at least the training set: full epochs, as without the setting
    full = train_config(config, splits, epochs=1, epoch_images=10_000, precision="float32")
    try:
        assert full.images_trained == 160
    finally:
        full.release()


def test_first_epoch_seconds_counts_one_validation_and_ignores_a_budget_cut_first_epoch():
    attrs = {"epoch_seconds": [4.0, 2.0, 2.0], "eval_seconds": 1.5, "stopped_by": None}
    assert training.first_epoch_seconds(attrs) == pytest.approx(4.5)
    pruned = {**attrs, "stopped_by": "pruned"}
    assert training.first_epoch_seconds(pruned) == pytest.approx(4.5)
    cut = {"epoch_seconds": [0.7], "eval_seconds": 0.3, "stopped_by": "search_budget"}
    assert training.first_epoch_seconds(cut) is None  # a few batches: no whole epoch's time
    assert training.first_epoch_seconds({**cut, "stopped_by": None}) == pytest.approx(1.0)
    assert training.first_epoch_seconds({"stopped_by": None}) is None  # failed before


def test_no_trial_starts_in_less_time_than_a_first_epoch_takes(splits, config):
    import time

    from hpo32.search.engines.base import SearchContext

    ctx = SearchContext(
        space=default_space(),
        splits=splits,
        epochs=1,
        search_deadline=time.monotonic() + 3600,
        precision="float32",
    )
    assert not ctx.budget_spent()  # nothing measured yet: only a spent budget stops
    result = ctx.train(config, seed=0)
    first = result.epoch_seconds[0] + result.eval_seconds
    result.release()
    assert ctx.quickest_first_epoch == pytest.approx(first, abs=2e-3)  # recorded to ms
    ctx.search_deadline = time.monotonic() + 10 * first + 5
    assert not ctx.budget_spent()
    ctx.search_deadline = time.monotonic() + first / 2
    assert ctx.budget_spent()
    ctx.search_deadline = None
    assert not ctx.budget_spent()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is Linux's")
def test_trimming_the_heap_returns_freed_small_blocks_to_the_system():
    # What a compiler leaves behind: many small blocks freed under one that lives on, so
    # glibc cannot shrink its heap from the top and keeps the pages resident.
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(1000) for _ in range(100_000)]  # ~95 MiB, each below mmap's threshold
    survivor = libc.malloc(1000)
    for block in blocks:
        libc.free(block)
    before = training.current_rss_mb()
    try:
        if not training.trim_native_heap():
            pytest.skip("this C library has no malloc_trim")
        after = training.current_rss_mb()
    finally:
        libc.free(survivor)
    assert before - after > 50, (before, after)
