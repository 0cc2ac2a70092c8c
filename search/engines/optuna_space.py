"""The one space in Optuna's terms: ``trial.suggest_*`` calls and the distributions they make.

:func:`suggest_config` samples a config through an Optuna trial (the Optuna engine);
:func:`optuna_distribution` and :func:`optuna_params` give the params and distributions of a
config sampled elsewhere (a tuner's trial mirrored into the study), exactly as
:func:`suggest_config` would have recorded them. This module imports Optuna only inside
functions.
"""

from __future__ import annotations

from typing import Any, Mapping

from hpo32.search.space import Categorical, Fixed, Float, Int, Param, SearchSpace

__all__ = ["optuna_distribution", "optuna_params", "suggest_config"]


def suggest_config(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """Samples one config of ``space`` through an Optuna trial's ``suggest_*`` calls.

    Args:
        trial: an ``optuna.trial.Trial`` (or ``FixedTrial``).
        space: the one search space.

    Returns:
        Plain values of the active parameters, under the space's own names.
    """

    def suggest(param: Param, _values: Mapping[str, Any]) -> Any:
        if isinstance(param, Int):
            return trial.suggest_int(
                param.name, param.low, param.high, step=param.step, log=param.log
            )
        if isinstance(param, Float):
            return trial.suggest_float(
                param.name, param.low, param.high, step=param.step, log=param.log
            )
        if isinstance(param, Categorical):
            return trial.suggest_categorical(param.name, list(param.choices))
        raise TypeError(f"unsupported parameter {param!r}")

    return space.sample(suggest)


def optuna_distribution(param: Param) -> Any:
    """The Optuna distribution the Optuna engine's ``suggest_*`` call creates for ``param``.

    Raises:
        TypeError: ``param`` is fixed (fixed parameters are recorded in the config only).
    """
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(param, Int):
        return IntDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, Float):
        return FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, Categorical):
        return CategoricalDistribution(list(param.choices))
    raise TypeError(f"parameter {param.name!r} has no Optuna distribution")


def _snap(param: Float, value: float) -> float:
    """Clamps a float to its range and onto its step grid (undoes float rounding only)."""
    value = min(max(float(value), param.low), param.high)
    if param.step:
        k = round((value - param.low) / param.step)
        value = min(param.low + k * param.step, param.high)
    return value


def optuna_params(
    space: SearchSpace, config: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Optuna params and distributions of a config, as the Optuna engine records them.

    Fixed parameters are left out (the Optuna engine never suggests them; the config records
    them). Float values are clamped onto their range and step grid, which only removes the
    rounding error of a tuner's ``min + k * step`` arithmetic.

    Returns:
        ``(params, distributions)`` keyed by the space's own names.
    """
    params: dict[str, Any] = {}
    dists: dict[str, Any] = {}
    for name, value in config.items():
        param = space[name]
        if isinstance(param, Fixed):
            continue
        dists[name] = optuna_distribution(param)
        params[name] = _snap(param, value) if isinstance(param, Float) else value
    return params, dists
