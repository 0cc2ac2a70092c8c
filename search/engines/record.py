"""The one recording routine of a trial, shared by every engine.

:func:`record_trial` trains one config with the engine's train function and records it as an
Optuna trial of the study: the user attributes every engine sets (``engine``, ``dataset``,
``epochs``, ``config``, ``worker``, ``gpu`` when the worker was given one, then the training
result's ``history``, timings and fidelity, ``model_path`` of a saved model), the events of the
live line (``trial_start``, ``epoch``, ``trial_end``), the model of a trial among the study's
``keep_top`` best saved as ``.keras`` (and the ones it pushes out deleted, see
:func:`drop_superseded`), and the rules for a trial that ends without a result:

- a config the builder refuses (``InvalidConfig``) is FAIL with its ``fail_reason``;
- a trial that measured no epoch is FAIL with ``fail_reason``; when the search budget cut it,
  its config is still untried and runs again (for the Optuna engine: queued first);
- Ctrl-C or SIGTERM (``KeyboardInterrupt``) is FAIL with ``stopped_by: interrupt`` and the
  epochs it measured; its config runs again; the interrupt propagates;
- any other exception is FAIL with ``error``, and propagates;
- a trial that trained fewer epochs than the full fidelity (stopped by the pruner, or a
  Hyperband rung) is PRUNED; only COMPLETE trials compete for the best model.

Engines differ only in how a trial comes into the study, a :class:`TrialRecorder`:

- :class:`AskedTrial`: the Optuna engine's, asked from the study before it trains
  (``study.ask()``); attributes and intermediate values are written as they come, the pruner
  is consulted after each epoch, the outcome is ``study.tell``; a config that runs again is
  queued with ``enqueue_trial``.
- :class:`AddedTrial`: the tuner engines', written once the tuner's trial has ended
  (``optuna.trial.create_trial`` + ``study.add_trial``): finished trials are immutable, so
  everything is kept until then; the tuner itself retries what runs again. Idempotence on a
  resumed tuner trial (never train or record a trial id twice) is the mirror's, see
  :class:`hpo32.search.engines.tuner.TrialMirror`.

The fault point ``before_tell`` lies between a trial's training and its recording. This
module imports Optuna only inside functions.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from hpo32.search import faults
from hpo32.search.engines.base import SearchContext, TrainFn, best_value, save_model, worker_id
from hpo32.search.engines.optuna_space import optuna_params
from hpo32.search.space import SearchSpace

__all__ = [
    "AddedTrial",
    "AskedTrial",
    "Recorded",
    "TrialRecorder",
    "among_kept",
    "drop_superseded",
    "kept_numbers",
    "record_trial",
    "remove_model",
]

#: The states a recorded trial ends in (Optuna's ``TrialState`` names).
COMPLETE, PRUNED, FAIL = "COMPLETE", "PRUNED", "FAIL"


@dataclass(frozen=True)
class Recorded:
    """How a recorded trial ended.

    Attributes:
        state: ``"COMPLETE"``, ``"PRUNED"`` or ``"FAIL"``.
        value: the validation accuracy after its last epoch (None for FAIL).
        fail_reason: why a FAIL trial produced no value.
    """

    state: str
    value: float | None = None
    fail_reason: str | None = None


class TrialRecorder:
    """How one trial comes into the study: the only part in which engines differ.

    Attributes:
        study: the ``optuna.Study`` the trial belongs to.
        number: the trial's number in the study (its seed is ``ctx.seed + number``).
        model_folder: the folder under the artifact folder for its model, if a new best.
        finished: whether :meth:`finish` recorded its outcome.
    """

    study: Any
    number: int
    model_folder: str
    finished: bool = False

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Records user attributes of the trial."""
        raise NotImplementedError

    def report(self, step: int, value: float) -> None:
        """Records the validation accuracy after epoch ``step`` (from 1)."""
        raise NotImplementedError

    def should_prune(self) -> bool:
        """Whether the trial should stop now (after the last :meth:`report`)."""
        return False

    def retry(self) -> None:
        """The trial measured nothing worth keeping: its config should run again."""

    def finish(self, state: str, value: float | None) -> None:
        """Records the trial's outcome (``state`` one of COMPLETE, PRUNED, FAIL)."""
        raise NotImplementedError


class AskedTrial(TrialRecorder):
    """A trial the Optuna engine asked for (``study.ask()``), recorded as it runs.

    Args:
        trial: the ``optuna.trial.Trial``.
    """

    def __init__(self, trial: Any) -> None:
        self.trial = trial
        self.study = trial.study
        self.number = trial.number
        self.model_folder = f"trial-{trial.number}"

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        for key, value in attrs.items():
            self.trial.set_user_attr(key, value)

    def report(self, step: int, value: float) -> None:
        self.trial.report(value, step)

    def should_prune(self) -> bool:
        return bool(self.trial.should_prune())

    def retry(self) -> None:
        """Queues the trial's params to run first in the next session."""
        self.study.enqueue_trial(self.trial.params, user_attrs={"retry_of": self.number})

    def finish(self, state: str, value: float | None) -> None:
        from optuna.trial import TrialState

        if state == COMPLETE:
            self.study.tell(self.trial, value)
        else:  # a pruned trial's value is its last intermediate value (Optuna's rule)
            self.study.tell(self.trial, state=TrialState[state])
        self.finished = True


class AddedTrial(TrialRecorder):
    """A tuner's trial, added to the study as a finished trial once it has ended.

    Args:
        study: the ``optuna.Study``.
        space: the one search space (the params' distributions are derived from it).
        config: the trial's config.
        model_folder: the folder of its model (named by the tuner's trial id: the Optuna
            trial number is only known once the trial is added).
    """

    def __init__(
        self, study: Any, space: SearchSpace, config: Mapping[str, Any], model_folder: str
    ) -> None:
        self.study = study
        self.space = space
        self.config = dict(config)
        self.model_folder = model_folder
        self.number = len(study.get_trials(deepcopy=False))
        self.started = datetime.now()
        self.attrs: dict[str, Any] = {}
        self.steps: dict[int, float] = {}

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        self.attrs.update(attrs)

    def report(self, step: int, value: float) -> None:
        if not math.isnan(value):
            self.steps[step] = float(value)

    def finish(self, state: str, value: float | None) -> None:
        import optuna
        from optuna.trial import TrialState

        params, dists = optuna_params(self.space, self.config)
        trial = optuna.trial.create_trial(
            state=TrialState[state],
            value=value,
            params=params,
            distributions=dists,
            user_attrs=dict(self.attrs),
            intermediate_values=dict(self.steps),
        )
        trial.datetime_start = self.started
        trial.datetime_complete = datetime.now()
        self.study.add_trial(trial)
        self.finished = True


def record_trial(
    rec: TrialRecorder,
    ctx: SearchContext,
    config: Mapping[str, Any],
    train: TrainFn,
    *,
    engine: str,
    epochs: int,
    full_epochs: int | None = None,
    attrs: Mapping[str, Any] | None = None,
    start_event: Mapping[str, Any] | None = None,
) -> Recorded:
    """Trains ``config`` with ``train`` and records the trial through ``rec``.

    Args:
        rec: how the trial comes into the study (:class:`AskedTrial`, :class:`AddedTrial`).
        ctx: the search context (events, seed, dataset, artifact folder).
        config: the trial's config (plain values under the space's names).
        train: trains the config, see :data:`hpo32.search.engines.base.TrainFn`; may raise
            :class:`hpo32.search.models.InvalidConfig`.
        engine: the engine's full name, recorded as ``engine``.
        epochs: the epochs this trial trains (recorded as ``epochs``).
        full_epochs: the full fidelity (default ``epochs``); a trial of fewer epochs (a
            Hyperband rung) is recorded PRUNED.
        attrs: engine-specific user attributes (e.g. the tuner's trial id).
        start_event: extra fields of the ``trial_start`` event.

    Returns:
        How the trial ended; FAIL for an invalid config or a trial that measured no epoch.

    Raises:
        KeyboardInterrupt: after recording the trial as FAIL (``stopped_by: interrupt``).
        Exception: whatever else ``train`` raised, after recording the trial as FAIL with
            ``error``.
    """
    from hpo32.search.models import InvalidConfig

    full_epochs = full_epochs or epochs

    def event(kind: str, **fields: Any) -> None:
        ctx.on_event({"kind": kind, "number": rec.number, **fields})

    def end(state: str, value: float | None = None, reason: str | None = None) -> Recorded:
        faults.point("before_tell")
        rec.finish(state, value)
        return Recorded(state, value, reason)

    first: dict[str, Any] = {
        "engine": engine,
        "dataset": ctx.dataset,
        "epochs": epochs,
        "config": dict(config),
        "worker": worker_id(),
    }
    if os.environ.get("CUDA_VISIBLE_DEVICES"):  # the GPU this worker was given (--gpus)
        first["gpu"] = os.environ["CUDA_VISIBLE_DEVICES"]
    rec.set_attrs({**first, **(attrs or {})})
    event("trial_start", config=dict(config), **(start_event or {}))

    def report(epoch: int, acc: float) -> bool:
        rec.report(epoch + 1, acc)
        event("epoch", epoch=epoch + 1, epochs=epochs, val_accuracy=acc)
        # After the last epoch nothing is left to save: the trial completes whatever its
        # rung says (successive halving's rung at epoch 9 would otherwise prune it there).
        return epoch + 1 < epochs and rec.should_prune()

    t0 = time.perf_counter()
    try:
        result = train(config, report, ctx.seed + rec.number)
    except InvalidConfig as exc:
        rec.set_attrs({"fail_reason": str(exc)})
        done = end(FAIL, reason=str(exc))
        event("trial_end", value=None, stopped_by="invalid config")
        return done
    except KeyboardInterrupt:
        rec.set_attrs({"stopped_by": "interrupt"})
        rec.retry()
        end(FAIL)
        raise
    except Exception as exc:
        rec.set_attrs({"error": f"{type(exc).__name__}: {exc}"})
        end(FAIL)
        raise
    rec.set_attrs(result.attrs())
    try:
        pruned = result.stopped_by == "pruned" or epochs < full_epochs
        return _record_outcome(rec, ctx, result, pruned, t0, end)
    finally:
        event("trial_end", value=result.value, stopped_by=result.stopped_by)
        result.release()


def _record_outcome(
    rec: TrialRecorder,
    ctx: SearchContext,
    result: Any,
    pruned: bool,
    t0: float,
    end: Callable[..., Recorded],
) -> Recorded:
    """Records a trained trial's outcome: FAIL when it measured no epoch (queued again when
    the search's end cut it), else PRUNED or COMPLETE, saving its model when it ranks among
    the study's ``ctx.keep_top`` best and deleting the models it pushed out."""
    if result.value is None:
        reason = f"stopped by the {result.stopped_by} before the first epoch ended"
        rec.set_attrs({"fail_reason": reason})
        if result.stopped_by == "search_budget":  # the config is still untried
            rec.retry()
        return end(FAIL, reason=reason)
    timings: dict[str, Any] = {}
    keep = max(1, ctx.keep_top)
    if not pruned and among_kept(rec.study, result.value, keep):
        t_save = time.perf_counter()
        timings["model_path"] = save_model(result.model, ctx, rec.model_folder)
        timings["save_seconds"] = round(time.perf_counter() - t_save, 3)
    timings["trial_seconds"] = round(time.perf_counter() - t0, 3)
    rec.set_attrs(timings)
    done = end(PRUNED if pruned else COMPLETE, float(result.value))
    if "model_path" in timings:  # recorded: a model it pushed out of the kept ones goes
        try:
            drop_superseded(rec.study, ctx, keep)
        except Exception:  # never fails a recorded trial: hpo32 gc removes what is left
            pass
    return done


# -- the kept models --------------------------------------------------------------------------
# A study keeps the models of its ``keep_top`` best complete trials (the spec's key, default
# 1: the best only). A trial saves its model only if it ranks among them when it ends, and
# once it is recorded complete, the models its arrival pushed out are deleted (their trial's
# ``model_path`` cleared first, so no record points at a missing file).
# No lock is needed between workers: a trial outside the best ``keep`` of the complete trials
# some worker sees can never rank among them again (complete trials only come, never go), so
# no worker deletes a model another one still keeps, and the best's is never deleted.


def among_kept(study: Any, value: float, keep: int) -> bool:
    """Whether a complete trial of ``value`` ends among the study's ``keep`` best (a tie
    goes to the earlier trial, as in the best trial's choice)."""
    from optuna.trial import TrialState

    if keep <= 1:
        best = best_value(study)
        return best is None or value > best
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    values = sorted((t.value for t in trials), reverse=True)
    return len(values) < keep or value > values[keep - 1]


def kept_numbers(trials: Iterable[tuple[int, float]], keep: int) -> set[int]:
    """The numbers of the ``keep`` best of ``(number, value)`` pairs (value first, then the
    earlier number)."""
    ranked = sorted(trials, key=lambda nv: (-nv[1], nv[0]))
    return {number for number, _ in ranked[: max(1, keep)]}


def drop_superseded(study: Any, ctx: SearchContext, keep: int) -> list[str]:
    """Deletes the model files of the study's complete trials that are no longer among its
    ``keep`` best, each after its trial's ``model_path`` is cleared (nothing is deleted
    where the study's storage is not a database hpo32 can write).

    Returns:
        The deleted models' paths, relative to ``ctx.artifact_root``.
    """
    from optuna.trial import TrialState

    saved = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("model_path")
    ]
    kept = kept_numbers(((t.number, float(t.value)) for t in saved), keep)
    folder = ctx.artifact_dir.resolve()
    gone = []
    for t in saved:
        path = ctx.artifact_root / str(t.user_attrs["model_path"])
        # a path this process saw before another worker deleted it is skipped
        if t.number not in kept and path.is_file() and path.resolve().is_relative_to(folder):
            gone.append((t.number, path))
    engine = _sql_engine(study) if gone else None
    if engine is None:
        return []
    from hpo32.storage.records import drop_model_paths

    drop_model_paths(engine, study.study_name, [number for number, _ in gone])
    for _, path in gone:
        remove_model(path)
    return [str(path.relative_to(ctx.artifact_root)) for _, path in gone]


def remove_model(path: Path) -> int:
    """Deletes a saved model file, a partial one beside it, and its folder once empty.

    Returns:
        The bytes freed.
    """
    from hpo32.search.engines.base import PARTIAL_MODEL_FILE

    freed = 0
    for file in (path, path.with_name(PARTIAL_MODEL_FILE)):
        with contextlib.suppress(FileNotFoundError):
            size = file.stat().st_size
            file.unlink()
            freed += size
    with contextlib.suppress(OSError):  # not empty: something else lies there
        path.parent.rmdir()
    return freed


def _sql_engine(study: Any) -> Any:
    """The SQLAlchemy engine under the study's Optuna RDB storage (through Optuna's cache
    wrapper), or None for another storage."""
    import sqlalchemy as sa

    storage = getattr(study, "_storage", None)
    backend = getattr(storage, "_backend", storage)
    engine = getattr(backend, "engine", None)
    return engine if isinstance(engine, sa.engine.Engine) else None
