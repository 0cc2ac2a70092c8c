"""``hpo32 compare``: studies (engines) side by side, from the records of the one database."""

from __future__ import annotations

from typing import Any

from hpo32.storage import queries

__all__ = ["compare_studies"]


def compare_studies(records, names: list[str]) -> list[dict[str, Any]]:
    """One row per study: engine, dataset, trials by state, best validation accuracy, test
    accuracy of the best, seconds from the first trial's start until a trial reached 95% of
    the best, and the median seconds per finished trial.

    Raises:
        LookupError: a name is not a study of the database.
    """
    summaries = {s.name: s for s in records.summaries(names)}
    missing = [n for n in names if n not in summaries]
    if missing:
        raise LookupError(f"no study named '{missing[0]}'; see hpo32 list.")
    out = []
    for name in names:
        # in completion order (unfinished ones first; only finished trials are timed below)
        rows = sorted(
            queries.trials(records.engine, name),
            key=lambda t: (t.completed is not None, t.completed or 0.0),
        )
        summary = summaries[name]
        best = summary.best_value
        starts = [r.started for r in rows if r.started is not None]
        durations = sorted(
            r.completed - r.started
            for r in rows
            if r.started is not None
            and r.completed is not None
            and r.state in ("COMPLETE", "PRUNED")
        )
        to_95 = None
        if best is not None and starts:
            first = min(starts)
            for r in rows:
                if r.state == "COMPLETE" and r.value is not None and r.value >= 0.95 * best:
                    to_95 = None if r.completed is None else r.completed - first
                    break
        result = records.result(name)
        out.append(
            {
                "study": name,
                "engine": summary.engine,
                "dataset": summary.dataset,
                "states": summary.states,
                "best_val_accuracy": best,
                "test_accuracy": result["test_accuracy"] if result else None,
                "seconds_to_95pct_of_best": to_95,
                "median_seconds_per_trial": durations[len(durations) // 2] if durations else None,
            }
        )
    return out
