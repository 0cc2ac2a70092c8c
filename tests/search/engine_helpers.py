"""Helpers of the engine contract suite: one dispatcher over every engine, tiny spaces."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpo32.search.engines import engine_names, parse_engine
from hpo32.search.engines.base import SearchContext
from hpo32.search.engines.optuna_space import optuna_distribution
from hpo32.search.engines.tuner import TUNER_TRIAL_ATTR
from hpo32.search.hardware import active_backend
from hpo32.search.space import Fixed, SearchSpace, default_space

#: Every engine, by the name a study spec gives it (the registry's names).
ENGINES = engine_names()

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
STARTED = tuple(s for s in TrialState if s != TrialState.WAITING)  # WAITING: queued, not run
ATTRS = (
    "train_seconds",
    "images_per_second",
    "eval_seconds",
    "peak_rss_mb",
    "epochs_completed",
    "stopped_by",
    "history",
    "trial_seconds",
)

#: A narrowed default space (as tests/studies/conftest.py TINY_SPEC) so a trial takes ~1 s.
TINY_OVERRIDES: dict[str, Any] = {
    "conv_blocks": {"low": 1, "high": 2},
    "filters_1": {"low": 8, "high": 16},
    "filters_2": {"low": 8, "high": 16},
    "convs_per_block": {"low": 1, "high": 2},
    "fc_layers": {"low": 0, "high": 1},
    "fc_units_1": {"low": 16, "high": 32},
    "batch_size": {"choices": [32, 64]},
    "pooling": "max",  # a fixed parameter: recorded in the config, never a param
}


def tiny_space() -> SearchSpace:
    return default_space().override(TINY_OVERRIDES)


def run_engine(name: str, study, ctx: SearchContext, on_trial_done=None) -> str:
    """Runs the engine called ``name`` (one of :data:`ENGINES`) on ``study`` like
    studies.launch does."""
    engine, variant = parse_engine(name)
    return engine.run(study, ctx, variant, on_trial_done=on_trial_done)


def new_study(url: str, name: str = "s", pruner=None):
    """A study on a real SQLite file, as the runner creates it (random sampler; no pruner
    unless given)."""
    from hpo32.storage import optuna_storage

    return optuna.create_study(
        study_name=name,
        storage=optuna_storage(url),
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=pruner or optuna.pruners.NopPruner(),
    )


def make_ctx(
    space: SearchSpace,
    splits,
    root: Path,
    *,
    epochs: int = 2,
    n_trials: int | None = None,
    budget: float | None = None,
    seed: int = 0,
    on_event=None,
    max_failures: int | None = 5,
) -> SearchContext:
    return SearchContext(
        space=space,
        splits=splits,
        epochs=epochs,
        seed=seed,
        search_deadline=time.monotonic() + budget if budget is not None else None,
        n_trials=n_trials,
        artifact_dir=root / "s",
        artifact_root=root,
        dataset="cifar10",
        max_failures=max_failures,
        on_event=on_event or (lambda event: None),
    )


def check_recorded(study, ctx, engine: str) -> None:
    """What every engine must record for every trial it started (a WAITING one is a config
    queued to run again, not yet a trial)."""
    space = ctx.space
    sampled = {p.name for p in space.params if not isinstance(p, Fixed)}
    for t in study.get_trials(states=STARTED):
        assert t.user_attrs["engine"] == engine
        assert t.user_attrs["dataset"] == "cifar10"
        assert t.user_attrs["worker"]
        config = t.user_attrs["config"]
        space.check_config(config)
        # the space's own names, nothing the library added (no scopes, no tuner/* values)
        assert set(t.params) == {n for n in config if n in sampled}
        assert set(t.params) <= set(space.names)
        for name, value in t.params.items():
            assert space[name].contains(value), (name, value)
            assert t.distributions[name] == optuna_distribution(space[name])
            assert value == pytest.approx(config[name])
        assert config["pooling"] == "max" and "pooling" not in t.params  # the fixed one
        if engine != "optuna":
            assert isinstance(t.user_attrs[TUNER_TRIAL_ATTR], str)
        if t.state in FINISHED:
            epochs = t.user_attrs["epochs"]
            steps = sorted(t.intermediate_values)
            if t.user_attrs["stopped_by"] == "search_budget":  # cut: fewer epochs ran
                assert 1 <= len(steps) <= epochs
            else:
                assert len(steps) == epochs
            assert steps == list(range(1, len(steps) + 1))
            assert t.value == pytest.approx(t.intermediate_values[steps[-1]])
            assert 0.0 <= t.value <= 1.0
            for attr in ATTRS:
                assert attr in t.user_attrs, attr
            assert t.user_attrs["peak_rss_mb"] > 0 and t.user_attrs["train_seconds"] > 0
            assert t.user_attrs["backend"] == active_backend()
        if t.state == TrialState.PRUNED:
            assert engine.endswith("hyperband") and t.user_attrs["epochs"] < ctx.epochs


def saved_modules(path: Path) -> set[str]:
    """The Python modules named by a saved ``.keras`` file's config (custom objects show)."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "class_name" in node and "module" in node:
                found.add(str(node["module"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def layer_types(model) -> list[str]:
    """Layer class names in order, nested models flattened, input layers left out."""
    import keras

    out: list[str] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += layer_types(layer)
        elif type(layer).__name__ != "InputLayer":
            out.append(type(layer).__name__)
    return out
