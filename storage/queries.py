"""Every read over Optuna's tables and hpo32's own that the dashboards and the study commands
make: SQLAlchemy Core over the tables of :mod:`hpo32.storage.schema`, returning typed rows.

Each function takes a *bind*: an engine (the function opens and closes its own connection)
or a connection from :func:`snapshot`, so that several reads see one transaction. None
loads trial objects; where a function needs every trial of a study it reads only the
columns it returns, and aggregates stay in SQL.

Times are seconds since the epoch (UTC); Optuna stores trial datetimes as naive UTC.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union

import sqlalchemy as sa

from hpo32.storage import schema
from hpo32.storage.records import STALE_AFTER_BEATS, Session, to_timestamp
from hpo32.storage.schema import state_is

__all__ = [
    "Bind",
    "ChangeMarks",
    "ChoiceStats",
    "CompleteTrial",
    "CurveTrial",
    "StepMean",
    "StoredParam",
    "StudyLabel",
    "StudyStanding",
    "Trial",
    "UnknownStudy",
    "change_marks",
    "choice_stats",
    "complete_marks",
    "complete_trials",
    "curve_means",
    "curve_trials",
    "decode_json",
    "distribution",
    "has_table",
    "intermediate_values",
    "ModelTrial",
    "model_trials",
    "sessions",
    "snapshot",
    "study_attrs",
    "study_attrs_by_name",
    "study_id",
    "study_labels",
    "Fidelity",
    "study_classes",
    "study_fidelity",
    "study_fidelities",
    "study_specs",
    "study_standing",
    "study_trial_attrs",
    "study_trial_params",
    "study_result",
    "top_trials",
    "trial_attr",
    "trial_params",
    "trial_user_attr",
    "trials",
]

#: An engine, or a connection from :func:`snapshot`.
Bind = Union[sa.Engine, sa.Connection]

_CHUNK = 500  # ids per IN (...) list: well under every database's bound-parameter limit

_t, _v = schema.trials, schema.trial_values
_studies, _study_attrs = schema.studies, schema.study_user_attributes
_params, _inter, _attrs = (
    schema.trial_params,
    schema.trial_intermediate_values,
    schema.trial_user_attributes,
)
_sessions, _results, _own = schema.hpo32_sessions, schema.hpo32_results, schema.hpo32_studies


class UnknownStudy(LookupError):
    """No study of that name in the database."""


def _unknown(name: str) -> UnknownStudy:
    return UnknownStudy(f"no study named '{name}' in this database; see 'hpo32 list'.")


# -- connections and small helpers -----------------------------------------------------------
@contextlib.contextmanager
def snapshot(bind: Bind) -> Iterator[sa.Connection]:
    """One connection (one read transaction) for several queries; a connection passes
    through unchanged."""
    if isinstance(bind, sa.Connection):
        yield bind
        return
    with bind.connect() as con:
        yield con


def has_table(bind: Bind, name: str) -> bool:
    """Whether the database holds table ``name`` (hpo32's tables are absent from a plain
    Optuna database)."""
    with snapshot(bind) as con:
        return sa.inspect(con).has_table(name)


def _chunks(seq: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def _ts(value: Any) -> float | None:
    return None if value is None else to_timestamp(value)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def decode_json(text: str | None) -> Any:
    """A stored JSON value, None for NULL or text that is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def distribution(dist_json: str) -> Any:
    """Optuna's distribution object for a stored ``distribution_json`` (cached: one object
    per JSON text).

    Raises:
        Exception: whatever Optuna raises for a distribution it cannot read.
    """
    from optuna.distributions import json_to_distribution

    return json_to_distribution(dist_json)


def study_id(bind: Bind, name: str) -> int:
    """The Optuna id of study ``name``.

    Raises:
        UnknownStudy: no such study.
    """
    with snapshot(bind) as con:
        sid = con.execute(
            sa.select(_studies.c.study_id).where(_studies.c.study_name == name)
        ).scalar()
    if sid is None:
        raise _unknown(name)
    return int(sid)


@dataclass(frozen=True)
class StudyStanding:
    """What the database holds under one study name, in Optuna's tables and hpo32's.

    Attributes:
        optuna: Optuna has a study of that name.
        trials: its trials, of every state.
        started: its trials that ever ran (every state but WAITING: queued configs that
            never started do not count).
        hpo32: hpo32's own row of that name exists.
    """

    optuna: bool
    trials: int
    started: int
    hpo32: bool


def study_standing(bind: Bind, name: str) -> StudyStanding:
    """Reads :class:`StudyStanding` for ``name`` (nothing is created in an empty database)."""
    trials = schema.trials
    with snapshot(bind) as con:
        insp = sa.inspect(con)
        sid = None
        counts: dict[str, int] = {}
        if insp.has_table("studies"):
            sid = con.execute(
                sa.select(_studies.c.study_id).where(_studies.c.study_name == name)
            ).scalar()
        if sid is not None:
            for state, n in con.execute(
                sa.select(trials.c.state, sa.func.count())
                .where(trials.c.study_id == sid)
                .group_by(trials.c.state)
            ):
                counts[getattr(state, "name", str(state))] = int(n)
        own = insp.has_table("hpo32_studies") and (
            con.execute(
                sa.select(schema.hpo32_studies.c.name).where(schema.hpo32_studies.c.name == name)
            ).first()
            is not None
        )
    total = sum(counts.values())
    return StudyStanding(
        optuna=sid is not None,
        trials=total,
        started=total - counts.get("WAITING", 0),
        hpo32=bool(own),
    )


# -- change detection ------------------------------------------------------------------------
@dataclass(frozen=True)
class ChangeMarks:
    """Aggregates that change whenever the shown data of some studies change.

    Attributes:
        trials: trial count, newest trial id, newest start, newest finish, running trials.
        newest_running_step: id of the newest intermediate value of a running trial.
        studies: ``(count, newest study id)`` over all studies, or the ids of the named ones.
        sessions: session count, newest sign of life, newest end (None without the table).
        live_sessions: ids of unfinished sessions still heard from (None without the table).
        newest_result: when the newest test result was stored.
        has_results: whether the database holds hpo32's results table.
    """

    trials: tuple[Any, ...]
    newest_running_step: Any
    studies: tuple[Any, ...]
    sessions: tuple[Any, ...] | None
    live_sessions: tuple[int, ...] | None
    newest_result: Any
    has_results: bool


def change_marks(bind: Bind, names: Sequence[str] | None = None) -> ChangeMarks | None:
    """The :class:`ChangeMarks` of ``names`` (every study when None), or None for a database
    without Optuna's tables. A handful of indexed aggregate queries."""
    with snapshot(bind) as con:
        insp = sa.inspect(con)
        if not insp.has_table("trials"):
            return None
        sids: list[int] | None = None
        if names is not None:
            sids = [
                r[0]
                for r in con.execute(
                    sa.select(_studies.c.study_id).where(_studies.c.study_name.in_(list(names)))
                )
            ]
        q = sa.select(
            sa.func.count(),
            sa.func.max(_t.c.trial_id),
            sa.func.max(_t.c.datetime_start),
            sa.func.max(_t.c.datetime_complete),
            sa.func.sum(sa.case((state_is("RUNNING"), 1), else_=0)),
        )
        iq = (
            sa.select(sa.func.max(_inter.c.trial_intermediate_value_id))
            .join(_t, _t.c.trial_id == _inter.c.trial_id)
            .where(state_is("RUNNING"))
        )
        if sids is not None:
            q = q.where(_t.c.study_id.in_(sids))
            iq = iq.where(_t.c.study_id.in_(sids))
        trial_marks = tuple(con.execute(q).one())
        newest_step = con.execute(iq).scalar()
        if sids is None:
            study_marks = tuple(
                con.execute(sa.select(sa.func.count(), sa.func.max(_studies.c.study_id))).one()
            )
        else:
            study_marks = tuple(sids)
        session_marks: tuple[Any, ...] | None = None
        live: tuple[int, ...] | None = None
        if insp.has_table("hpo32_sessions"):
            sq = sa.select(
                sa.func.count(),
                sa.func.max(_sessions.c.last_seen),
                sa.func.max(_sessions.c.ended_at),
            )
            if names is not None:
                sq = sq.where(_sessions.c.study_name.in_(list(names)))
            session_marks = tuple(con.execute(sq).one())
            live = tuple(_live_sessions(con, names))
        has_results = insp.has_table("hpo32_results")
        newest_result = None
        if has_results:
            rq = sa.select(sa.func.max(_results.c.evaluated_at))
            if names is not None:
                rq = rq.where(_results.c.study_name.in_(list(names)))
            newest_result = con.execute(rq).scalar()
    return ChangeMarks(
        trials=trial_marks,
        newest_running_step=newest_step,
        studies=study_marks,
        sessions=session_marks,
        live_sessions=live,
        newest_result=newest_result,
        has_results=has_results,
    )


#: Liveness window for sessions of a database whose sessions table has no heartbeat column.
_STALE_S = 120.0


def _live_sessions(con: sa.Connection, names: Sequence[str] | None) -> list[int]:
    """Ids of unfinished sessions still heard from (so a fingerprint changes when a search
    dies without a word, not just when data arrive)."""
    cols = {c["name"] for c in sa.inspect(con).get_columns("hpo32_sessions")}
    with_beat = "heartbeat_s" in cols
    q = sa.select(
        _sessions.c.id,
        _sessions.c.last_seen,
        *([_sessions.c.heartbeat_s] if with_beat else []),
    )
    q = q.where(_sessions.c.ended_at.is_(None))
    if names is not None:
        q = q.where(_sessions.c.study_name.in_(list(names)))
    now = time.time()
    live = []
    for row in con.execute(q):
        window = STALE_AFTER_BEATS * row[2] if len(row) > 2 else _STALE_S
        if now - row[1] < window:
            live.append(row[0])
    return sorted(live)


def complete_marks(bind: Bind, name: str) -> tuple[int, Any, Any]:
    """``(count, newest trial id, newest finish)`` of the complete trials of ``name``: changes
    only when that set changes.

    Raises:
        UnknownStudy: no such study.
    """
    with snapshot(bind) as con:
        sid = study_id(con, name)
        row = con.execute(
            sa.select(
                sa.func.count(),
                sa.func.max(_t.c.trial_id),
                sa.func.max(_t.c.datetime_complete),
            ).where(_t.c.study_id == sid, state_is("COMPLETE"))
        ).one()
    return int(row[0]), row[1], row[2]


# -- studies ---------------------------------------------------------------------------------
def study_attrs(bind: Bind, name: str) -> dict[str, Any]:
    """Every user attribute of study ``name`` (decoded from JSON); empty for no study."""
    return study_attrs_by_name(bind, names=[name]).get(name, {})


def study_attrs_by_name(
    bind: Bind, keys: Sequence[str] | None = None, names: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """``{study name: {key: value}}`` of the studies' user attributes ``keys`` (all when
    None) of the studies ``names`` (all when None); studies without any are absent."""
    q = sa.select(_studies.c.study_name, _study_attrs.c.key, _study_attrs.c.value_json).join(
        _study_attrs, _study_attrs.c.study_id == _studies.c.study_id
    )
    if names is not None:
        q = q.where(_studies.c.study_name.in_(list(names)))
    if keys is not None:
        q = q.where(_study_attrs.c.key.in_(list(keys)))
    out: dict[str, dict[str, Any]] = {}
    with snapshot(bind) as con:
        for name, key, value in con.execute(q):
            out.setdefault(name, {})[key] = decode_json(value)
    return out


def study_classes(bind: Bind, name: str) -> tuple[list[str], list[str]]:
    """Study ``name``'s class ids and names in label order (``hpo32_classes``; a database
    not yet upgraded to it, read-only, keeps them in Optuna's study attributes); empty
    lists when none are recorded."""
    with snapshot(bind) as con:
        if has_table(con, "hpo32_classes"):
            table = schema.hpo32_classes
            rows = con.execute(
                sa.select(table.c.class_id, table.c.class_name)
                .where(table.c.study_name == name)
                .order_by(table.c.position)
            ).all()
            if rows:
                return [r.class_id for r in rows], [r.class_name for r in rows]
        attrs = study_attrs(con, name)
    ids = [str(c) for c in attrs.get("class_ids") or []]
    return ids, [str(c) for c in attrs.get("class_names") or ids]


@dataclass(frozen=True)
class Fidelity:
    """What a study's accuracies depend on besides its configs (None where unknown: a
    study made before hpo32 recorded it has only its spec's epochs and classes)."""

    classes: int | None
    train_images: int | None
    image_size: int | None
    epochs: int | None
    epoch_images: int | None

    def label(self) -> str:
        """``10 classes, 45,000 images x 5 epochs, 32 px`` (unknown parts left out)."""
        parts = []
        if self.classes is not None:
            parts.append(f"{self.classes} classes")
        if self.train_images is not None:
            parts.append(f"{self.train_images:,} images")
        if self.epochs is not None:
            each = f" of {self.epoch_images:,}" if self.epoch_images else ""
            parts.append(f"{self.epochs} epoch{'s' * (self.epochs != 1)}{each}")
        if self.image_size is not None:
            parts.append(f"{self.image_size} px")
        return ", ".join(parts) or "-"


def study_fidelity(bind: Bind, name: str) -> Fidelity:
    """Study ``name``'s :class:`Fidelity`: recorded at its creation, else from its spec."""
    return study_fidelities(bind, [name])[name]


def study_fidelities(bind: Bind, names: Sequence[str]) -> dict[str, Fidelity]:
    """``{name: Fidelity}`` of the studies ``names`` (see :func:`study_fidelity`), read
    with one query a table however many studies there are."""
    with snapshot(bind) as con:
        attrs = study_attrs_by_name(con, keys=("fidelity", "class_ids"), names=names)
        specs = study_specs(con, names)
        counts: dict[str, int] = {}
        if has_table(con, "hpo32_classes"):
            table = schema.hpo32_classes
            counts = dict(
                con.execute(
                    sa.select(table.c.study_name, sa.func.count())
                    .where(table.c.study_name.in_(list(names)))
                    .group_by(table.c.study_name)
                ).all()
            )

    def whole(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    out = {}
    for name in names:
        got = attrs.get(name, {})
        raw, stored = got.get("fidelity"), specs.get(name)
        recorded: dict[str, Any] = raw if isinstance(raw, dict) else {}
        spec: dict[str, Any] = stored if isinstance(stored, dict) else {}
        classes = counts.get(name) or len(got.get("class_ids") or []) or None
        out[name] = Fidelity(
            classes=whole(recorded.get("classes")) or classes,
            train_images=whole(recorded.get("train_images")),
            image_size=whole(recorded.get("image_size")),
            epochs=whole(recorded.get("epochs")) or whole(spec.get("epochs")),
            epoch_images=whole(recorded.get("epoch_images")) or whole(spec.get("epoch_images")),
        )
    return out


def study_specs(bind: Bind, names: Sequence[str] | None = None) -> dict[str, Any]:
    """``{study name: spec}`` from hpo32's study rows of the studies ``names`` (all when
    None), decoded (None where not JSON); empty for a plain Optuna database."""
    q = sa.select(_own.c.name, _own.c.spec_json)
    if names is not None:
        q = q.where(_own.c.name.in_(list(names)))
    with snapshot(bind) as con:
        if not sa.inspect(con).has_table("hpo32_studies"):
            return {}
        return {name: decode_json(spec) for name, spec in con.execute(q)}


@dataclass(frozen=True)
class StudyLabel:
    """What a study searched: its dataset and engine, where known."""

    dataset: str | None
    engine: str | None


def study_labels(bind: Bind, names: Sequence[str]) -> dict[str, StudyLabel]:
    """Dataset and engine of each study: hpo32's study row, else the study's user
    attributes ``dataset`` and ``engine``, else None.

    Raises:
        UnknownStudy: a name is not a study.
    """
    with snapshot(bind) as con:
        found = {
            name
            for (name,) in con.execute(
                sa.select(_studies.c.study_name).where(_studies.c.study_name.in_(list(names)))
            )
        }
        for name in names:
            if name not in found:
                raise _unknown(name)
        attrs = study_attrs_by_name(con, keys=("dataset", "engine"), names=names)
        out = {
            name: StudyLabel(
                dataset=_str_or_none(attrs.get(name, {}).get("dataset")),
                engine=_str_or_none(attrs.get(name, {}).get("engine")),
            )
            for name in names
        }
        if sa.inspect(con).has_table("hpo32_studies"):
            for name, dataset, engine_name in con.execute(
                sa.select(_own.c.name, _own.c.dataset, _own.c.engine).where(
                    _own.c.name.in_(list(names))
                )
            ):
                out[name] = StudyLabel(dataset=dataset, engine=engine_name)
    return out


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None


def sessions(bind: Bind, name: str) -> list[Session]:
    """The sessions of study ``name`` in order; empty for a plain Optuna database."""
    with snapshot(bind) as con:
        if not sa.inspect(con).has_table("hpo32_sessions"):
            return []
        rows = con.execute(
            sa.select(_sessions).where(_sessions.c.study_name == name).order_by(_sessions.c.id)
        ).all()
    return [Session(**row._mapping) for row in rows]


def study_result(bind: Bind, name: str) -> dict[str, Any] | None:
    """The stored test result of study ``name`` (trial_number, val_accuracy, test_accuracy,
    model_path, evaluated_at), or None; None too for a plain Optuna database."""
    with snapshot(bind) as con:
        if not sa.inspect(con).has_table("hpo32_results"):
            return None
        row = con.execute(sa.select(_results).where(_results.c.study_name == name)).first()
    return dict(row._mapping) if row else None


# -- trials ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """One trial: its objective value (None when it has none) and its start and finish."""

    trial_id: int
    number: int
    state: str
    value: float | None
    started: float | None
    completed: float | None


def _trial_rows(sid: int) -> sa.Select:
    """Study ``sid``'s trials as (id, number, state, objective value or NULL, start, finish)."""
    return (
        sa.select(
            _t.c.trial_id,
            _t.c.number,
            _t.c.state,
            _v.c.value,
            _t.c.datetime_start,
            _t.c.datetime_complete,
        )
        .select_from(_t.outerjoin(_v, sa.and_(_v.c.trial_id == _t.c.trial_id, _v.c.objective == 0)))
        .where(_t.c.study_id == sid)
    )


def trials(bind: Bind, name: str) -> list[Trial]:
    """Every trial of study ``name`` in number order (one query).

    Raises:
        UnknownStudy: no such study.
    """
    with snapshot(bind) as con:
        sid = study_id(con, name)
        rows = con.execute(_trial_rows(sid).order_by(_t.c.number)).all()
    return [
        Trial(
            trial_id=int(tid),
            number=int(number),
            state=str(state),
            value=None if value is None else float(value),
            started=_ts(start),
            completed=_ts(complete),
        )
        for tid, number, state, value, start, complete in rows
    ]


@dataclass(frozen=True)
class CompleteTrial:
    """A complete trial with a finite objective value."""

    trial_id: int
    number: int
    value: float


def complete_trials(bind: Bind, name: str) -> list[CompleteTrial]:
    """The complete trials of study ``name`` with a finite value, in number order.

    Raises:
        UnknownStudy: no such study.
    """
    with snapshot(bind) as con:
        sid = study_id(con, name)
        rows = con.execute(
            sa.select(_t.c.trial_id, _t.c.number, _v.c.value)
            .join(_v, sa.and_(_v.c.trial_id == _t.c.trial_id, _v.c.objective == 0))
            .where(_t.c.study_id == sid, state_is("COMPLETE"), _v.c.value.is_not(None))
            .order_by(_t.c.number)
        ).all()
    return [
        CompleteTrial(trial_id=r[0], number=r[1], value=float(r[2]))
        for r in rows
        if math.isfinite(r[2])
    ]


@dataclass(frozen=True)
class StoredParam:
    """A trial's parameter: its value in external form (the stored number when its
    distribution cannot be read) and its Optuna distribution (None then)."""

    value: Any
    distribution: Any


def _stored_param(raw: Any, dist_json: str) -> StoredParam:
    try:
        dist = distribution(dist_json)
        return StoredParam(dist.to_external_repr(raw), dist)
    except Exception:  # a distribution this Optuna cannot read: keep the raw number
        return StoredParam(raw, None)


def trial_params(bind: Bind, trial_ids: Sequence[int]) -> dict[int, dict[str, StoredParam]]:
    """``{trial_id: {name: param}}`` from Optuna's ``trial_params`` for those trials."""
    out: dict[int, dict[str, StoredParam]] = {}
    with snapshot(bind) as con:
        for chunk in _chunks(list(trial_ids)):
            for tid, name, value, dist_json in con.execute(
                sa.select(
                    _params.c.trial_id,
                    _params.c.param_name,
                    _params.c.param_value,
                    _params.c.distribution_json,
                ).where(_params.c.trial_id.in_(chunk))
            ):
                out.setdefault(tid, {})[name] = _stored_param(value, dist_json)
    return out


def study_trial_params(bind: Bind, name: str) -> dict[int, dict[str, StoredParam]]:
    """:func:`trial_params` of every trial of study ``name`` (one query).

    Raises:
        UnknownStudy: no such study.
    """
    out: dict[int, dict[str, StoredParam]] = {}
    with snapshot(bind) as con:
        sid = study_id(con, name)
        for tid, pname, value, dist_json in con.execute(
            sa.select(
                _params.c.trial_id,
                _params.c.param_name,
                _params.c.param_value,
                _params.c.distribution_json,
            )
            .join(_t, _t.c.trial_id == _params.c.trial_id)
            .where(_t.c.study_id == sid)
        ):
            out.setdefault(tid, {})[pname] = _stored_param(value, dist_json)
    return out


def trial_attr(bind: Bind, trial_ids: Sequence[int], key: str) -> dict[int, Any]:
    """``{trial_id: value}`` of user attribute ``key`` (decoded) of those trials that have it."""
    out: dict[int, Any] = {}
    with snapshot(bind) as con:
        for chunk in _chunks(list(trial_ids)):
            for tid, value_json in con.execute(
                sa.select(_attrs.c.trial_id, _attrs.c.value_json).where(
                    _attrs.c.trial_id.in_(chunk), _attrs.c.key == key
                )
            ):
                out[tid] = decode_json(value_json)
    return out


def study_trial_attrs(bind: Bind, name: str, keys: Sequence[str]) -> dict[int, dict[str, Any]]:
    """``{trial_id: {key: value}}`` of the user attributes ``keys`` of every trial of study
    ``name`` that has any (one query).

    Raises:
        UnknownStudy: no such study.
    """
    out: dict[int, dict[str, Any]] = {}
    with snapshot(bind) as con:
        sid = study_id(con, name)
        for tid, key, value_json in con.execute(
            sa.select(_attrs.c.trial_id, _attrs.c.key, _attrs.c.value_json)
            .join(_t, _t.c.trial_id == _attrs.c.trial_id)
            .where(_t.c.study_id == sid, _attrs.c.key.in_(list(keys)))
        ):
            out.setdefault(tid, {})[key] = decode_json(value_json)
    return out


def trial_user_attr(bind: Bind, study: str, number: int, key: str, default: Any = None) -> Any:
    """User attribute ``key`` of trial ``number`` of ``study`` (decoded), or ``default``
    when the trial or the attribute is absent."""
    with snapshot(bind) as con:
        row = con.execute(
            sa.select(_attrs.c.value_json)
            .join(_t, _t.c.trial_id == _attrs.c.trial_id)
            .join(_studies, _studies.c.study_id == _t.c.study_id)
            .where(_studies.c.study_name == study, _t.c.number == number, _attrs.c.key == key)
        ).first()
    return decode_json(row[0]) if row else default


# -- learning curves -------------------------------------------------------------------------
@dataclass(frozen=True)
class StepMean:
    """The mean intermediate value at one step over a study's trials."""

    step: int
    mean: float
    count: int


def curve_means(bind: Bind, name: str) -> list[StepMean]:
    """Mean and count of the intermediate values per step over every trial of study
    ``name``, by step (one aggregate query).

    Raises:
        UnknownStudy: no such study.
    """
    with snapshot(bind) as con:
        sid = study_id(con, name)
        rows = con.execute(
            sa.select(_inter.c.step, sa.func.avg(_inter.c.intermediate_value), sa.func.count())
            .join(_t, _t.c.trial_id == _inter.c.trial_id)
            .where(_t.c.study_id == sid, _inter.c.intermediate_value.is_not(None))
            .group_by(_inter.c.step)
            .order_by(_inter.c.step)
        ).all()
    return [StepMean(step=int(r[0]), mean=float(r[1]), count=int(r[2])) for r in rows]


@dataclass(frozen=True)
class CurveTrial:
    """A trial that reported epochs: Optuna intermediate values, or a ``history`` user
    attribute (``has_intermediate`` False)."""

    trial_id: int
    number: int
    state: str
    value: float | None
    has_intermediate: bool


def curve_trials(bind: Bind, name: str) -> list[CurveTrial]:
    """The trials of study ``name`` with intermediate values or a ``history`` attribute, in
    number order; ``value`` None when not finite.

    Raises:
        UnknownStudy: no such study.
    """
    with snapshot(bind) as con:
        sid = study_id(con, name)
        with_curve = sa.exists().where(_inter.c.trial_id == _t.c.trial_id)
        with_history = sa.exists().where(
            _attrs.c.trial_id == _t.c.trial_id, _attrs.c.key == "history"
        )
        rows = con.execute(
            sa.select(
                _t.c.trial_id,
                _t.c.number,
                _t.c.state,
                _v.c.value,
                sa.case((with_curve, 1), else_=0),
            )
            .select_from(
                _t.outerjoin(_v, sa.and_(_v.c.trial_id == _t.c.trial_id, _v.c.objective == 0))
            )
            .where(_t.c.study_id == sid, sa.or_(with_curve, with_history))
            .order_by(_t.c.number)
        ).all()
    return [CurveTrial(r[0], r[1], str(r[2]), _finite(r[3]), bool(r[4])) for r in rows]


def intermediate_values(bind: Bind, trial_ids: Sequence[int]) -> dict[int, list[tuple[int, float]]]:
    """``{trial_id: [(step, value), ...]}`` of the finite intermediate values of those
    trials (in no particular order); trials without any are absent."""
    points: dict[int, list[tuple[int, float]]] = {}
    with snapshot(bind) as con:
        for chunk in _chunks(list(trial_ids)):
            for tid, step, value in con.execute(
                sa.select(_inter.c.trial_id, _inter.c.step, _inter.c.intermediate_value).where(
                    _inter.c.trial_id.in_(chunk)
                )
            ):
                if value is not None and math.isfinite(value):
                    points.setdefault(tid, []).append((int(step), float(value)))
    return points


# -- parameters ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChoiceStats:
    """Objective statistics of the complete trials that gave one parameter one stored value.

    ``raw_value`` and ``distribution_json`` are as Optuna stores them (decode with
    :func:`distribution`); ``mean_square`` is the mean of the squared values.
    """

    param_name: str
    raw_value: Any
    distribution_json: str
    count: int
    mean: float
    mean_square: float
    max: float


def choice_stats(bind: Bind, name: str, params: Sequence[str]) -> list[ChoiceStats]:
    """Per parameter of ``params`` and stored value: count, mean, mean square and max of the
    complete trials' values of study ``name`` (one aggregate query).

    Raises:
        UnknownStudy: no such study.
    """
    p = _params
    with snapshot(bind) as con:
        sid = study_id(con, name)
        rows = con.execute(
            sa.select(
                p.c.param_name,
                p.c.param_value,
                p.c.distribution_json,
                sa.func.count(),
                sa.func.avg(_v.c.value),
                sa.func.avg(_v.c.value * _v.c.value),
                sa.func.max(_v.c.value),
            )
            .join(_t, _t.c.trial_id == p.c.trial_id)
            .join(_v, sa.and_(_v.c.trial_id == _t.c.trial_id, _v.c.objective == 0))
            .where(
                _t.c.study_id == sid,
                state_is("COMPLETE"),
                _v.c.value.is_not(None),
                p.c.param_name.in_(list(params)),
            )
            .group_by(p.c.param_name, p.c.param_value, p.c.distribution_json)
        ).all()
    return [ChoiceStats(*row) for row in rows]


# -- the dashboards' plots and trial page (issue 15) -------------------------------------------
def study_spec(bind: Bind, name: str) -> Any:
    """The stored spec of study ``name`` (decoded; None when hpo32 holds no row for it, or
    its spec is not JSON)."""
    with snapshot(bind) as con:
        if not sa.inspect(con).has_table("hpo32_studies"):
            return None
        row = con.execute(sa.select(_own.c.spec_json).where(_own.c.name == name)).first()
    return decode_json(row[0]) if row else None


@dataclass(frozen=True)
class ValuedTrial:
    """A trial of some state with a finite objective value (a pruned trial: its last)."""

    trial_id: int
    number: int
    state: str
    value: float


def valued_trials(bind: Bind, name: str, states: Sequence[str]) -> list[ValuedTrial]:
    """The trials of study ``name`` in ``states`` with a finite value, in number order.

    Raises:
        UnknownStudy: no such study.
    """
    with snapshot(bind) as con:
        sid = study_id(con, name)
        rows = con.execute(
            sa.select(_t.c.trial_id, _t.c.number, _t.c.state, _v.c.value)
            .join(_v, sa.and_(_v.c.trial_id == _t.c.trial_id, _v.c.objective == 0))
            .where(
                _t.c.study_id == sid,
                sa.or_(*(state_is(s) for s in states)),
                _v.c.value.is_not(None),
            )
            .order_by(_t.c.number)
        ).all()
    out = []
    for tid, number, state, value in rows:
        v = _finite(value)
        if v is not None:
            out.append(ValuedTrial(int(tid), int(number), str(getattr(state, "name", state)), v))
    return out


def param_distributions(bind: Bind, name: str) -> dict[str, list[str]]:
    """``{param name: [distribution JSON, ...]}``: the distinct distributions each
    parameter of study ``name`` was recorded with (one grouped query).

    Raises:
        UnknownStudy: no such study.
    """
    out: dict[str, list[str]] = {}
    with snapshot(bind) as con:
        sid = study_id(con, name)
        for pname, dist_json in con.execute(
            sa.select(_params.c.param_name, _params.c.distribution_json)
            .join(_t, _t.c.trial_id == _params.c.trial_id)
            .where(_t.c.study_id == sid)
            .group_by(_params.c.param_name, _params.c.distribution_json)
        ):
            out.setdefault(pname, []).append(dist_json)
    return out


@dataclass(frozen=True)
class TrialDetail:
    """Everything stored about one trial: its row, user attributes, parameters (as
    :class:`StoredParam`) and intermediate values (``[(step, value), ...]`` by step)."""

    trial: Trial
    user_attrs: dict[str, Any]
    params: dict[str, StoredParam]
    intermediate: list[tuple[int, float]]


def trial_detail(bind: Bind, name: str, number: int) -> TrialDetail | None:
    """Trial ``number`` of study ``name``, or None when the study has no such trial.

    Raises:
        UnknownStudy: no such study.
    """
    with snapshot(bind) as con:
        sid = study_id(con, name)
        row = con.execute(_trial_rows(sid).where(_t.c.number == number)).first()
        if row is None:
            return None
        tid = int(row[0])
        attrs = {
            key: decode_json(value_json)
            for key, value_json in con.execute(
                sa.select(_attrs.c.key, _attrs.c.value_json).where(_attrs.c.trial_id == tid)
            )
        }
        params = trial_params(con, [tid]).get(tid, {})
        points = sorted(intermediate_values(con, [tid]).get(tid, []))
    trial = Trial(
        trial_id=tid,
        number=int(row[1]),
        state=str(getattr(row[2], "name", row[2])),
        value=_finite(row[3]),
        started=_ts(row[4]),
        completed=_ts(row[5]),
    )
    return TrialDetail(trial, attrs, params, points)


# -- hpo32 show --top -----------------------------------------------------------------------
def top_trials(bind: Bind, name: str, n: int) -> list[TrialDetail]:
    """The ``n`` complete trials of study ``name`` with the highest finite values, best
    first (ties by trial number), each as :func:`trial_detail` reads it.

    Raises:
        UnknownStudy: no such study.
    """
    with snapshot(bind) as con:
        sid = study_id(con, name)
        numbers = con.execute(
            sa.select(_t.c.number)
            .join(_v, sa.and_(_v.c.trial_id == _t.c.trial_id, _v.c.objective == 0))
            .where(_t.c.study_id == sid, state_is("COMPLETE"), _v.c.value.is_not(None))
            .order_by(_v.c.value.desc(), _t.c.number)
            .limit(n)  # Optuna stores an infinite value as NULL (its value_type says which)
        ).scalars()
        details = [trial_detail(con, name, int(number)) for number in list(numbers)]
    return [d for d in details if d is not None and d.trial.value is not None]


# -- saved models (issue 15: disk) -------------------------------------------------------------
@dataclass(frozen=True)
class ModelTrial:
    """A trial that records a saved model: its state, objective value (None without one) and
    ``model_path`` (relative to the artifact root)."""

    number: int
    state: str
    value: float | None
    model_path: str


def model_trials(bind: Bind, name: str) -> list[ModelTrial]:
    """The trials of study ``name`` whose ``model_path`` user attribute names a file, in
    number order (one query).

    Raises:
        UnknownStudy: no such study.
    """
    with snapshot(bind) as con:
        sid = study_id(con, name)
        rows = con.execute(
            sa.select(_t.c.number, _t.c.state, _v.c.value, _attrs.c.value_json)
            .select_from(
                _t.join(_attrs, _attrs.c.trial_id == _t.c.trial_id).outerjoin(
                    _v, sa.and_(_v.c.trial_id == _t.c.trial_id, _v.c.objective == 0)
                )
            )
            .where(_t.c.study_id == sid, _attrs.c.key == "model_path")
            .order_by(_t.c.number)
        ).all()
    out = []
    for number, state, value, path_json in rows:
        path = decode_json(path_json)
        if isinstance(path, str) and path:
            out.append(
                ModelTrial(int(number), str(getattr(state, "name", state)), _finite(value), path)
            )
    return out
