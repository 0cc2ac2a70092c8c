"""The Optuna engine: the space as ``trial.suggest_*`` calls, samplers, pruners, the runner."""

from __future__ import annotations

import time
import warnings
from typing import Any, Mapping

from search.backends.base import SearchContext, TrialFailed, save_model
from search.space import Categorical, Float, Int, Param, SearchSpace

__all__ = ["PRUNERS", "SAMPLERS", "make_pruner", "make_sampler", "run_optuna", "suggest_config"]

SAMPLERS = ("tpe", "random", "cmaes", "gp", "grid")
PRUNERS = ("median", "hyperband", "none")


def suggest_config(trial, space: SearchSpace) -> dict[str, Any]:
    """Samples one config of ``space`` through an Optuna trial's ``suggest_*`` calls.

    Args:
        trial: an ``optuna.trial.Trial`` (or ``FixedTrial``).
        space: the one search space.

    Returns:
        Plain values of the active parameters, under the space's own names.
    """

    def suggest(param: Param, _values: Mapping[str, Any]) -> Any:
        if isinstance(param, Int):
            return trial.suggest_int(param.name, param.low, param.high, step=param.step,
                                     log=param.log)
        if isinstance(param, Float):
            return trial.suggest_float(param.name, param.low, param.high, step=param.step,
                                       log=param.log)
        if isinstance(param, Categorical):
            return trial.suggest_categorical(param.name, list(param.choices))
        raise TypeError(f"unsupported parameter {param!r}")

    return space.sample(suggest)


def grid_of(space: SearchSpace) -> dict[str, list[Any]]:
    """The grid for ``GridSampler``: categorical choices and every int; floats need a step."""
    import numpy as np

    grid: dict[str, list[Any]] = {}
    for p in space.params:
        if isinstance(p, Categorical):
            grid[p.name] = list(p.choices)
        elif isinstance(p, Int):
            grid[p.name] = list(range(p.low, p.high + 1, p.step))
        elif isinstance(p, Float):
            if p.step is None:
                raise ValueError(
                    f"the grid sampler needs a step on float parameter '{p.name}'; "
                    "give it a step or fix it in the spec."
                )
            grid[p.name] = [float(v) for v in np.arange(p.low, p.high + p.step / 2, p.step)]
    return grid


def make_sampler(name: str, seed: int, space: SearchSpace):
    """Returns the Optuna sampler called ``name`` (one of :data:`SAMPLERS`).

    Raises:
        ValueError: unknown name, or its optional dependency is missing.
    """
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                          n_startup_trials=5, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        try:
            import scipy  # noqa: F401
            import torch  # noqa: F401
        except ImportError:
            raise ValueError(
                "the gp sampler needs torch and scipy; install them with "
                "pip install 'hpo32[gp]'."
            ) from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.GPSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(grid_of(space), seed=seed)
    raise ValueError(f"unknown sampler '{name}'; use one of {', '.join(SAMPLERS)}.")


def make_pruner(name: str, epochs: int):
    """Returns the Optuna pruner called ``name`` (one of :data:`PRUNERS`); epochs are the
    resource for hyperband.

    Raises:
        ValueError: unknown name.
    """
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1),
                                              reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner '{name}'; use one of {', '.join(PRUNERS)}.")


def finished_count(study) -> int:
    """Trials of the study that are complete or pruned (what ``n_trials`` counts)."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _best_value(study) -> float | None:
    from optuna.trial import TrialState

    values = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    return max(values) if values else None


def make_objective(ctx: SearchContext, engine_name: str = "optuna"):
    """The objective every Optuna trial runs: sample, train under budgets, record, save best."""
    import optuna

    from search.models import InvalidConfig
    from search.training import train_config

    def objective(trial: optuna.Trial) -> float:
        config = suggest_config(trial, ctx.space)
        trial.set_user_attr("engine", engine_name)
        trial.set_user_attr("dataset", ctx.dataset)
        trial.set_user_attr("epochs", ctx.epochs)
        trial.set_user_attr("config", config)
        ctx.on_event({"kind": "trial_start", "number": trial.number, "config": config})

        def report(epoch: int, acc: float) -> bool:
            trial.report(acc, epoch + 1)
            ctx.on_event({"kind": "epoch", "number": trial.number, "epoch": epoch + 1,
                          "epochs": ctx.epochs, "val_accuracy": acc})
            return trial.should_prune()

        t0 = time.perf_counter()
        try:
            result = train_config(config, ctx.splits, epochs=ctx.epochs,
                                  trial_deadline=ctx.trial_deadline(),
                                  search_deadline=ctx.search_deadline, report=report,
                                  seed=ctx.seed + trial.number)
        except InvalidConfig as exc:
            trial.set_user_attr("fail_reason", str(exc))
            raise
        except KeyboardInterrupt:
            # Recorded as FAIL by Optuna; its params run again first on resume.
            trial.set_user_attr("stopped_by", "interrupt")
            trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            raise
        for key, value in result.attrs().items():
            trial.set_user_attr(key, value)
        try:
            if result.value is None:
                trial.set_user_attr("fail_reason", f"stopped by the {result.stopped_by} "
                                    "before the first epoch ended")
                raise TrialFailed(f"trial {trial.number} stopped before its first epoch")
            if result.stopped_by == "pruned":
                raise optuna.TrialPruned(f"pruned at epoch {len(result.val_accuracy)}")
            best = _best_value(trial.study)
            if best is None or result.value > best:
                t_save = time.perf_counter()
                trial.set_user_attr("model_path", save_model(result.model, ctx, trial.number))
                trial.set_user_attr("save_seconds", round(time.perf_counter() - t_save, 3))
            trial.set_user_attr("trial_seconds", round(time.perf_counter() - t0, 3))
            return result.value
        finally:
            ctx.on_event({"kind": "trial_end", "number": trial.number, "value": result.value,
                          "stopped_by": result.stopped_by})
            result.release()

    return objective


def run_optuna(study, ctx: SearchContext, on_trial_done=None) -> str:
    """Runs trials of ``study`` until the budget, the trial count, or an interrupt.

    Each trial goes through ``study.optimize`` one at a time, so Optuna's heartbeat and its
    sweep of stale trials (a killed worker's RUNNING trial becomes FAIL and is retried) work
    exactly as in Optuna's own distributed mode.

    Args:
        study: an ``optuna.Study`` on an RDB storage, direction maximize.
        ctx: the search context.
        on_trial_done: called with no arguments after each trial (session bookkeeping).

    Returns:
        Why the run ended: ``"budget"`` or ``"n_trials"``. A KeyboardInterrupt propagates after
        the interrupted trial is recorded.
    """
    from search.models import InvalidConfig

    objective = make_objective(ctx)
    while True:
        left = ctx.time_left()
        if left is not None and left <= 0:
            return "budget"
        if ctx.n_trials is not None and finished_count(study) >= ctx.n_trials:
            return "n_trials"
        study.optimize(objective, n_trials=1, catch=(InvalidConfig, TrialFailed),
                       gc_after_trial=True)
        if on_trial_done is not None:
            on_trial_done()
