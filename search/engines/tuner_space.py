"""The one space in KerasTuner's terms: ``hp.Int/Float/Choice`` calls in conditional scopes.

:func:`hp_config` reads a config from a ``keras_tuner.HyperParameters`` (asking only for the
parameters active under the values so far); :func:`declare_space` registers the whole space
first, so an oracle knows every parameter from the first trial on. Both tuner engines use
them (KerasTuner directly, AutoKeras inside its space block's scope). This module imports
no ML framework: it works on any ``HyperParameters``-like object.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from hpo32.search.space import Categorical, Fixed, Float, Int, Param, SearchSpace

__all__ = ["declare_space", "hp_config"]


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
def _scopes(hp: Any, space: SearchSpace, param: Param) -> Iterator[None]:
    """Enters KerasTuner conditional scopes for ``param``'s chain of conditions."""
    chain: list[tuple[Param, str]] = []
    p = param
    while p.condition is not None:
        chain.append((p, p.condition.parent))
        p = space[p.condition.parent]
    with contextlib.ExitStack() as stack:
        for child, parent_name in reversed(chain):
            parent = space[parent_name]
            if isinstance(parent, Fixed):
                continue  # fixed parents are not KerasTuner hyperparameters
            stack.enter_context(hp.conditional_scope(parent.name, _parent_values(space, child)))
        yield


def _suggest(hp: Any, space: SearchSpace, param: Param) -> Any:
    """Asks ``hp`` for one parameter inside its conditional scopes (registering it)."""
    with _scopes(hp, space, param):
        if isinstance(param, Int):
            return hp.Int(
                param.name,
                min_value=param.low,
                max_value=param.high,
                step=None if param.log else param.step,
                sampling="log" if param.log else "linear",
            )
        if isinstance(param, Float):
            return hp.Float(
                param.name,
                min_value=param.low,
                max_value=param.high,
                step=param.step,
                sampling="log" if param.log else "linear",
            )
        if isinstance(param, Categorical):
            return hp.Choice(param.name, list(param.choices), ordered=False)
    raise TypeError(f"unsupported parameter {param!r}")


def hp_config(hp: Any, space: SearchSpace) -> dict[str, Any]:
    """Samples one config of ``space`` through KerasTuner ``hp.Int/Float/Choice`` calls.

    Conditional parameters are declared inside ``hp.conditional_scope`` so KerasTuner's
    oracles know when they are active; inactive ones are not asked for.

    Args:
        hp: a ``keras_tuner.HyperParameters``.
        space: the one search space.

    Returns:
        Plain values of the active parameters, under the space's own names.
    """
    return space.sample(lambda param, _values: _suggest(hp, space, param))


def _can_be_active(space: SearchSpace, param: Param) -> bool:
    """Whether some values of its ancestors make ``param`` active."""
    while param.condition is not None:
        parent = space[param.condition.parent]
        if isinstance(parent, Fixed):
            if not param.condition.holds(parent.value):
                return False
        elif not _parent_values(space, param):
            return False
        param = parent
    return True


def declare_space(hp: Any, space: SearchSpace) -> None:
    """Registers every parameter of ``space`` in ``hp``, active or not.

    :func:`hp_config` asks only for the parameters active under the current values, so an
    oracle would learn of e.g. ``filters_3`` only after a trial with 3 blocks had run with
    its default. Declaring all of them first (each in its conditional scopes) lets the oracle
    sample every parameter from the first trial on. Parameters that no value of their
    ancestors can activate are left out.

    Args:
        hp: a ``keras_tuner.HyperParameters``.
        space: the one search space.
    """
    for param in space.params:
        if not isinstance(param, Fixed) and _can_be_active(space, param):
            _suggest(hp, space, param)
