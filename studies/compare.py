"""``hpo32 compare``: studies (engines) side by side, from SQL over the one database."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hpo32.storage.records import to_timestamp as _ts

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
    meta = sa.MetaData()
    studies = sa.Table("studies", meta, autoload_with=records.engine)
    trials = sa.Table("trials", meta, autoload_with=records.engine)
    values = sa.Table("trial_values", meta, autoload_with=records.engine)
    out = []
    for name in names:
        with records.engine.connect() as con:
            rows = con.execute(
                sa.select(
                    trials.c.state,
                    trials.c.datetime_start,
                    trials.c.datetime_complete,
                    values.c.value,
                )
                .join(studies, studies.c.study_id == trials.c.study_id)
                .outerjoin(
                    values, (values.c.trial_id == trials.c.trial_id) & (values.c.objective == 0)
                )
                .where(studies.c.study_name == name)
                .order_by(trials.c.datetime_complete)
            ).all()
        summary = summaries[name]
        best = summary.best_value
        states = [str(getattr(r.state, "name", r.state)) for r in rows]
        starts = [_ts(r.datetime_start) for r in rows if r.datetime_start is not None]
        durations = sorted(
            _ts(r.datetime_complete) - _ts(r.datetime_start)
            for r, state in zip(rows, states, strict=True)
            if r.datetime_start is not None
            and r.datetime_complete is not None
            and state in ("COMPLETE", "PRUNED")
        )
        to_95 = None
        if best is not None and starts:
            first = min(starts)
            for r, state in zip(rows, states, strict=True):
                if state == "COMPLETE" and r.value is not None and r.value >= 0.95 * best:
                    to_95 = _ts(r.datetime_complete) - first
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
