"""What the KerasTuner and AutoKeras engines share: a tuner's loop under hpo32's budgets, and
its trials mirrored into the Optuna study.

KerasTuner (and AutoKeras, which is built on it) keeps its own trial records in a project
folder; hpo32's system of record is the Optuna study. :class:`TrialMirror` sits inside a
tuner's ``run_trial``: it trains the tuner's config with hpo32's training routine and records
the finished trial through :func:`hpo32.search.engines.record.record_trial` as an
:class:`~hpo32.search.engines.record.AddedTrial`, exactly as the Optuna engine records its own
(params under the space's names with Optuna distributions derived from the space, per-epoch
validation accuracy as intermediate values, the same user attributes), plus the tuner's trial
id under :data:`TUNER_TRIAL_ATTR`.

Mirroring is idempotent: a trial id the study already holds as finished is never trained or
recorded again (a crash between recording and the tuner saving its own state replays the
recorded result to the tuner instead). A trial stopped by Ctrl-C is recorded as FAIL with
``stopped_by = "interrupt"``; the tuner retries that id on resume, and the retry is recorded.

:func:`run_search` is the run both tuner engines share: the budget checks before each trial
(:func:`tuner_mixin`), the project folder's lock and its reload or fresh start. This module
imports no ML framework at import time.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from hpo32.search import signals
from hpo32.search.engines.base import ReportFn, SearchContext, TrainFn, finished_count
from hpo32.search.engines.record import AddedTrial, record_trial
from hpo32.search.engines.registry import parse_engine
from hpo32.search.space import SearchSpace

__all__ = [
    "TUNER_TRIAL_ATTR",
    "ProjectBusy",
    "ProjectMissing",
    "SearchStopped",
    "TrialMirror",
    "engine_trials",
    "prepare_project",
    "project_lock",
    "rung_of",
    "run_search",
    "trial_runner",
    "tuner_mixin",
]

#: The user attribute holding the tuner's own trial id (KerasTuner's ``trial.trial_id``),
#: for KerasTuner and AutoKeras trials alike. The key stays ``"kt_trial_id"``: databases
#: already hold it under that name.
TUNER_TRIAL_ATTR = "kt_trial_id"


class ProjectMissing(RuntimeError):
    """The engine's project folder is gone while the study already holds trials of it."""


class SearchStopped(Exception):
    """Raised inside a tuner's loop to end the search.

    Attributes:
        reason: what the engine's ``run_*`` returns: ``"budget"``, ``"n_trials"`` or
            ``"exhausted"`` (the tuner's oracle has no further trial to propose).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def engine_trials(study: Any, engine: str) -> list[Any]:
    """The study's trials recorded by ``engine`` (those carrying a tuner trial id)."""
    return [
        t
        for t in study.get_trials(deepcopy=False)
        if TUNER_TRIAL_ATTR in t.user_attrs and t.user_attrs.get("engine") == engine
    ]


def prepare_project(study: Any, engine: str, project_dir: Path, library: str) -> bool:
    """Decides whether a tuner may reload ``project_dir`` or must start it afresh.

    Args:
        study: the Optuna study.
        engine: the engine name recorded with each trial.
        project_dir: the tuner's project folder.
        library: "KerasTuner" or "AutoKeras", for the error message.

    Returns:
        True to overwrite (start a new project): the study holds no trial of this engine, so
        any folder there is a leftover that nothing recorded depends on.

    Raises:
        ProjectMissing: the study holds trials of this engine but the folder (its
            ``oracle.json``) is gone, so the tuner cannot continue where it stopped.
    """
    recorded = engine_trials(study, engine)
    if not recorded:
        return True
    if not (project_dir / "oracle.json").is_file():
        raise ProjectMissing(
            f"the {library} project folder '{project_dir}' is missing, so study "
            f"'{study.study_name}' cannot continue its {engine} search; its {len(recorded)} "
            "recorded trials are intact: restore the folder or start a new study."
        )
    return False


def _final(trial: Any) -> bool:
    """Whether a recorded trial settles its tuner trial id (no retry will follow)."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "fail_reason" in trial.user_attrs


class TrialMirror:
    """Runs a tuner's trials under hpo32's budgets and records each into the Optuna study.

    Args:
        study: an ``optuna.Study`` (RDB storage, direction maximize).
        ctx: the search context.
        engine: the engine's full name recorded with every trial, e.g. ``"keras-tuner:random"``.
        on_trial_done: called with no arguments after each trial the tuner has closed.
    """

    def __init__(
        self,
        study: Any,
        ctx: SearchContext,
        engine: str,
        on_trial_done: Callable[[], None] | None = None,
    ) -> None:
        self.study = study
        self.ctx = ctx
        self.engine = engine
        self.on_trial_done = on_trial_done
        #: The unexpected exception that ended a trial, re-raised by the engine.
        self.error: BaseException | None = None

    # -- the search loop -----------------------------------------------------------------
    def check_continue(self) -> None:
        """Raises :class:`SearchStopped` when the budget is spent or ``n_trials`` reached.

        Called before the tuner creates each trial, so no trial starts after the budget.
        """
        signals.check()
        self.ctx.check_failures()
        if self.ctx.budget_spent():
            raise SearchStopped("budget")
        if self.ctx.n_trials is not None and finished_count(self.study) >= self.ctx.n_trials:
            raise SearchStopped("n_trials")

    def trial_closed(self) -> None:
        """Called once the tuner has closed a trial (its own records saved)."""
        if self.on_trial_done is not None:
            self.on_trial_done()

    # -- one trial -----------------------------------------------------------------------
    def recorded(self, trial_id: str) -> Any:
        """The study's final record of tuner trial ``trial_id``, or None."""
        for t in engine_trials(self.study, self.engine):
            if t.user_attrs[TUNER_TRIAL_ATTR] == trial_id and _final(t):
                return t
        return None

    def run(
        self,
        trial_id: str,
        config: Mapping[str, Any],
        train: TrainFn,
        *,
        epochs: int,
        full_epochs: int,
        extra_attrs: Mapping[str, Any] | None = None,
    ) -> float:
        """Trains one tuner trial and records it; returns its validation accuracy.

        Args:
            trial_id: the tuner's trial id.
            config: the trial's config (plain values under the space's names).
            train: trains the config, see :data:`hpo32.search.engines.base.TrainFn`; may
                raise :class:`hpo32.search.models.InvalidConfig`.
            epochs: epochs this trial trains (a Hyperband rung may train fewer than
                ``full_epochs``).
            full_epochs: the full fidelity; a trial set to fewer epochs is recorded PRUNED.
            extra_attrs: engine-specific user attributes.

        Returns:
            The validation accuracy after the last epoch (what the tuner's oracle sees).

        Raises:
            keras_tuner.errors.FailedTrialError: the config cannot be built, or training
                stopped before the first epoch ended; the trial is recorded as FAIL.
            KeyboardInterrupt: after recording the trial as FAIL (``stopped_by: interrupt``)
                with the epochs it measured.
        """
        from keras_tuner.errors import FailedTrialError
        from optuna.trial import TrialState

        done = self.recorded(trial_id)
        if done is not None:  # recorded before a crash: tell the tuner, never rerun
            if done.state == TrialState.FAIL:
                raise FailedTrialError(done.user_attrs["fail_reason"])
            return float(done.value)

        # The model's folder is named by the tuner's trial id: the Optuna trial number is
        # only known once the finished trial is added, and finished trials are immutable.
        family = parse_engine(self.engine)[0].name
        added = AddedTrial(self.study, self.ctx.space, config, f"{family}-trial-{trial_id}")
        outcome = record_trial(
            added,
            self.ctx,
            config,
            train,
            engine=self.engine,
            epochs=epochs,
            full_epochs=full_epochs,
            attrs={TUNER_TRIAL_ATTR: trial_id, **(extra_attrs or {})},
            start_event={"engine_trial_id": trial_id},
        )
        if outcome.state == "FAIL" or outcome.value is None:  # recorded: the tuner moves on
            raise FailedTrialError(outcome.fail_reason)
        return outcome.value


@functools.cache
def tuner_mixin() -> type:
    """The methods every hpo32 tuner (KerasTuner or AutoKeras) overrides.

    The returned class goes first in a tuner class's bases; the tuner instance needs the
    attributes ``_hpo32`` (a :class:`TrialMirror`) and ``_hpo32_trial`` (a function
    ``(tuner, trial) -> float`` that runs one trial through the mirror).
    """
    import keras_tuner as kt

    class MirroredTuner:
        """Stops before a trial when the budget is spent; mirrors trials; no final fit."""

        _hpo32: TrialMirror
        _hpo32_trial: Callable[[Any, Any], float]

        def pre_create_trial(self) -> None:
            self._hpo32.check_continue()

        def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
            try:
                return {"val_accuracy": self._hpo32_trial(self, trial)}
            except kt.errors.FailedTrialError:
                raise
            except Exception as exc:  # KerasTuner would swallow it; hpo32 surfaces it
                self._hpo32.error = exc
                raise kt.errors.FatalError(str(exc)) from exc

        def on_trial_end(self, trial: Any) -> None:
            super().on_trial_end(trial)  # type: ignore[misc]  # the tuner's, next in the MRO
            self._hpo32.trial_closed()

        def on_search_end(self) -> None:
            # The oracle proposed no further trial. Ending here also skips AutoKeras'
            # final refit of the best model: hpo32 keeps each trial's own model.
            raise SearchStopped("exhausted")

    return MirroredTuner


def trial_runner(
    ctx: SearchContext, config_of: Callable[[Any, SearchSpace], dict[str, Any]]
) -> Callable[[Any, Any], float]:
    """The ``run_trial(tuner, trial)`` both tuner engines use: read the trial's config with
    ``config_of(hp, space)``, train it with hpo32's routine for its rung's epochs under the
    budgets, and record it through the tuner's mirror."""

    def run_trial(tuner: Any, trial: Any) -> float:
        hp = trial.hyperparameters
        config = config_of(hp, ctx.space)
        epochs, full, extra = rung_of(hp, ctx.epochs, tuner.oracle)

        def train(config: Mapping[str, Any], report: ReportFn, seed: int) -> Any:
            return ctx.train(config, epochs=epochs, report=report, seed=seed)

        return tuner._hpo32.run(
            trial.trial_id, config, train, epochs=epochs, full_epochs=full, extra_attrs=extra
        )

    return run_trial


def rung_of(hp: Any, epochs: int, oracle: Any) -> tuple[int, int, dict[str, Any]]:
    """The epochs a tuner trial trains, its full fidelity and the attributes that say so.

    A Hyperband oracle sets ``tuner/epochs`` (this rung's epochs) and the bracket and round;
    a promoted trial names the trial it continues in ``tuner/trial_id``. hpo32 trains every
    trial from scratch for its rung's epochs (the training routine does not warm-start).

    Args:
        hp: the trial's ``keras_tuner.HyperParameters``.
        epochs: the search's epochs per trial (``ctx.epochs``).
        oracle: the tuner's oracle (Hyperband's ``max_epochs`` is the full fidelity).

    Returns:
        ``(epochs, full_epochs, extra_attrs)``.
    """
    values = hp.values
    if "tuner/epochs" not in values:
        return epochs, epochs, {}
    extra: dict[str, Any] = {
        "kt_bracket": int(values["tuner/bracket"]),
        "kt_round": int(values["tuner/round"]),
    }
    if values.get("tuner/trial_id") is not None:
        extra["kt_promoted_from"] = str(values["tuner/trial_id"])
    return int(values["tuner/epochs"]), int(oracle.max_epochs), extra


class ProjectBusy(RuntimeError):
    """Another process is running the same study's tuner project."""


@contextlib.contextmanager
def project_lock(path: Path, library: str, study_name: str) -> Iterator[None]:
    """Holds an exclusive lock on ``path`` while a tuner project is in use.

    A KerasTuner or AutoKeras project takes one worker at a time: two processes would hand
    out the same trial ids and overwrite each other's oracle state.

    Raises:
        ProjectBusy: another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): one worker is the documented rule
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ProjectBusy(
                f"another process is running the {library} search of study '{study_name}' "
                f"(lock {path}); a {library} search takes one worker at a time, so wait for "
                "it to end or stop it."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_search(
    study: Any,
    ctx: SearchContext,
    engine: str,
    *,
    project: str,
    library: str,
    make_tuner: Callable[[bool], Any],
    run_trial: Callable[[Any, Any], float],
    search: Callable[[Any], Any],
    on_trial_done: Callable[[], None] | None = None,
) -> str:
    """The run of a tuner engine, shared by KerasTuner and AutoKeras.

    Returns at once when the budget is spent or ``n_trials`` reached; else, holding the
    project lock, decides whether the project folder ``ctx.artifact_dir / project`` is
    reloaded or started afresh (:func:`prepare_project`), builds the tuner, and runs its
    search loop until :class:`SearchStopped`.

    Args:
        study: the Optuna study.
        ctx: the search context.
        engine: the engine name recorded with every trial.
        project: the project folder's name.
        library: "KerasTuner" or "AutoKeras", for messages.
        make_tuner: ``make_tuner(overwrite)`` builds the tuner (its class from
            :func:`tuner_mixin`).
        run_trial: ``run_trial(tuner, trial)`` runs one trial through the tuner's
            :class:`TrialMirror` (``tuner._hpo32``) and returns its value.
        search: ``search(tuner)`` starts the tuner's search loop.
        on_trial_done: called with no arguments after each trial.

    Returns:
        ``"budget"``, ``"n_trials"`` or ``"exhausted"``.

    Raises:
        ProjectMissing, ProjectBusy: see :func:`prepare_project`, :func:`project_lock`.
        The unexpected exception that ended a trial (KerasTuner would only log it).
    """
    import keras_tuner as kt

    mirror = TrialMirror(study, ctx, engine, on_trial_done)
    try:
        mirror.check_continue()
    except SearchStopped as stop:
        return stop.reason
    with project_lock(ctx.artifact_dir / f"{project}.lock", library, study.study_name):
        overwrite = prepare_project(study, engine, ctx.artifact_dir / project, library)
        tuner = make_tuner(overwrite)
        tuner._hpo32 = mirror
        tuner._hpo32_trial = run_trial
        try:
            search(tuner)
        except SearchStopped as stop:
            return stop.reason
        except kt.errors.FatalError:
            if mirror.error is not None:
                raise mirror.error from None
            raise
    return "exhausted"
