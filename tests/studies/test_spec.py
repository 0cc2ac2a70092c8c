from __future__ import annotations

import pytest

from hpo32.studies.spec import (
    SpecError,
    StudySpec,
    check_study_name,
    format_duration,
    list_presets,
    load_preset,
    load_spec_file,
    parse_duration,
)


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("10m", 600),
        ("2h", 7200),
        ("1h30m", 5400),
        ("45", 45),
        ("1.5m", 90),
        ("2m30s", 150),
        (30, 30),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "10x", "-5m", "0s", "0", "m"])
def test_bad_durations(text):
    with pytest.raises(SpecError) as err:
        parse_duration(text)
    assert "\n" not in str(err.value)


def test_format_duration():
    assert [format_duration(s) for s in (None, 42, 330, 3720)] == ["-", "42s", "5m30s", "1h02m"]


@pytest.mark.parametrize("name", ["a'b", "x/y", "<b>", "", "-lead", "a" * 101, "sp ace"])
def test_study_names_are_restricted(name):
    with pytest.raises(SpecError, match="not allowed"):
        check_study_name(name)


def test_every_preset_loads_and_validates():
    presets = list_presets()
    assert {
        "cifar10-cnn",
        "imagenet32-cnn",
        "maxnet-imagenet32",
        "alexnet-imagenet32",
        "densenet121-imagenet32",
        "densenet121-transfer-cifar10",
        "densenet121-finetune-cifar10",
        "autokeras-imagenet32",
        "autokeras-cifar10",
        "search-cnn",
        "search-alexnet",
        "search-densenet121",
    } <= set(presets)
    for name, description in presets.items():
        spec = load_preset(name)
        assert description
        spec.build_space()


def test_maxnet_preset_is_one_fixed_trial():
    spec = load_preset("maxnet-imagenet32")
    assert (spec.epochs, spec.n_trials, spec.classes) == (10, 1, 200)
    space = spec.build_space()
    config = space.sample(lambda p, v: pytest.fail(f"{p.name} should be fixed"))
    assert config["optimizer"] == "adamax" and config["batch_size"] == 128
    assert config["augment_flip"] is True


def test_overrides_win_and_are_validated():
    spec = load_preset("cifar10-cnn").with_overrides(budget=90.0, epochs=None, sampler="random")
    assert spec.budget == 90.0 and spec.sampler == "random" and spec.epochs == 5
    with pytest.raises(SpecError, match="unknown sampler 'annealing'"):
        spec.with_overrides(sampler="annealing")
    with pytest.raises(SpecError, match="unknown dataset 'mnist'"):
        spec.with_overrides(dataset="mnist")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("dataset: cifar10\ncolour: red\n", "unknown key 'colour'"),
        ("budget: soon\n", "cannot read budget 'soon'"),
        (
            "space:\n  params:\n    conv_blocks: {low: 4, high: 1}\n",
            "low (4) is greater than high (1)",
        ),
        ("space:\n  params:\n    wings: {low: 1}\n", "unknown parameter 'wings'"),
        ("dataset: [unclosed\n", "is not valid YAML/JSON"),
        ("- a list\n", "must hold a mapping"),
        ("engine: sklearn\n", "unknown engine 'sklearn'"),
        ("pruner: sometimes\n", "unknown pruner 'sometimes'"),
        ("precision: half\n", "unknown precision 'half'"),
        ("epoch_images: 0\n", "epoch-images must be a positive integer"),
    ],
)
def test_bad_spec_files(tmp_path, text, fragment):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as err:
        load_spec_file(path)
    assert fragment in str(err.value)


def test_spec_round_trips_through_its_dict():
    spec = load_preset("imagenet32-cnn")
    assert StudySpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "densenet121-transfer-cifar10",
            {
                "family": "densenet121",
                "densenet_mode": "transfer",
                "activation": "swish",
                "batch_size": 16,
                "fc_units_1": 512,
                "fc_units_2": 512,
                "fc_dropout_1": 0.35,
                "densenet_keep_layers": 12,
            },
        ),
        (
            "alexnet-imagenet32",
            {"family": "alexnet", "alexnet_dropout": 0.4, "batch_size": 128, "optimizer": "adamax"},
        ),
        (
            "densenet121-imagenet32",
            {
                "family": "densenet121",
                "densenet_mode": "scratch",
                "fc_units_1": 1024,
                "fc_dropout_1": 0.2,
            },
        ),
        ("densenet121-finetune-cifar10", {"densenet_mode": "finetune", "batch_size": 16}),
    ],
)
def test_report_presets_are_fixed_trials_with_the_reports_settings(name, expected):
    spec = load_preset(name)
    assert spec.n_trials == 1
    config = spec.build_space().sample(lambda p, v: pytest.fail(f"{p.name} should be fixed"))
    assert {k: config[k] for k in expected} == expected


def test_search_presets_search_one_family_each():
    for family in ("cnn", "alexnet", "densenet121"):
        space = load_preset(f"search-{family}").build_space()
        assert space["family"].value == family


def test_pretrained_presets_need_weights(tmp_path, monkeypatch, capsys):
    from hpo32.studies.cli import main

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    code = main(["search", "--study", "t", "--preset", "densenet121-transfer-cifar10"])
    err = capsys.readouterr().err
    assert code == 2 and "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5" in err
    assert not (tmp_path / "hpo32.db").exists()
