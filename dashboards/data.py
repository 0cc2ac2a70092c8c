"""The data behind every dashboard figure: the stored records -> plain dicts and lists.

Each public function here reads the stored records of one or a few studies through
:mod:`hpo32.storage.queries` (a few aggregate queries each, never a load of trial objects)
and returns plain Python data that :mod:`hpo32.dashboards.figures` draws. The helpers that
turn rows into figure data (best so far, sampling, paging, ranks) are pure functions,
unit-tested without a database.

Times are seconds since the epoch (UTC); Optuna stores trial datetimes as naive UTC.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from hpo32.storage import queries
from hpo32.storage.db import make_engine
from hpo32.storage.queries import UnknownStudy
from hpo32.storage.records import (
    Records,
    recorded_backend,
    search_clock,
    search_intervals,
    to_timestamp,
)

if TYPE_CHECKING:
    # types only: the engine storage opens, the distributions Optuna stores (no SQL here)
    import sqlalchemy as sa
    from optuna.distributions import BaseDistribution


__all__ = [
    "EFFECT_PARAMS",
    "PARAM_ORDER",
    "STATES",
    "Cache",
    "UnknownStudy",
    "best_over_time",
    "best_so_far",
    "best_trial",
    "categorical_effects",
    "categorical_names",
    "chance",
    "class_count",
    "completed_key",
    "config_key",
    "dataset_kind",
    "default_dataset_pair",
    "engine_family",
    "even_sample",
    "fingerprint",
    "grid_rows",
    "history",
    "history_from_rows",
    "importances",
    "importances_from_samples",
    "learning_curves",
    "list_studies",
    "open_engine",
    "param_order",
    "param_samples",
    "rank_correlation",
    "select_curve_trials",
    "spearman",
    "space_params",
    "study_space",
    "study_info",
    "throughput",
    "timeline",
    "trial_table",
    "trial_detail",
    "value_distribution",
    "with_space",
]

#: Trial states as Optuna stores them, in display order.
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")

#: The default space's parameters in their definition order (others follow alphabetically).
PARAM_ORDER = (
    "conv_blocks",
    "filters_1",
    "block_dropout_1",
    "filters_2",
    "block_dropout_2",
    "filters_3",
    "block_dropout_3",
    "filters_4",
    "block_dropout_4",
    "convs_per_block",
    "kernel_size",
    "padding",
    "batch_norm",
    "pooling",
    "fc_layers",
    "fc_units_1",
    "fc_dropout_1",
    "fc_units_2",
    "fc_dropout_2",
    "fc_units_3",
    "fc_dropout_3",
    "activation",
    "optimizer",
    "learning_rate",
    "batch_size",
    "label_smoothing",
    "augment_flip",
    "augment_crop",
)

#: The categorical choices whose effect the dataset comparison shows.
EFFECT_PARAMS = ("activation", "optimizer", "pooling")

_FINISHED = ("COMPLETE", "PRUNED", "FAIL")


# -- engine ---------------------------------------------------------------------------------
def open_engine(url: str) -> sa.Engine:
    """A read-only SQLAlchemy engine for the dashboards: :func:`hpo32.storage.make_engine`
    with ``read_only=True`` (SQLite files open ``mode=ro`` through a thread-safe pool;
    PostgreSQL and MySQL sessions are read-only transactions).

    Raises:
        StorageError: the database cannot be opened (the message names it and the fix).
    """
    return make_engine(url, read_only=True)


# -- a tiny thread-safe LRU cache, keyed by data fingerprints --------------------------------
class Cache:
    """Least-recently-used results keyed by (what, args, fingerprint); thread-safe.

    Args:
        size: entries kept.
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        """The cached value for ``key``, computed (outside the lock) when missing."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = compute()
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value


# -- small helpers ----------------------------------------------------------------------------
def _ts(value: Any) -> float | None:
    """Seconds since the epoch of a datetime from Optuna's tables (naive UTC), None for None."""
    return None if value is None else to_timestamp(value)


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def param_order(names: Iterable[str]) -> list[str]:
    """Parameter names in the default space's order, unknown ones after it alphabetically."""
    rank = {n: i for i, n in enumerate(PARAM_ORDER)}
    return sorted(set(names), key=lambda n: (rank.get(n, len(rank)), n))


def engine_family(engine: str | None) -> str:
    """``optuna``, ``keras-tuner`` or ``autokeras`` from ``'keras-tuner:random'``-style names
    (the engine registry's); of a name it does not know, the part before the colon."""
    from hpo32.search.engines import parse_engine

    if not engine:
        return "unknown"
    try:
        return parse_engine(engine)[0].name
    except ValueError:  # another tool's or hpo32 version's engine
        return engine.split(":", 1)[0]


# -- fingerprints: cheap "did anything change" queries ---------------------------------------
def fingerprint(engine: sa.Engine, names: Sequence[str] | None = None) -> str:
    """A short string that changes whenever the shown data of ``names`` (all studies when
    None) changes: trial count, newest trial, newest start/finish, running trials, newest
    epoch of a running trial, sessions and test results.

    It is a handful of indexed aggregate queries, cheap enough to run every few seconds.
    """
    marks = queries.change_marks(engine, names)
    if marks is None:
        return "empty"
    parts: list[Any] = [list(marks.trials), marks.newest_running_step]
    # all studies: the (count, newest id) row as text, as it always was; else the ids
    parts.append(str(marks.studies) if names is None else list(marks.studies))
    if marks.sessions is not None:
        parts.append(list(marks.sessions))
        parts.append(list(marks.live_sessions or ()))
    if marks.has_results:
        parts.append(marks.newest_result)
    return json.dumps(parts, default=str)


def completed_key(engine: sa.Engine, name: str) -> str:
    """Changes only when the set of complete trials of ``name`` changes (for importances)."""
    return json.dumps([name, *queries.complete_marks(engine, name)], default=str)


# -- studies overview -------------------------------------------------------------------------
def list_studies(engine: sa.Engine, now: float | None = None) -> list[dict[str, Any]]:
    """One dict per study (hpo32's or plain Optuna): name, dataset, engine, backend (see
    :func:`hpo32.storage.records.recorded_backend`), states, n_trials,
    best_value, budget_seconds, used_seconds, last_activity, running, space_key, fidelity
    (its label: classes, images, epochs, image size).

    Dataset and engine come from hpo32's study row, else from the study's user attributes,
    else None.
    """
    records = Records(engine, create=False)
    summaries = records.summaries()
    if not summaries:
        return []
    with queries.snapshot(engine) as con:
        attrs = queries.study_attrs_by_name(con, keys=("dataset", "engine", "backend"))
        specs = queries.study_specs(con)
        fidelity = queries.study_fidelities(con, [s.name for s in summaries])
    out = []
    for s in summaries:
        row = s.to_dict()
        extra = attrs.get(s.name, {})
        row["dataset"] = row["dataset"] or _str_or_none(extra.get("dataset"))
        row["engine"] = row["engine"] or _str_or_none(extra.get("engine"))
        row["states"] = {k.upper(): v for k, v in s.states.items()}
        row["n_trials"] = sum(s.states.values())
        spec = specs.get(s.name)
        row["backend"] = recorded_backend(spec, extra)
        space = spec.get("space") if isinstance(spec, dict) else None
        row["space_key"] = json.dumps(space, sort_keys=True) if space is not None else None
        row["fidelity"] = fidelity[s.name].label()
        out.append(row)
    return out


def _str_or_none(value: Any) -> str | None:
    return str(value) if value is not None else None


def dataset_kind(dataset: str | None) -> str | None:
    """``'imagenet32'`` or ``'cifar10'`` for the dataset names of those two, else None."""
    if not dataset:
        return None
    low = dataset.lower()
    for kind in ("imagenet32", "cifar10"):
        if low == kind or low.startswith(kind + ":") or low.startswith(kind + "-"):
            return kind
    return None


def default_dataset_pair(studies: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The (ImageNet32, CIFAR-10) pair of studies to compare first: over the same space when
    any pair shares one, with the most complete trials on the smaller side."""
    inet = [s for s in studies if dataset_kind(s["dataset"]) == "imagenet32"]
    cifar = [s for s in studies if dataset_kind(s["dataset"]) == "cifar10"]

    def done(s: dict[str, Any]) -> int:
        return s["states"].get("COMPLETE", 0)

    best: tuple[Any, ...] | None = None
    for a in inet:
        for b in cifar:
            same = a["space_key"] is not None and a["space_key"] == b["space_key"]
            score = (same, min(done(a), done(b)), done(a) + done(b))
            if best is None or score > best[0]:
                best = (score, a["name"], b["name"])
    if best is not None:
        return best[1], best[2]
    return (
        max(inet, key=done)["name"] if inet else None,
        max(cifar, key=done)["name"] if cifar else None,
    )


def study_info(engine: sa.Engine, name: str) -> dict[str, Any]:
    """The overview row of one study (see :func:`list_studies`).

    Raises:
        UnknownStudy: no such study.
    """
    for row in list_studies(engine):
        if row["name"] == name:
            return row
    raise UnknownStudy(f"no study named '{name}' in this database; see 'hpo32 list'.")


# -- optimization history ---------------------------------------------------------------------
def best_so_far(values: Sequence[float | None]) -> list[float | None]:
    """Running maximum (every study maximizes); None until the first value."""
    out: list[float | None] = []
    best: float | None = None
    for v in values:
        if v is not None and (best is None or v > best):
            best = v
        out.append(best)
    return out


def _history_rows(bind: queries.Bind, name: str) -> list[tuple[Any, ...]]:
    """``(number, state, value, start, complete)`` of every trial of ``name`` by number."""
    return [
        (t.number, t.state, t.value, t.started, t.completed) for t in queries.trials(bind, name)
    ]


def history_from_rows(rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """Optimization-history data from ``(number, state, value, start, complete)`` rows.

    Returns:
        ``trials``: column lists (number, state, value, start, complete) of every trial in
        number order; ``by_number``: complete trials' numbers, values and best so far;
        ``by_time``: complete trials in completion order with completion times and best so
        far; ``counts``: trials per state.
    """
    cols: dict[str, list[Any]] = {k: [] for k in ("number", "state", "value", "start", "complete")}
    for number, state, value, start, complete in rows:
        cols["number"].append(int(number))
        cols["state"].append(str(state))
        cols["value"].append(_finite(value))
        cols["start"].append(
            start if isinstance(start, (float, int)) or start is None else _ts(start)
        )
        cols["complete"].append(
            complete if isinstance(complete, (float, int)) or complete is None else _ts(complete)
        )
    done = [
        i for i, s in enumerate(cols["state"]) if s == "COMPLETE" and cols["value"][i] is not None
    ]
    by_number = {
        "number": [cols["number"][i] for i in done],
        "value": [cols["value"][i] for i in done],
    }
    by_number["best"] = best_so_far(by_number["value"])
    timed = sorted(
        (i for i in done if cols["complete"][i] is not None),
        key=lambda i: (cols["complete"][i], cols["number"][i]),
    )
    by_time = {
        "number": [cols["number"][i] for i in timed],
        "time": [cols["complete"][i] for i in timed],
        "value": [cols["value"][i] for i in timed],
    }
    by_time["best"] = best_so_far(by_time["value"])
    counts: dict[str, int] = {}
    for s in cols["state"]:
        counts[s] = counts.get(s, 0) + 1
    return {"trials": cols, "by_number": by_number, "by_time": by_time, "counts": counts}


def history(engine: sa.Engine, name: str) -> dict[str, Any]:
    """Every trial's number, state, value, start and finish, plus best so far against trial
    number and against wall-clock time (one query; see :func:`history_from_rows`)."""
    out = history_from_rows(_history_rows(engine, name))
    out["name"] = name
    return out


# -- time axes for comparisons -----------------------------------------------------------------
def _search_intervals(
    sessions: Sequence[Any], hist: dict[str, Any], now: float
) -> list[tuple[float, float]]:
    trials = hist["trials"]
    spans = list(zip(trials["start"], trials["complete"], trials["state"], strict=True))
    return search_intervals(sessions, spans, now)


def best_over_time(
    engine: sa.Engine, names: Sequence[str], now: float | None = None
) -> list[dict[str, Any]]:
    """Per study: best value so far against hours of search spent (gaps between resumes left
    out), plus its dataset and engine; for the comparison pages.

    Returns:
        One dict per study: name, dataset, engine, hours, best, value (per complete trial in
        completion order), n_complete, finished (hours of each finished trial), span_hours.
    """
    now = time.time() if now is None else now
    info = queries.study_labels(engine, names)
    out = []
    with queries.snapshot(engine) as con:
        for name in names:
            hist = history_from_rows(_history_rows(con, name))
            sessions = queries.sessions(con, name)
            spent = search_clock(_search_intervals(sessions, hist, now))
            bt = hist["by_time"]
            trials = hist["trials"]
            finished = sorted(
                spent(c) / 3600.0
                for c, s in zip(trials["complete"], trials["state"], strict=True)
                if c is not None and s in _FINISHED
            )
            moments = [c for c in trials["complete"] if c is not None]
            moments += [s for s in trials["start"] if s is not None]
            if "RUNNING" in trials["state"]:
                moments.append(now)
            out.append(
                {
                    "name": name,
                    "dataset": info[name].dataset,
                    "engine": info[name].engine,
                    "hours": [spent(t) / 3600.0 for t in bt["time"]],
                    "best": bt["best"],
                    "value": bt["value"],
                    "number": bt["number"],
                    "n_complete": len(bt["value"]),
                    "finished": finished,
                    "span_hours": spent(max(moments)) / 3600.0 if moments else 0.0,
                    "counts": hist["counts"],
                }
            )
    return out


def throughput(series: Sequence[dict[str, Any]], bins: int | None = None) -> dict[str, Any]:
    """Finished trials per hour of search for each study of :func:`best_over_time`.

    Args:
        bins: how many time bins; default one per hour of search (at most 48), or 6 for
            searches shorter than 2 hours.

    Returns:
        ``hours``: bin centers shared by all studies; per study ``name``, ``engine``,
        ``per_hour`` (trials per hour in each bin) and ``rate`` (over its whole span).
    """
    span = max((s["span_hours"] for s in series), default=0.0)
    if span <= 0:
        span = max((max(s["finished"], default=0.0) for s in series), default=0.0) or 1.0
    if bins is None:
        bins = min(48, math.ceil(span)) if span >= 2 else 6
    width = span / bins
    out = []
    for s in series:
        counts = [0] * bins
        for h in s["finished"]:
            counts[min(int(h / width), bins - 1)] += 1
        out.append(
            {
                "name": s["name"],
                "engine": s["engine"],
                "per_hour": [c / width for c in counts],
                "rate": len(s["finished"]) / s["span_hours"] if s["span_hours"] > 0 else None,
                "finished": len(s["finished"]),
            }
        )
    return {"hours": [(i + 0.5) * width for i in range(bins)], "studies": out}


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def value_distribution(series: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Quartiles, fences, mean and count of complete trials' values per study (box plots
    drawn from these statistics, not from every value)."""
    out = []
    for s in series:
        vals = sorted(v for v in s["value"] if v is not None)
        row: dict[str, Any] = {"name": s["name"], "engine": s["engine"], "n": len(vals)}
        if vals:
            q1, med, q3 = (_quantile(vals, q) for q in (0.25, 0.5, 0.75))
            iqr = q3 - q1
            lo = min(v for v in vals if v >= q1 - 1.5 * iqr)
            hi = max(v for v in vals if v <= q3 + 1.5 * iqr)
            row.update(
                min=vals[0],
                max=vals[-1],
                q1=q1,
                median=med,
                q3=q3,
                lowerfence=lo,
                upperfence=hi,
                mean=sum(vals) / len(vals),
                outliers=[v for v in vals if v < lo or v > hi][:200],
            )
        out.append(row)
    return out


# -- learning curves --------------------------------------------------------------------------
def select_curve_trials(rows: Sequence[tuple[Any, ...]], cap: int) -> list[int]:
    """Which trials' learning curves to draw when there are more than ``cap``.

    Args:
        rows: ``(trial_id, number, state, value[, has_intermediate_values])`` of trials that
            reported epochs (or may have, in a ``history`` attribute); trials with Optuna
            intermediate values come first within a state.
        cap: most curves to draw.

    Returns:
        trial ids: all when they fit; else the latest running, the latest failed, the best
        pruned and the best complete trials, each state within a share of ``cap`` and unused
        shares going to the others.
    """
    if len(rows) <= cap:
        return [r[0] for r in rows]

    def surely(r: Sequence[Any]) -> bool:
        return bool(r[4]) if len(r) > 4 else True

    def best(state: str) -> list[int]:
        sel = [r for r in rows if r[2] == state]
        sel.sort(key=lambda r: (not surely(r), -(r[3] if r[3] is not None else -math.inf), r[1]))
        return [r[0] for r in sel]

    def latest(state: str) -> list[int]:
        sel = [r for r in rows if r[2] == state]
        sel.sort(key=lambda r: (not surely(r), -r[1]))
        return [r[0] for r in sel]

    buckets = [
        (latest("RUNNING"), cap // 5),
        (latest("FAIL"), cap // 10),
        (best("PRUNED"), cap // 4),
        (best("COMPLETE"), cap),
    ]
    others = [r[0] for r in rows if r[2] not in ("RUNNING", "FAIL", "PRUNED", "COMPLETE")]
    chosen: list[int] = []
    for ids, share in buckets[:3]:
        chosen += ids[:share]
    chosen += buckets[3][0][: cap - len(chosen)]
    if len(chosen) < cap:  # few complete trials: give the room back to the others
        taken = set(chosen)
        for ids, _ in buckets[:3]:
            for i in ids:
                if len(chosen) >= cap:
                    break
                if i not in taken:
                    chosen.append(i)
                    taken.add(i)
        chosen += [i for i in others if i not in taken][: cap - len(chosen)]
    return chosen


def learning_curves(engine: sa.Engine, name: str, cap: int = 200) -> dict[str, Any]:
    """Validation accuracy per epoch (Optuna's intermediate values; the ``history`` user
    attribute when a trial has none) for up to ``cap`` trials, and the mean over all trials.

    Returns:
        ``curves``: ``{number, state, value, steps, values}`` per drawn trial, by number;
        ``mean``: ``{steps, values, counts}`` over every trial of the study; ``n_total``
        trials with curves; ``n_shown``; ``note`` saying how the drawn ones were chosen.
    """
    with queries.snapshot(engine) as con:
        mean_rows = queries.curve_means(con, name)
        rows = [
            (r.trial_id, r.number, r.state, r.value, r.has_intermediate)
            for r in queries.curve_trials(con, name)
        ]
        chosen = select_curve_trials(rows, cap)
        points = queries.intermediate_values(con, chosen)
        missing = [i for i in chosen if i not in points]
        for tid, hist in queries.trial_attr(con, missing, "history").items():
            accs = hist.get("val_accuracy") if isinstance(hist, dict) else None
            if isinstance(accs, list):
                points[tid] = [
                    (k + 1, float(a))
                    for k, a in enumerate(accs)
                    if isinstance(a, (int, float)) and math.isfinite(a)
                ]
    info = {r[0]: r for r in rows}
    curves = []
    for tid in sorted(chosen, key=lambda i: info[i][1]):
        pts = sorted(points.get(tid, []))
        if not pts:
            continue
        curves.append(
            {
                "number": info[tid][1],
                "state": info[tid][2],
                "value": info[tid][3],
                "steps": [p[0] for p in pts],
                "values": [p[1] for p in pts],
            }
        )
    # trials whose history attribute held no epoch (failed before the first) do not count
    n_total = len(rows) - (len(chosen) - len(curves))
    note = ""
    if n_total > len(curves):
        note = (
            f"{len(curves)} of {n_total} trials: best complete and pruned, latest "
            "running and failed"
        )
    return {
        "name": name,
        "curves": curves,
        "mean": {
            "steps": [r.step for r in mean_rows],
            "values": [r.mean for r in mean_rows],
            "counts": [r.count for r in mean_rows],
        },
        "n_total": n_total,
        "n_shown": len(curves),
        "note": note,
    }


# -- parameters -----------------------------------------------------------------------------
def even_sample(items: Sequence[Any], cap: int, keep: Iterable[int] = ()) -> list[int]:
    """Indices of at most ``cap`` items spread evenly over ``items``, always with ``keep``.

    Returns:
        Sorted indices.
    """
    n = len(items)
    if n <= cap:
        return list(range(n))
    keep = sorted(set(k for k in keep if 0 <= k < n))[:cap]
    room = cap - len(keep)
    chosen = set(keep)
    if room > 0:
        step = n / room
        chosen.update(int(i * step) for i in range(room))
    k = 0
    while len(chosen) < cap and k < n:  # collisions with ``keep``: fill up in order
        chosen.add(k)
        k += 1
    return sorted(chosen)[:cap] if len(chosen) > cap else sorted(chosen)


def _param_spec(name: str, dist: BaseDistribution) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        return {"name": name, "kind": "categorical", "choices": list(dist.choices), "log": False}
    if isinstance(dist, IntDistribution):
        return {
            "name": name,
            "kind": "int",
            "low": dist.low,
            "high": dist.high,
            "log": bool(dist.log),
        }
    if isinstance(dist, FloatDistribution):
        return {
            "name": name,
            "kind": "float",
            "low": dist.low,
            "high": dist.high,
            "log": bool(dist.log),
        }
    return {"name": name, "kind": "float", "low": None, "high": None, "log": False}


def _merge_spec(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """One axis for a parameter whose distribution changed between trials."""
    if old is None:
        return new
    if old["kind"] == "categorical" or new["kind"] == "categorical":
        choices = list(old.get("choices") or [])
        for c in new.get("choices") or []:
            if c not in choices:
                choices.append(c)
        return {"name": old["name"], "kind": "categorical", "choices": choices, "log": False}
    lows = [x for x in (old.get("low"), new.get("low")) if x is not None]
    highs = [x for x in (old.get("high"), new.get("high")) if x is not None]
    return {
        "name": old["name"],
        "kind": "float" if "float" in (old["kind"], new["kind"]) else "int",
        "low": min(lows) if lows else None,
        "high": max(highs) if highs else None,
        "log": old["log"] and new["log"],
    }


def _infer_spec(name: str, values: list[Any]) -> dict[str, Any]:
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if values and len(nums) == len(values):
        kind = "int" if all(isinstance(v, int) for v in nums) else "float"
        return {
            "name": name,
            "kind": kind,
            "low": min(nums),
            "high": max(nums),
            "log": False,
            "inferred": True,
        }
    choices: list[Any] = []
    for v in values:
        if v not in choices:
            choices.append(v)
    return {"name": name, "kind": "categorical", "choices": choices, "log": False, "inferred": True}


def _configs(
    bind: queries.Bind, trial_ids: Sequence[int]
) -> tuple[dict[int, dict[str, Any]], dict[str, dict[str, Any]], dict[int, dict[str, Any]]]:
    """Each trial's active params (the ``config`` user attribute when present, else Optuna's
    params), the axis spec of every parameter and each trial's Optuna distributions."""
    configs = {
        tid: c
        for tid, c in queries.trial_attr(bind, trial_ids, "config").items()
        if isinstance(c, dict)
    }
    stored = queries.trial_params(bind, trial_ids)
    specs: dict[str, dict[str, Any]] = {}
    dists: dict[int, dict[str, Any]] = {}
    out: dict[int, dict[str, Any]] = {}
    seen: set[tuple[str, int]] = set()  # distributions are cached: one object per JSON
    for tid in trial_ids:
        params = stored.get(tid, {})
        dists[tid] = {n: p.distribution for n, p in params.items() if p.distribution is not None}
        for n, d in dists[tid].items():
            if (n, id(d)) not in seen:
                seen.add((n, id(d)))
                specs[n] = _merge_spec(specs.get(n), _param_spec(n, d))
        cfg = configs.get(tid)
        out[tid] = dict(cfg) if cfg is not None else {n: p.value for n, p in params.items()}
    unknown: dict[str, list[Any]] = {}
    for cfg in out.values():
        for n, val in cfg.items():
            if n not in specs:
                unknown.setdefault(n, []).append(val)
    for n, vals in unknown.items():
        specs[n] = _infer_spec(n, vals)
    for n, spec in specs.items():  # values outside the declared choices (mirrored engines)
        if spec["kind"] == "categorical":
            for cfg in out.values():
                if n in cfg and cfg[n] not in spec["choices"]:
                    spec["choices"].append(cfg[n])
    return out, specs, dists


def _complete_trials(bind: queries.Bind, name: str) -> list[tuple[int, int, float]]:
    """``(trial_id, number, value)`` of complete trials with a finite value, by number."""
    return [(t.trial_id, t.number, t.value) for t in queries.complete_trials(bind, name)]


# -- the study's space: axes from its bounds ----------------------------------------------------
def space_params(spec: Any) -> dict[str, dict[str, Any]] | None:
    """The parameters of a stored spec's search space, in the space's order, as axis specs:
    ``{name, kind (int, float, categorical or fixed), low, high, log, step, choices,
    conditional}``; None when the spec holds no space this hpo32 can read.

    The space is read as the study reads it: :meth:`SearchSpace.from_dict` of its ``space``,
    as version 1 (the recipe fixed) when the spec records no ``space_version``.
    """
    if not isinstance(spec, dict):
        return None
    from hpo32.search.space import Categorical, Fixed, SearchSpace, space_v1

    try:
        space = SearchSpace.from_dict(spec.get("space") or {"base": "default"})
        version = spec.get("space_version", 1)
        if isinstance(version, int) and version < 2:
            space = space_v1(space)
    except Exception:  # a space this hpo32 cannot read: the recorded distributions serve
        return None
    out: dict[str, dict[str, Any]] = {}
    for p in space.params:
        row: dict[str, Any] = {"name": p.name, "log": False, "conditional": p.condition is not None}
        if isinstance(p, Categorical):
            row.update(kind="categorical", choices=list(p.choices))
        elif isinstance(p, Fixed):
            row.update(kind="fixed", value=p.value)
        else:
            row.update(kind=p.kind, low=p.low, high=p.high, log=bool(p.log), step=p.step)
        out[p.name] = row
    return out


def study_space(bind: queries.Bind, name: str) -> dict[str, dict[str, Any]] | None:
    """:func:`space_params` of the spec study ``name`` stored (None for a plain Optuna
    study, or a spec without a readable space)."""
    return space_params(queries.study_spec(bind, name))


def _same_choice(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def with_space(
    specs: dict[str, dict[str, Any]], space: dict[str, dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """The axis specs of the recorded parameters ``specs``, bounds and choices taken from
    the study's ``space`` where it declares the parameter (choices it lacks but trials hold
    appended), the recorded distributions' elsewhere; in the space's order, the others after
    it. A parameter the space fixes is left out unless its trials recorded a distribution."""
    if not space:
        return [specs[n] for n in param_order(specs)]
    out: list[dict[str, Any]] = []
    for n, sp in space.items():
        rec = specs.get(n)
        if rec is None:
            continue
        if sp["kind"] == "fixed" or (sp["kind"] == "categorical") != (rec["kind"] == "categorical"):
            if not rec.get("inferred") or sp["kind"] != "fixed":
                out.append(rec)
            continue
        merged = {k: v for k, v in sp.items() if k != "conditional"}
        merged["source"] = "space"
        if sp["kind"] == "categorical":
            extra = [
                c
                for c in rec.get("choices") or []
                if not any(_same_choice(c, d) for d in sp["choices"])
            ]
            merged["choices"] = list(sp["choices"]) + extra
        out.append(merged)
    out += [specs[n] for n in param_order(n for n in specs if n not in space)]
    return out


def _pool(
    con: queries.Bind, name: str, states: Sequence[str], top: float
) -> tuple[list[tuple[int, int, float]], list[tuple[int, int, float]], dict[int, str]]:
    """The complete trials, the pool to sample from (the best ``top`` share of them, plus
    trials of the other ``states``) and each pooled trial's state."""
    done = _complete_trials(con, name)
    pool = done
    if top < 1.0 and done:
        keep = max(1, math.ceil(top * len(done)))
        pool = sorted(sorted(done, key=lambda d: -d[2])[:keep], key=lambda d: d[1])
    state = {d[0]: "COMPLETE" for d in pool}
    others = [s for s in states if s != "COMPLETE"]
    if others:
        extra = queries.valued_trials(con, name, others)
        state.update({t.trial_id: t.state for t in extra})
        pool = sorted(pool + [(t.trial_id, t.number, t.value) for t in extra], key=lambda d: d[1])
    return done, pool, state


def param_samples(
    engine: sa.Engine,
    name: str,
    cap: int = 1000,
    order: str = "even",
    top: float = 1.0,
    states: Sequence[str] = ("COMPLETE",),
) -> dict[str, Any]:
    """Parameter values and objective of complete trials, for parallel coordinates, slice
    plots and importances.

    Args:
        name: the study.
        cap: most trials returned.
        order: ``"even"`` spreads the sample over trial numbers (the best trial included);
            ``"latest"`` takes the most recent complete trials.
        top: only the best fraction of the complete trials is sampled (1.0: all).
        states: the states sampled (``("COMPLETE", "PRUNED")``: pruned trials too, with
            their last value).

    Returns:
        ``params``: axis specs in the space's order (name, kind int/float/categorical, low,
        high, log, choices: the study's space's bounds where it stored one, else the
        recorded distributions'); ``trials``: ``{number, state, value, params,
        distributions}`` by number; ``n_complete``; ``n_used``; ``note`` saying what was
        sampled, if anything.
    """
    with queries.snapshot(engine) as con:
        done, pool, state = _pool(con, name, states, top)
        if order == "latest":
            idx = list(range(max(0, len(pool) - cap), len(pool)))
        else:
            best = max(range(len(pool)), key=lambda i: pool[i][2]) if pool else None
            idx = even_sample(pool, cap, keep=[best] if best is not None else [])
        picked = [pool[i] for i in idx]
        configs, specs, dists = _configs(con, [p[0] for p in picked])
        space = study_space(con, name)
    trials = [
        {
            "number": num,
            "state": state.get(tid, "COMPLETE"),
            "value": val,
            "params": configs.get(tid, {}),
            "distributions": dists.get(tid, {}),
        }
        for tid, num, val in picked
    ]
    parts = []
    if top < 1.0:
        parts.append(f"best {top:.0%}: {len(pool):,} of {len(done):,} complete trials")
    if len(pool) > len(picked):
        how = "latest" if order == "latest" else "evenly spaced, best included"
        of = "of those" if top < 1.0 else "complete trials" if len(state) == len(done) else "trials"
        parts.append(f"{len(picked):,} of {len(pool):,} {of} ({how})")
    return {
        "name": name,
        "params": with_space(specs, space),
        "trials": trials,
        "n_complete": len(done),
        "n_used": len(picked),
        "note": "; ".join(parts),
    }


def importances(engine: sa.Engine, name: str, cap: int = 1000) -> dict[str, Any]:
    """Parameter importances of a study by Optuna's PED-ANOVA evaluator (conditional
    parameters included), over its latest ``cap`` complete trials.

    Returns:
        ``params`` and ``importances`` (most important first, summing to 1 when any is
        non-zero), ``n_used``, ``n_complete``, ``method``, ``note``.
    """
    sample = param_samples(engine, name, cap=cap, order="latest")
    return importances_from_samples(sample)


def importances_from_samples(sample: dict[str, Any]) -> dict[str, Any]:
    """:func:`importances` from :func:`param_samples` output (pure; runs Optuna in memory)."""
    import warnings

    import optuna

    out = {
        "name": sample["name"],
        "params": [],
        "importances": [],
        "method": "PED-ANOVA",
        "n_used": 0,
        "n_complete": sample["n_complete"],
        "note": sample["note"],
    }
    frozen = []
    for t in sample["trials"]:
        dists = {n: d for n, d in t["distributions"].items() if n in t["params"] and not d.single()}
        params = {}
        for n, d in list(dists.items()):
            try:
                if d._contains(d.to_internal_repr(t["params"][n])):
                    params[n] = t["params"][n]
                    continue
            except Exception:  # a value its distribution cannot hold: leave the param out
                pass
            del dists[n]
        frozen.append(
            optuna.trial.create_trial(params=params, distributions=dists, value=t["value"])
        )
    if len(frozen) < 2 or not any(f.params for f in frozen):
        out["note"] = "needs at least 2 complete trials with parameters"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.create_study(direction="maximize")
        study.add_trials(frozen)
        result = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
        )
    out["params"] = list(result)
    out["importances"] = [float(v) for v in result.values()]
    out["n_used"] = len(frozen)
    return out


def categorical_names(engine: sa.Engine, name: str) -> list[str]:
    """Every categorical parameter of study ``name`` with two or more choices: its space's
    (in the space's order) where it stored one, else those recorded with a categorical
    distribution (in :func:`param_order`)."""
    with queries.snapshot(engine) as con:
        recorded = queries.param_distributions(con, name)
        space = study_space(con, name)
    from optuna.distributions import CategoricalDistribution

    categorical = []
    for pname, dists in recorded.items():
        try:
            if any(
                isinstance(d, CategoricalDistribution) and len(d.choices) > 1
                for d in map(queries.distribution, dists)
            ):
                categorical.append(pname)
        except Exception:  # a distribution this Optuna cannot read
            continue
    if space:
        declared = [
            n for n, p in space.items() if p["kind"] == "categorical" and len(p["choices"]) > 1
        ]
        return [n for n in declared if n in recorded] + param_order(
            n for n in categorical if n not in space
        )
    return param_order(categorical)


def categorical_effects(
    engine: sa.Engine, name: str, params: Sequence[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Per categorical parameter and choice: count, mean, standard deviation and max of
    complete trials' values; one aggregate query.

    Args:
        params: the parameters (default: every categorical of the study,
            :func:`categorical_names`).

    Returns:
        ``{param: [{choice, count, mean, std, max}, ...]}`` in the choices' declared order,
        the parameters in ``params``' order.
    """
    if params is None:
        params = categorical_names(engine, name)
    rows = [
        (r.param_name, r.raw_value, r.distribution_json, r.count, r.mean, r.mean_square, r.max)
        for r in queries.choice_stats(engine, name, params)
    ]
    acc: dict[str, dict[Any, list[float]]] = {}
    order: dict[str, list[Any]] = {}
    for pname, raw, dist_json, n, mean, mean_sq, best in rows:
        try:
            dist = queries.distribution(dist_json)
            choice = dist.to_external_repr(raw)
            choices = list(getattr(dist, "choices", ()))
        except Exception:
            choice, choices = raw, []
        seen = order.setdefault(pname, [])
        for c in choices + [choice]:
            if c not in seen:
                seen.append(c)
        a = acc.setdefault(pname, {}).setdefault(_hashable(choice), [0, 0.0, 0.0, -math.inf])
        a[0] += n
        a[1] += mean * n
        a[2] += mean_sq * n
        a[3] = max(a[3], best)
    out: dict[str, list[dict[str, Any]]] = {}
    for pname in params:
        entries = []
        for choice in order.get(pname, []):
            got = acc.get(pname, {}).get(_hashable(choice))
            if got is None or got[0] == 0:
                entries.append(
                    {"choice": choice, "count": 0, "mean": None, "std": None, "max": None}
                )
                continue
            mean = got[1] / got[0]
            var = max(0.0, got[2] / got[0] - mean * mean)
            entries.append(
                {
                    "choice": choice,
                    "count": got[0],
                    "mean": mean,
                    "std": math.sqrt(var),
                    "max": got[3],
                }
            )
        out[pname] = entries
    return out


def _hashable(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)):
        return (type(value).__name__, value)
    return repr(value)


# -- rank correlation -------------------------------------------------------------------------
def config_key(config: dict[str, Any]) -> tuple[Any, ...]:
    """A hashable canonical form of a config: sorted keys, floats to 6 significant digits,
    booleans kept apart from numbers."""
    items = []
    for k in sorted(config):
        v = config[k]
        kind = type(v)
        if kind is float:
            v = float(f"{v:.6g}")
        elif kind not in (int, str, bool) and v is not None:
            v = json.dumps(v, sort_keys=True)
        items.append((k, kind is bool, v))
    return tuple(items)


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rank correlation (ties get average ranks); None below 3 pairs or when one
    side is constant."""
    if len(a) != len(b) or len(a) < 3:
        return None
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return None
    return cov / math.sqrt(va * vb)


def _values_by_config(
    con: queries.Bind, name: str
) -> dict[tuple[Any, ...], tuple[float, int, int]]:
    """``{config_key: (mean value, count, first trial number)}`` of complete trials."""
    done = _complete_trials(con, name)
    ids = [d[0] for d in done]
    configs = {
        tid: c for tid, c in queries.trial_attr(con, ids, "config").items() if isinstance(c, dict)
    }
    lacking = [tid for tid in ids if tid not in configs]
    if lacking:
        for tid, params in queries.trial_params(con, lacking).items():
            configs[tid] = {n: p.value for n, p in params.items()}
    acc: dict[tuple[Any, ...], list[float]] = {}
    for tid, number, value in done:
        cfg = configs.get(tid)
        if not cfg:
            continue
        a = acc.setdefault(config_key(cfg), [0.0, 0, number])
        a[0] += value
        a[1] += 1
    return {k: (a[0] / a[1], int(a[1]), int(a[2])) for k, a in acc.items()}


def rank_correlation(engine: sa.Engine, name_a: str, name_b: str) -> dict[str, Any]:
    """Configs evaluated in both studies (same params and values), their mean values on each
    side and Spearman's rank correlation.

    Returns:
        ``a``, ``b`` (values, paired), ``numbers`` (first trial number on each side),
        ``n_pairs``, ``spearman`` (None below 3 pairs).
    """
    with queries.snapshot(engine) as con:
        va = _values_by_config(con, name_a)
        vb = _values_by_config(con, name_b)
    shared = sorted(set(va) & set(vb), key=lambda k: va[k][2])
    a = [va[k][0] for k in shared]
    b = [vb[k][0] for k in shared]
    return {
        "name_a": name_a,
        "name_b": name_b,
        "a": a,
        "b": b,
        "numbers": [(va[k][2], vb[k][2]) for k in shared],
        "n_pairs": len(shared),
        "spearman": spearman(a, b),
    }


def _standing(bind: queries.Bind, name: str) -> dict[int, tuple[float | None, int | None]]:
    """``{trial number: (value, rank)}`` of the complete trials of study ``name``; rank 1 is
    the highest value (validation accuracy), ties share the better rank."""
    done = _complete_trials(bind, name)
    values = sorted((v for _, _, v in done), reverse=True)
    first: dict[float, int] = {}
    for k, v in enumerate(values, 1):
        first.setdefault(v, k)
    return {number: (v, first[v]) for _, number, v in done}


def warm_start_ranks(engine: sa.Engine, name_a: str, name_b: str) -> list[dict[str, Any]]:
    """The trials of either study that ran a config taken from the other one
    (``warm_start: [{study: NAME, top: K}]`` records ``warm_start_from`` on them), with the
    config's value and rank among complete trials in the study it came from and in the one
    it was carried to.

    Returns:
        one dict a carried config, with ``source``/``target`` (study names), ``source_trial``,
        ``target_trial``, ``source_value``/``source_rank``, ``target_value``/``target_rank``
        (None while the target trial is not complete), ``source_trials``/``target_trials``
        (complete trials on each side), in the order the configs were carried.
    """
    rows: list[dict[str, Any]] = []
    none: tuple[float | None, int | None] = (None, None)  # not (or no longer) complete
    with queries.snapshot(engine) as con:
        standing = {n: _standing(con, n) for n in {name_a, name_b}}
        for target, source in ((name_a, name_b), (name_b, name_a)):
            attrs = queries.study_trial_attrs(con, target, ["warm_start_from"])
            numbers = {t.trial_id: t.number for t in queries.trials(con, target)}
            for tid, got in attrs.items():
                origin = got.get("warm_start_from")
                if not isinstance(origin, dict) or origin.get("study") != source:
                    continue
                trial = origin.get("trial")
                src = standing[source].get(trial, none) if isinstance(trial, int) else none
                dst = standing[target].get(numbers[tid], none)
                rows.append(
                    {
                        "source": source,
                        "target": target,
                        "source_trial": trial,
                        "target_trial": numbers[tid],
                        "source_value": src[0],
                        "source_rank": src[1],
                        "target_value": dst[0],
                        "target_rank": dst[1],
                        "source_trials": len(standing[source]),
                        "target_trials": len(standing[target]),
                    }
                )
    rows.sort(key=lambda r: (r["target"], r["target_trial"]))
    return rows


# -- best trial ---------------------------------------------------------------------------------
def best_trial(engine: sa.Engine, name: str) -> dict[str, Any] | None:
    """The best complete trial (number, value, duration, config, user attrs) with the study's
    test result (``result``: trial_number, val_accuracy, test_accuracy, model_path) if any."""
    queries.study_id(engine, name)  # raises UnknownStudy
    best = Records(engine, create=False).best_trial(name)
    if best is None:
        return None
    best["result"] = queries.study_result(engine, name)
    best["param_names"] = param_order(best["config"] or {})
    return best


# -- trial table --------------------------------------------------------------------------------
_ATTR_COLUMNS = (
    "epochs_completed",
    "stopped_by",
    "train_seconds",
    "images_per_second",
    "fail_reason",
)


def trial_table(engine: sa.Engine, name: str) -> dict[str, Any]:
    """Every trial of a study as one flat row: number, state, value, duration_s, started,
    epochs_completed, stopped_by, train_seconds, images_per_second, fail_reason and each
    parameter (absent when inactive).

    Returns:
        ``columns`` (ids in display order), ``types`` (``numeric`` or ``text`` per column),
        ``rows``.
    """
    with queries.snapshot(engine) as con:
        trows = queries.trials(con, name)
        attrs = queries.study_trial_attrs(con, name, _ATTR_COLUMNS + ("config",))
        lacking = {
            t.trial_id
            for t in trows
            if not isinstance(attrs.get(t.trial_id, {}).get("config"), dict)
        }
        stored: dict[int, dict[str, Any]] = {}
        if lacking:
            for tid, params in queries.study_trial_params(con, name).items():
                if tid in lacking:
                    stored[tid] = {n: p.value for n, p in params.items()}
    rows = []
    text_cols: set[str] = {"state", "started"}
    seen_cols: set[str] = set()
    fmt = "%Y-%m-%d %H:%M:%S"
    for trial in trows:
        a = attrs.get(trial.trial_id, {})
        cfg = a.pop("config", None)
        if not isinstance(cfg, dict):
            cfg = stored.get(trial.trial_id, {})
        s, c = trial.started, trial.completed
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state,
            "value": _finite(trial.value),
            "duration_s": round(c - s, 1) if s is not None and c is not None else None,
            "started": _dt.datetime.fromtimestamp(s).strftime(fmt) if s is not None else None,
        }
        for source in (a, cfg):
            for key, val in source.items():
                if val is None:
                    continue
                if not isinstance(val, (int, float)) or isinstance(val, bool):
                    val = _cell(val)
                    text_cols.add(key)
                elif isinstance(val, float) and not math.isfinite(val):
                    val = str(val)
                    text_cols.add(key)
                row[key] = val
                seen_cols.add(key)
        rows.append(row)
    pnames = seen_cols - set(_ATTR_COLUMNS)
    columns = [
        "number",
        "state",
        "value",
        "duration_s",
        "started",
        *(a for a in _ATTR_COLUMNS if a in seen_cols),
        *param_order(pnames),
    ]
    types = {col: "text" if col in text_cols else "numeric" for col in columns}
    return {"name": name, "columns": columns, "types": types, "rows": rows}


def _cell(value: Any) -> Any:
    """A table cell: numbers stay numbers, booleans and everything else become text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return value if not isinstance(value, float) or math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


#: Numbers closer than this (relative) compare equal in filters: values are stored as
#: float32 (0.1 reads back 0.10000000149), so ``> 0.1`` must not match a shown 0.1000.
FILTER_RTOL = 1e-6

#: AG Grid's number filter types as comparisons (``inRange``, ``blank`` and ``notBlank``
#: are handled apart).
_NUMBER_TESTS: dict[str, Callable[[float, float, bool], bool]] = {
    "equals": lambda c, v, close: close,
    "notEqual": lambda c, v, close: not close,
    "lessThan": lambda c, v, close: c < v and not close,
    "lessThanOrEqual": lambda c, v, close: c < v or close,
    "greaterThan": lambda c, v, close: c > v and not close,
    "greaterThanOrEqual": lambda c, v, close: c > v or close,
}
#: AG Grid's text filter types (case-insensitive, as its own client-side filter).
_TEXT_TESTS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda c, v: v in c,
    "notContains": lambda c, v: v not in c,
    "equals": lambda c, v: c == v,
    "notEqual": lambda c, v: c != v,
    "startsWith": lambda c, v: c.startswith(v),
    "endsWith": lambda c, v: c.endswith(v),
}


def _close(cell: float, value: float) -> bool:
    return math.isclose(cell, value, rel_tol=FILTER_RTOL, abs_tol=1e-12)


def _condition_matches(cell: Any, cond: Mapping[str, Any]) -> bool:
    """Whether ``cell`` passes one condition of AG Grid's filter model (``{"filterType":
    "number" | "text", "type": ..., "filter": ..., "filterTo": ...}``); empty cells pass
    ``blank`` only. A condition it cannot read passes every cell."""
    kind = cond.get("type")
    blank = cell is None or cell == ""
    if kind in ("blank", "notBlank"):
        return blank == (kind == "blank")
    if blank:
        return False
    if cond.get("filterType") == "number":
        try:
            c, v = float(cell), float(cond["filter"])
        except (KeyError, TypeError, ValueError):
            return True
        if kind == "inRange":
            try:
                top = float(cond["filterTo"])
            except (KeyError, TypeError, ValueError):
                return True
            return (c > v or _close(c, v)) and (c < top or _close(c, top))
        test = _NUMBER_TESTS.get(str(kind))
        return True if test is None else test(c, v, _close(c, v))
    text_test = _TEXT_TESTS.get(str(kind))
    if text_test is None or cond.get("filter") is None:
        return True
    return text_test(_cell_text(cell), _cell_text(cond["filter"]))


def _cell_text(value: Any) -> str:
    """A cell as its filter compares it: lower case, whole floats without ``.0``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).lower()


def _column_matches(cell: Any, model: Mapping[str, Any]) -> bool:
    """One column's entry of the filter model: a condition, or ``operator`` AND/OR over
    ``conditions`` (AG Grid 29 on; ``condition1``/``condition2`` before)."""
    conditions = model.get("conditions") or [
        model[k] for k in ("condition1", "condition2") if isinstance(model.get(k), Mapping)
    ]
    if not conditions or "operator" not in model:
        return _condition_matches(cell, model)
    results = (_condition_matches(cell, c) for c in conditions)
    return any(results) if str(model["operator"]).upper() == "OR" else all(results)


def _sort_key(value: Any) -> tuple[bool, Any]:
    """Numbers before text; text case-insensitively."""
    if isinstance(value, str):
        return (True, value.lower())
    return (False, value)


def grid_rows(
    rows: Sequence[dict[str, Any]],
    start: int = 0,
    end: int | None = None,
    sort_model: Sequence[Mapping[str, Any]] | None = None,
    filter_model: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Rows ``start`` to ``end`` of a table after AG Grid's filter and sort models, as its
    infinite row model asks for them (``getRowsRequest``); empty cells sort last.

    Args:
        rows: the table's rows (column name -> cell).
        sort_model: ``[{"colId": column, "sort": "asc" | "desc"}, ...]``, first key first.
        filter_model: column -> its filter (see :func:`_column_matches`).

    Returns:
        ``(the rows asked for, how many rows match the filter)``.
    """
    filters = list((filter_model or {}).items())
    sel = [r for r in rows if all(_column_matches(r.get(col), m) for col, m in filters)]
    for spec in reversed(list(sort_model or [])):
        col = spec.get("colId")
        if col is None:  # no column: nothing to sort by (every row would be "absent")
            continue
        desc = spec.get("sort") == "desc"
        present = [r for r in sel if r.get(col) is not None]
        absent = [r for r in sel if r.get(col) is None]
        present.sort(key=lambda r: _sort_key(r[col]), reverse=desc)
        sel = present + absent
    start = max(0, int(start or 0))
    stop = len(sel) if end is None else max(start, int(end))
    return list(sel[start:stop]), len(sel)


# -- chance level, one trial, the timeline (issue 15's plots) --------------------------------------
#: Class counts of the datasets whose size is known without reading them.
DATASET_CLASSES = {"cifar10": 10, "imagenet32": 1000}


def _count_classes(classes: Any) -> int | None:
    if isinstance(classes, bool):
        return None
    if isinstance(classes, int):
        return classes
    if isinstance(classes, list):
        return len(classes)
    if isinstance(classes, str):
        text = classes.strip()
        if text.isdigit() and len(text) < 10:
            return int(text)
        return len([c for c in text.split(",") if c.strip()])
    return None


def class_count(engine: sa.Engine, name: str) -> int | None:
    """How many classes study ``name`` tells apart: its recorded class ids, else its spec's
    ``classes``, else its dataset's full count (CIFAR-10, ImageNet32); None when unknown."""
    with queries.snapshot(engine) as con:
        attrs = queries.study_attrs(con, name)
        spec = queries.study_spec(con, name)
        ids, _ = queries.study_classes(con, name)
    n = _count_classes(ids or None)
    spec = spec if isinstance(spec, dict) else {}
    if n is None:
        n = _count_classes(spec.get("classes"))
    if n is None:
        dataset = spec.get("dataset") or attrs.get("dataset")
        n = DATASET_CLASSES.get(dataset_kind(str(dataset)) or "") if dataset else None
    return n if n is not None and n >= 2 else None


def chance(engine: sa.Engine, name: str) -> float | None:
    """The accuracy of guessing in study ``name`` (1 / classes), None when unknown."""
    n = class_count(engine, name)
    return 1.0 / n if n else None


_TIMING_KEYS = (
    "train_seconds",
    "eval_seconds",
    "save_seconds",
    "trial_seconds",
    "images_per_second",
    "epochs_completed",
    "peak_rss_mb",
)


def _history_curves(history: Any, points: Sequence[tuple[int, float]]) -> dict[str, list[Any]]:
    """``{metric: [(epoch, value), ...]}``: validation accuracy from Optuna's intermediate
    values (else the history attribute), the other metrics from the history attribute."""
    out: dict[str, list[Any]] = {}
    if points:
        out["val_accuracy"] = [(int(s), float(v)) for s, v in points]
    if isinstance(history, dict):
        for key, values in history.items():
            if key in out or not isinstance(values, list):
                continue
            pts = [
                (k + 1, float(v))
                for k, v in enumerate(values)
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            ]
            if pts:
                out[str(key)] = pts
    return out


def trial_detail(engine: sa.Engine, name: str, number: int) -> dict[str, Any] | None:
    """Everything about trial ``number`` of study ``name`` for its page: state, value,
    times, config (in the space's order), per-epoch curves, timings, model path, why it
    stopped, the worker, the other user attributes; None when the study has no such trial.

    Raises:
        UnknownStudy: no such study.
    """
    with queries.snapshot(engine) as con:
        detail = queries.trial_detail(con, name, number)
        space = study_space(con, name) if detail is not None else None
    if detail is None:
        return None
    t = detail.trial
    attrs = dict(detail.user_attrs)
    config = attrs.pop("config", None)
    if not isinstance(config, dict):
        config = {n: p.value for n, p in detail.params.items()}
    order = [n for n in (space or {}) if n in config]
    order += param_order(n for n in config if n not in order)
    duration = t.completed - t.started if t.started is not None and t.completed else None
    return {
        "name": name,
        "number": t.number,
        "state": t.state,
        "value": t.value,
        "started": t.started,
        "completed": t.completed,
        "duration_seconds": duration,
        "config": {n: config[n] for n in order},
        "sampled": sorted(detail.params),
        "curves": _history_curves(attrs.pop("history", None), detail.intermediate),
        "timings": {k: attrs.pop(k) for k in _TIMING_KEYS if k in attrs},
        "model_path": attrs.pop("model_path", None),
        "stopped_by": attrs.pop("stopped_by", None),
        "fail_reason": attrs.pop("fail_reason", None),
        "worker": attrs.pop("worker", None),
        "attrs": attrs,
    }


def timeline(engine: sa.Engine, name: str, now: float | None = None) -> dict[str, Any]:
    """Each trial's number, state, start, finish and worker (the ``worker`` attribute;
    None where not recorded), for the timeline of trials by worker."""
    with queries.snapshot(engine) as con:
        trows = queries.trials(con, name)
        workers = queries.study_trial_attrs(con, name, ("worker",))
    rows = [
        {
            "number": t.number,
            "state": t.state,
            "start": t.started,
            "complete": t.completed,
            "worker": _str_or_none(workers.get(t.trial_id, {}).get("worker")),
        }
        for t in trows
    ]
    return {"name": name, "rows": rows, "now": time.time() if now is None else now}
