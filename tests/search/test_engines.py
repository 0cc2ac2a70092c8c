"""Engine-specific behaviour beyond the contract (tests/search/test_engine_contract.py):
KerasTuner's Hyperband rungs, tuner project folders and their lock, a tuner's retry of an
interrupted trial, invalid configs, the translations of one config through every engine,
AutoKeras' pinned choices, the memory across trials, and the Optuna engine's first-epoch
and last-epoch rules.
"""

from __future__ import annotations

import math
import shutil
import time

import keras
import keras_tuner as kt
import optuna
import pytest
from optuna.trial import TrialState

from hpo32.search.data import load_dataset, make_splits
from hpo32.search.engines.autokeras import (
    BLOCK_NAME,
    build_autokeras_model,
    run_autokeras,
    space_config,
)
from hpo32.search.engines.keras_tuner import make_hypermodel, run_keras_tuner
from hpo32.search.engines.optuna import run_optuna
from hpo32.search.engines.optuna_space import optuna_params, suggest_config
from hpo32.search.engines.tuner import (
    TUNER_TRIAL_ATTR,
    ProjectBusy,
    ProjectMissing,
    project_lock,
)
from hpo32.search.engines.tuner_space import declare_space, hp_config
from hpo32.search.models import build_model
from hpo32.search.space import (
    AIRBENCH94_CONFIG,
    MAXNET_CONFIG,
    PLAIN_RECIPE,
    Categorical,
    Condition,
    Fixed,
    Float,
    Int,
    SearchSpace,
    default_space,
)
from tests.fixtures import write_cifar10
from tests.search.engine_helpers import (
    FINISHED,
    check_recorded,
    layer_types,
    make_ctx,
    new_study,
    run_engine,
    tiny_space,
)

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, n_per_batch=40, n_test=20)
    dataset = load_dataset("cifar10", data_dir=root, download=False)
    return make_splits(dataset, val_fraction=0.2, seed=0)


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path}/hpo32.db"


def test_keras_tuner_hyperband_rungs_are_pruned_and_promotions_complete(splits, tmp_path, url):
    study = new_study(url)
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", epochs=3, n_trials=4)
    assert run_keras_tuner(study, ctx, "hyperband") == "n_trials"
    check_recorded(study, ctx, "keras-tuner:hyperband")
    trials = study.get_trials()
    rungs = [t for t in trials if t.state == TrialState.PRUNED]
    [top] = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(rungs) == 3 and all(t.user_attrs["epochs"] == 1 for t in rungs)
    assert top.user_attrs["epochs"] == 3 and sorted(top.intermediate_values) == [1, 2, 3]
    parent = {t.user_attrs[TUNER_TRIAL_ATTR]: t for t in rungs}[top.user_attrs["kt_promoted_from"]]
    assert parent.value == max(t.value for t in rungs)  # the best rung was promoted
    assert top.user_attrs["config"] == parent.user_attrs["config"]
    assert study.best_trial.number == top.number  # rungs never compete for the best model


@pytest.mark.parametrize("engine", ["keras-tuner:random", "autokeras:greedy"])
def test_missing_project_folder_on_resume_is_refused(engine, splits, tmp_path, url):
    study = new_study(url)
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", n_trials=1)
    run_engine(engine, study, ctx)
    before = [(t.number, t.state, t.value, t.params) for t in study.get_trials()]
    project = ctx.artifact_dir / ("keras_tuner" if engine.startswith("keras") else "autokeras")
    shutil.rmtree(project)
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", n_trials=2)
    with pytest.raises(ProjectMissing, match="project folder .* is missing.*intact"):
        run_engine(engine, study, ctx)
    assert [(t.number, t.state, t.value, t.params) for t in study.get_trials()] == before
    assert not project.exists()


def test_a_second_worker_on_the_same_tuner_project_is_refused(splits, tmp_path, url):
    study = new_study(url)
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", n_trials=1)
    with project_lock(ctx.artifact_dir / "keras_tuner.lock", "KerasTuner", "s"):
        with pytest.raises(ProjectBusy, match="one worker at a time"):
            run_keras_tuner(study, ctx, "random")
    assert not study.get_trials() and not (ctx.artifact_dir / "keras_tuner").exists()


def test_interrupted_trial_is_recorded_then_retried_once(splits, tmp_path, url):
    study = new_study(url)

    def interrupt(event):
        if event["kind"] == "epoch":
            raise KeyboardInterrupt

    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", n_trials=1, on_event=interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_keras_tuner(study, ctx, "random")
    [failed] = study.get_trials()
    assert failed.state == TrialState.FAIL and failed.user_attrs["stopped_by"] == "interrupt"
    assert sorted(failed.intermediate_values) == [1]  # what it measured is kept

    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", n_trials=1)
    assert run_keras_tuner(study, ctx, "random") == "n_trials"
    [_, retried] = study.get_trials()
    assert retried.state == TrialState.COMPLETE
    assert retried.user_attrs[TUNER_TRIAL_ATTR] == failed.user_attrs[TUNER_TRIAL_ATTR]
    assert retried.params == failed.params


def test_invalid_configs_fail_their_trial_and_the_search_goes_on(splits, tmp_path, url):
    # 4 blocks whose last 5x5 convolution is unpadded shrink a 32x32 image away
    space = default_space().override(
        {
            "conv_blocks": 4,
            "kernel_size": 5,
            "padding": "valid_last",
            "fc_layers": 0,
            **{f"filters_{k}": {"low": 8, "high": 8} for k in range(1, 5)},
        }
    )
    study = new_study(url)
    # (no max_failures: this is about KerasTuner's own limit, test_engine_contract about hpo32's)
    ctx = make_ctx(space, splits, tmp_path / "art", n_trials=1, budget=3, max_failures=None)
    assert run_keras_tuner(study, ctx, "random") == "budget"
    fails = study.get_trials(states=(TrialState.FAIL,))
    assert len(fails) >= 4  # more than KerasTuner's default limit of 3 in a row
    assert all("below one pixel" in t.user_attrs["fail_reason"] for t in fails)


# -- translation: fixed choices build the same model through every engine ----------------
TINY_CONFIG = {
    "conv_blocks": 2,
    "filters_1": 9,
    "block_dropout_1": 0.1,
    "filters_2": 16,
    "block_dropout_2": 0.2,
    "convs_per_block": 2,
    "kernel_size": 5,
    "padding": "valid_last",
    "batch_norm": True,
    "pooling": "max",
    "fc_layers": 1,
    "fc_units_1": 20,
    "fc_dropout_1": 0.3,
    "activation": "leaky_relu",
    "optimizer": "sgd",
    "learning_rate": 0.01,
    "batch_size": 64,
    "label_smoothing": 0.1,
    "augment_flip": False,
    "augment_crop": True,
    "crop_pixels": 3,
    "momentum": 0.95,
    "nesterov": False,
    **{k: v for k, v in PLAIN_RECIPE.items() if k != "flip_mode"},  # no flips: no flip mode
}


def test_tuner_values_always_fit_the_optuna_distributions():
    # steps, logs and conditions as KerasTuner samples them (float steps round: 0.1 + 3*0.05)
    space = SearchSpace(
        [
            Int("blocks", low=1, high=4),
            Int("width", low=8, high=64, step=8),
            Int("filters", low=16, high=512, log=True),
            Float("smoothing", low=0.1, high=0.3, step=0.05),
            Float("lr", low=1e-4, high=0.1, log=True),
            Categorical("bn", choices=(False, True)),
            Categorical("size", choices=(32, 64)),
            Float("extra", low=0.0, high=1.0, condition=Condition("blocks", min=3)),
            Fixed("pool", value="max"),
        ]
    )
    declared = kt.HyperParameters()
    declare_space(declared, space)
    for seed in range(40):
        hp = kt.HyperParameters()
        declare_space(hp, space)
        for one in declared.space:
            if hp.is_active(one):
                hp.values[one.name] = one.random_sample(seed)
        config = hp_config(hp, space)
        space.check_config(config)
        params, dists = optuna_params(space, config)
        assert set(params) == set(config) - {"pool"}
        # create_trial validates every param against its distribution
        optuna.trial.create_trial(params=params, distributions=dists, value=0.0)


@pytest.mark.parametrize(
    "space, config",
    [
        (default_space(), MAXNET_CONFIG),
        (tiny_space(), TINY_CONFIG),
        (default_space().override({"family": "resnet"}), AIRBENCH94_CONFIG),
    ],
    ids=["maxnet", "tiny", "airbench94"],
)
def test_fixed_choices_build_the_same_model_through_every_engine(space, config):
    shape, classes = (32, 32, 3), 10
    config = space.sample(lambda param, _values: config[param.name])  # fixed ones filled in
    sampled = {k: v for k, v in config.items() if not isinstance(space[k], Fixed)}

    via_optuna = suggest_config(optuna.trial.FixedTrial(sampled), space)
    reference = build_model(via_optuna, shape, classes)

    hp = kt.HyperParameters()
    declare_space(hp, space)
    hp.values.update(sampled)
    assert hp_config(hp, space) == config
    via_kt = make_hypermodel(space, shape, classes).build(hp)

    hp = kt.HyperParameters()
    with hp.name_scope(BLOCK_NAME):
        declare_space(hp, space)
    hp.values.update({f"{BLOCK_NAME}/{k}": v for k, v in sampled.items()})
    assert space_config(hp, space) == config
    via_ak = build_autokeras_model(space, hp, shape, classes)

    assert via_optuna == config
    assert layer_types(via_kt) == layer_types(reference)
    # AutoKeras' head is a Dense layer and a Softmax layer where build_model has one layer
    assert layer_types(via_ak) == layer_types(reference) + ["Softmax"]
    assert via_kt.count_params() == via_ak.count_params() == reference.count_params()
    if config is MAXNET_CONFIG:
        assert reference.count_params() == 1_584_648 - 190 * 513  # 10 classes, not 200
    # the config's optimizer, not AutoKeras' pinned one, compiles the KerasTuner model
    assert type(via_kt.optimizer).__name__.lower() == config["optimizer"]
    keras.backend.clear_session()


def test_autokeras_names_map_back_and_its_own_choices_are_pinned(splits, tmp_path, url):
    study = new_study(url)
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", epochs=1, n_trials=1)
    assert run_autokeras(study, ctx, "greedy") == "n_trials"
    [trial] = study.get_trials()
    saved = kt.engine.trial.Trial.load(
        str(
            ctx.artifact_dir
            / "autokeras"
            / f"trial_{trial.user_attrs[TUNER_TRIAL_ATTR]}"
            / "trial.json"
        )
    )
    values = saved.hyperparameters.values
    assert values["optimizer"] == "adam" and values["learning_rate"] == 1e-3  # pinned
    assert not any(name.startswith("classes/") for name in values)  # no head dropout
    scoped = {k.split("/", 1)[1]: v for k, v in values.items() if k.startswith(BLOCK_NAME)}
    assert {k: v for k, v in scoped.items() if k in trial.params} == trial.params
    assert set(trial.params) <= set(ctx.space.names)


def test_unknown_engine_variants_are_refused(splits, tmp_path, url):
    study = new_study(url)
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", n_trials=1)
    with pytest.raises(ValueError, match="unknown KerasTuner oracle 'grid'"):
        run_keras_tuner(study, ctx, "grid")
    with pytest.raises(ValueError, match="unknown AutoKeras tuner 'tpe'"):
        run_autokeras(study, ctx, "tpe")


@pytest.mark.slow
def test_memory_stays_flat_across_trials(splits, tmp_path, url):
    # every trial traces a new training graph; TensorFlow keeps some of each unless freed
    study = new_study(url)
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", epochs=1, n_trials=8)
    run_autokeras(study, ctx, "greedy")
    rss = [t.user_attrs["peak_rss_mb"] for t in study.get_trials(states=FINISHED)]
    assert len(rss) == 8 and all(not math.isnan(v) for v in rss)
    # after a warm-up, further trials leave the process's memory about where it was
    assert max(rss[3:]) - rss[2] < 100, rss


def test_a_trial_whose_first_epoch_the_search_budget_cuts_has_no_value_and_runs_again(
    splits, tmp_path, url
):
    study = new_study(url)
    # the first step alone (it traces the graph) outlasts this budget
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", epochs=3, budget=0.3)
    assert run_optuna(study, ctx) == "budget"
    [cut, queued] = study.get_trials()
    assert cut.state == TrialState.FAIL and cut.value is None
    assert cut.user_attrs["stopped_by"] == "search_budget"
    assert "before the first epoch ended" in cut.user_attrs["fail_reason"]
    assert queued.state == TrialState.WAITING and queued.user_attrs["retry_of"] == cut.number
    assert queued.system_attrs["fixed_params"] == cut.params  # untried: it runs first on resume
    ctx.search_deadline = time.monotonic() + 3600
    ctx.n_trials = 1
    assert run_optuna(study, ctx) == "n_trials"
    assert study.trials[1].state == TrialState.COMPLETE and study.trials[1].params == cut.params


def test_a_trial_that_ran_all_its_epochs_completes_whatever_the_pruner_says(splits, tmp_path, url):
    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return True

    study = new_study(url, pruner=AlwaysPrune())
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", epochs=2, n_trials=1)
    run_optuna(study, ctx)
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", epochs=1, n_trials=2)
    run_optuna(study, ctx)
    cut, full = study.trials
    assert cut.state == TrialState.PRUNED and sorted(cut.intermediate_values) == [1]
    assert full.state == TrialState.COMPLETE and sorted(full.intermediate_values) == [1]
    assert full.value == full.intermediate_values[1]
