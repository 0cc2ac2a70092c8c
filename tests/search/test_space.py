from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hpo32.search.space import (
    MAXNET_CONFIG,
    PLAIN_RECIPE,
    RECIPE_PARAMS,
    Categorical,
    Condition,
    Fixed,
    Float,
    Int,
    SearchSpace,
    SpaceError,
    default_space,
    param_from_dict,
)


def test_default_space_covers_the_documented_parameters():
    space = default_space()
    cnn = Condition("family", values=("cnn",))
    assert space["family"] == Fixed("family", value="cnn")
    assert space["conv_blocks"] == Int("conv_blocks", low=1, high=4, condition=cnn)
    assert space["filters_3"].log and (space["filters_3"].low, space["filters_3"].high) == (16, 512)
    assert space["filters_3"].condition == Condition("conv_blocks", min=3)
    assert set(space["activation"].choices) == {"relu", "swish", "elu", "gelu", "leaky_relu"}
    assert set(space["optimizer"].choices) == {"adamax", "adam", "adamw", "sgd", "rmsprop"}
    assert space["batch_size"].choices == (32, 64, 128, 256, 512)
    lr = space["learning_rate"]
    assert (lr.low, lr.high, lr.log) == (1e-4, 2.0, True)
    assert lr.default == pytest.approx(10**-2.5)  # the midpoint before the range grew
    assert space["width_3"].condition == Condition("res_groups", min=3)
    assert space["res_groups"].condition == Condition("family", values=("resnet",))
    assert space["ema_momentum"].condition == Condition("ema", values=(True,))
    assert space["crop_pixels"].condition == Condition("augment_crop", values=(True,))
    for name in RECIPE_PARAMS:
        assert name in space
    assert {n: space.defaults()[n] for n in PLAIN_RECIPE} == PLAIN_RECIPE
    assert (space["fc_units_2"].low, space["fc_units_2"].high) == (64, 4096)
    for name in (
        "convs_per_block",
        "kernel_size",
        "batch_norm",
        "pooling",
        "fc_layers",
        "label_smoothing",
        "augment_flip",
        "augment_crop",
        "block_dropout_1",
        "fc_dropout_1",
    ):
        assert name in space


def test_maxnet_is_a_config_of_the_default_space():
    default_space().check_config(MAXNET_CONFIG)


def test_conditions_follow_their_parent():
    space = default_space()
    config = space.sample(lambda p, v: 2 if p.name == "conv_blocks" else _low(p))
    assert "filters_2" in config and "filters_3" not in config and "filters_4" not in config
    config = space.sample(lambda p, v: 4 if p.name == "conv_blocks" else _low(p))
    assert all(f"filters_{k}" in config for k in range(1, 5))


def _low(p):
    return p.choices[0] if isinstance(p, Categorical) else p.low


def test_families_switch_their_own_parameters():
    space = default_space().override(
        {"family": {"type": "categorical", "choices": ["cnn", "alexnet", "densenet121"]}}
    )
    pick = {"family": "alexnet"}
    config = space.sample(lambda p, v: pick.get(p.name, _low(p)))
    assert "conv_blocks" not in config and "fc_layers" not in config
    assert "alexnet_dropout" in config and "densenet_mode" not in config
    pick = {"family": "densenet121", "densenet_mode": "finetune"}
    config = space.sample(lambda p, v: pick.get(p.name, _low(p)))
    assert {
        "fc_layers",
        "densenet_keep_layers",
        "densenet_unfreeze_fraction",
        "finetune_lr_scale",
    } <= set(config)
    assert "conv_blocks" not in config and "alexnet_dropout" not in config
    pick = {"family": "densenet121", "densenet_mode": "scratch"}
    config = space.sample(lambda p, v: pick.get(p.name, _low(p)))
    assert "densenet_keep_layers" not in config


def test_nested_conditions_need_the_parent_active():
    space = SearchSpace(
        [
            Categorical("a", choices=("x", "y")),
            Int("b", low=1, high=3, condition=Condition("a", values=("y",))),
            Float("c", low=0.0, high=1.0, condition=Condition("b", min=2)),
        ]
    )
    assert space.sample(lambda p, v: {"a": "x"}.get(p.name, 2)) == {"a": "x"}
    assert space.sample(lambda p, v: {"a": "y", "b": 2}.get(p.name, 0.5)) == {
        "a": "y",
        "b": 2,
        "c": 0.5,
    }


@pytest.mark.parametrize(
    "params, fragment",
    [
        ([Int("x", low=5, high=1)], "'x': low (5) is greater than high (1)"),
        ([Float("lr", low=0.0, high=1.0, log=True)], "'lr': a log scale needs low > 0"),
        ([Int("n", low=0, high=4, log=True)], "'n': a log scale needs low > 0"),
        ([Categorical("act", choices=())], "'act': choices must not be empty"),
        ([Int("a", low=1, high=2), Int("a", low=1, high=3)], "'a' is defined twice"),
        (
            [Int("b", low=1, high=2, condition=Condition("nope", min=1))],
            "'b': its condition refers to unknown parameter 'nope'",
        ),
        ([Float("f", low=0.1, high=1.0, step=0.1, log=True)], "'f': log scale cannot be used"),
        (
            [
                Float("f", low=0.0, high=1.0),
                Int("g", low=1, high=2, condition=Condition("f", min=0.5)),
            ],
            "condition must be on an int or categorical",
        ),
    ],
)
def test_invalid_definitions_name_the_parameter(params, fragment):
    with pytest.raises(SpaceError) as err:
        SearchSpace(params)
    assert fragment in str(err.value)
    assert str(err.value).count(".") >= 1 and "\n" not in str(err.value)


def test_round_trip_yaml_and_json(tmp_path):
    space = default_space()
    for name in ("space.yaml", "space.json"):
        path = tmp_path / name
        space.save(path)
        assert SearchSpace.load(path) == space
    json.loads((tmp_path / "space.json").read_text())


def test_override_narrows_fixes_replaces_adds_and_removes():
    space = default_space().override(
        {
            "conv_blocks": {"low": 2, "high": 3},
            "activation": "relu",
            "optimizer": {"choices": ["adam", "sgd"]},
            "learning_rate": {"type": "float", "low": 0.001, "high": 0.01},
            "momentum": {
                "type": "float",
                "low": 0.8,
                "high": 0.99,
                "when": {"parent": "optimizer", "values": ["sgd"]},
            },
            "fc_layers": None,
        }
    )
    assert space["conv_blocks"] == Int(
        "conv_blocks", low=2, high=3, condition=Condition("family", values=("cnn",))
    )
    assert space["activation"] == Fixed("activation", value="relu")
    assert space["optimizer"].choices == ("adam", "sgd")
    assert not space["learning_rate"].log
    assert "fc_units_1" not in space and "fc_layers" not in space
    config = space.sample(lambda p, v: "sgd" if p.name == "optimizer" else _low(p))
    assert config["activation"] == "relu" and config["momentum"] == 0.8


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"nope": {"low": 1}}, "unknown parameter 'nope'"),
        ({"conv_blocks": {"low": 5}}, "'conv_blocks': low (5) is greater than high (4)"),
        ({"activation": {"choices": []}}, "'activation': choices must not be empty"),
        ({"conv_blocks": {"colour": 1}}, "cannot override 'colour'"),
        ({"x": {"type": "integer"}}, "unknown type 'integer'"),
    ],
)
def test_bad_overrides(overrides, fragment):
    with pytest.raises(SpaceError) as err:
        default_space().override(overrides)
    assert fragment in str(err.value)


def test_from_dict_rejects_unknown_keys_and_bases():
    with pytest.raises(SpaceError, match="unknown key 'extra'"):
        SearchSpace.from_dict({"params": {}, "extra": 1})
    with pytest.raises(SpaceError, match="unknown base space 'resnet'"):
        SearchSpace.from_dict({"base": "resnet"})
    with pytest.raises(SpaceError, match="needs both low and high"):
        param_from_dict("x", {"type": "int", "low": 1})


def test_check_config_rejects_out_of_range_and_inactive():
    space = default_space()
    bad = dict(MAXNET_CONFIG, filters_1=8)
    with pytest.raises(SpaceError, match="'filters_1' is out of range"):
        space.check_config(bad)
    with pytest.raises(SpaceError, match="not active"):
        space.check_config(dict(MAXNET_CONFIG, filters_4=64))


def test_complete_fills_what_a_partial_config_leaves_out_with_the_defaults():
    space = default_space()
    defaults = space.defaults()
    assert space.complete({}) == defaults
    assert defaults["conv_blocks"] == 3 and defaults["batch_norm"] is False
    partial = {"conv_blocks": 4, "batch_norm": True, "learning_rate": 0.01}
    config = space.complete(partial)
    space.check_config(config)
    assert set(config) == set(defaults) | {"filters_4", "block_dropout_4"}  # child now active
    assert config["filters_4"] == defaults["filters_1"]  # same range, same midpoint
    for name, value in config.items():
        expected = partial.get(name, defaults.get(name))
        if name not in ("filters_4", "block_dropout_4"):
            assert value == expected, name


@pytest.mark.parametrize(
    "partial, fragment",
    [
        ({"filter_1": 32}, "no parameter named 'filter_1'"),
        ({"filters_4": 32}, "'filters_4' is not active"),
        ({"filters_1": 8}, "'filters_1' is out of range"),
        ({"filters_1": 40.5}, "'filters_1' is out of range"),
        ({"batch_norm": "yes"}, "'batch_norm' is out of range"),
        ({"family": "alexnet"}, "'family' is fixed to 'cnn'"),
    ],
)
def test_complete_names_the_bad_parameter(partial, fragment):
    with pytest.raises(SpaceError, match=fragment):
        default_space().complete(partial)


def test_space_module_imports_no_ml_framework():
    code = (
        "import sys, hpo32.search.space; "
        "print([m for m in ('tensorflow', 'keras', 'optuna', 'keras_tuner') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_parameter_default_is_what_defaults_takes_and_must_be_legal():
    space = SearchSpace([Float("wd", low=0.0, high=0.1, default=0.0), Int("n", low=1, high=9)])
    assert space.defaults() == {"wd": 0.0, "n": 5}
    with pytest.raises(SpaceError, match="parameter 'wd': default 0.5 is out of range"):
        SearchSpace([Float("wd", low=0.0, high=0.1, default=0.5)])
    narrowed = space.override({"wd": {"low": 0.01}})  # past its default: the midpoint serves
    assert narrowed.defaults()["wd"] == pytest.approx(0.055)
    assert SearchSpace.from_dict(space.to_dict()) == space  # the default round-trips


def test_adopt_keeps_the_values_a_space_holds_and_defaults_the_rest():
    space = default_space().override({"family": "resnet", "width_1": {"low": 32, "high": 96}})
    from_cnn = dict(MAXNET_CONFIG, width_1=128, width_2=200)
    config = space.adopt(from_cnn)
    space.check_config(config)
    assert config["width_2"] == 200 and config["optimizer"] == "adamax"  # held: kept
    assert config["width_1"] == space.defaults()["width_1"]  # out of its range: default
    assert "filters_1" not in config  # a cnn parameter, inactive in a resnet space
