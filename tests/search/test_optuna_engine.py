from __future__ import annotations

import optuna
import pytest

from hpo32.search.engines.optuna import (
    PRUNERS,
    SAMPLERS,
    grid_of,
    make_pruner,
    make_sampler,
)
from hpo32.search.engines.optuna_space import suggest_config
from hpo32.search.space import SearchSpace, default_space

GRID_SPACE = SearchSpace.from_dict(
    {
        "base": "none",
        "params": {
            "conv_blocks": {"type": "int", "low": 1, "high": 2},
            "activation": {"type": "categorical", "choices": ["relu", "gelu"]},
            "learning_rate": {"type": "float", "low": 0.01, "high": 0.03, "step": 0.01},
            "pooling": {"type": "fixed", "value": "max"},
        },
    }
)


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_sampler_drives_the_space(name):
    space = GRID_SPACE if name == "grid" else default_space()
    study = optuna.create_study(direction="maximize", sampler=make_sampler(name, 0, space))
    configs = []

    def objective(trial):
        config = suggest_config(trial, space)
        space.check_config(config)
        configs.append(config)
        return float(config.get("conv_blocks", 1)) + len(configs) * 1e-3

    study.optimize(objective, n_trials=12 if name == "grid" else 6)
    assert len(configs) >= 6
    if name == "grid":  # every grid point exactly once
        assert len({str(sorted(c.items())) for c in configs}) == 12


def test_grid_needs_steps_on_floats():
    with pytest.raises(ValueError, match="needs a step on float parameter"):
        grid_of(default_space())


@pytest.mark.parametrize("name", PRUNERS)
def test_pruners(name):
    pruner = make_pruner(name, epochs=9)
    # a fixed name: Hyperband assigns brackets by hashing the study name
    study = optuna.create_study(study_name="pruners", direction="maximize", pruner=pruner)
    for k in range(6):
        trial = study.ask()
        for step in range(1, 4):
            trial.report(0.1 * k if k < 5 else 0.0, step)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, 0.1 * k)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    if name == "none":
        assert not pruned
    else:
        assert pruned, f"{name} should prune a trial far below the others"


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown sampler 'x'"):
        make_sampler("x", 0, default_space())
    with pytest.raises(ValueError, match="unknown pruner 'y'"):
        make_pruner("y", 3)
