"""The KerasTuner engine: the one space as ``hp.*`` calls, a HyperModel over it, the runner.

:func:`hp_config` is the adapter of the one space to KerasTuner; :func:`run_keras_tuner` drives
a KerasTuner oracle (random, bayesian, hyperband) over it, trains every config with hpo32's own
training routine under hpo32's budgets, and mirrors each finished trial into the Optuna study
(see :mod:`hpo32.search.backends.mirror`).

This module imports ``keras_tuner`` only inside functions, so the adapter can be used on any
``HyperParameters``-like object.
"""

from __future__ import annotations

import contextlib
import functools
import io
from typing import Any

from hpo32.search.backends.base import SearchContext
from hpo32.search.backends.mirror import (
    ProjectBusy,
    ProjectMissing,
    require_sklearn,
    run_search,
    trial_runner,
    tuner_mixin,
)
from hpo32.search.space import Categorical, Fixed, Float, Int, Param, SearchSpace

__all__ = [
    "ORACLES",
    "PROJECT_NAME",
    "ProjectBusy",
    "ProjectMissing",
    "declare_space",
    "hp_config",
    "make_hypermodel",
    "run_keras_tuner",
]

ORACLES = ("random", "bayesian", "hyperband")
#: The KerasTuner project folder, under the study's artifact folder.
PROJECT_NAME = "keras_tuner"


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


def _suggest(hp, space: SearchSpace, param: Param) -> Any:
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


def declare_space(hp, space: SearchSpace) -> None:
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


@functools.cache
def _hypermodel_class():
    import keras_tuner as kt

    class SpaceHyperModel(kt.HyperModel):
        """The one space as a KerasTuner HyperModel: ``build(hp)`` gives hpo32's network."""

        def __init__(
            self, space: SearchSpace, input_shape: tuple[int, ...], num_classes: int
        ) -> None:
            super().__init__(name="hpo32_space")
            self.space = space
            self.input_shape = tuple(input_shape)
            self.num_classes = int(num_classes)

        def declare_hyperparameters(self, hp) -> None:
            declare_space(hp, self.space)

        def build(self, hp):
            from hpo32.search.models import build_model, compile_model

            declare_space(hp, self.space)
            config = hp_config(hp, self.space)
            model = build_model(config, self.input_shape, self.num_classes)
            compile_model(model, config)
            return model

    return SpaceHyperModel


def make_hypermodel(space: SearchSpace, input_shape: tuple[int, ...], num_classes: int):
    """A ``keras_tuner.HyperModel`` whose ``build(hp)`` builds and compiles the network of
    :func:`hpo32.search.models.build_model` for the config :func:`hp_config` reads from ``hp``.

    Args:
        space: the one search space.
        input_shape: e.g. ``(32, 32, 3)``.
        num_classes: size of the softmax output.
    """
    return _hypermodel_class()(space, input_shape, num_classes)


@functools.cache
def _tuner_class(oracle: str):
    import keras_tuner as kt

    base = {
        "random": kt.RandomSearch,
        "bayesian": kt.BayesianOptimization,
        "hyperband": kt.Hyperband,
    }[oracle]

    class Hpo32KerasTuner(tuner_mixin(), base):
        """A KerasTuner tuner that trains with hpo32's routine and mirrors every trial."""

        def _populate_initial_space(self):
            # Declare the whole space once; KerasTuner would otherwise build several models
            # to discover conditional parameters (and fail on a config that cannot build).
            hp = self.oracle.get_space()
            self.hypermodel.declare_hyperparameters(hp)
            self.oracle.update_space(hp)

    Hpo32KerasTuner.__name__ = f"Hpo32{base.__name__}"
    return Hpo32KerasTuner


def _make_tuner(oracle: str, ctx: SearchContext, overwrite: bool):
    import keras_tuner as kt

    splits = ctx.splits
    kwargs: dict[str, Any] = {
        "hypermodel": make_hypermodel(ctx.space, splits.input_shape, splits.num_classes),
        "objective": kt.Objective("val_accuracy", direction="max"),
        # KerasTuner reads seed 0 as "pick one at random".
        "seed": ctx.seed + 1,
        "directory": str(ctx.artifact_dir),
        "project_name": PROJECT_NAME,
        "overwrite": overwrite,
    }
    if oracle == "hyperband":
        # hpo32's budget and trial count end the search, not Hyperband's iteration count.
        kwargs.update(max_epochs=ctx.epochs, factor=3, hyperband_iterations=None)
    else:
        # No KerasTuner trial limit: it would count the oracle's own trials (failed ones
        # included) and stop a resumed search; the study's count decides, see TrialMirror.
        kwargs["max_trials"] = None
    with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..."
        tuner = _tuner_class(oracle)(**kwargs)
    # A config that cannot be built fails its trial, as with Optuna; it never ends the search.
    tuner.oracle.max_consecutive_failed_trials = None
    return tuner


def run_keras_tuner(study, ctx: SearchContext, oracle: str, on_trial_done=None) -> str:
    """Runs a KerasTuner search over ``ctx.space`` until the budget or the trial count.

    Every trial trains its config with :func:`hpo32.search.training.train_config` under
    ``ctx``'s trial and search deadlines, exactly like the Optuna engine, and is mirrored
    into ``study`` as an Optuna trial (engine ``keras-tuner:<oracle>``, the tuner's trial id
    in the user attribute ``kt_trial_id``). The KerasTuner project lives in
    ``ctx.artifact_dir / "keras_tuner"``; a later call reloads it and continues.

    Budgets hold as for the Optuna engine: before the oracle creates each trial the search
    deadline and ``ctx.n_trials`` (finished trials of the study, across resumes) are checked,
    so no trial starts after the budget; a running trial is cut between batches at the
    search or trial deadline and recorded with ``stopped_by``. A Hyperband rung trains from
    scratch for its epochs; one below the full fidelity is recorded as PRUNED, so only
    full-fidelity trials compete for the study's best model.

    Args:
        study: an ``optuna.Study`` on an RDB storage, direction maximize.
        ctx: the search context.
        oracle: ``"random"``, ``"bayesian"`` or ``"hyperband"``.
        on_trial_done: called with no arguments after each trial (session bookkeeping).

    Returns:
        Why the run ended: ``"budget"``, ``"n_trials"``, or ``"exhausted"`` when the oracle
        has no further trial to propose. A KeyboardInterrupt propagates after the
        interrupted trial is recorded (as FAIL); the next run retries it.

    Raises:
        ValueError: unknown oracle, or scikit-learn missing for the bayesian oracle.
        ProjectMissing: the study holds KerasTuner trials but the project folder is gone.
        ProjectBusy: another process is running this study's KerasTuner search.
    """
    if oracle not in ORACLES:
        raise ValueError(f"unknown KerasTuner oracle '{oracle}'; use one of {', '.join(ORACLES)}.")
    if oracle == "bayesian":
        require_sklearn("keras-tuner:bayesian")
    run_trial = trial_runner(ctx, hp_config)
    return run_search(
        study,
        ctx,
        f"keras-tuner:{oracle}",
        project=PROJECT_NAME,
        library="KerasTuner",
        make_tuner=lambda overwrite: _make_tuner(oracle, ctx, overwrite),
        run_trial=run_trial,
        search=lambda tuner: tuner.search(verbose=0),
        on_trial_done=on_trial_done,
    )
