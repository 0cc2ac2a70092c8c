"""The Optuna engine: samplers, pruners, warm start, and the loop that asks for trials.

Trials are Optuna's own (``study.ask()``), recorded as they run by
:func:`hpo32.search.engines.record.record_trial` (:class:`~hpo32.search.engines.record.AskedTrial`);
the space's ``suggest_*`` calls are :mod:`hpo32.search.engines.optuna_space`. Several workers
may run one study: a lock serializes "count the trials, ask for one" so ``n_trials`` is met
exactly, and each running trial beats Optuna's heartbeat so a killed worker's trial fails and
is retried. This module imports Optuna only inside functions.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from typing import Any, Callable, Mapping

from hpo32.search import signals
from hpo32.search.engines.base import LockFn, SearchContext, trial_counts
from hpo32.search.engines.optuna_space import suggest_config
from hpo32.search.engines.record import AskedTrial, record_trial
from hpo32.search.space import Categorical, Fixed, Float, Int, SearchSpace

__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "best_configs",
    "enqueue_configs",
    "grid_of",
    "make_pruner",
    "make_sampler",
    "run",
    "run_optuna",
]

SAMPLERS = ("tpe", "random", "cmaes", "gp", "grid")
PRUNERS = ("median", "hyperband", "asha", "none")


def enqueue_configs(
    study: Any,
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


def best_configs(storage: Any, name: str, top: int) -> list[tuple[int, dict[str, Any]]]:
    """The configs of study ``name``'s best ``top`` complete trials, best first, as
    (trial number, config). Raises KeyError when there is no such study."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=name, storage=storage)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    done.sort(key=lambda t: float(t.value or 0.0), reverse=True)  # complete: never None
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


def make_sampler(name: str, seed: int, space: SearchSpace) -> Any:
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


def make_pruner(name: str, epochs: int) -> Any:
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


class _TrialHeartbeat:
    """Beats for one running trial (Optuna's RDB heartbeat), so a killed worker's trial
    becomes FAIL after the grace period and its params are retried."""

    def __init__(self, storage: Any, trial_id: int) -> None:
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

    def __enter__(self) -> _TrialHeartbeat:
        if self.interval:
            self.storage.record_heartbeat(self.trial_id)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


def _next_trial(study: Any, ctx: SearchContext) -> tuple[str, Any]:
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


def run_optuna(
    study: Any,
    ctx: SearchContext,
    on_trial_done: Callable[[], None] | None = None,
    lock: LockFn | None = None,
) -> str:
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
    from optuna.trial import TrialState

    lock = lock or contextlib.nullcontext

    def train(config: Mapping[str, Any], report: Callable[[int, float], bool], seed: int) -> Any:
        return ctx.train(config, report=report, seed=seed)

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
            asked = AskedTrial(trial)
            try:
                config = suggest_config(trial, ctx.space)
                record_trial(asked, ctx, config, train, engine="optuna", epochs=ctx.epochs)
            finally:
                if not asked.finished:  # failed outside the routine: an asked trial is told
                    study.tell(trial, state=TrialState.FAIL)
        if on_trial_done is not None:
            on_trial_done()


def run(
    study: Any,
    ctx: SearchContext,
    variant: str = "",
    on_trial_done: Callable[[], None] | None = None,
    lock: LockFn | None = None,
) -> str:
    """The registry's entry (:meth:`hpo32.search.engines.registry.Engine.run`): the Optuna
    engine has no variants (the sampler and pruner are the study's)."""
    if variant:
        raise ValueError(f"the optuna engine has no variants, got '{variant}'.")
    return run_optuna(study, ctx, on_trial_done=on_trial_done, lock=lock)
