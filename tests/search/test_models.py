from __future__ import annotations

import keras
import numpy as np
import optuna
import pytest

from hpo32.search.engines.optuna_space import suggest_config
from hpo32.search.models import InvalidConfig, build_model, build_optimizer, compile_model
from hpo32.search.space import MAXNET_CONFIG, default_space

MAXNET_LAYERS = ["Conv2D", "Activation", "Conv2D", "Activation", "MaxPooling2D", "Dropout"] * 3 + [
    "Flatten",
    "Dense",
    "Activation",
    "Dropout",
    "Dense",
    "Activation",
    "Dropout",
    "Dense",
]


def test_maxnet_matches_the_report():
    model = build_model(MAXNET_CONFIG, (32, 32, 3), 200)
    assert model.count_params() == 1_584_648
    layers = [type(layer).__name__ for layer in model.layers]
    layers = [name for name in layers if name != "InputLayer"]
    assert layers == MAXNET_LAYERS
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [64, 64, 256, 256, 128, 128]
    assert [c.padding for c in convs] == ["same", "valid"] * 3
    drops = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert drops == pytest.approx([0.25, 0.24, 0.25, 0.35, 0.24])
    dense = [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert dense == [256, 512, 200]
    assert model.output_shape == (None, 200)


def test_random_configs_of_the_default_space_build_and_predict_probabilities():
    space = default_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    built = 0
    for _ in range(6):
        trial = study.ask()
        config = suggest_config(trial, space)
        config["filters_1"] = min(config["filters_1"], 32)  # keep the test fast
        try:
            model = build_model(config, (32, 32, 3), 10)
        except InvalidConfig:
            continue
        compile_model(model, config)
        probs = model.predict(x, verbose=0)
        assert probs.shape == (2, 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)
        built += 1
        study.tell(trial, 0.0)
        keras.backend.clear_session()
    assert built >= 3


def test_a_config_that_shrinks_the_image_away_is_refused():
    config = dict(
        MAXNET_CONFIG,
        conv_blocks=4,
        filters_4=32,
        block_dropout_4=0.1,
        kernel_size=5,
        convs_per_block=3,
    )
    with pytest.raises(InvalidConfig, match="below one pixel"):
        build_model(config, (32, 32, 3), 10)


@pytest.mark.parametrize(
    "name, cls",
    [
        ("adamax", keras.optimizers.Adamax),
        ("adam", keras.optimizers.Adam),
        ("adamw", keras.optimizers.AdamW),
        ("sgd", keras.optimizers.SGD),
        ("rmsprop", keras.optimizers.RMSprop),
    ],
)
def test_optimizers(name, cls):
    opt = build_optimizer({"optimizer": name, "learning_rate": 0.01})
    assert isinstance(opt, cls)
    assert float(opt.learning_rate) == pytest.approx(0.01)


def test_activation_and_pooling_choices_reach_the_layers():
    config = dict(MAXNET_CONFIG, activation="leaky_relu", pooling="avg", batch_norm=True)
    model = build_model(config, (32, 32, 3), 10)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"LeakyReLU", "AveragePooling2D", "BatchNormalization"} <= kinds
    assert "MaxPooling2D" not in kinds
