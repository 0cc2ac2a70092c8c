"""``hpo32 compare``: studies (engines) side by side, from the records of the one database."""

from __future__ import annotations

import time
from typing import Any

from hpo32.storage import queries
from hpo32.storage.records import Records, search_clock, search_intervals

__all__ = ["compare_studies"]


def compare_studies(records: Records, names: list[str]) -> list[dict[str, Any]]:
    """One row per study: engine, dataset, fidelity, trials by state, best validation
    accuracy, test accuracy of the best, seconds of search (the budget's clock: pauses
    between sessions left out) until a trial reached 95% of the best, and the median
    seconds per finished trial.

    Raises:
        LookupError: a name is not a study of the database.
    """
    summaries = {s.name: s for s in records.summaries(names)}
    missing = [n for n in names if n not in summaries]
    if missing:
        raise LookupError(f"no study named '{missing[0]}'; see hpo32 list.")
    now = time.time()
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
        spans = [(r.started, r.completed, r.state) for r in rows]
        clock = search_clock(search_intervals(queries.sessions(records.engine, name), spans, now))
        to_95 = None
        if best is not None and starts:
            for r in rows:
                if r.state == "COMPLETE" and r.value is not None and r.value >= 0.95 * best:
                    to_95 = None if r.completed is None else clock(r.completed)
                    break
        fidelity = queries.study_fidelity(records.engine, name)
        result = records.result(name)
        out.append(
            {
                "study": name,
                "engine": summary.engine,
                "dataset": summary.dataset,
                "fidelity": fidelity.label(),
                "states": summary.states,
                "best_val_accuracy": best,
                "test_accuracy": result["test_accuracy"] if result else None,
                "seconds_to_95pct_of_best": to_95,
                "median_seconds_per_trial": durations[len(durations) // 2] if durations else None,
            }
        )
    return out
