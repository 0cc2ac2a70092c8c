"""Launch and resume studies: validation first, then data, then the database, then trials.

Everything a user can get wrong is checked before the database is touched, so a bad input
never leaves a half-made study behind. A session row records who ran, from when to when and
why it stopped; the search budget is the union of those stretches, so it survives resumes,
crashes and several workers.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hpo32.storage import (
    Records,
    artifact_root,
    make_engine,
    optuna_storage,
    resolve_url,
    sqlite_path,
)
from hpo32.storage.locks import study_lock
from hpo32.storage.records import HEARTBEAT_S, SessionHeartbeat
from hpo32.studies.spec import SpecError, StudySpec, check_study_name

__all__ = ["Outcome", "StudyNotFound", "evaluate_best", "resume", "search"]


class StudyNotFound(LookupError):
    """No study of that name in the storage."""


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
        SpecError: several workers for a KerasTuner/AutoKeras study (its oracle lives in one
            project folder), or a Bayesian tuner without scikit-learn.
    """
    if spec.engine == "optuna":
        return
    if workers > 1 or gpus:
        raise SpecError(
            f"the {spec.engine} engine runs one worker per study (its oracle "
            "lives in one project folder); use --engine optuna for several."
        )
    if spec.engine.endswith(":bayesian"):
        from hpo32.search.backends.mirror import require_sklearn

        try:
            require_sklearn(spec.engine)
        except ValueError as exc:
            raise SpecError(str(exc)) from None


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
    )


def _best_of(url: str):
    """Reads another study's best configs for ``warm_start: [{study: NAME, top: K}]``."""

    def best_of(other: str, top: int) -> list[tuple[int, dict[str, Any]]]:
        from hpo32.search.backends.optuna_engine import best_configs

        path = sqlite_path(url)
        found: list[tuple[int, dict[str, Any]]] = []
        if path is None or path.exists():  # reading never creates a SQLite file
            if study_exists(make_engine(url, read_only=path is not None), other):
                found = best_configs(optuna_storage(url), other, top)
        if not found:
            raise SpecError(
                f"warm_start names study '{other}', which has no complete trial in {url}; "
                "see hpo32 list."
            )
        return found

    return best_of


def study_exists(engine, name: str) -> bool:
    """Whether Optuna's tables hold a study called ``name`` (read-only check)."""
    import sqlalchemy as sa

    if not sa.inspect(engine).has_table("studies"):
        return False
    with engine.connect() as con:
        row = con.execute(
            sa.text("SELECT 1 FROM studies WHERE study_name = :n"), {"n": name}
        ).first()
    return row is not None


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

    Raises:
        SpecError, StorageError, hpo32.search.data.DataError: bad input; nothing was written.
        KeyboardInterrupt: after the session and the interrupted trial are recorded.
    """
    from hpo32.search.backends.optuna_engine import enqueue_configs, make_pruner, make_sampler

    started = time.monotonic() if started is None else started
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
    url = resolve_url(storage_url)
    path = sqlite_path(url)
    if path is None or path.exists():  # a new SQLite file is created only once all is checked
        if study_exists(make_engine(url, read_only=path is not None), name):
            raise SpecError(f"study '{name}' already exists; continue it with: hpo32 resume {name}")
    warm = spec.warm_start_configs(space, _best_of(url))
    splits = _load_splits(spec)
    if spec.engine.startswith("autokeras") and splits.num_classes < 3:
        raise SpecError(
            "the autokeras engine needs at least 3 classes (AutoKeras turns two "
            "into one sigmoid output); use --engine optuna or keras-tuner."
        )
    engine = make_engine(url)

    import optuna

    storage = optuna_storage(url, heartbeat_interval=HEARTBEAT_S)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        sampler=sampler,
        pruner=make_pruner(spec.pruner, spec.epochs),
    )
    study.set_user_attr("dataset", spec.dataset)
    study.set_user_attr("engine", spec.engine)
    study.set_user_attr("class_ids", list(splits.class_ids))  # for hpo32 predict
    study.set_user_attr("class_names", list(splits.class_names))
    enqueue_configs(study, space, [c for c, _ in warm], [a for _, a in warm])
    records = Records(engine)
    workdir = artifact_root(url) / name
    records.add_study(
        name,
        spec.engine,
        spec.dataset,
        spec.to_dict(),
        spec.budget,
        workdir=str(workdir.relative_to(artifact_root(url))),
    )
    if workers > 1 or gpus:
        del splits  # each worker process loads its own copy
        return run_workers(records, study, url, workers, gpus)
    return _run_session(records, study, spec, space, splits, url, on_event, started=started)


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
    try:
        with _sigterm_as_interrupt():
            for proc in procs:
                proc.wait()
    except KeyboardInterrupt:
        interrupted = True
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            proc.wait()
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
    failed = [p.returncode for p in procs if p.returncode > 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(procs)} workers failed (exit {failed[0]}).")
    result = records.result(name) or {}
    from hpo32.search.backends.base import best_value

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
) -> Outcome:
    """Continues study ``name`` with its remaining budget plus ``extra_budget``, counted
    from ``started`` as in :func:`search`.

    Completed trials are never rerun; trials left RUNNING by a killed process become FAIL
    through the heartbeat and their params run again.

    Raises:
        StudyNotFound: no such study.
        SpecError, StorageError, hpo32.search.data.DataError: bad input; nothing was written.
    """
    from hpo32.search.backends.optuna_engine import make_pruner, make_sampler

    started = time.monotonic() if started is None else started
    url = resolve_url(storage_url)
    engine = make_engine(url)
    records = _records_if_present(engine)
    row = records.study(name) if records else None
    if row is None:
        raise StudyNotFound(f"no study named '{name}' in {url}; see hpo32 list.")
    spec = stored = _stored_spec(row["spec"], name)
    budget = row["budget_seconds"]
    used = records.used_seconds(name)
    if extra_budget is not None:
        remaining = max(0.0, budget - used) if budget is not None else 0.0
        budget = used + remaining + extra_budget
    spec = spec.with_overrides(data_dir=data_dir, n_trials=n_trials, trial_budget=trial_budget)
    spec = spec.with_overrides(budget=budget)
    space = spec.build_space()
    check_weights(spec, space)
    quickest = _quickest_first_epoch(records, name)
    # the rule a session stops by (SearchContext.budget_spent), with the test evaluation's
    # reserve its last session recorded
    from hpo32.storage import queries

    reserve = float(queries.study_attrs(engine, name).get("test_reserve_seconds") or 0.0)
    if spec.budget is not None and spec.budget - used <= quickest + reserve:
        return Outcome(name, "budget_spent", 0, None, None)
    splits = _load_splits(spec)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    session_no = len(records.sessions(name))
    storage = optuna_storage(url, heartbeat_interval=HEARTBEAT_S)
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


def _records_if_present(engine) -> Records | None:
    import sqlalchemy as sa

    if not sa.inspect(engine).has_table("hpo32_studies"):
        return None
    return Records(engine, create=False)


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM stops a worker like Ctrl-C does: the running trial is recorded, then exit."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


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
    :attr:`hpo32.search.backends.base.SearchContext.quickest_first_epoch` (0 for a new study)."""
    from hpo32.search.backends.base import SearchContext, best_value
    from hpo32.search.backends.optuna_engine import run_optuna

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
    )
    ctx.on_event = on_event or (lambda e: None)
    trials_run = 0

    def trial_done() -> None:
        nonlocal trials_run
        trials_run += 1
        records.touch_session(session, trials_run)

    reason = "error"
    try:
        with _sigterm_as_interrupt(), SessionHeartbeat(records, session):
            family, _, variant = spec.engine.partition(":")
            if family == "keras-tuner":
                from hpo32.search.backends.keras_tuner_engine import run_keras_tuner

                reason = run_keras_tuner(study, ctx, variant, on_trial_done=trial_done)
            elif family == "autokeras":
                from hpo32.search.backends.autokeras_engine import run_autokeras

                reason = run_autokeras(study, ctx, variant, on_trial_done=trial_done)
            else:
                reason = run_optuna(
                    study,
                    ctx,
                    on_trial_done=trial_done,
                    lock=lambda: study_lock(records.engine, url, name),
                )
            # inside the session: the budget holds the final evaluation (README: budgets)
            study.set_user_attr("test_reserve_seconds", round(ctx.test_reserve(), 3))
            test_acc = evaluate_best(records, study, splits, root)
    except KeyboardInterrupt:
        reason = "interrupted"
        raise
    finally:
        records.end_session(session, reason, trials_run)
    top5 = None
    if spec.dataset == "imagenet32" and test_acc is not None:
        top5 = study.user_attrs.get("test_top5", {}).get("top5")
    return Outcome(name, reason, trials_run, best_value(study), test_acc, top5)


def evaluate_best(records: Records, study, splits, root: Path) -> float | None:
    """Evaluates the best trial's saved model on the test split, once per best trial.

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

    from hpo32.search.recipe import tta_of
    from hpo32.search.training import evaluate

    model = keras.models.load_model(root / best.user_attrs["model_path"])
    tta = tta_of(best.user_attrs.get("config"))
    scores = evaluate(model, splits.x_test, splits.y_test, tta)
    acc = scores["accuracy"]
    records.set_result(
        study.study_name, best.number, best.value, acc, best.user_attrs["model_path"]
    )
    study.set_user_attr("test_top5", {"trial": best.number, "top5": scores["top5"], "tta": tta})
    keras.backend.clear_session()
    return acc
