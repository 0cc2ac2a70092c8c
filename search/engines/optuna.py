"""The Optuna engine: the space as ``trial.suggest_*`` calls, samplers, pruners, the runner."""

from __future__ import annotations

import os
import time
import warnings
from typing import Any, Mapping

from hpo32.search import faults, signals
from hpo32.search.backends.base import (
    SearchContext,
    TrialFailed,
    best_value,
    save_model,
    worker_id,
)
from hpo32.search.space import Categorical, Fixed, Float, Int, Param, SearchSpace

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "enqueue_configs",
    "make_pruner",
    "make_sampler",
    "run_optuna",
    "suggest_config",
]

SAMPLERS = ("tpe", "random", "cmaes", "gp", "grid")
PRUNERS = ("median", "hyperband", "asha", "none")


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


def enqueue_configs(
    study,
    space: SearchSpace,
    configs: list[Mapping[str, Any]],
    user_attrs: list[Mapping[str, Any]] | None = None,
) -> None:
    """Queues ``configs`` (complete configs of ``space``) as the study's next trials, in
    order, each with its ``user_attrs`` if given; a config the study already has queued or
    run is not queued again."""
    for k, config in enumerate(configs):
        params = {n: v for n, v in config.items() if not isinstance(space[n], Fixed)}
        attrs = dict(user_attrs[k]) if user_attrs else None
        study.enqueue_trial(params, user_attrs=attrs or None, skip_if_exists=True)


def best_configs(storage, name: str, top: int) -> list[tuple[int, dict[str, Any]]]:
    """The configs of study ``name``'s best ``top`` complete trials, best first, as
    (trial number, config). Raises KeyError when there is no such study."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=name, storage=storage)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    done.sort(key=lambda t: t.value, reverse=True)
    return [(t.number, dict(t.user_attrs.get("config") or t.params)) for t in done[:top]]


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
        with warnings.catch_warnings():  # multivariate/group/constant_liar are "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, n_startup_trials=5, constant_liar=True
            )
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
                "the gp sampler needs torch and scipy; install them with pip install 'hpo32[gp]'."
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
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max(epochs, 1), reduction_factor=3
        )
    if name == "asha":  # one bracket of hyperband: every trial judged at epochs 1, 3, 9...
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner '{name}'; use one of {', '.join(PRUNERS)}.")


def trial_counts(study) -> dict[str, int]:
    """Trials of the study by state name (``COMPLETE``, ``PRUNED``, ``RUNNING``, ...)."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def finished_count(study) -> int:
    """Trials of the study that are complete or pruned (what ``n_trials`` counts)."""
    counts = trial_counts(study)
    return counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)


def train_trial(trial, ctx: SearchContext, engine_name: str = "optuna") -> float:
    """Samples a config through ``trial``, trains it under the budgets and records it.

    Returns:
        The validation accuracy of the last epoch.

    Raises:
        optuna.TrialPruned: the pruner stopped it.
        hpo32.search.models.InvalidConfig, TrialFailed: it cannot produce a value (recorded why).
        KeyboardInterrupt: Ctrl-C or SIGTERM; its params are queued to run again first.
    """
    import optuna

    from hpo32.search.models import InvalidConfig

    config = suggest_config(trial, ctx.space)
    trial.set_user_attr("engine", engine_name)
    trial.set_user_attr("dataset", ctx.dataset)
    trial.set_user_attr("epochs", ctx.epochs)
    trial.set_user_attr("config", config)
    trial.set_user_attr("worker", worker_id())
    if os.environ.get("CUDA_VISIBLE_DEVICES"):  # the GPU this worker was given (--gpus)
        trial.set_user_attr("gpu", os.environ["CUDA_VISIBLE_DEVICES"])
    ctx.on_event({"kind": "trial_start", "number": trial.number, "config": config})

    def report(epoch: int, acc: float) -> bool:
        trial.report(acc, epoch + 1)
        ctx.on_event(
            {
                "kind": "epoch",
                "number": trial.number,
                "epoch": epoch + 1,
                "epochs": ctx.epochs,
                "val_accuracy": acc,
            }
        )
        # After the last epoch nothing is left to save: the trial completes whatever its
        # rung says (successive halving's rung at epoch 9 would otherwise prune it there).
        return epoch + 1 < ctx.epochs and trial.should_prune()

    t0 = time.perf_counter()
    try:
        result = ctx.train(config, report=report, seed=ctx.seed + trial.number)
    except InvalidConfig as exc:
        trial.set_user_attr("fail_reason", str(exc))
        ctx.on_event(
            {
                "kind": "trial_end",
                "number": trial.number,
                "value": None,
                "stopped_by": "invalid config",
            }
        )
        raise
    except KeyboardInterrupt:
        trial.set_user_attr("stopped_by", "interrupt")
        _queue_retry(trial)
        raise
    for key, value in result.attrs().items():
        trial.set_user_attr(key, value)
    try:
        if result.value is None:
            trial.set_user_attr(
                "fail_reason", f"stopped by the {result.stopped_by} before the first epoch ended"
            )
            if result.stopped_by == "search_budget":  # the config is still untried: resume
                _queue_retry(trial)
            raise TrialFailed(f"trial {trial.number} stopped before its first epoch")
        if result.stopped_by == "pruned":
            raise optuna.TrialPruned(f"pruned at epoch {len(result.val_accuracy)}")
        best = best_value(trial.study)
        if best is None or result.value > best:
            t_save = time.perf_counter()
            path = save_model(result.model, ctx, f"trial-{trial.number}")
            trial.set_user_attr("model_path", path)
            trial.set_user_attr("save_seconds", round(time.perf_counter() - t_save, 3))
        trial.set_user_attr("trial_seconds", round(time.perf_counter() - t0, 3))
        return result.value
    finally:
        ctx.on_event(
            {
                "kind": "trial_end",
                "number": trial.number,
                "value": result.value,
                "stopped_by": result.stopped_by,
            }
        )
        result.release()


def _queue_retry(trial) -> None:
    """Queues ``trial``'s params to run first in the next session (it measured nothing)."""
    trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


class _TrialHeartbeat:
    """Beats for one running trial (Optuna's RDB heartbeat), so a killed worker's trial
    becomes FAIL after the grace period and its params are retried."""

    def __init__(self, storage, trial_id: int) -> None:
        import threading

        self.storage, self.trial_id = storage, trial_id
        self.interval = (
            storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="hpo32-trial-beat")

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a missed beat is retried at the next interval
                pass

    def __enter__(self):
        if self.interval:
            self.storage.record_heartbeat(self.trial_id)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


def _next_trial(study, ctx: SearchContext):
    """Under the study lock: fail stale trials, then ask for a trial if one is still owed.

    Returns:
        ``("trial", trial)``, ``("done", None)`` when ``n_trials`` finished trials exist, or
        ``("wait", None)`` when the owed trials are all running elsewhere (one may still fail
        and need a retry).
    """
    import warnings

    import optuna

    if getattr(study._storage, "get_heartbeat_interval", lambda: None)():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    if ctx.n_trials is not None:
        counts = trial_counts(study)
        finished = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
        if finished >= ctx.n_trials:
            return "done", None
        if not counts.get("WAITING") and finished + counts.get("RUNNING", 0) >= ctx.n_trials:
            return "wait", None
    with warnings.catch_warnings():  # hpo32 beats the trial's heartbeat itself (below)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
        return "trial", study.ask()


def run_optuna(study, ctx: SearchContext, on_trial_done=None, lock=None) -> str:
    """Runs trials of ``study`` until the budget, the trial count, or an interrupt.

    Args:
        study: an ``optuna.Study`` on an RDB storage, direction maximize.
        ctx: the search context.
        on_trial_done: called with no arguments after each trial (session bookkeeping).
        lock: a context-manager factory serializing "count trials, ask for one" across all
            workers of the study (see :func:`hpo32.storage.locks.study_lock`), so ``n_trials`` is
            met exactly; None for a single worker.

    Returns:
        Why the run ended: ``"budget"`` or ``"n_trials"``. A KeyboardInterrupt propagates after
        the interrupted trial is recorded as FAIL (its params queued to run again).
    """
    import contextlib

    import optuna
    from optuna.trial import TrialState

    from hpo32.search.models import InvalidConfig

    lock = lock or contextlib.nullcontext
    while True:
        signals.check()
        ctx.check_failures()
        if ctx.budget_spent():
            return "budget"
        left = ctx.time_left()
        with lock():
            what, trial = _next_trial(study, ctx)
        if what == "done":
            return "n_trials"
        if what == "wait":
            time.sleep(min(2.0, left) if left is not None else 2.0)
            continue
        with _TrialHeartbeat(study._storage, trial._trial_id):
            try:
                value = train_trial(trial, ctx)
                faults.point("before_tell")
            except optuna.TrialPruned:
                study.tell(trial, state=TrialState.PRUNED)
            except (InvalidConfig, TrialFailed):
                study.tell(trial, state=TrialState.FAIL)
            except BaseException:
                study.tell(trial, state=TrialState.FAIL)
                raise
            else:
                study.tell(trial, value)
        if on_trial_done is not None:
            on_trial_done()
