"""Helpers of the engine contract suite: one dispatcher over every engine, tiny spaces."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

import optuna

from hpo32.search.backends.base import SearchContext
from hpo32.search.space import SearchSpace, default_space

#: The engines the contract suite runs, by the name a study spec gives them.
ENGINES = ("optuna", "keras-tuner:random", "keras-tuner:hyperband", "autokeras:greedy")

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
    """Runs the engine called ``name`` ("optuna", "keras-tuner:<oracle>",
    "autokeras:<tuner>") on ``study`` like studies.runner does."""
    family, _, variant = name.partition(":")
    if family == "optuna":
        from hpo32.search.backends.optuna_engine import run_optuna

        return run_optuna(study, ctx, on_trial_done=on_trial_done)
    if family == "keras-tuner":
        from hpo32.search.backends.keras_tuner_engine import run_keras_tuner

        return run_keras_tuner(study, ctx, variant, on_trial_done=on_trial_done)
    if family == "autokeras":
        from hpo32.search.backends.autokeras_engine import run_autokeras

        return run_autokeras(study, ctx, variant, on_trial_done=on_trial_done)
    raise ValueError(f"unknown engine {name!r}")


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
        on_event=on_event or (lambda event: None),
    )


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
