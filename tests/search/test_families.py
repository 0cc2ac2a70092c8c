"""The report's model families as configs of the one space: AlexNet and DenseNet121."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from hpo32.search.models import (
    DENSENET_WEIGHTS_FILE,
    WeightsMissing,
    build_model,
    compile_model,
    resolve_weights,
)
from hpo32.search.space import default_space

ALL_FAMILIES = default_space().override(
    {"family": {"type": "categorical", "choices": ["cnn", "alexnet", "densenet121"]}}
)


def config_for(**choices):
    """A valid config of the default space with ``choices`` (the lowest value elsewhere)."""

    def pick(p, _values):
        if p.name in choices:
            return choices[p.name]
        return p.choices[0] if hasattr(p, "choices") else p.low

    config = ALL_FAMILIES.sample(pick)
    ALL_FAMILIES.check_config(config)
    return config


def one_step(model, config, n_classes):
    compile_model(model, config)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical([0, 1], n_classes)
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    changed = sum(
        not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights, strict=True)
    )
    assert changed > 0
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)


def test_alexnet_matches_the_reports_parameter_counts():
    config = config_for(
        family="alexnet", alexnet_dropout=0.4, activation="relu", optimizer="adamax"
    )
    model = build_model(config, (32, 32, 3), 200)
    convs = [
        layer.count_params() for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
    ]
    assert convs == [34_944, 2_973_952, 885_120, 1_327_488, 884_992]
    dense = [
        layer.count_params() for layer in model.layers if isinstance(layer, keras.layers.Dense)
    ]
    assert dense[-3:] == [16_781_312, 4_097_000, 200_200]
    assert model.get_layer("resize_224").output.shape[1:3] == (224, 224)
    assert [
        layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)
    ] == pytest.approx([0.4] * 3)
    keras.backend.clear_session()


def test_alexnet_trains_a_step():
    config = config_for(family="alexnet", alexnet_dropout=0.4, learning_rate=0.001)
    one_step(build_model(config, (32, 32, 3), 3), config, 3)
    keras.backend.clear_session()


def test_densenet_from_scratch_trains_a_step():
    config = config_for(
        family="densenet121",
        densenet_mode="scratch",
        fc_layers=1,
        fc_units_1=64,
        learning_rate=0.001,
    )
    model = build_model(config, (32, 32, 3), 4)
    assert model.count_params() > 7_000_000
    one_step(model, config, 4)
    keras.backend.clear_session()


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """ImageNet-shaped DenseNet121 weights made here, so loading is tested offline."""
    base = keras.applications.DenseNet121(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path_factory.mktemp("weights") / "densenet121_notop.weights.h5"
    base.save_weights(path)
    kernel = base.get_layer("conv1_conv").get_weights()[0]
    keras.backend.clear_session()
    return path, kernel


def test_transfer_loads_the_weights_file_and_freezes_the_base(weights_file):
    path, kernel = weights_file
    config = config_for(
        family="densenet121",
        densenet_mode="transfer",
        densenet_keep_layers=52,
        fc_layers=2,
        fc_units_1=64,
        fc_units_2=64,
        activation="swish",
        learning_rate=0.001,
    )
    model = build_model(config, (32, 32, 3), 10, weights=str(path))
    base = model.get_layer("densenet_part")
    assert len(base.layers) == 52
    np.testing.assert_array_equal(base.get_layer("conv1_conv").get_weights()[0], kernel)
    assert not base.trainable_weights  # frozen: only the head learns
    one_step(model, config, 10)
    np.testing.assert_array_equal(base.get_layer("conv1_conv").get_weights()[0], kernel)
    keras.backend.clear_session()


def test_finetune_unfreezes_the_top_layers_with_a_lower_learning_rate(weights_file):
    path, _ = weights_file
    config = config_for(
        family="densenet121",
        densenet_mode="finetune",
        densenet_keep_layers=52,
        densenet_unfreeze_fraction=0.5,
        finetune_lr_scale=0.1,
        fc_layers=1,
        fc_units_1=64,
        learning_rate=0.01,
        optimizer="adamax",
    )
    model = build_model(config, (32, 32, 3), 10, weights=str(path))
    base = model.get_layer("densenet_part")
    trainable = [layer.trainable for layer in base.layers]
    assert not any(trainable[:26]) and all(trainable[26:])
    compile_model(model, config)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001)
    one_step(model, config, 10)
    keras.backend.clear_session()


def test_missing_weights_offline_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(WeightsMissing) as err:
        resolve_weights(None)
    message = str(err.value)
    assert DENSENET_WEIGHTS_FILE in message and str(tmp_path / "models") in message
    assert "\n" not in message
    with pytest.raises(WeightsMissing, match="nope.h5"):
        resolve_weights(str(tmp_path / "nope.h5"))
    cached = tmp_path / "models" / DENSENET_WEIGHTS_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"x")
    assert resolve_weights(None) == str(cached)
