"""Launch and resume studies: validation first, then data, then the database, then trials.

Everything a user can get wrong is checked before the database is touched, so a bad input
never leaves a half-made study behind. A session row records who ran, from when to when and
why it stopped; the search budget is the union of those stretches, so it survives resumes,
crashes and several workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hpo32.search import faults, signals
from hpo32.search.engines import parse_engine
from hpo32.search.engines.base import TooManyFailures
from hpo32.storage import (
    Records,
    artifact_root,
    make_engine,
    optuna_storage,
    resolve_url,
    sqlite_path,
)
from hpo32.storage.db import heartbeat_seconds
from hpo32.storage.locks import study_lock
from hpo32.storage.records import SessionHeartbeat
from hpo32.studies.spec import SpecError, StudySpec, check_study_name

__all__ = [
    "EXIT_FAILURES",
    "Outcome",
    "StudyNotFound",
    "TooManyFailures",
    "WorkersFailed",
    "check_search",
    "evaluate_best",
    "resume",
    "search",
]

#: The exit code of a search stopped by ``max_failures`` failed trials in a row.
EXIT_FAILURES = 3


class StudyNotFound(LookupError):
    """No study of that name in the storage."""


class WorkersFailed(RuntimeError):
    """Worker processes of a study ended in errors (what they recorded is kept)."""


@dataclass
class Outcome:
    """How a search session ended."""

    study: str
    reason: str  # "budget", "n_trials", "interrupted", "budget_spent"
    trials_run: int
    best_value: float | None
    test_accuracy: float | None
    test_top5: float | None = None  # ImageNet32 studies


def check_weights(spec: StudySpec, space) -> None:
    """Fails before anything is written when the space can ask for pretrained weights that
    are not there.

    Raises:
        SpecError: the weights file is missing (one sentence naming it and where it goes).
    """
    from hpo32.search.models import WeightsMissing, resolve_weights

    def choices(name: str) -> set:
        if name not in space:
            return set()
        p = space[name]
        return {p.value} if hasattr(p, "value") else set(getattr(p, "choices", ()))

    if "densenet121" in choices("family") and choices("densenet_mode") & {"transfer", "finetune"}:
        try:
            resolve_weights(spec.weights)
        except WeightsMissing as exc:
            raise SpecError(str(exc)) from None


def check_engine(spec: StudySpec, workers: int = 1, gpus: list[str] | None = None) -> None:
    """Refuses engine settings that cannot work, before anything is written.

    Raises:
        SpecError: an unknown engine, or several workers for an engine that runs one per
            study (KerasTuner and AutoKeras: the oracle lives in one project folder).
    """
    try:
        engine, _ = parse_engine(spec.engine)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    if not engine.parallel and (workers > 1 or gpus):
        raise SpecError(
            f"the {spec.engine} engine runs one worker per study (its oracle "
            "lives in one project folder); use --engine optuna for several."
        )


def _load_splits(spec: StudySpec):
    from hpo32.search.data import load_splits

    return load_splits(
        spec.dataset,
        data_dir=spec.data_dir,
        classes=spec.classes,
        val_fraction=spec.val_fraction,
        train_limit=spec.train_limit,
        val_limit=spec.val_limit,
        seed=spec.seed,
        download=True if spec.download else None,
    )


def _best_of(url: str):
    """Reads another study's best configs for ``warm_start: [{study: NAME, top: K}]``."""

    def best_of(other: str, top: int) -> list[tuple[int, dict[str, Any]]]:
        from hpo32.search.engines.optuna import best_configs

        found: list[tuple[int, dict[str, Any]]] = []
        if _standing(url, other).optuna:  # reading never creates a SQLite file
            found = best_configs(optuna_storage(url), other, top)
        if not found:
            raise SpecError(
                f"warm_start names study '{other}', which has no complete trial in {url}; "
                "see hpo32 list."
            )
        return found

    return best_of


def _standing(url: str, name: str):
    """What the database holds under ``name`` (read-only: a missing SQLite file is not
    created, it holds nothing)."""
    from hpo32.storage import queries

    path = sqlite_path(url)
    if path is not None and not path.exists():
        return queries.StudyStanding(optuna=False, trials=0, started=0, hpo32=False)
    return queries.study_standing(make_engine(url, read_only=path is not None), name)


def _refuse_taken(standing, name: str) -> None:
    """Refuses a name that a study holds; a name Optuna holds without a trial that ever
    ran and without hpo32's row (a kill while the study was being made) is free, and so is
    a name whose Optuna study was deleted (hpo32's rows it left are cleaned when written).

    Raises:
        SpecError: the name is taken (one sentence: resume it, or delete it).
    """
    if standing.optuna and standing.hpo32:
        raise SpecError(f"study '{name}' already exists; continue it with: hpo32 resume {name}")
    if standing.optuna and standing.started:
        raise SpecError(
            f"study '{name}' holds {standing.started} trial{'s' * (standing.started != 1)} "
            "that hpo32 did not record (it "
            f"was made with Optuna's own tools), so hpo32 cannot continue it; pick another "
            f"name, or remove it with: hpo32 delete {name}"
        )


@dataclass
class _Checked:
    """What :func:`_check_new_study` found valid, for :func:`search` to write."""

    space: Any
    sampler: Any
    warm: list[tuple[dict[str, Any], dict[str, Any]]]
    splits: Any
    url: str
    standing: Any


def _check_new_study(
    spec: StudySpec,
    name: str | None,
    storage_url: str | None,
    workers: int,
    gpus: list[str] | None,
    load_data: bool = True,
) -> _Checked:
    """Every check of a new study, in the order search meets them; writes nothing."""
    from hpo32.search.engines.optuna import make_sampler

    if name is not None:
        check_study_name(name)
    space = spec.build_space()
    if spec.budget is None and spec.n_trials is None:
        raise SpecError("give a search budget (--budget 30m) or a trial count (--n-trials N).")
    try:
        sampler = make_sampler(spec.sampler, spec.seed, space)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    check_weights(spec, space)
    check_engine(spec, workers, gpus)
    heartbeat_seconds()  # a bad HPO32_HEARTBEAT is refused before anything is written
    url = resolve_url(storage_url)
    standing = _standing(url, name) if name is not None else None
    if standing is not None:
        _refuse_taken(standing, name or "")
    warm = spec.warm_start_configs(space, _best_of(url))
    splits = _load_splits(spec) if load_data else None
    if splits is not None and spec.engine.startswith("autokeras") and splits.num_classes < 3:
        raise SpecError(
            "the autokeras engine needs at least 3 classes (AutoKeras turns two "
            "into one sigmoid output); use --engine optuna or keras-tuner."
        )
    return _Checked(space, sampler, warm, splits, url, standing)


def check_search(
    spec: StudySpec,
    name: str | None = None,
    storage_url: str | None = None,
    workers: int = 1,
    gpus: list[str] | None = None,
    load_data: bool = True,
) -> None:
    """Everything :func:`search` checks before it writes (``hpo32 check``); writes nothing.

    Args:
        name: the study name to check as well (free in the storage), or None.
        load_data: also load the dataset's splits (as search does), checking its files.

    Raises:
        SpecError, StorageError, hpo32.search.data.DataError: what search would refuse.
    """
    _check_new_study(spec, name, storage_url, workers, gpus, load_data)


def search(
    spec: StudySpec,
    name: str,
    storage_url: str | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    workers: int = 1,
    gpus: list[str] | None = None,
    started: float | None = None,
) -> Outcome:
    """Creates study ``name`` from ``spec`` and runs it until its budget or trial count.

    The budget counts from ``started`` (a ``time.monotonic()`` value: the command's start;
    default now), so loading the data and the final test evaluation are part of it.

    With ``workers`` > 1 or ``gpus``, the study is created here and run by that many
    ``hpo32 worker`` processes (one per listed GPU, each seeing only its GPU).

    SIGTERM and SIGINT stop it cleanly (see :mod:`hpo32.search.signals`).

    Raises:
        SpecError, StorageError, hpo32.search.data.DataError: bad input; nothing was written.
        TooManyFailures: ``max_failures`` trials in a row failed (all recorded).
        WorkersFailed: worker processes ended in errors.
        KeyboardInterrupt: after the session and the interrupted trial are recorded.
    """
    started = time.monotonic() if started is None else started
    with signals.stop_on_signals():
        checked = _check_new_study(spec, name, storage_url, workers, gpus)
        signals.check()  # a stop while loading: nothing is written
        study, records = _create_study(spec, name, checked)
        if workers > 1 or gpus:
            del checked  # each worker process loads its own copy of the data
            return run_workers(records, study, resolve_url(storage_url), workers, gpus)
        return _run_session(
            records, study, spec, checked.space, checked.splits, checked.url, on_event,
            started=started,
        )  # fmt: skip


def _create_study(spec: StudySpec, name: str, checked: _Checked):
    """Writes a checked new study: Optuna's study, its attributes and queued configs, then
    hpo32's row, which marks it made (a study killed before that row is free again), all
    under the study's lock so that two commands cannot make one name at once.

    Returns:
        ``(study, records)``.

    Raises:
        SpecError: another command made the name meanwhile.
    """
    import optuna
    import sqlalchemy as sa

    from hpo32.search.engines.optuna import enqueue_configs, make_pruner

    url = checked.url
    engine = make_engine(url)
    records = Records(engine)
    storage = optuna_storage(url, heartbeat_interval=heartbeat_seconds())
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    taken = SpecError(
        f"study '{name}' was made by another command just now; continue it with: "
        f"hpo32 resume {name}"
    )
    with study_lock(engine, url, name):
        standing = _standing(url, name)  # again, under the lock
        _refuse_taken(standing, name)
        if standing.optuna:  # made by a process killed before hpo32's row: free
            optuna.delete_study(study_name=name, storage=storage)
        elif standing.hpo32:  # rows of a study Optuna deleted: they must not bill this one
            records.forget_study(name)
        try:
            study = optuna.create_study(
                study_name=name,
                storage=storage,
                direction="maximize",
                sampler=checked.sampler,
                pruner=make_pruner(spec.pruner, spec.epochs),
            )
        except optuna.exceptions.DuplicatedStudyError:
            raise taken from None
        faults.point("after_create_study")
        splits = checked.splits
        study.set_user_attr("dataset", spec.dataset)
        study.set_user_attr("engine", spec.engine)
        study.set_user_attr("class_ids", list(splits.class_ids))  # for hpo32 predict
        study.set_user_attr("class_names", list(splits.class_names))
        enqueue_configs(
            study, checked.space, [c for c, _ in checked.warm], [a for _, a in checked.warm]
        )
        try:
            records.add_study(name, spec.engine, spec.dataset, spec.to_dict(), spec.budget)
        except sa.exc.IntegrityError:
            raise taken from None
    return study, records


# ``python -c`` puts the current folder first on sys.path, where a user's own ``hpo32.py`` or
# ``search.py`` would shadow the package: drop it before anything of hpo32 is imported
# (``-P`` would do the same, but only from Python 3.11 on).
WORKER_BOOT = (
    "import sys; sys.path[:] = [p for p in sys.path if p]; "
    "from hpo32.studies.cli import main; sys.exit(main())"
)


def run_workers(records: Records, study, url: str, workers: int, gpus: list[str] | None) -> Outcome:
    """Runs ``hpo32 worker`` processes on this host until they all stop.

    Ctrl-C or SIGTERM reaches every worker, each of which records its running trial.
    """
    import subprocess
    import sys

    name = study.study_name
    slots = [{"CUDA_VISIBLE_DEVICES": g} for g in gpus] if gpus else [{}] * workers
    before = len(records.sessions(name))
    procs = []
    for k, extra in enumerate(slots, start=1):
        env = dict(os.environ, HPO32_WORKER_LABEL=f"w{k}", **extra)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER_BOOT, "worker", name, "--storage", url], env=env
            )
        )
    interrupted = False
    while any(proc.poll() is None for proc in procs):
        if signals.requested() is not None and not interrupted:
            interrupted = True  # each worker records its running trial and ends
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    sessions = records.sessions(name)[before:]
    if interrupted:
        raise KeyboardInterrupt
    for k, proc in enumerate(procs, start=1):
        if proc.returncode < 0:  # killed by a signal: its trial is retried by the others
            print(
                f"hpo32: worker w{k} was killed by signal {-proc.returncode}; its running "
                "trial becomes FAIL after the heartbeat grace period and runs again.",
                file=sys.stderr,
            )
    codes = [p.returncode for p in procs if p.returncode > 0]
    if codes and all(c == EXIT_FAILURES for c in codes):
        raise TooManyFailures(
            f"{len(codes)} of {len(procs)} workers stopped after too many failed trials in a "
            f"row; see their messages above, or hpo32 show {name}."
        )
    if codes:
        raise WorkersFailed(
            f"{len(codes)} of {len(procs)} workers failed (exit {codes[0]}); their messages "
            f"are above; what they recorded is kept: continue with hpo32 resume {name}."
        )
    result = records.result(name) or {}
    from hpo32.search.engines.base import best_value

    best = best_value(study)
    reasons = sorted({s.exit_reason or "?" for s in sessions})
    return Outcome(
        name,
        "/".join(reasons),
        sum(s.trials_run for s in sessions),
        best,
        result.get("test_accuracy"),
    )


def resume(
    name: str,
    storage_url: str | None = None,
    extra_budget: float | None = None,
    n_trials: int | None = None,
    data_dir: str | None = None,
    trial_budget: float | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    started: float | None = None,
    max_failures: int | None = None,
) -> Outcome:
    """Continues study ``name`` with its remaining budget plus ``extra_budget``, counted
    from ``started`` as in :func:`search`.

    Completed trials are never rerun; trials left RUNNING by a killed process become FAIL
    through the heartbeat and their params run again.

    Raises:
        StudyNotFound: no such study.
        SpecError, StorageError, hpo32.search.data.DataError: bad input; nothing was written.
    """
    started = time.monotonic() if started is None else started
    with signals.stop_on_signals():
        return _resume(
            name, storage_url, extra_budget, n_trials, data_dir, trial_budget, on_event,
            started, max_failures,
        )  # fmt: skip


def _resume(
    name, storage_url, extra_budget, n_trials, data_dir, trial_budget, on_event, started,
    max_failures,
) -> Outcome:  # fmt: skip
    from hpo32.search.engines.optuna import make_pruner, make_sampler
    from hpo32.storage import queries

    heartbeat_seconds()
    url = resolve_url(storage_url)
    standing = _standing(url, name)
    if standing.optuna and not standing.hpo32 and standing.started:
        raise SpecError(
            f"study '{name}' was made with Optuna's own tools, not hpo32, so hpo32 cannot "
            f"continue it; remove it with: hpo32 delete {name}"
        )
    if not (standing.optuna and standing.hpo32):
        raise StudyNotFound(f"no study named '{name}' in {url}; see hpo32 list.")
    engine = make_engine(url)
    records = Records(engine, create=False)
    row = records.study(name)
    if row is None:
        raise StudyNotFound(f"no study named '{name}' in {url}; see hpo32 list.")
    spec = stored = _stored_spec(row["spec"], name)
    budget = row["budget_seconds"]
    used = records.used_seconds(name)
    if extra_budget is not None:
        remaining = max(0.0, budget - used) if budget is not None else 0.0
        budget = used + remaining + extra_budget
    spec = spec.with_overrides(data_dir=data_dir, n_trials=n_trials, trial_budget=trial_budget)
    spec = spec.with_overrides(budget=budget, max_failures=max_failures)
    space = spec.build_space()
    check_weights(spec, space)
    quickest = _quickest_first_epoch(records, name)
    # the rule a session stops by (SearchContext.budget_spent), with the test evaluation's
    # reserve its last session recorded
    reserve = float(queries.study_attrs(engine, name).get("test_reserve_seconds") or 0.0)
    if spec.budget is not None and spec.budget - used <= quickest + reserve:
        return Outcome(name, "budget_spent", 0, None, None)
    splits = _load_splits(spec)
    signals.check()

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    session_no = len(records.sessions(name))
    storage = optuna_storage(url, heartbeat_interval=heartbeat_seconds())
    try:
        sampler = make_sampler(spec.sampler, spec.seed + 1000 * session_no, space)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    study = optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=sampler,
        pruner=make_pruner(spec.pruner, spec.epochs),
    )
    faults.point("resume")
    if budget != row["budget_seconds"]:
        records.set_budget(name, budget)
    if spec != stored:
        _store_spec(records, name, spec)
    return _run_session(records, study, spec, space, splits, url, on_event, quickest, started)


def _stored_spec(data: dict[str, Any], name: str) -> StudySpec:
    """The spec a study recorded; one recorded before ``space_version`` existed is version 1
    (its recipe parameters stay fixed at today's recipe, see StudySpec.space_version)."""
    return StudySpec.from_dict({"space_version": 1, **data}, source=f"study '{name}'")


def _quickest_first_epoch(records: Records, name: str) -> float:
    """The quickest first epoch, with its validation, among the study's recorded trials
    (0 when none has one): a session with less budget left starts no trial."""
    from hpo32.search.training import first_epoch_seconds

    keys = ("epoch_seconds", "eval_seconds", "stopped_by")
    times = [first_epoch_seconds(attrs) for attrs in records.trial_attrs(name, keys)]
    return min((t for t in times if t is not None), default=0.0)


def _store_spec(records: Records, name: str, spec: StudySpec) -> None:
    import json

    import sqlalchemy as sa

    from hpo32.storage.records import studies_table

    with records.engine.begin() as con:
        con.execute(
            sa.update(studies_table)
            .where(studies_table.c.name == name)
            .values(spec_json=json.dumps(spec.to_dict()))
        )


def _run_session(
    records: Records,
    study,
    spec: StudySpec,
    space,
    splits,
    url: str,
    on_event,
    quickest_first_epoch: float = 0.0,
    started: float | None = None,
) -> Outcome:
    """Runs one session of the study; ``quickest_first_epoch`` as
    :attr:`hpo32.search.engines.base.SearchContext.quickest_first_epoch` (0 for a new study)."""
    from hpo32.search.engines.base import SearchContext, best_value

    name = study.study_name
    start = time.monotonic() if started is None else started
    used = records.used_seconds(name) if spec.budget is not None else 0.0  # earlier sessions
    session = records.begin_session(name, started_at=time.time() - (time.monotonic() - start))
    deadline = start + (spec.budget - used) if spec.budget is not None else None
    root = artifact_root(url)
    ctx = SearchContext(
        space=space,
        splits=splits,
        epochs=spec.epochs,
        seed=spec.seed + 1000 * (len(records.sessions(name)) - 1),
        search_deadline=deadline,
        trial_budget=spec.trial_budget,
        n_trials=spec.n_trials,
        artifact_dir=root / name,
        artifact_root=root,
        dataset=spec.dataset,
        weights=spec.weights,
        precision=spec.precision,
        epoch_images=spec.epoch_images,
        test_images=len(splits.x_test),
        quickest_first_epoch=quickest_first_epoch,
        max_failures=getattr(spec, "max_failures", 5),
    )
    ctx.on_event = on_event or (lambda e: None)
    trials_run = 0

    def trial_done() -> None:
        nonlocal trials_run
        trials_run += 1
        records.touch_session(session, trials_run)

    reason = "error"
    try:
        with SessionHeartbeat(records, session):
            search_engine, variant = parse_engine(spec.engine)
            reason = search_engine.run(
                study,
                ctx,
                variant,
                on_trial_done=trial_done,
                lock=lambda: study_lock(records.engine, url, name),
            )
            # inside the session: the budget holds the final evaluation (README: budgets)
            study.set_user_attr("test_reserve_seconds", round(ctx.test_reserve(), 3))
            test_acc = evaluate_best(records, study, splits, root, ctx.on_event)
            signals.check()
    except KeyboardInterrupt:
        reason = "interrupted"
        raise
    except TooManyFailures:
        reason = "failures"
        with contextlib.suppress(Exception):  # what did succeed is still tested
            evaluate_best(records, study, splits, root, ctx.on_event)
        raise
    finally:
        records.end_session(session, reason, trials_run)
    top5 = None
    if spec.dataset == "imagenet32" and test_acc is not None:
        top5 = study.user_attrs.get("test_top5", {}).get("top5")
    return Outcome(name, reason, trials_run, best_value(study), test_acc, top5)


def evaluate_best(
    records: Records, study, splits, root: Path, on_event: Callable | None = None
) -> float | None:
    """Evaluates the best trial's saved model on the test split, once per best trial,
    sending ``on_event`` ``{"kind": "test_start", "number", "images"}`` before and
    ``{"kind": "test_end", "number", "accuracy", "top5"}`` after (the display's step).

    Returns:
        The test accuracy of the study's best trial, or None without a saved best model.
    """
    from optuna.trial import TrialState

    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("model_path")
    ]
    if not done:
        return None
    best = max(done, key=lambda t: t.value)
    known = records.result(study.study_name)
    if known and known["trial_number"] == best.number:
        return known["test_accuracy"]
    import keras

    from hpo32.search.recipe import tta_of, view_count
    from hpo32.search.training import evaluate

    tta = tta_of(best.user_attrs.get("config"))
    send = on_event or (lambda event: None)
    send({"kind": "test_start", "number": best.number,
          "images": len(splits.x_test) * view_count(tta)})  # fmt: skip
    model = keras.models.load_model(root / best.user_attrs["model_path"])
    scores = evaluate(model, splits.x_test, splits.y_test, tta)
    faults.point("test_evaluation")
    acc = scores["accuracy"]
    send({"kind": "test_end", "number": best.number, "accuracy": acc, "top5": scores["top5"]})
    records.set_result(
        study.study_name, best.number, best.value, acc, best.user_attrs["model_path"]
    )
    study.set_user_attr("test_top5", {"trial": best.number, "top5": scores["top5"], "tta": tta})
    keras.backend.clear_session()
    return acc
