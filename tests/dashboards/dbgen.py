"""Generated hpo32 databases for the dashboard tests and the dashboard benchmark.

Trials are synthetic but stored exactly as a search stores them: Optuna's schema (params of
the default space with their distributions, conditional ones absent when inactive, one
intermediate value per epoch, hpo32's user attributes) plus hpo32's own study, session and
result rows. Small studies go through Optuna's API (``study.add_trials``); large ones are
bulk-inserted with SQLAlchemy Core into the same tables (:func:`bulk_write_study`), which a
test checks against Optuna's own reading of them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import optuna
import sqlalchemy as sa
from optuna.distributions import (
    BaseDistribution,
    FloatDistribution,
    distribution_to_json,
)
from optuna.trial import FrozenTrial, TrialState

from hpo32.search.space import Float, Int, SearchSpace, default_space
from hpo32.storage import Records, make_engine, optuna_storage
from hpo32.storage.records import sessions_table

#: A study name a browser must show as text, never run.
HOSTILE_NAME = '<img src=x onerror="window.__xss=1">\'"&amp; <b>bold</b>'

_OPTIMIZER = {"adamax": 0.03, "adam": 0.02, "adamw": 0.025, "sgd": -0.05, "rmsprop": 0.0}
_ACTIVATION = {"relu": 0.0, "swish": 0.015, "elu": -0.01, "gelu": 0.01, "leaky_relu": 0.005}
_BASE = {"cifar10": 0.66, "imagenet32": 0.32}


def distribution_of(param) -> BaseDistribution | None:
    """The Optuna distribution ``suggest_config`` records for one space parameter (None for
    fixed parameters, which live in the config only)."""
    from hpo32.search.engines.optuna_space import optuna_distribution

    try:
        return optuna_distribution(param)
    except TypeError:
        return None


def sample_config(space: SearchSpace, rng: random.Random) -> dict[str, Any]:
    """A random config of ``space`` (active parameters only)."""

    def suggest(param, _values):
        if isinstance(param, Int):
            if param.log:
                return int(round(math.exp(rng.uniform(math.log(param.low), math.log(param.high)))))
            return rng.randrange(param.low, param.high + 1, param.step)
        if isinstance(param, Float):
            if param.log:
                return math.exp(rng.uniform(math.log(param.low), math.log(param.high)))
            return rng.uniform(param.low, param.high)
        return rng.choice(list(param.choices))

    return space.sample(suggest)


def synthetic_accuracy(config: dict[str, Any], dataset: str, rng: random.Random) -> float:
    """A plausible final validation accuracy: learning rate, optimizer, activation, depth
    and batch norm matter; ImageNet32 is harder; a little noise."""
    base = _BASE.get(dataset, 0.5)
    lr = config.get("learning_rate", 3e-3)
    acc = base - 0.07 * (math.log10(lr) + 2.5) ** 2
    acc += _OPTIMIZER.get(config.get("optimizer"), 0.0) + _ACTIVATION.get(
        config.get("activation"), 0.0
    )
    acc += 0.015 * min(config.get("conv_blocks", 2), 3) + (
        0.02 if config.get("batch_norm") else 0.0
    )
    acc += 0.01 if config.get("pooling") == "max" else 0.0
    if dataset == "imagenet32":
        acc = 0.55 * acc
    return min(0.97, max(0.02, acc + rng.gauss(0.0, 0.015)))


@dataclass
class StudyPlan:
    """What to generate for one study."""

    name: str
    n_trials: int
    dataset: str | None = "cifar10"
    engine: str | None = "optuna"
    epochs: int = 8
    seed: int = 0
    hpo32: bool = True  # hpo32's study/session/result rows (plain Optuna study when False)
    p_pruned: float = 0.15
    p_fail: float = 0.07
    running: int = 0  # the last N trials are still running
    only_failed: bool = False
    configs: Sequence[dict[str, Any]] = ()  # used first, in order (shared across studies)
    budget_seconds: float | None = -1.0  # -1: a quarter more than the trials took
    live_session: bool = False  # a session that is still going (the study shows as running)
    start: float | None = None  # first trial's start; default: so the last ends about now
    extra_params: bool = False  # a param outside the default space (plain Optuna studies)
    backend: str | None = None  # recorded in the spec and the study's attributes when set
    trials: list[FrozenTrial] = field(default_factory=list)


def synthetic_trials(plan: StudyPlan, space: SearchSpace | None = None) -> list[FrozenTrial]:
    """The trials of ``plan``: configs, states, per-epoch curves, user attrs and times."""
    space = space or default_space()
    dists = {p.name: distribution_of(p) for p in space.params}
    rng = random.Random(plan.seed)
    epoch_s = [rng.uniform(15.0, 45.0) for _ in range(plan.n_trials)]
    total = sum(e * plan.epochs + 5.0 for e in epoch_s)
    t = plan.start if plan.start is not None else time.time() - total - 60.0
    trials = []
    for k in range(plan.n_trials):
        config = dict(plan.configs[k]) if k < len(plan.configs) else sample_config(space, rng)
        final = synthetic_accuracy(config, plan.dataset or "cifar10", rng)
        tau = rng.uniform(1.0, 3.0)
        curve = [
            final * (1.0 - math.exp(-(e + 1) / tau)) / (1.0 - math.exp(-plan.epochs / tau))
            for e in range(plan.epochs)
        ]
        running = k >= plan.n_trials - plan.running
        roll = rng.random()
        if plan.only_failed or (not running and roll < plan.p_fail):
            state, done = TrialState.FAIL, rng.randrange(0, max(1, plan.epochs // 2))
        elif not running and roll < plan.p_fail + plan.p_pruned:
            state, done = TrialState.PRUNED, rng.randrange(1, max(2, plan.epochs))
        elif running:
            state, done = TrialState.RUNNING, rng.randrange(0, plan.epochs)
        else:
            state, done = TrialState.COMPLETE, plan.epochs
        curve = curve[:done]
        seconds = epoch_s[k] * done + 3.0
        start = t
        t += seconds + 2.0
        if running:
            start = time.time() - seconds
        params = {n: v for n, v in config.items() if dists.get(n) is not None}
        distributions = {n: dists[n] for n in params}
        if plan.extra_params:
            params["momentum"] = round(rng.uniform(0.0, 0.99), 3)
            distributions["momentum"] = FloatDistribution(0.0, 0.99)
            config = dict(config, momentum=params["momentum"])
        attrs: dict[str, Any] = {}
        if plan.hpo32:
            attrs = {
                "engine": plan.engine,
                "dataset": plan.dataset,
                "epochs": plan.epochs,
                "config": config,
                "epochs_completed": done,
                "train_seconds": round(seconds - 3.0, 2),
                "images_per_second": round(20000 / epoch_s[k], 1),
                "eval_seconds": 1.5,
                "peak_rss_mb": 1500.0 + k % 7,
                "stopped_by": {TrialState.PRUNED: "pruned", TrialState.FAIL: "trial_budget"}.get(
                    state
                ),
                "history": {
                    "val_accuracy": curve,
                    "accuracy": [a + 0.05 for a in curve],
                    "loss": [2.0 - a for a in curve],
                    "val_loss": [2.1 - a for a in curve],
                },
            }
            if state == TrialState.COMPLETE:
                attrs["model_path"] = f"{plan.name}/trial-{k}/model.keras"
            if state == TrialState.FAIL:
                attrs["fail_reason"] = "stopped by the trial budget before the first epoch"
        value = None
        if state == TrialState.COMPLETE:
            value = curve[-1]
        elif state == TrialState.PRUNED and curve:
            value = curve[-1]
        trials.append(
            FrozenTrial(
                number=k,
                state=state,
                value=value,
                datetime_start=dt.datetime.fromtimestamp(start),
                datetime_complete=None
                if state == TrialState.RUNNING
                else dt.datetime.fromtimestamp(start + seconds),
                params=params,
                distributions=distributions,
                user_attrs=attrs,
                system_attrs={},
                intermediate_values={e + 1: a for e, a in enumerate(curve)},
                trial_id=k,
            )
        )
    return trials


def _hpo32_rows(url: str, plan: StudyPlan, trials: list[FrozenTrial], space: SearchSpace) -> None:
    records = Records(make_engine(url))
    budget = plan.budget_seconds
    if budget is not None and budget < 0:
        budget = 3600.0
        if trials:
            first = trials[0].datetime_start.timestamp()
            last = max((t.datetime_complete or t.datetime_start).timestamp() for t in trials)
            budget = max(budget, round(1.25 * (last - first), -2))
    records.add_study(
        plan.name,
        plan.engine or "optuna",
        plan.dataset or "cifar10",
        {
            "dataset": plan.dataset,
            "engine": plan.engine,
            "epochs": plan.epochs,
            "space": {"base": "default"},
            "space_version": 2,  # sampled from today's space
            **({"backend": plan.backend} if plan.backend else {}),
        },
        budget,
    )
    if trials:
        first = trials[0].datetime_start.timestamp()
        last = max((t.datetime_complete or t.datetime_start).timestamp() for t in trials)
        mid = first + (last - first) / 2
        rows = [
            dict(
                study_name=plan.name,
                host="gen",
                pid=1,
                started_at=first - 5,
                last_seen=mid,
                ended_at=mid,
                exit_reason="interrupted",
                trials_run=len(trials) // 2,
            ),
            dict(
                study_name=plan.name,
                host="gen",
                pid=2,
                started_at=mid,
                last_seen=time.time() if plan.live_session else last + 1,
                ended_at=None if plan.live_session else last + 1,
                exit_reason=None if plan.live_session else "search_budget",
                trials_run=len(trials) - len(trials) // 2,
            ),
        ]
        with records.engine.begin() as con:
            con.execute(sessions_table.insert(), rows)
    best = max(
        (t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value, default=None
    )
    if best is not None:
        records.set_result(
            plan.name, best.number, best.value, best.value - 0.01, best.user_attrs.get("model_path")
        )


def write_study(url: str, plan: StudyPlan, space: SearchSpace | None = None) -> list[FrozenTrial]:
    """Creates the study of ``plan`` through Optuna's API (``add_trials``), plus hpo32's rows.

    Returns:
        The trials written.
    """
    space = space or default_space()
    trials = plan.trials or synthetic_trials(plan, space)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=plan.name, storage=optuna_storage(url), direction="maximize"
    )
    _set_study_attrs(study, plan)
    study.add_trials(trials)
    if plan.hpo32:
        _hpo32_rows(url, plan, trials, space)
    return trials


def _set_study_attrs(study: optuna.Study, plan: StudyPlan) -> None:
    """The user attributes hpo32 sets on a study it makes (none on a plain Optuna one)."""
    if plan.hpo32:
        study.set_user_attr("dataset", plan.dataset)
        study.set_user_attr("engine", plan.engine)
        if plan.backend:
            study.set_user_attr("backend", plan.backend)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def bulk_write_study(
    url: str, plan: StudyPlan, space: SearchSpace | None = None
) -> list[FrozenTrial]:
    """Like :func:`write_study`, but inserts the trials with SQLAlchemy Core in a few
    statements (10,000 trials in seconds, not minutes)."""
    space = space or default_space()
    trials = plan.trials or synthetic_trials(plan, space)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna_storage(url)
    study = optuna.create_study(study_name=plan.name, storage=storage, direction="maximize")
    _set_study_attrs(study, plan)
    study_id = study._study_id
    engine = make_engine(url)
    meta = sa.MetaData()
    names = (
        "trials",
        "trial_values",
        "trial_params",
        "trial_intermediate_values",
        "trial_user_attributes",
    )
    tables = {n: sa.Table(n, meta, autoload_with=engine) for n in names}
    dist_json: dict[int, str] = {}
    rows: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    with engine.begin() as con:
        first_id = (
            con.execute(sa.select(sa.func.max(tables["trials"].c.trial_id))).scalar() or 0
        ) + 1
        for k, t in enumerate(trials):
            tid = first_id + k
            rows["trials"].append(
                dict(
                    trial_id=tid,
                    number=t.number,
                    study_id=study_id,
                    state=t.state.name,
                    datetime_start=_utc(t.datetime_start),
                    datetime_complete=_utc(t.datetime_complete),
                )
            )
            if t.value is not None:
                rows["trial_values"].append(
                    dict(trial_id=tid, objective=0, value=t.value, value_type="FINITE")
                )
            for name, value in t.params.items():
                d = t.distributions[name]
                js = dist_json.setdefault(id(d), distribution_to_json(d))
                rows["trial_params"].append(
                    dict(
                        trial_id=tid,
                        param_name=name,
                        param_value=d.to_internal_repr(value),
                        distribution_json=js,
                    )
                )
            for step, value in t.intermediate_values.items():
                rows["trial_intermediate_values"].append(
                    dict(
                        trial_id=tid,
                        step=step,
                        intermediate_value=value,
                        intermediate_value_type="FINITE",
                    )
                )
            for key, value in t.user_attrs.items():
                rows["trial_user_attributes"].append(
                    dict(trial_id=tid, key=key, value_json=json.dumps(value))
                )
        for n in names:
            if rows[n]:
                con.execute(tables[n].insert(), rows[n])
    if plan.hpo32:
        _hpo32_rows(url, plan, trials, space)
    return trials


def build_fixture(url: str, bulk: bool = False) -> dict[str, StudyPlan]:
    """The standard test database: every case the dashboards must survive.

    * ``cifar-optuna`` / ``inet-optuna``: the same space on CIFAR-10 and ImageNet32, with 12
      configs evaluated on both; CIFAR-10 has 2 running trials and a live session.
    * ``cifar-kt`` / ``cifar-ak``: KerasTuner and AutoKeras studies on CIFAR-10.
    * ``empty``: no trials; ``all-failed``: only failed trials.
    * :data:`HOSTILE_NAME`: a plain Optuna study (no hpo32 rows) with an extra parameter.

    Returns:
        The plans by study name.
    """
    space = default_space()
    shared = [sample_config(space, random.Random(1000 + i)) for i in range(12)]
    plans = [
        StudyPlan(
            "cifar-optuna",
            60,
            "cifar10",
            "optuna",
            seed=1,
            configs=shared,
            running=2,
            live_session=True,
            backend="torch",
        ),
        StudyPlan("inet-optuna", 40, "imagenet32", "optuna", seed=2, configs=shared),
        StudyPlan("cifar-kt", 30, "cifar10", "keras-tuner:random", seed=3, p_pruned=0.0),
        StudyPlan("cifar-ak", 25, "cifar10", "autokeras:greedy", seed=4, p_pruned=0.0),
        StudyPlan("empty", 0, "cifar10", "optuna", seed=5),
        StudyPlan("all-failed", 6, "imagenet32", "optuna", seed=6, only_failed=True),
        StudyPlan(HOSTILE_NAME, 20, None, None, seed=7, hpo32=False, extra_params=True),
    ]
    writer = bulk_write_study if bulk else write_study
    for plan in plans:
        plan.trials = writer(url, plan, space)
    return {p.name: p for p in plans}


def build_benchmark_db(url: str, n_trials: int = 10_000, epochs: int = 20) -> dict[str, Any]:
    """A large database: one ``n_trials``-trial CIFAR-10 study (``big-cifar``), a 2,000-trial
    ImageNet32 study over the same space sharing 300 configs with it (``big-inet``), and two
    500-trial KerasTuner/AutoKeras studies on CIFAR-10.

    Returns:
        Study names and counts.
    """
    space = default_space()
    shared = [sample_config(space, random.Random(50_000 + i)) for i in range(300)]
    plans = [
        StudyPlan(
            "big-cifar",
            n_trials,
            "cifar10",
            "optuna",
            epochs=epochs,
            seed=11,
            configs=shared,
            running=4,
            live_session=True,
            budget_seconds=30 * 86400.0,
        ),
        StudyPlan(
            "big-inet",
            max(300, n_trials // 5),
            "imagenet32",
            "optuna",
            epochs=epochs,
            seed=12,
            configs=shared,
            budget_seconds=30 * 86400.0,
        ),
        StudyPlan(
            "big-kt",
            max(50, n_trials // 20),
            "cifar10",
            "keras-tuner:bayesian",
            epochs=epochs,
            seed=13,
            p_pruned=0.0,
        ),
        StudyPlan(
            "big-ak",
            max(50, n_trials // 20),
            "cifar10",
            "autokeras:greedy",
            epochs=epochs,
            seed=14,
            p_pruned=0.0,
        ),
    ]
    for plan in plans:
        bulk_write_study(url, plan, space)
    return {p.name: p.n_trials for p in plans}


__all__ = [
    "HOSTILE_NAME",
    "StudyPlan",
    "build_benchmark_db",
    "build_fixture",
    "bulk_write_study",
    "sample_config",
    "synthetic_trials",
    "write_study",
]
