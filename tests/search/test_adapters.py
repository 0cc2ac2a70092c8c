"""The one space through Optuna's suggest_* calls and KerasTuner's hp.* calls."""

from __future__ import annotations

import keras_tuner as kt
import optuna
import pytest

from hpo32.search.engines.optuna_space import suggest_config
from hpo32.search.engines.tuner_space import hp_config
from hpo32.search.space import (
    AIRBENCH94_CONFIG,
    MAXNET_CONFIG,
    Categorical,
    Condition,
    Fixed,
    Float,
    Int,
    SearchSpace,
    default_space,
)

EVERY_KIND = SearchSpace(
    [
        Int("blocks", low=1, high=4),
        Int("filters", low=16, high=512, log=True),
        Int("width", low=8, high=64, step=8),
        Float("dropout", low=0.0, high=0.5),
        Float("smoothing", low=0.0, high=0.2, step=0.05),
        Float("lr", low=1e-4, high=1e-1, log=True),
        Categorical("act", choices=("relu", "gelu")),
        Categorical("kernel", choices=(3, 5)),
        Categorical("bn", choices=(False, True)),
        Fixed("pool", value="max"),
        Int("filters_3", low=16, high=64, condition=Condition("blocks", min=3)),
        Categorical("opt", choices=("sgd", "adam")),
        Float("momentum", low=0.5, high=0.99, condition=Condition("opt", values=("sgd",))),
        # nested: exists only when filters_3 exists (blocks >= 3) and is at most 32
        Float("gain", low=0.1, high=1.0, condition=Condition("filters_3", max=32)),
    ]
)


def through_keras_tuner(space: SearchSpace, choices: dict) -> dict:
    hp = kt.HyperParameters()
    hp_config(hp, space)  # registers the hyperparameters, like a tuner's first build
    for name, value in choices.items():
        hp.values[name] = value
    return hp_config(hp, space)


def through_optuna(space: SearchSpace, choices: dict) -> dict:
    sampled = {k: v for k, v in choices.items() if not isinstance(space[k], Fixed)}
    return suggest_config(optuna.trial.FixedTrial(sampled), space)


CHOICES = [
    {
        "blocks": 3,
        "filters": 128,
        "width": 24,
        "dropout": 0.3,
        "smoothing": 0.1,
        "lr": 0.003,
        "act": "gelu",
        "kernel": 5,
        "bn": True,
        "pool": "max",
        "filters_3": 20,
        "opt": "sgd",
        "momentum": 0.9,
        "gain": 0.5,
    },
    {
        "blocks": 1,
        "filters": 16,
        "width": 64,
        "dropout": 0.0,
        "smoothing": 0.0,
        "lr": 0.1,
        "act": "relu",
        "kernel": 3,
        "bn": False,
        "pool": "max",
        "opt": "adam",
    },
    {
        "blocks": 4,
        "filters": 512,
        "width": 8,
        "dropout": 0.5,
        "smoothing": 0.2,
        "lr": 1e-4,
        "act": "relu",
        "kernel": 3,
        "bn": False,
        "pool": "max",
        "filters_3": 64,
        "opt": "adam",
    },
]


@pytest.mark.parametrize("choices", CHOICES)
def test_both_adapters_yield_the_identical_plain_dict(choices):
    via_optuna = through_optuna(EVERY_KIND, choices)
    via_kt = through_keras_tuner(EVERY_KIND, choices)
    assert via_optuna == via_kt == choices
    for value in via_kt.values():
        assert type(value) in (int, float, str, bool)
    for name, value in via_kt.items():
        assert type(value) is type(choices[name])


def test_maxnet_through_both_adapters():
    space = default_space()
    assert through_optuna(space, MAXNET_CONFIG) == MAXNET_CONFIG
    assert through_keras_tuner(space, MAXNET_CONFIG) == MAXNET_CONFIG


def test_airbench94_and_the_recipe_through_both_adapters():
    space = default_space().override(
        {"family": {"type": "categorical", "choices": ["cnn", "resnet"]}}
    )
    for config in (AIRBENCH94_CONFIG, dict(AIRBENCH94_CONFIG, ema=True, ema_momentum=0.95)):
        assert through_optuna(space, config) == config
        assert through_keras_tuner(space, config) == config


def test_sampled_optuna_configs_replay_identically_in_keras_tuner():
    space = default_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(20):
        trial = study.ask()
        config = suggest_config(trial, space)
        space.check_config(config)
        assert through_keras_tuner(space, config) == config
        study.tell(trial, 0.0)


def test_keras_tuner_marks_conditional_parameters():
    hp = kt.HyperParameters()
    hp_config(hp, default_space())
    hp.values["conv_blocks"] = 1
    config = hp_config(hp, default_space())
    assert "filters_2" not in config
    f2 = hp.get_hp("filters_2") if hasattr(hp, "get_hp") else None
    if f2 is not None:
        assert f2.conditions, "filters_2 must be conditional on conv_blocks"


def test_keras_tuner_random_values_stay_in_the_space():
    space = default_space()
    hp = kt.HyperParameters()
    hp_config(hp, space)
    oracle_values = []
    for seed in range(10):
        sample = kt.HyperParameters()
        hp_config(sample, space)
        for one in hp.space:
            sample.values[one.name] = one.random_sample(seed)
        config = hp_config(sample, space)
        space.check_config(config)
        oracle_values.append(config)
    assert len({str(c) for c in oracle_values}) > 1
