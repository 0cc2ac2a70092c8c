"""hpo32's own tables (``hpo32_*``) and the aggregate queries over Optuna's schema.

Optuna's tables are the system of record for trials. hpo32 adds what Optuna does not keep:
the study spec, the search budget and the sessions that consumed it (host, pid, start, last
sign of life, end, why it ended), and the test accuracy of the best trial. Summaries for
``hpo32 list``/``show`` and the dashboards are SQL aggregates, never a load of every trial.
"""

from __future__ import annotations

import bisect
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import sqlalchemy as sa

from hpo32.storage import schema

__all__ = [
    "NameTaken",
    "Records",
    "Session",
    "SessionHeartbeat",
    "StudySummary",
    "consumed_seconds",
    "drop_model_paths",
    "merge_intervals",
    "recorded_backend",
    "search_clock",
    "search_intervals",
    "to_timestamp",
]

# hpo32's tables under the names this module has always exported (declared in schema.py)
metadata = schema.metadata
studies_table = schema.hpo32_studies
sessions_table = schema.hpo32_sessions
results_table = schema.hpo32_results

#: Missed heartbeats after which an unfinished session counts as dead.
STALE_AFTER_BEATS = 4


class NameTaken(Exception):
    """Another process wrote a study of that name first."""


@dataclass
class Session:
    """One process's stretch of work on a study."""

    id: int
    study_name: str
    host: str
    pid: int
    started_at: float
    last_seen: float
    ended_at: float | None
    exit_reason: str | None
    trials_run: int
    heartbeat_s: float

    def alive(self, now: float) -> bool:
        """Unfinished and heard from within its last few heartbeats; on this host, also its
        process still there (a killed one is dead at once, not after the missed beats)."""
        if self.ended_at is not None:
            return False
        if self.host == socket.gethostname() and not _process_exists(self.pid):
            return False
        return now - self.last_seen < STALE_AFTER_BEATS * self.heartbeat_s

    def end(self, now: float) -> float:
        """Where its stretch of the budget ends: its end, now while alive, else its last beat."""
        if self.ended_at is not None:
            return self.ended_at
        return now if self.alive(now) else self.last_seen


@dataclass
class StudySummary:
    """One line of ``hpo32 list``."""

    name: str
    dataset: str | None
    engine: str | None
    states: dict[str, int]
    best_value: float | None
    budget_seconds: float | None
    used_seconds: float
    last_activity: float | None
    running: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def recorded_backend(spec: Any, attrs: Mapping[str, Any]) -> str | None:
    """The Keras backend a study trains on, from its stored spec (``spec``) and its Optuna
    user attributes (``attrs``): the spec's, else the recorded attribute, else
    ``tensorflow`` for a study hpo32 made before backends were recorded, else None (a plain
    Optuna study without the attribute: not known)."""
    named = spec.get("backend") if isinstance(spec, dict) else None
    found = named or attrs.get("backend")
    if found:
        return str(found)
    return "tensorflow" if isinstance(spec, dict) else None


def merge_intervals(
    intervals: Iterable[tuple[float, float | None]],
) -> list[tuple[float, float]]:
    """The union of ``(start, end)`` intervals as disjoint stretches in time order.

    Empty and reversed intervals, and those without an end, are left out; touching or
    overlapping ones become one stretch.
    """
    merged: list[list[float]] = []
    for start, end in sorted((s, e) for s, e in intervals if e is not None and e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def consumed_seconds(intervals: list[tuple[float, float]]) -> float:
    """Wall-clock seconds covered by the union of ``(start, end)`` intervals.

    Concurrent workers of one study overlap; the search budget is wall-clock for the study,
    so overlapping stretches count once.
    """
    return sum((end - start for start, end in merge_intervals(intervals)), 0.0)


def search_clock(intervals: Iterable[tuple[float, float]]) -> Callable[[float], float]:
    """A map from a wall-clock time to the seconds of search spent before it: the one
    definition of search time (``compare``, the dashboards, the budget all use it).

    ``intervals`` are the stretches when the study was being searched (see
    :func:`search_intervals`); gaps between resumes do not count, overlaps count once.
    """
    merged = merge_intervals(intervals)  # the union the budget is counted over
    starts = [m[0] for m in merged]
    before = []
    total = 0.0
    for start, end in merged:
        before.append(total)
        total += end - start

    def spent(t: float) -> float:
        i = bisect.bisect_right(starts, t) - 1
        if i < 0:
            return 0.0
        start, end = merged[i]
        return before[i] + (min(t, end) - start)

    return spent


def search_intervals(
    sessions: Sequence[Session],
    trials: Iterable[tuple[float | None, float | None, str]],
    now: float,
) -> list[tuple[float, float]]:
    """When a study was being searched: its sessions' stretches, plus the spans of trials
    outside every session (mirrored late, clock skew); for a plain Optuna study without
    sessions, the time some trial was running. ``trials`` are ``(start, complete, state)``.
    """
    intervals = [(float(s.started_at), float(s.end(now))) for s in sessions]
    spans = list(trials)
    if not intervals:
        for start, done, state in spans:
            if start is not None:
                end = done if done is not None else (now if state == "RUNNING" else start)
                intervals.append((start, end))
        return intervals
    covered = list(intervals)
    for start, done, _ in spans:
        if start is not None and done is not None and not any(a <= done <= b for a, b in covered):
            intervals.append((start, done))
    return intervals


class SessionHeartbeat:
    """A daemon thread that marks a session alive every ``interval`` seconds (default
    :func:`hpo32.storage.db.heartbeat_seconds`).

    Use as a context manager around a session's work; a killed process stops beating, so
    its budget ends at its last heartbeat.
    """

    def __init__(self, records: Records, session_id: int, interval: float | None = None) -> None:
        import threading

        from hpo32.storage.db import heartbeat_seconds

        self._records, self._session = records, session_id
        self._interval = interval or heartbeat_seconds()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="hpo32-session-heartbeat", daemon=True
        )

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._records.touch_session(self._session)
            except Exception:  # a missed beat is retried at the next interval
                pass

    def __enter__(self) -> SessionHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Records:
    """hpo32's tables over one SQLAlchemy engine (the same database as Optuna's).

    Args:
        engine: from :func:`hpo32.storage.db.make_engine`.
        create: create the ``hpo32_*`` tables when missing (writers do; read-only users not).
    """

    def __init__(self, engine: sa.Engine, create: bool = True) -> None:
        self.engine = engine
        if create:
            schema.create_hpo32_tables(engine)
        else:
            from hpo32.storage.migrations import check_readable

            check_readable(engine)

    # -- studies -------------------------------------------------------------------------
    def add_study(
        self,
        name: str,
        engine_name: str,
        dataset: str,
        spec: dict[str, Any],
        budget_seconds: float | None,
        class_ids: list[str] | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        """Writes study ``name``'s row and its classes (ids and names in label order), in
        one transaction with the removal of any rows an earlier study of that name left
        (its sessions would bill this one's budget).

        Raises:
            NameTaken: another process wrote the row first (nothing is written).
        """
        from hpo32.storage.migrations import write_classes

        try:
            with self.engine.begin() as con:
                _delete_rows(con, name, (sessions_table, results_table))
                ids = list(class_ids or [])
                write_classes(con, name, ids, list(class_names or ids))
                con.execute(
                    studies_table.insert().values(
                        name=name,
                        engine=engine_name,
                        dataset=dataset,
                        spec_json=json.dumps(spec),
                        budget_seconds=budget_seconds,
                        created_at=time.time(),
                    )
                )
        except sa.exc.IntegrityError:
            raise NameTaken(name) from None

    def forget_study(self, name: str) -> None:
        """Deletes hpo32's rows of study ``name`` (its row, sessions and result), together.

        For rows a study deleted with Optuna's own tools left behind; Optuna's tables are not
        touched.
        """
        with self.engine.begin() as con:
            _delete_rows(
                con, name, (sessions_table, results_table, schema.hpo32_classes, studies_table)
            )

    def delete_study(self, name: str) -> None:
        """Deletes study ``name`` from Optuna's tables and hpo32's, in one transaction."""
        trial_children = (
            "trial_params",
            "trial_values",
            "trial_intermediate_values",
            "trial_user_attributes",
            "trial_system_attributes",
            "trial_heartbeats",
        )
        study_children = ("study_directions", "study_user_attributes", "study_system_attributes")
        with self.engine.begin() as con:
            present = set(sa.inspect(con).get_table_names())
            md = sa.MetaData()

            def table(table_name: str) -> sa.Table:
                return sa.Table(table_name, md, autoload_with=con)

            if "studies" in present:
                studies = table("studies")
                sid = con.execute(
                    sa.select(studies.c.study_id).where(studies.c.study_name == name)
                ).scalar()
                if sid is not None:
                    trials = table("trials")
                    ids = sa.select(trials.c.trial_id).where(trials.c.study_id == sid)
                    for child in trial_children:
                        if child in present:
                            t = table(child)
                            con.execute(t.delete().where(t.c.trial_id.in_(ids)))
                    con.execute(trials.delete().where(trials.c.study_id == sid))
                    for child in study_children:
                        if child in present:
                            t = table(child)
                            con.execute(t.delete().where(t.c.study_id == sid))
                    con.execute(studies.delete().where(studies.c.study_id == sid))
            if "hpo32_studies" in present:
                _delete_rows(
                    con, name, (sessions_table, results_table, schema.hpo32_classes, studies_table)
                )

    def study(self, name: str) -> dict[str, Any] | None:
        """The stored row of a study (spec decoded), or None."""
        with self.engine.connect() as con:
            row = con.execute(sa.select(studies_table).where(studies_table.c.name == name)).first()
        if row is None:
            return None
        out = dict(row._mapping)
        try:
            out["spec"] = json.loads(out.pop("spec_json"))
        except (TypeError, ValueError):
            from hpo32.storage.db import StorageError

            raise StorageError(
                f"the stored spec of study '{name}' is damaged (not JSON); restore the "
                f"database from a copy, or delete the study with: hpo32 delete {name}"
            ) from None
        return out

    def set_spec(self, name: str, spec: dict[str, Any]) -> None:
        """Replaces study ``name``'s stored spec (a resume's new data folder or budgets)."""
        with self.engine.begin() as con:
            con.execute(
                studies_table.update()
                .where(studies_table.c.name == name)
                .values(spec_json=json.dumps(spec))
            )

    def set_budget(self, name: str, budget_seconds: float | None) -> None:
        with self.engine.begin() as con:
            con.execute(
                studies_table.update()
                .where(studies_table.c.name == name)
                .values(budget_seconds=budget_seconds)
            )

    # -- sessions ------------------------------------------------------------------------
    def begin_session(self, study_name: str, started_at: float | None = None) -> int:
        """Records a session of ``study_name`` starting now, or at ``started_at`` (epoch
        seconds: the command's start, so that the budget it used includes its loading)."""
        from hpo32.storage.db import heartbeat_seconds

        now = time.time()
        with self.engine.begin() as con:
            res = con.execute(
                sessions_table.insert().values(
                    study_name=study_name,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=now if started_at is None else min(started_at, now),
                    last_seen=now,
                    trials_run=0,
                    heartbeat_s=float(heartbeat_seconds()),
                )
            )
            key = res.inserted_primary_key
            assert key is not None  # an insert into a table with a primary key has one
            return int(key[0])

    def touch_session(self, session_id: int, trials_run: int | None = None) -> None:
        values: dict[str, Any] = {"last_seen": time.time()}
        if trials_run is not None:
            values["trials_run"] = trials_run
        with self.engine.begin() as con:
            con.execute(
                sessions_table.update().where(sessions_table.c.id == session_id).values(**values)
            )

    def end_session(self, session_id: int, reason: str, trials_run: int) -> None:
        now = time.time()
        with self.engine.begin() as con:
            con.execute(
                sessions_table.update()
                .where(sessions_table.c.id == session_id)
                .values(ended_at=now, last_seen=now, exit_reason=reason, trials_run=trials_run)
            )

    def sessions(self, study_name: str) -> list[Session]:
        with self.engine.connect() as con:
            rows = con.execute(
                sa.select(sessions_table)
                .where(sessions_table.c.study_name == study_name)
                .order_by(sessions_table.c.id)
            ).all()
        return [Session(**row._mapping) for row in rows]

    def used_seconds(self, study_name: str, now: float | None = None) -> float:
        """Search budget consumed: the union of all sessions' stretches, up to ``now``.

        A session still running counts up to ``now``; one that stopped without ending (a
        killed process) counts up to its last sign of life.
        """
        now = time.time() if now is None else now
        intervals = [(s.started_at, s.end(now)) for s in self.sessions(study_name)]
        return consumed_seconds(intervals)

    # -- results -------------------------------------------------------------------------
    def set_result(
        self,
        study_name: str,
        trial_number: int,
        val_accuracy: float | None,
        test_accuracy: float | None,
        model_path: str | None,
    ) -> None:
        with self.engine.begin() as con:
            con.execute(results_table.delete().where(results_table.c.study_name == study_name))
            con.execute(
                results_table.insert().values(
                    study_name=study_name,
                    trial_number=trial_number,
                    val_accuracy=val_accuracy,
                    test_accuracy=test_accuracy,
                    model_path=model_path,
                    evaluated_at=time.time(),
                )
            )

    def result(self, study_name: str) -> dict[str, Any] | None:
        with self.engine.connect() as con:
            row = con.execute(
                sa.select(results_table).where(results_table.c.study_name == study_name)
            ).first()
        return dict(row._mapping) if row else None

    # -- queries over Optuna's tables -------------------------------------------------------
    def best_trial(self, study_name: str) -> dict[str, Any] | None:
        """The best complete trial (highest value): number, value, duration, config, attrs."""
        trials, values, studies = schema.trials, schema.trial_values, schema.studies
        with self.engine.connect() as con:
            row = con.execute(
                sa.select(
                    trials.c.trial_id,
                    trials.c.number,
                    values.c.value,
                    trials.c.datetime_start,
                    trials.c.datetime_complete,
                )
                .join(values, values.c.trial_id == trials.c.trial_id)
                .join(studies, studies.c.study_id == trials.c.study_id)
                .where(
                    studies.c.study_name == study_name,
                    schema.state_is("COMPLETE"),
                    values.c.objective == 0,
                )
                .order_by(values.c.value.desc(), trials.c.number)
                .limit(1)
            ).first()
            if row is None:
                return None
            ua = schema.trial_user_attributes
            attrs = {
                k: json.loads(v)
                for k, v in con.execute(
                    sa.select(ua.c.key, ua.c.value_json).where(ua.c.trial_id == row.trial_id)
                )
            }
            tp = schema.trial_params
            params = con.execute(
                sa.select(tp.c.param_name, tp.c.param_value, tp.c.distribution_json).where(
                    tp.c.trial_id == row.trial_id
                )
            ).all()
        duration = None
        if row.datetime_start is not None and row.datetime_complete is not None:
            duration = to_timestamp(row.datetime_complete) - to_timestamp(row.datetime_start)
        return {
            "number": row.number,
            "value": float(row.value),
            "duration_seconds": duration,
            "config": attrs.pop("config", None) or _decode_params(params),
            "user_attrs": {k: v for k, v in attrs.items() if k != "history"},
        }

    def trial_attrs(self, study_name: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
        """The user attributes ``keys`` of every trial of ``study_name`` that has any of
        them, one dict per trial in trial order (decoded from JSON)."""
        trials, studies, ua = schema.trials, schema.studies, schema.trial_user_attributes
        with self.engine.connect() as con:
            rows = con.execute(
                sa.select(trials.c.number, ua.c.key, ua.c.value_json)
                .join(trials, trials.c.trial_id == ua.c.trial_id)
                .join(studies, studies.c.study_id == trials.c.study_id)
                .where(studies.c.study_name == study_name, ua.c.key.in_(keys))
                .order_by(trials.c.number)
            ).all()
        by_trial: dict[int, dict[str, Any]] = {}
        for number, key, value in rows:
            by_trial.setdefault(number, {})[key] = json.loads(value)
        return list(by_trial.values())

    # -- summaries over Optuna's tables ----------------------------------------------------
    def summaries(self, names: list[str] | None = None) -> list[StudySummary]:
        """One summary per Optuna study (hpo32's or not), from a few aggregate queries."""
        insp = sa.inspect(self.engine)
        if not insp.has_table("studies"):
            return []
        o_studies, trials, values = schema.studies, schema.trials, schema.trial_values
        with self.engine.connect() as con:
            q = sa.select(o_studies.c.study_id, o_studies.c.study_name)
            if names is not None:
                q = q.where(o_studies.c.study_name.in_(names))
            studies = con.execute(q.order_by(o_studies.c.study_id)).all()
            counts = con.execute(
                sa.select(trials.c.study_id, trials.c.state, sa.func.count()).group_by(
                    trials.c.study_id, trials.c.state
                )
            ).all()
            best: dict[int, Any] = dict(
                con.execute(
                    sa.select(trials.c.study_id, sa.func.max(values.c.value))
                    .join(values, values.c.trial_id == trials.c.trial_id)
                    .where(schema.state_is("COMPLETE"), values.c.objective == 0)
                    .group_by(trials.c.study_id)
                ).all()
            )
            last: dict[int, Any] = dict(
                con.execute(
                    sa.select(
                        trials.c.study_id,
                        sa.func.max(
                            sa.func.coalesce(trials.c.datetime_complete, trials.c.datetime_start)
                        ),
                    ).group_by(trials.c.study_id)
                ).all()
            )
            own = (
                {r.name: r for r in con.execute(sa.select(studies_table)).all()}
                if insp.has_table("hpo32_studies")
                else {}
            )
        by_study: dict[int, dict[str, int]] = {}
        for sid, state, n in counts:
            state_name = state.name if hasattr(state, "name") else str(state)
            by_study.setdefault(sid, {})[state_name.lower()] = n
        out = []
        now = time.time()
        have_sessions = insp.has_table("hpo32_sessions")
        for sid, name in studies:
            row = own.get(name)
            sessions = self.sessions(name) if have_sessions else []
            running = any(s.alive(now) for s in sessions)
            activity = [s.last_seen for s in sessions]
            if last.get(sid) is not None:
                activity.append(to_timestamp(last[sid]))
            out.append(
                StudySummary(
                    name=name,
                    dataset=row.dataset if row else None,
                    engine=row.engine if row else None,
                    states=by_study.get(sid, {}),
                    best_value=float(best[sid]) if best.get(sid) is not None else None,
                    budget_seconds=row.budget_seconds if row else None,
                    used_seconds=round(
                        consumed_seconds([(s.started_at, s.end(now)) for s in sessions]), 1
                    ),
                    last_activity=max(activity) if activity else None,
                    running=running,
                )
            )
        return out


def drop_model_paths(engine: sa.Engine, study_name: str, numbers: Iterable[int]) -> int:
    """Clears the ``model_path`` user attribute of trials ``numbers`` of ``study_name``, in
    one transaction, before their model files are deleted (superseded: not among the
    study's ``keep_top`` best), so that no record names a missing file; every reader takes
    a trial without ``model_path`` for one without a model (finished trials are read-only
    through Optuna's API, hence the SQL).

    Returns:
        The trials whose ``model_path`` was cleared (0 for those cleared already).
    """
    numbers = sorted(set(numbers))
    if not numbers:
        return 0
    ua, trials, studies = schema.trial_user_attributes, schema.trials, schema.studies
    ids = (
        sa.select(trials.c.trial_id)
        .join(studies, studies.c.study_id == trials.c.study_id)
        .where(studies.c.study_name == study_name, trials.c.number.in_(numbers))
    )
    with engine.begin() as con:
        trial_ids = [row[0] for row in con.execute(ids)]
        if not trial_ids:
            return 0
        gone = con.execute(
            ua.delete().where(ua.c.trial_id.in_(trial_ids), ua.c.key == "model_path")
        )
    return int(gone.rowcount or 0)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _delete_rows(con: sa.Connection, name: str, tables: Iterable[sa.Table]) -> None:
    for table in tables:
        key = table.c.name if table is studies_table else table.c.study_name
        con.execute(table.delete().where(key == name))


def _decode_params(rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """Optuna's stored (internal) param values in their external form."""
    from optuna.distributions import json_to_distribution

    return {name: json_to_distribution(dist).to_external_repr(value) for name, value, dist in rows}


def to_timestamp(value: Any) -> float:
    """Seconds since the epoch of a datetime read from Optuna's tables.

    Optuna's RDB models store naive UTC (its trial objects show local time, converted on the
    way in and out), and SQLite hands the values back as strings.
    """
    import datetime as dt

    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.timestamp()
