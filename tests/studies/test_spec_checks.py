"""Unit tests of the checks a spec passes before anything is written: what the model builder
takes (hpo32.search.models' pure checks), check_space, check_plain, brief, the typed keys."""

from __future__ import annotations

import math

import pytest

from hpo32.search import models
from hpo32.search.space import (
    AIRBENCH94_CONFIG,
    MAXNET_CONFIG,
    SearchSpace,
    SpaceError,
    brief,
    default_space,
)
from hpo32.studies.spec import (
    MAX_SPEC_BYTES,
    SpecError,
    StudySpec,
    check_plain,
    check_space,
    check_study_name,
    list_presets,
    load_preset,
    parse_duration,
)


def test_brief_is_bounded_and_one_line_whatever_the_value():
    bomb: list = ["x"]
    for _ in range(40):  # 2**40 items if walked: brief must not walk them
        bomb = [bomb, bomb]
    for value in (bomb, "y" * 10**6, "a\nb", 10**5000, {"k" * 1000: 1}):
        text = brief(value)
        assert len(text) <= 80 and "\n" not in text
    assert brief("colour") == "'colour'"


@pytest.mark.parametrize(
    "name, value",
    [
        ("batch_size", 128),
        ("block_dropout_3", 0.0),
        ("activation", "gelu"),
        ("optimizer", "rmsprop"),
        ("learning_rate", 2.0),
        ("kernel_size", 5),
        ("fc_layers", 0),
        ("augment_flip", True),
        ("densenet_unfreeze_fraction", 1.0),
        ("not_read_by_the_builder", object()),
    ],
)
def test_check_value_takes_what_the_builder_takes(name, value):
    models.check_value(name, value)


@pytest.mark.parametrize(
    "name, value",
    [
        ("batch_size", 0),
        ("batch_size", 64.0),
        ("batch_size", True),
        ("block_dropout_1", 1.0),
        ("block_dropout_1", math.nan),
        ("activation", "bogus"),
        ("optimizer", "nadam"),
        ("learning_rate", 0.0),
        ("learning_rate", -1e-3),
        ("kernel_size", 0),
        ("conv_blocks", 65),
        ("batch_norm", "yes"),
        ("family", "vgg"),
        ("densenet_input_size", 16),
        ("lr_schedule", "step"),
        ("tta", "everything"),
        ("filters_2", 0),
    ],
)
def test_check_value_refuses_what_the_builder_cannot_take(name, value):
    with pytest.raises(models.InvalidConfig, match=f"'{name}' takes "):
        models.check_value(name, value)


def test_the_builder_takes_every_value_of_the_default_space():
    check_space(default_space())
    models.check_config(MAXNET_CONFIG)
    models.check_config(AIRBENCH94_CONFIG)
    assert set(models.OPTIMIZERS) == set(default_space()["optimizer"].choices)
    assert set(default_space()["activation"].choices) <= set(models.ACTIVATIONS)


def test_required_names_each_counted_parameter():
    need = models.required({"family": "cnn", "conv_blocks": 3, "fc_layers": 1})
    assert {"filters_1", "filters_3", "fc_units_1", "kernel_size", "batch_size"} <= set(need)
    assert "filters_4" not in need and need["filters_3"] == "conv_blocks 3"
    assert "width_1" in models.required({"family": "resnet", "res_groups": 2})
    assert "kernel_size" not in models.required({"family": "alexnet"})


@pytest.mark.parametrize(
    "edits, size",
    [
        ({}, 2),  # MaxNet: 32 -> 30 -> 15 -> 13 -> 6 -> 4 -> 2
        ({"padding": "same"}, 4),
        ({"conv_blocks": 4, "filters_4": 32, "convs_per_block": 3, "kernel_size": 5}, -3),
        ({"kernel_size": 33}, 0),
    ],
)
def test_output_size_follows_the_cnn_layers(edits, size):
    assert models.output_size({**MAXNET_CONFIG, **edits}) == size


def test_output_size_of_the_other_families():
    assert models.output_size(AIRBENCH94_CONFIG) == 3  # (32 - 2 + 1) >> 3
    assert models.output_size({**AIRBENCH94_CONFIG, "res_groups": 5}) == 0
    assert models.output_size({"family": "densenet121", "densenet_input_size": 96}) == 3


@pytest.mark.slow
def test_output_size_agrees_with_the_builder():
    """A config builds exactly when output_size leaves a pixel (the builder is the truth)."""
    for edits in (
        {},
        {"conv_blocks": 4, "filters_4": 16, "convs_per_block": 3, "kernel_size": 5},
        {"conv_blocks": 4, "filters_4": 16, "convs_per_block": 2, "kernel_size": 5},
        {"conv_blocks": 1, "kernel_size": 31},
        {"conv_blocks": 1, "kernel_size": 33},
    ):
        config = {**MAXNET_CONFIG, "filters_1": 8, "filters_2": 8, "filters_3": 8, **edits}
        try:
            models.build_cnn(config, (32, 32, 3), 10)
            built = True
        except models.InvalidConfig:
            built = False
        assert built == (models.output_size(config) >= 1), edits


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"optimizer": "nadam"}, "'optimizer' takes one of"),
        ({"conv_blocks": {"high": 7}}, "no parameter 'filters_5'"),
        ({"fc_layers": 5}, "no parameter 'fc_units_4', which fc_layers 5 needs"),
        ({"batch_size": {"type": "float", "low": 16, "high": 64}}, "not 16.0 (its low)"),
        ({"learning_rate": None}, "no parameter 'learning_rate', which training needs"),
        (
            {"family": {"type": "categorical", "choices": ["cnn", "resnet"]}, "width_3": None},
            "no parameter 'width_3'",
        ),
    ],
)
def test_check_space_refuses_what_no_trial_could_build(params, fragment):
    space = SearchSpace.from_dict({"params": params})
    with pytest.raises(SpecError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        check_space(space)


def test_check_space_takes_a_search_whose_networks_fail_only_sometimes():
    space = SearchSpace.from_dict({"params": {"padding": "valid_last", "kernel_size": 5}})
    check_space(space)  # one to three blocks fit; four with three convs each fail as trials
    fixed = space.override({"conv_blocks": 4, "convs_per_block": 3})
    with pytest.raises(SpecError, match="even the smallest"):
        check_space(fixed)


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ({"k": {1: 2}}, "key 1 in spec at 'k' is not text"),
        ({"k": {1.5}}, "holds a set at 'k'"),
        ({"k": b"raw"}, "holds a bytes at 'k'"),
        ({"k": "x" * (MAX_SPEC_BYTES + 1)}, "larger than 64 KiB"),
    ],
)
def test_check_plain(spec, fragment):
    with pytest.raises(SpecError, match=fragment):
        check_plain(spec)


def test_check_plain_stops_early_on_a_bomb():
    bomb: list = ["x"]
    for _ in range(60):
        bomb = [bomb, bomb]
    with pytest.raises(SpecError, match="larger than 64 KiB|deeper than"):
        check_plain({"description": bomb})


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"val_fraction": "0.2"}, "write a number without quotes"),
        ({"val_fraction": True}, "val_fraction must be a number"),
        ({"seed": -1}, "seed must be a whole number from 0"),
        ({"seed": 2**40}, "seed must be a whole number from 0"),
        ({"engine": ["optuna"]}, "engine must be an engine name"),
        ({"sampler": {"tpe": 1}}, "sampler must be a sampler name"),
        ({"classes": 1}, "classes must be at least 2"),
        ({"classes": [True, 2]}, "classes lists True"),
        ({"classes": "1"}, "classes must be at least 2"),
        ({"max_failures": 0}, "max-failures must be a positive integer"),
        ({"max_failures": 2.5}, "max_failures must be a positive integer"),
        ({"space_version": 3}, "space_version must be 1 or 2"),
        ({"data_dir": "a\x00b"}, "without NUL bytes"),
        ({"budget": "1e400h"}, "cannot read budget"),
        ({"budget": 10**400}, "finite duration"),
        ({"warm_start": [{"config": ["airbench94"]}]}, "names unknown config"),
        ({"space": {"params": {"x" * 200: 1}}}, "parameter name 'xxx"),
        ({"space": {"params": {"dropout": {"type": ["int"]}}}}, "unknown type ['int']"),
    ],
)
def test_from_dict_refuses_with_one_sentence(data, fragment):
    with pytest.raises(SpecError) as err:
        StudySpec.from_dict(data)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400
    assert "could not be checked" not in str(err.value)


@pytest.mark.parametrize("data", [[], "spec", None, 3])
def test_from_dict_refuses_what_is_not_a_mapping(data):
    with pytest.raises(SpecError, match="must be a mapping"):
        StudySpec.from_dict(data)  # type: ignore[arg-type]


def test_max_failures_defaults_to_5_and_round_trips():
    spec = StudySpec()
    assert spec.max_failures == 5
    assert StudySpec.from_dict({**spec.to_dict(), "max_failures": 2}).max_failures == 2
    assert spec.with_overrides(max_failures=9).max_failures == 9


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, ".inf", "1e999"])
def test_durations_are_finite(value):
    with pytest.raises(SpecError):
        parse_duration(value)


def test_study_name_may_not_end_in_a_newline():
    with pytest.raises(SpecError, match="not allowed"):
        check_study_name("fresh\n")
    assert check_study_name("fresh") == "fresh"


def test_space_refuses_non_finite_and_odd_definitions():
    for params, fragment in (
        ({"x": {"type": "float", "low": 0.0, "high": math.inf}}, "high must be a finite"),
        ({"x": {"type": "int", "low": 0, "high": 2**60}}, "high must lie between"),
        ({"x": {"type": "categorical", "choices": [math.nan]}}, "must be a string, finite"),
        ({"x": {"type": "categorical", "choices": "ab"}}, "choices must be a list"),
        ({"x": {"type": "int", "low": 1, "high": 2, "log": "yes"}}, "log must be true or false"),
        (
            {"x": {"type": "fixed", "value": 1, "when": {"parent": 3, "values": [1]}}},
            "parent parameter",
        ),
    ):
        with pytest.raises(SpaceError, match=fragment):
            SearchSpace.from_dict({"base": "none", "params": params})


def test_every_preset_passes_the_new_checks():
    for name in list_presets():
        check_space(load_preset(name).build_space())
