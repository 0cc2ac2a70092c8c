"""Launch and resume studies: validation first, then data, then the database, then a session.

Everything a user can get wrong is checked before the database is touched, so a bad input
never leaves a half-made study behind; a study's name is taken only once hpo32's row is
written (:func:`_create_study`). The session itself is :mod:`hpo32.studies.session`; several
worker processes, :mod:`hpo32.studies.workers`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from hpo32.search import faults, signals
from hpo32.search.engines import parse_engine
from hpo32.storage import Records, make_engine, optuna_storage, resolve_url, sqlite_path
from hpo32.storage.db import heartbeat_seconds
from hpo32.storage.locks import study_lock
from hpo32.storage.records import NameTaken
from hpo32.studies.progress import plural
from hpo32.studies.session import Outcome, run_session, session_seed
from hpo32.studies.spec import SpecError, StudySpec, check_study_name
from hpo32.studies.workers import run_workers

if TYPE_CHECKING:
    import optuna

    from hpo32.search.space import SearchSpace
    from hpo32.storage.queries import StudyStanding

__all__ = ["StudyNotFound", "check_search", "resume", "search"]


class StudyNotFound(LookupError):
    """No study of that name in the storage."""


def check_weights(spec: StudySpec, space: SearchSpace) -> None:
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
        SpecError: an unknown engine, a backend its library does not run on (AutoKeras:
            TensorFlow only), or several workers for an engine that runs one per study
            (KerasTuner and AutoKeras: the oracle lives in one project folder).
    """
    try:
        engine, _ = parse_engine(spec.engine)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    backend = spec.backend or "tensorflow"
    if backend not in engine.backends:
        raise SpecError(
            f"the {engine.name} engine runs on the {' or '.join(engine.backends)} backend "
            f"only ({engine.library} does not support {backend}); use --engine optuna or "
            f"--backend {engine.backends[0]}."
        )
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


def _standing(url: str, name: str) -> StudyStanding:
    """What the database holds under ``name`` (read-only: a missing SQLite file is not
    created, it holds nothing)."""
    from hpo32.storage import queries

    path = sqlite_path(url)
    if path is not None and not path.exists():
        return queries.StudyStanding(optuna=False, trials=0, started=0, hpo32=False)
    return queries.study_standing(make_engine(url, read_only=path is not None), name)


def _refuse_taken(standing: StudyStanding, name: str) -> None:
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
            f"study '{name}' holds {plural(standing.started, 'trial')} "
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
        if workers == 1 and not gpus:
            checked = _sized(spec, checked, started, on_event)
            signals.check()
        study, records = _create_study(spec, name, checked)
        if workers > 1 or gpus:
            del checked  # each worker process loads its own copy of the data
            return run_workers(records, study, resolve_url(storage_url), workers, gpus)
        return run_session(
            records, study, spec, checked.space, checked.splits, checked.url, on_event,
            started=started,
        )  # fmt: skip


def _sized(
    spec: StudySpec,
    checked: _Checked,
    started: float,
    on_event: Callable[[dict[str, Any]], None] | None,
) -> _Checked:
    """``checked`` with its first warm-start config sized for this machine when the spec sets
    ``first_epochs`` (:mod:`hpo32.search.sizing`), for the time its trial will have: its
    trial budget, or what is left of the search budget when that is less. The caller sizes
    in one process only: workers would each probe, and a probe on a shared GPU takes its
    memory."""
    from dataclasses import replace

    from hpo32.search.sizing import size_first_config, width_params

    if spec.first_epochs is None or spec.engine != "optuna" or not checked.warm:
        return checked
    left = None if spec.budget is None else spec.budget - (time.monotonic() - started)
    limits = [t for t in (spec.trial_seconds, left) if t is not None]
    if not limits or checked.splits is None:
        return checked
    try:
        warm, sizing = size_first_config(
            checked.warm, checked.splits, checked.space, epochs=spec.first_epochs,
            seconds=min(limits), epoch_images=spec.epoch_images, precision=spec.precision,
            seed=spec.seed,
        )  # fmt: skip
    except Exception:  # the probe's training failed: the trial will fail and record why
        return checked
    if sizing is not None and on_event is not None:
        names = width_params(warm[0][0])
        on_event({"kind": "sizing", "images_per_second": sizing.images_per_second,
                  "scale": sizing.scale, "expected_epochs": sizing.expected_epochs,
                  "from_widths": [checked.warm[0][0][n] for n in names],
                  "widths": [warm[0][0][n] for n in names]})  # fmt: skip
    return replace(checked, warm=warm)


def _create_study(spec: StudySpec, name: str, checked: _Checked) -> tuple[optuna.Study, Records]:
    """Writes a checked new study: Optuna's study, its attributes and queued configs, then
    hpo32's row, which marks it made (a study killed before that row is free again), all
    under the study's lock so that two commands cannot make one name at once.

    Returns:
        ``(study, records)``.

    Raises:
        SpecError: another command made the name meanwhile.
    """
    import optuna

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
        study.set_user_attr("backend", spec.backend or "tensorflow")
        study.set_user_attr("fidelity", _fidelity(spec, splits))
        enqueue_configs(
            study, checked.space, [c for c, _ in checked.warm], [a for _, a in checked.warm]
        )
        try:
            records.add_study(
                name, spec.engine, spec.dataset, spec.to_dict(), spec.budget,
                class_ids=list(splits.class_ids), class_names=list(splits.class_names),
            )  # fmt: skip
        except NameTaken:
            raise taken from None
    return study, records


def _fidelity(spec: StudySpec, splits: Any) -> dict[str, Any]:
    """What a study's results depend on besides its configs (shown beside them wherever
    studies are compared: a 10-class and a 200-class ImageNet32 study are not alike)."""
    return {
        "train_images": int(len(splits.x_train)),
        "val_images": int(len(splits.x_val)),
        "test_images": int(len(splits.x_test)),
        "image_size": int(splits.input_shape[0]),
        "classes": int(splits.num_classes),
        "epochs": int(spec.epochs),
        "epoch_images": spec.epoch_images,
        "backend": spec.backend or "tensorflow",
    }


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
    keep_top: int | None = None,
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
            started, max_failures, keep_top,
        )  # fmt: skip


def _resume(
    name: str,
    storage_url: str | None,
    extra_budget: float | None,
    n_trials: int | None,
    data_dir: str | None,
    trial_budget: float | None,
    on_event: Callable[[dict[str, Any]], None] | None,
    started: float,
    max_failures: int | None,
    keep_top: int | None,
) -> Outcome:
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
    use_study_backend(spec, name)
    budget = row["budget_seconds"]
    used = records.used_seconds(name)
    if extra_budget is not None:
        remaining = max(0.0, budget - used) if budget is not None else 0.0
        budget = used + remaining + extra_budget
    spec = spec.with_overrides(data_dir=data_dir, n_trials=n_trials, trial_budget=trial_budget)
    spec = spec.with_overrides(budget=budget, max_failures=max_failures, keep_top=keep_top)
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
        sampler = make_sampler(spec.sampler, session_seed(spec.seed, session_no), space)
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
        records.set_spec(name, spec.to_dict())
    return run_session(records, study, spec, space, splits, url, on_event, quickest, started)


def use_study_backend(spec: StudySpec, name: str) -> None:
    """Makes the backend study ``name`` was made with (``tensorflow`` for a study stored
    before backends were recorded) this process's, before Keras loads: its sessions and
    workers all train on one backend.

    Raises:
        SpecError: ``$KERAS_BACKEND`` names another backend, or the study's is missing.
    """
    import os

    from hpo32.search.hardware import BackendError, use_backend

    backend = spec.backend or "tensorflow"
    asked = os.environ.get("KERAS_BACKEND")
    if asked and asked != backend:
        raise SpecError(
            f"study '{name}' trains on the {backend} backend, but KERAS_BACKEND is "
            f"{asked}; continue it with KERAS_BACKEND={backend} or with KERAS_BACKEND unset."
        )
    try:
        use_backend(backend)
    except (BackendError, ValueError) as exc:
        raise SpecError(str(exc)) from None


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
