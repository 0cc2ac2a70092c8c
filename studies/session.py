"""One session of a study: the engine's run under a heartbeat, then the best model's test.

A session row records who ran, from when to when and why it stopped; the search budget is
the union of those stretches, so it survives resumes, crashes and several workers. The
session starts at the command's start, so loading and the final test are inside the budget.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

from hpo32.search import faults, signals
from hpo32.search.engines import parse_engine
from hpo32.search.engines.base import TooManyFailures
from hpo32.storage import Records, artifact_root
from hpo32.storage.locks import study_lock
from hpo32.storage.records import SessionHeartbeat
from hpo32.studies.spec import StudySpec

if TYPE_CHECKING:
    import optuna

    from hpo32.search.data import Splits
    from hpo32.search.space import SearchSpace

__all__ = ["Outcome", "TooManyFailures", "evaluate_best", "run_session", "session_seed"]


@dataclass
class Outcome:
    """How a search session ended."""

    study: str
    reason: str  # "budget", "n_trials", "interrupted", "budget_spent"
    trials_run: int
    best_value: float | None
    test_accuracy: float | None
    test_top5: float | None = None  # ImageNet32 studies


def session_seed(seed: int, session_no: int) -> int:
    """The seed of a study's ``session_no``-th session (sampler and training): workers that
    start together see the same session count, so worker K (``$HPO32_WORKER_LABEL`` wK,
    set by ``--workers``/``--gpus``) adds K, or they would all train the same configs."""
    import os

    label = os.environ.get("HPO32_WORKER_LABEL", "")
    worker = int(label[1:]) if label[:1] == "w" and label[1:].isdigit() else 0
    return seed + 1000 * session_no + 100_003 * worker


def run_session(
    records: Records,
    study: optuna.Study,
    spec: StudySpec,
    space: SearchSpace,
    splits: Splits,
    url: str,
    on_event: Callable[[dict[str, Any]], None] | None,
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
        seed=session_seed(spec.seed, len(records.sessions(name)) - 1),
        search_deadline=deadline,
        trial_budget=spec.trial_seconds,
        n_trials=spec.n_trials,
        artifact_dir=root / name,
        artifact_root=root,
        dataset=spec.dataset,
        weights=spec.weights,
        precision=spec.precision,
        epoch_images=spec.epoch_images,
        test_images=len(splits.x_test),
        quickest_first_epoch=quickest_first_epoch,
        max_failures=spec.max_failures,
        keep_top=spec.keep_top,
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
    records: Records,
    study: optuna.Study,
    splits: Splits,
    root: Path,
    on_event: Callable[[dict[str, Any]], None] | None = None,
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
    best = max(done, key=lambda t: cast(float, t.value))  # COMPLETE: a value
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
