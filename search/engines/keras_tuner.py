"""The KerasTuner engine: a HyperModel over the one space, KerasTuner's oracles, the runner.

:func:`run_keras_tuner` drives a KerasTuner oracle (random, bayesian, hyperband) over the space
(translated by :mod:`hpo32.search.engines.tuner_space`), trains every config with hpo32's own
training routine under hpo32's budgets, and mirrors each finished trial into the Optuna study
(see :mod:`hpo32.search.engines.tuner`).

This module imports ``keras_tuner`` only inside functions.
"""

from __future__ import annotations

import contextlib
import functools
import io
from typing import Any, Callable

from hpo32.search.engines.base import LockFn, SearchContext
from hpo32.search.engines.registry import get
from hpo32.search.engines.tuner import run_search, trial_runner, tuner_mixin
from hpo32.search.engines.tuner_space import declare_space, hp_config
from hpo32.search.space import SearchSpace

__all__ = [
    "ORACLES",
    "PROJECT_NAME",
    "make_hypermodel",
    "run",
    "run_keras_tuner",
]

#: KerasTuner's oracles this engine runs (the registry's variants).
ORACLES = get("keras-tuner").variants
#: The KerasTuner project folder, under the study's artifact folder.
PROJECT_NAME = "keras_tuner"


@functools.cache
def _hypermodel_class() -> type:
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

        def declare_hyperparameters(self, hp: Any) -> None:
            declare_space(hp, self.space)

        def build(self, hp: Any) -> Any:
            from hpo32.search.models import build_model, compile_model

            declare_space(hp, self.space)
            config = hp_config(hp, self.space)
            model = build_model(config, self.input_shape, self.num_classes)
            compile_model(model, config)
            return model

    return SpaceHyperModel


def make_hypermodel(space: SearchSpace, input_shape: tuple[int, ...], num_classes: int) -> Any:
    """A ``keras_tuner.HyperModel`` whose ``build(hp)`` builds and compiles the network of
    :func:`hpo32.search.models.build_model` for the config :func:`hp_config` reads from ``hp``.

    Args:
        space: the one search space.
        input_shape: e.g. ``(32, 32, 3)``.
        num_classes: size of the softmax output.
    """
    return _hypermodel_class()(space, input_shape, num_classes)


@functools.cache
def _tuner_class(oracle: str) -> type:
    import keras_tuner as kt

    mixin: Any = tuner_mixin()
    base: Any = {
        "random": kt.RandomSearch,
        "bayesian": kt.BayesianOptimization,
        "hyperband": kt.Hyperband,
    }[oracle]

    class Hpo32KerasTuner(mixin, base):
        """A KerasTuner tuner that trains with hpo32's routine and mirrors every trial."""

        def _populate_initial_space(self) -> None:
            # Declare the whole space once; KerasTuner would otherwise build several models
            # to discover conditional parameters (and fail on a config that cannot build).
            hp = self.oracle.get_space()
            self.hypermodel.declare_hyperparameters(hp)
            self.oracle.update_space(hp)

    Hpo32KerasTuner.__name__ = f"Hpo32{base.__name__}"
    return Hpo32KerasTuner


def _make_tuner(oracle: str, ctx: SearchContext, overwrite: bool) -> Any:
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


def run_keras_tuner(
    study: Any,
    ctx: SearchContext,
    oracle: str,
    on_trial_done: Callable[[], None] | None = None,
) -> str:
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
        ValueError: unknown oracle.
        ProjectMissing: the study holds KerasTuner trials but the project folder is gone.
        ProjectBusy: another process is running this study's KerasTuner search.
    """
    if oracle not in ORACLES:
        raise ValueError(f"unknown KerasTuner oracle '{oracle}'; use one of {', '.join(ORACLES)}.")
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


def run(
    study: Any,
    ctx: SearchContext,
    variant: str = "",
    on_trial_done: Callable[[], None] | None = None,
    lock: LockFn | None = None,
) -> str:
    """The registry's entry (:meth:`hpo32.search.engines.registry.Engine.run`): the variant
    is the oracle; ``lock`` is not needed (the project lock admits one worker)."""
    return run_keras_tuner(study, ctx, variant, on_trial_done=on_trial_done)
