"""The KerasTuner engine: the one space as ``hp.*`` calls.

This module imports ``keras_tuner`` only inside functions, so the adapter can be used on any
``HyperParameters``-like object.
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping

from search.space import Categorical, Fixed, Float, Int, Param, SearchSpace

__all__ = ["hp_config"]


def _parent_values(space: SearchSpace, param: Param) -> list[Any]:
    """The parent's values for which ``param``'s condition holds (KerasTuner needs a list)."""
    cond = param.condition
    assert cond is not None
    parent = space[cond.parent]
    if isinstance(parent, Int):
        candidates: list[Any] = list(range(parent.low, parent.high + 1, parent.step))
    elif isinstance(parent, Categorical):
        candidates = list(parent.choices)
    elif isinstance(parent, Fixed):
        candidates = [parent.value]
    else:  # floats are refused by SearchSpace
        raise TypeError(f"cannot condition on {parent!r}")
    return [v for v in candidates if cond.holds(v)]


@contextlib.contextmanager
def _scopes(hp, space: SearchSpace, param: Param):
    """Enters KerasTuner conditional scopes for ``param``'s chain of conditions."""
    chain = []
    p = param
    while p.condition is not None:
        chain.append(p)
        p = space[p.condition.parent]
    with contextlib.ExitStack() as stack:
        for child in reversed(chain):
            parent = space[child.condition.parent]
            if isinstance(parent, Fixed):
                continue  # fixed parents are not KerasTuner hyperparameters
            stack.enter_context(hp.conditional_scope(parent.name, _parent_values(space, child)))
        yield


def hp_config(hp, space: SearchSpace) -> dict[str, Any]:
    """Samples one config of ``space`` through KerasTuner ``hp.Int/Float/Choice`` calls.

    Conditional parameters are declared inside ``hp.conditional_scope`` so KerasTuner's
    oracles know when they are active; inactive ones are not asked for.

    Args:
        hp: a ``keras_tuner.HyperParameters``.
        space: the one search space.

    Returns:
        Plain values of the active parameters, under the space's own names.
    """

    def suggest(param: Param, _values: Mapping[str, Any]) -> Any:
        with _scopes(hp, space, param):
            if isinstance(param, Int):
                return hp.Int(param.name, min_value=param.low, max_value=param.high,
                              step=None if param.log else param.step,
                              sampling="log" if param.log else "linear")
            if isinstance(param, Float):
                return hp.Float(param.name, min_value=param.low, max_value=param.high,
                                step=param.step, sampling="log" if param.log else "linear")
            if isinstance(param, Categorical):
                return hp.Choice(param.name, list(param.choices), ordered=False)
        raise TypeError(f"unsupported parameter {param!r}")

    return space.sample(suggest)
