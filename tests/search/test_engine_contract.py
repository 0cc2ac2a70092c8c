"""The engine contract (hpo32.search.engines.registry), one suite over every registered engine.

Each engine runs real trials on tiny generated CIFAR-10 files (3 classes: AutoKeras' least)
into a real SQLite study and must record them the same way: params under the space's own
names and inside the space, per-epoch intermediate values, the same user attributes, the
trial count met exactly, the budget kept, resumes without duplicates, a best model that
loads back with plain Keras, an interrupted trial recorded as FAIL, and a run of failures
ended at ``max_failures``. Engine-specific behaviour lives in test_engines.py.

The suite runs on the test process's Keras backend (TensorFlow), then once more in a child
process on each other backend installed (JAX, PyTorch) over the engines that run there.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import optuna
import pytest
from optuna.trial import TrialState

from hpo32.search import training
from hpo32.search.data import load_dataset, make_splits
from hpo32.search.engines import get, parse_engine
from hpo32.search.engines.base import TooManyFailures, finished_count
from hpo32.search.engines.tuner import TUNER_TRIAL_ATTR
from hpo32.search.hardware import BACKENDS, active_backend
from hpo32.search.models import InvalidConfig
from tests.fixtures import write_cifar10
from tests.search.engine_helpers import (
    ENGINES,
    FINISHED,
    STARTED,
    check_recorded,
    make_ctx,
    new_study,
    run_engine,
    saved_modules,
    tiny_space,
)

optuna.logging.set_verbosity(optuna.logging.ERROR)

#: The user attributes every engine records for every finished trial.
COMMON_ATTRS = {
    "engine",
    "dataset",
    "epochs",
    "config",
    "worker",
    # the training result's (hpo32.search.training.TrialResult.attrs)
    "train_seconds",
    "images_per_second",
    "eval_seconds",
    "peak_rss_mb",
    "images_trained",
    "planned_images",
    "schedule_refit",
    "lr_final_factor",
    "epoch_seconds",
    "dtype_policy",
    "backend",
    "epochs_completed",
    "stopped_by",
    "history",
    "trial_seconds",
}
#: What a trial may add: a new best's model, the worker's GPU, a tuner's own ids.
OPTIONAL_ATTRS = {"model_path", "save_seconds", "gpu"}
TUNER_ATTRS = {TUNER_TRIAL_ATTR, "kt_bracket", "kt_round", "kt_promoted_from"}
#: The engines that train on this process's backend (the others refuse it in one sentence,
#: tests/studies/test_backends.py).
ENGINES_HERE = [e for e in ENGINES if active_backend() in parse_engine(e)[0].backends]


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, n_per_batch=40, n_test=20)
    dataset = load_dataset("cifar10", data_dir=root, classes=3, download=False)
    return make_splits(dataset, val_fraction=0.2, seed=0)


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path}/hpo32.db"


def get_recording(engine: str) -> str:
    return parse_engine(engine)[0].recording


def check_same_attrs(study, engine: str) -> None:
    """Every finished trial holds the common attributes and nothing but the known extras."""
    extras = OPTIONAL_ATTRS | (TUNER_ATTRS if get_recording(engine) == "mirrored" else set())
    for t in study.get_trials(states=FINISHED):
        keys = set(t.user_attrs)
        assert COMMON_ATTRS <= keys, COMMON_ATTRS - keys
        assert keys - COMMON_ATTRS <= extras, keys - COMMON_ATTRS - extras


def check_best_model(study, ctx) -> None:
    """The best trial's model is a plain Keras file compiled with the config's optimizer."""
    best = study.best_trial
    path = ctx.artifact_root / best.user_attrs["model_path"]
    assert path.is_file()
    assert all(m.split(".")[0] == "keras" for m in saved_modules(path)), saved_modules(path)
    model = keras.models.load_model(path)
    config = best.user_attrs["config"]
    assert type(model.optimizer).__name__.lower() == config["optimizer"]
    learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    assert learning_rate == pytest.approx(config["learning_rate"])
    assert model.output_shape == (None, ctx.splits.num_classes)
    keras.backend.clear_session()


def final_ids(study) -> list[str]:
    return [t.user_attrs[TUNER_TRIAL_ATTR] for t in study.get_trials(states=FINISHED)]


def test_the_registry_names_every_engine():
    assert ENGINES[0] == "optuna"
    assert {parse_engine(name)[0].name for name in ENGINES} == {
        "optuna",
        "keras-tuner",
        "autokeras",
    }
    assert not get("optuna").variants and get("optuna").recording == "native"
    assert get("optuna").parallel
    for name in ("keras-tuner", "autokeras"):
        assert get(name).recording == "mirrored" and not get(name).parallel


@pytest.mark.parametrize("bad", ["sklearn", "optuna:tpe", "keras-tuner", "autokeras:", "", 3])
def test_an_unknown_engine_name_is_one_sentence(bad):
    with pytest.raises(ValueError, match=r"^unknown engine .*; use one of optuna, keras-tuner:"):
        parse_engine(bad)
    with pytest.raises(ValueError, match=r"^unknown engine"):
        get("keras-tuner:random")  # get takes an engine's name, not a full name


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_records_every_trial_stops_at_n_trials_and_resumes(engine, splits, tmp_path, url):
    study = new_study(url)
    done = []
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", n_trials=2)
    assert run_engine(engine, study, ctx, on_trial_done=lambda: done.append(1)) == "n_trials"
    assert finished_count(study) == 2 and len(done) == len(study.trials)
    check_recorded(study, ctx, engine)
    check_same_attrs(study, engine)
    check_best_model(study, ctx)

    def recorded(trials: list) -> dict:  # a superseded best's model_path goes with its file
        return {
            t.number: (
                t.params,
                t.value,
                {k: v for k, v in t.user_attrs.items() if k != "model_path"},
            )
            for t in trials
        }

    before = recorded(study.get_trials())

    # resume: a new context, the same study and artifact folder, one trial more
    study = optuna.load_study(
        study_name="s", storage=url, sampler=optuna.samplers.RandomSampler(seed=1)
    )
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", n_trials=3, seed=1000)
    assert run_engine(engine, study, ctx) == "n_trials"
    assert finished_count(study) == 3
    after = recorded(study.get_trials())
    assert {k: after[k] for k in before} == before  # recorded trials are never touched
    check_recorded(study, ctx, engine)
    check_same_attrs(study, engine)
    if get_recording(engine) == "mirrored":
        ids = final_ids(study)
        assert len(ids) == len(set(ids)) == 3  # the tuner continued: no duplicate trial


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_keeps_the_search_budget(engine, splits, tmp_path, url):
    study = new_study(url)
    budget = 8.0  # AutoKeras takes a few seconds to set up its first trial on a busy machine
    wall_deadline = time.time() + budget
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", epochs=200, budget=budget)
    assert run_engine(engine, study, ctx) == "budget"
    # (a trial the budget cuts inside its first epoch is queued again: WAITING, not started)
    trials = study.get_trials(states=STARTED)
    assert trials, "the first trial should start well inside the budget"
    for t in trials:
        assert t.datetime_start.timestamp() <= wall_deadline  # no trial starts after it
    epoch_seconds = max(
        (t.user_attrs["train_seconds"] + t.user_attrs["eval_seconds"])
        / max(1, len(t.intermediate_values))
        for t in trials
        if "train_seconds" in t.user_attrs
    )
    last = max(trials, key=lambda t: t.datetime_complete)
    if not engine.endswith("hyperband"):  # (a short Hyperband rung may end on its own)
        # the running trial is cut at the budget and recorded honestly
        assert last.user_attrs["stopped_by"] == "search_budget"
    overrun = last.datetime_complete.timestamp() - wall_deadline
    info = {k: v for k, v in last.user_attrs.items() if k not in ("config", "history")}
    assert overrun <= epoch_seconds + 3.0, (overrun, epoch_seconds, info)  # + save, noise
    check_recorded(study, ctx, engine)
    # the budget is spent: another run starts nothing
    assert run_engine(engine, study, ctx) == "budget"
    assert len(study.get_trials(states=STARTED)) == len(trials)


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_an_interrupted_trial_is_recorded_as_fail(engine, splits, tmp_path, url):
    study = new_study(url)
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", n_trials=2)

    def interrupted(config, *, epochs=None, report=None, seed=0):
        report(0, 0.25)  # one epoch measured, then Ctrl-C
        raise KeyboardInterrupt

    ctx.train = interrupted
    with pytest.raises(KeyboardInterrupt):
        run_engine(engine, study, ctx)
    [failed] = study.get_trials(states=STARTED)
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["stopped_by"] == "interrupt"
    assert failed.intermediate_values == {1: 0.25}  # what it measured is kept
    for key in ("engine", "dataset", "epochs", "config", "worker"):
        assert key in failed.user_attrs, key
    assert failed.user_attrs["engine"] == engine
    if get_recording(engine) == "native":  # queued to run first in the next session
        [queued] = study.get_trials(states=(TrialState.WAITING,))
        assert queued.user_attrs["retry_of"] == failed.number
    else:  # the tuner retries its trial id on resume (test_engines.py)
        assert TUNER_TRIAL_ATTR in failed.user_attrs


@pytest.mark.parametrize("engine", ENGINES_HERE)
def test_consecutive_failures_end_the_search(engine, splits, tmp_path, url, monkeypatch):
    def refuse(config, *args, **kwargs):
        raise InvalidConfig("the network shrinks 32x32 below one pixel")

    monkeypatch.setattr(training, "train_config", refuse)
    study = new_study(url)
    ctx = make_ctx(tiny_space(), splits, tmp_path / "art", n_trials=5, max_failures=2)
    with pytest.raises(TooManyFailures, match="after 2 failed trials in a row.*below one pixel"):
        run_engine(engine, study, ctx)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    for t in trials:
        assert "below one pixel" in t.user_attrs["fail_reason"]
        assert t.user_attrs["engine"] == engine and t.user_attrs["config"]


#: The backends the child runs cover: every one but this process's, where installed.
OTHER_BACKENDS = [b for b in BACKENDS if b != active_backend()]


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_the_contract_holds_on_the_other_backends(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    root = Path(__file__).resolve().parents[2]
    res = subprocess.run(
        [sys.executable, "-m", "pytest", str(Path(__file__).relative_to(root)), "-q",
         "-p", "no:cacheprovider", "-k", "not other_backends"],
        cwd=root, capture_output=True, text=True, timeout=1500,
        env={**os.environ, "KERAS_BACKEND": backend},
    )  # fmt: skip
    summary = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary
