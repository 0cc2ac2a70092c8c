"""What every engine shares: the search context (data, budgets, failures, the test reserve),
the model artifact of a new best, and the study counts that end a search.

An engine turns the one :class:`~hpo32.search.space.SearchSpace` into its library's terms,
asks its library for configs, trains each with :meth:`SearchContext.train` and records it
through :mod:`hpo32.search.engines.record` (the contract: :mod:`hpo32.search.engines.registry`).
This module imports no ML framework at import time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Mapping

from hpo32.search import faults
from hpo32.search.space import SearchSpace

__all__ = [
    "Event",
    "LockFn",
    "MODEL_FILE",
    "PARTIAL_MODEL_FILE",
    "ReportFn",
    "SearchContext",
    "TooManyFailures",
    "TrainFn",
    "best_value",
    "finished_count",
    "save_model",
    "trial_counts",
    "worker_id",
]


class TooManyFailures(RuntimeError):
    """``max_failures`` trials in a row failed: the search stops (the message names the
    last failure's reason)."""


#: A progress event: ``{"kind": "trial_start" | "epoch" | "trial_end", ...}``.
Event = dict[str, Any]

#: Reports one epoch's validation accuracy: ``report(epoch, accuracy) -> stop``, epochs from 0.
ReportFn = Callable[[int, float], bool]

#: Trains one config: ``train(config, report, seed) -> TrialResult``.
TrainFn = Callable[[Mapping[str, Any], ReportFn, int], Any]

#: A context-manager factory serializing "count the trials, ask for one" across the workers
#: of one study (:func:`hpo32.storage.locks.study_lock`).
LockFn = Callable[[], ContextManager[Any]]


@dataclass
class SearchContext:
    """Everything an engine needs besides its own settings.

    Attributes:
        space: the one search space.
        splits: a :class:`hpo32.search.data.Splits`, loaded once per process.
        epochs: epochs per trial (the maximum fidelity).
        seed: base seed; trial k uses ``seed + k``.
        search_deadline: ``time.monotonic()`` value when the search budget runs out, or None.
        trial_budget: seconds per trial, or None.
        n_trials: finished trials (complete or pruned) the study should reach, or None.
        artifact_dir: folder for this study's artifacts (models, engine project dirs).
        artifact_root: the root that recorded artifact paths are relative to.
        dataset: the dataset's name, recorded with every trial.
        weights: pretrained weights file for the model families that use one.
        precision: ``auto``, ``float32``, ``bfloat16`` or ``float16`` (see
            :func:`hpo32.search.training.resolve_precision`).
        epoch_images: images per epoch (the unit of fidelity), when less than the training
            set: early epochs then see a part of the data and pruners judge sooner.
        test_images: images of the test split: the final evaluation's predictions (times
            the views of the trial's test-time augmentation) are held back from the search
            budget (README: budgets include the end).
        test_views: test-time augmentation views of the last trial's config.
        eval_per_image: seconds per predicted image, as the last trial's validation measured
            (0 while unknown).
        quickest_first_epoch: seconds of the quickest first epoch, with its validation, that
            a trial of this study has needed (recorded trials, then this process's); no new
            trial starts when less of the search budget is left, as it could not measure
            anything. 0 while none is known.
        on_event: receives progress events.
    """

    space: SearchSpace
    splits: Any
    epochs: int
    seed: int = 0
    search_deadline: float | None = None
    trial_budget: float | None = None
    n_trials: int | None = None
    artifact_dir: Path = Path("hpo32-artifacts")
    artifact_root: Path = Path(".")
    dataset: str = ""
    weights: str | None = None
    precision: str = "auto"
    epoch_images: int | None = None
    test_images: int = 0
    test_views: int = 1
    eval_per_image: float = 0.0
    quickest_first_epoch: float = 0.0
    max_failures: int | None = 5
    keep_top: int = 1
    failures: int = 0
    last_failure: str = ""
    on_event: Callable[[Event], None] = field(default=lambda event: None)

    def train(
        self,
        config: Mapping[str, Any],
        *,
        epochs: int | None = None,
        report: ReportFn | None = None,
        seed: int = 0,
    ) -> Any:
        """Trains ``config`` on this context's data under its budgets (a trial starting now).

        Returns:
            A :class:`hpo32.search.training.TrialResult`.
        """
        from hpo32.search.models import InvalidConfig
        from hpo32.search.recipe import tta_of, view_count
        from hpo32.search.training import train_config

        self.test_views = view_count(tta_of(config))
        try:
            result = train_config(
                config,
                self.splits,
                epochs=epochs or self.epochs,
                trial_deadline=self.trial_deadline(),
                search_deadline=self.search_deadline,
                report=report,
                seed=seed,
                weights=self.weights,
                precision=self.precision,
                epoch_images=self.epoch_images,
                reserve_images=self.test_images * self.test_views,
            )
        except InvalidConfig as exc:
            self._count_failure(str(exc))
            raise
        if result.value is not None:
            self.failures = 0
        elif result.stopped_by != "search_budget":  # the search's end is no failure
            self._count_failure(f"stopped by the {result.stopped_by} before the first epoch ended")
        if result.eval_images:
            self.eval_per_image = result.eval_seconds / result.eval_images
        first = result.first_epoch_seconds()
        if first is not None and (
            not self.quickest_first_epoch or first < self.quickest_first_epoch
        ):
            self.quickest_first_epoch = first
        return result

    def _count_failure(self, reason: str) -> None:
        self.failures += 1
        self.last_failure = reason

    def check_failures(self) -> None:
        """Called before each trial starts.

        Raises:
            TooManyFailures: the last ``max_failures`` trials of this process all failed.
        """
        if self.max_failures and self.failures >= self.max_failures:
            reason = (
                self.last_failure
                if len(self.last_failure) <= 200
                else (self.last_failure[:197] + "...")
            )
            raise TooManyFailures(
                f"the search stopped after {self.failures} failed trials in a row; the last: "
                f"{reason.rstrip('.')}. Fix the space or the budgets (hpo32 check validates a "
                "spec), or allow more with --max-failures."
            )

    def trial_deadline(self) -> float | None:
        """The monotonic deadline of a trial starting now."""
        return time.monotonic() + self.trial_budget if self.trial_budget else None

    def budget_spent(self) -> bool:
        """True when no new trial should start: less of the search budget is left than
        :attr:`quickest_first_epoch` and the final test evaluation (never when the search
        has no budget)."""
        left = self.time_left()
        return left is not None and left <= self.quickest_first_epoch + self.test_reserve()

    def test_reserve(self) -> float:
        """Seconds held back for the final test evaluation (0 until a validation measured
        the prediction speed): the test images times the last trial's views, and loading
        the saved model."""
        from hpo32.search.training import TEST_OVERHEAD_S

        if not (self.test_images and self.eval_per_image):
            return 0.0
        return self.test_images * self.test_views * self.eval_per_image + TEST_OVERHEAD_S

    def time_left(self) -> float | None:
        """Seconds left in the search budget (None when unlimited)."""
        if self.search_deadline is None:
            return None
        return self.search_deadline - time.monotonic()


def save_model(model: Any, ctx: SearchContext, folder_name: str) -> str:
    """Saves ``model`` as ``<artifact_dir>/<folder_name>/model.keras`` (``trial-N`` for
    Optuna trials, ``<engine>-trial-<id>`` for tuner trials), for inference: the compiled
    optimizer's configuration is kept (the model loads compiled, with its optimizer and
    learning rate) but not its state (slots, iterations), about two thirds of an Adam
    model's file. Keras 3 ignores ``include_optimizer=False`` for ``.keras`` files, so the
    optimizers' own variables are left out of the archive while it is written.

    The file is written as ``model.partial.keras`` and renamed into place, so a kill
    mid-save leaves a partial file (``hpo32 gc`` removes it), never a truncated model.

    Returns:
        The path relative to ``ctx.artifact_root`` (what the database records).
    """
    folder = ctx.artifact_dir / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MODEL_FILE
    partial = folder / PARTIAL_MODEL_FILE
    with _without_optimizer_state(model):
        model.save(partial)
    os.replace(partial, path)
    faults.point("model_save")
    return str(path.relative_to(ctx.artifact_root))


#: The file name of a saved model, and of one being written.
MODEL_FILE = "model.keras"
PARTIAL_MODEL_FILE = "model.partial.keras"


@contextlib.contextmanager
def _without_optimizer_state(model: Any) -> Iterator[None]:
    """While the block runs, the model's optimizer (and a loss-scale optimizer's inner
    one) saves no variables: Keras writes each saveable's ``save_own_variables``, which is
    shadowed on the instance by a no-op and restored afterwards."""
    optimizers = []
    opt = getattr(model, "optimizer", None)
    while opt is not None and hasattr(opt, "save_own_variables") and opt not in optimizers:
        optimizers.append(opt)
        opt = getattr(opt, "inner_optimizer", None)
    for opt in optimizers:  # object's own setattr: Keras' tracking never sees the no-op
        object.__setattr__(opt, "save_own_variables", _save_nothing)
    try:
        yield
    finally:
        for opt in optimizers:
            with contextlib.suppress(AttributeError):
                object.__delattr__(opt, "save_own_variables")


def _save_nothing(store: Any) -> None:
    """An optimizer's ``save_own_variables`` that writes none."""


def best_value(study: Any) -> float | None:
    """The study's best validation accuracy (the highest complete trial), or None."""
    from optuna.trial import TrialState

    values = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    return max(values) if values else None


def trial_counts(study: Any) -> dict[str, int]:
    """Trials of the study by state name (``COMPLETE``, ``PRUNED``, ``RUNNING``, ...)."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def finished_count(study: Any) -> int:
    """Trials of the study that are complete or pruned (what ``n_trials`` counts)."""
    counts = trial_counts(study)
    return counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)


def worker_id() -> str:
    """``host:pid`` of this process, recorded with every trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"
