"""The typed records the figures draw, computed apart from the drawing: axes from a search
space's bounds (log axes, integer ticks, categories in the space's order), nice ticks, time
units that fit a study's length, the chance level, and the data of the EDF, contour and
timeline plots.

Texts here are raw (as stored); :mod:`hpo32.dashboards.figures` escapes them when drawing.
No Dash, no plotly, no database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence, TypeGuard

__all__ = [
    "Axis",
    "ContourGrid",
    "Edf",
    "TimeUnit",
    "TimelineBar",
    "chance_level",
    "contour_grid",
    "edf",
    "int_step",
    "linear_ticks",
    "log_ticks",
    "param_axis",
    "time_unit",
    "timeline_bars",
    "value_axis",
]

#: Where an inactive (conditional) value sits, as a share of the axis span below its low end.
INACTIVE_GAP = 0.15


# -- ticks ----------------------------------------------------------------------------------------
def _nice(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least ``raw``."""
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * power >= raw * (1 - 1e-9):
            return m * power
    return 10.0 * power


def int_step(span: float, target: int = 6) -> int:
    """A whole tick step for an integer axis spanning ``span`` (1, 2, 5, 10, 20, 25, ...)."""
    step = _nice(span / max(1, target))
    return max(1, int(round(step)) if step >= 1 else 1)


def linear_ticks(lo: float, hi: float, integer: bool = False, target: int = 6) -> list[float]:
    """Round tick values within [lo, hi] (both included when they are round enough):
    whole numbers only when ``integer``, never a label twice."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        return [int(lo) if integer else lo]
    if integer:
        lo_i, hi_i = math.ceil(lo), math.floor(hi)
        step: float = int_step(hi_i - lo_i, target)
        first = math.ceil(lo_i / step) * step
        whole: list[float] = sorted({lo_i, *range(int(first), hi_i + 1, int(step)), hi_i})
        return [float(t) for t in _spread(whole, step * 0.5)]
    step = _nice((hi - lo) / target)
    first = math.ceil(lo / step - 1e-9) * step
    ticks: list[float] = []
    k = 0
    while first + k * step <= hi + step * 1e-9:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def _spread(ticks: list[float], gap: float) -> list[float]:
    """``ticks`` without those closer than ``gap`` to the previous kept one (ends kept)."""
    if len(ticks) <= 2:
        return ticks
    out = [ticks[0]]
    for t in ticks[1:-1]:
        if t - out[-1] >= gap and ticks[-1] - t >= gap:
            out.append(t)
    out.append(ticks[-1])
    return out


def log_ticks(lo: float, hi: float, integer: bool = False) -> list[float]:
    """Tick values (raw units) for a log axis over [lo, hi]: 1-2-5 per decade (powers of
    ten only over more than three decades), the bounds themselves, whole numbers when
    ``integer``, each far enough from the next to be read."""
    if lo <= 0 or hi <= 0:
        return linear_ticks(lo, hi, integer)
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        return [lo]
    llo, lhi = math.log10(lo), math.log10(hi)
    mults = (1.0,) if lhi - llo > 3 else (1.0, 2.0, 5.0)
    ticks = {lo, hi}
    for power in range(math.floor(llo), math.ceil(lhi) + 1):
        for m in mults:
            v = m * 10.0**power
            if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9) and (not integer or v >= 1):
                ticks.add(float(round(v)) if integer else v)
    ordered = sorted(ticks)
    logs = [math.log10(t) for t in ordered]
    keep = _spread(logs, (lhi - llo) * 0.06)
    return [10.0**v if not integer else float(round(10.0**v)) for v in keep]


def tick_label(value: float, integer: bool = False) -> str:
    """A tick's text: whole numbers without decimals, others to 3 significant digits."""
    if integer or (float(value).is_integer() and abs(value) < 1e15):
        return f"{int(round(value)):,}" if abs(value) >= 10000 else str(int(round(value)))
    return f"{value:.3g}"


# -- axes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    """One axis of a parallel-coordinates plot, in drawn units (log10 on log axes).

    Attributes:
        label: the parameter's name (raw), or ``value``.
        kind: ``int``, ``float``, ``categorical`` or ``value``.
        log: drawn on a log scale.
        low, high: the space's bounds (categorical: the first and last choice's index),
            widened only when a trial lies outside them (counted in ``outside``).
        bottom, top: the drawn extent: the bounds, a margin, and the inactive tick.
        tickvals, ticktext: where the ticks are and what they say.
        values: each trial's drawn position (an inactive value at ``inactive``).
        inactive: where inactive (conditional) values sit, or None when every trial has one.
        outside: how many trials lie outside the space's bounds or choices.
    """

    label: str
    kind: str
    log: bool
    low: float
    high: float
    bottom: float
    top: float
    tickvals: tuple[float, ...]
    ticktext: tuple[str, ...]
    values: tuple[float, ...]
    inactive: float | None = None
    outside: int = 0

    @property
    def title(self) -> str:
        return self.label + (" (log)" if self.log else "")

    def share(self, v: float) -> float:
        """Where ``v`` (drawn units) lies between the axis' bottom (0) and top (1)."""
        return (v - self.bottom) / ((self.top - self.bottom) or 1.0)


def _is_number(v: Any) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _categorical_axis(spec: dict[str, Any], raw: Sequence[Any]) -> Axis:
    declared = list(spec.get("choices") or [])
    choices = list(declared)
    keys = [repr(c) for c in choices]
    outside = 0
    for v in raw:
        if v is not None and repr(v) not in keys:
            choices.append(v)
            keys.append(repr(v))
    known = set(keys[: len(declared)])
    outside = sum(1 for v in raw if v is not None and declared and repr(v) not in known)
    index = {k: float(i) for i, k in enumerate(keys)}
    tickvals = [float(i) for i in range(len(choices))]
    ticktext = [str(c) for c in choices]
    inactive = None
    if any(v is None for v in raw):
        inactive = -1.0
        tickvals.insert(0, inactive)
        ticktext.insert(0, "inactive")
    high = float(max(len(choices) - 1, 0))
    return Axis(
        label=spec["name"],
        kind="categorical",
        log=False,
        low=0.0,
        high=high,
        bottom=(inactive if inactive is not None else 0.0) - 0.2,
        top=high + 0.2,
        tickvals=tuple(tickvals),
        ticktext=tuple(ticktext),
        values=tuple(index[repr(v)] if v is not None else -1.0 for v in raw),
        inactive=inactive,
        outside=outside,
    )


def param_axis(spec: dict[str, Any], raw: Sequence[Any]) -> Axis:
    """The axis of one parameter over the trials' values ``raw`` (None: inactive).

    Args:
        spec: ``{name, kind, low, high, log[, choices]}`` (the space's bounds; None bounds
            fall back on the values').
    """
    if spec["kind"] == "categorical":
        return _categorical_axis(spec, raw)
    nums = [float(v) if _is_number(v) else None for v in raw]
    present = [v for v in nums if v is not None]
    low, high = spec.get("low"), spec.get("high")
    low = float(low) if _is_number(low) else min(present, default=0.0)
    high = float(high) if _is_number(high) else max(present, default=1.0)
    outside = sum(1 for v in present if v < low - 1e-9 * abs(low) or v > high + 1e-9 * abs(high))
    low, high = min([low, *present]), max([high, *present])
    integer = spec["kind"] == "int"
    log = bool(spec.get("log")) and low > 0
    ticks = log_ticks(low, high, integer) if log else linear_ticks(low, high, integer)

    def drawn(v: float) -> float:
        return math.log10(v) if log else v

    dlo, dhi = drawn(low), drawn(high)
    bottom, top = dlo, dhi
    if dhi == dlo:  # one legal value: a short axis around it
        pad = 0.5 if integer and not log else (abs(dlo) * 0.1 or 0.5)
        bottom, top = dlo - pad, dhi + pad
    tickvals = [drawn(t) for t in ticks]
    ticktext = [tick_label(t, integer) for t in ticks]
    inactive = None
    if any(v is None for v in nums):
        inactive = bottom - INACTIVE_GAP * (top - bottom)
        tickvals.insert(0, inactive)
        ticktext.insert(0, "inactive")
        bottom = inactive
    return Axis(
        label=spec["name"],
        kind=spec["kind"],
        log=log,
        low=dlo,
        high=dhi,
        bottom=bottom,
        top=top,
        tickvals=tuple(tickvals),
        ticktext=tuple(ticktext),
        values=tuple(drawn(v) if v is not None else inactive for v in nums),  # type: ignore[misc]
        inactive=inactive,
        outside=outside,
    )


def value_axis(values: Sequence[float], label: str = "value") -> Axis:
    """The objective's axis: from the values' round bounds, ticks to 3 decimals."""
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi == lo:
        lo, hi = lo - 0.01, hi + 0.01
    ticks = linear_ticks(lo, hi, target=5)
    return Axis(
        label=label,
        kind="value",
        log=False,
        low=lo,
        high=hi,
        bottom=lo,
        top=hi,
        tickvals=tuple(ticks),
        ticktext=tuple(f"{t:.3f}" for t in ticks),
        values=tuple(float(v) for v in values),
    )


# -- time and chance --------------------------------------------------------------------------
@dataclass(frozen=True)
class TimeUnit:
    """A unit for a time axis: its name (plural), its length in seconds, its short form."""

    name: str
    seconds: float
    short: str


_UNITS = (
    TimeUnit("seconds", 1.0, "s"),
    TimeUnit("minutes", 60.0, "min"),
    TimeUnit("hours", 3600.0, "h"),
    TimeUnit("days", 86400.0, "d"),
)


def time_unit(span_seconds: float) -> TimeUnit:
    """The unit a time axis spanning ``span_seconds`` reads best in: seconds below two
    minutes, minutes below two hours, hours below two days, days beyond."""
    for unit, limit in zip(_UNITS, (120.0, 7200.0, 172800.0), strict=False):
        if span_seconds < limit:
            return unit
    return _UNITS[-1]


def chance_level(classes: int | None) -> float | None:
    """The accuracy of guessing (1 / classes), or None when the class count is unknown."""
    if classes is None or classes < 2:
        return None
    return 1.0 / classes


# -- EDF, contour, timeline ---------------------------------------------------------------------
@dataclass(frozen=True)
class Edf:
    """The empirical distribution of values: the share of trials at or below each value."""

    label: str
    values: tuple[float, ...]
    shares: tuple[float, ...]


def edf(label: str, values: Sequence[float | None]) -> Edf:
    """The EDF of ``values`` (None and non-finite left out), as a step line's points."""
    vals = sorted(float(v) for v in values if v is not None and math.isfinite(v))
    n = len(vals)
    return Edf(label, tuple(vals), tuple((k + 1) / n for k in range(n)))


@dataclass(frozen=True)
class ContourGrid:
    """Mean value per cell of a grid over two parameters (None where no trial fell), plus
    the trials' own points; categorical axes by choice index, log ones in log10."""

    x: Axis
    y: Axis
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    z: tuple[tuple[float | None, ...], ...]
    points_x: tuple[float, ...]
    points_y: tuple[float, ...]
    points_value: tuple[float, ...]
    numbers: tuple[int, ...]


def _centers(ax: Axis, bins: int) -> list[float]:
    if ax.kind == "categorical":
        return [v for v in ax.tickvals if v >= 0]
    if ax.kind == "int" and not ax.log and ax.high - ax.low <= bins + 1:
        return [float(v) for v in range(math.ceil(ax.low), math.floor(ax.high) + 1)]
    step = (ax.high - ax.low) / bins
    return [ax.low + step * (k + 0.5) for k in range(bins)]


def _cell(centers: Sequence[float], v: float) -> int:
    return min(range(len(centers)), key=lambda k: abs(centers[k] - v))


def contour_grid(
    x_spec: dict[str, Any], y_spec: dict[str, Any], trials: Sequence[dict[str, Any]], bins: int = 16
) -> ContourGrid:
    """The grid of two parameters over the trials where both are active."""
    both = [
        t
        for t in trials
        if t["params"].get(x_spec["name"]) is not None
        and t["params"].get(y_spec["name"]) is not None
    ]
    xa = param_axis(x_spec, [t["params"][x_spec["name"]] for t in both])
    ya = param_axis(y_spec, [t["params"][y_spec["name"]] for t in both])
    xs, ys = _centers(xa, bins), _centers(ya, bins)
    sums = [[0.0] * len(xs) for _ in ys]
    counts = [[0] * len(xs) for _ in ys]
    for t, vx, vy in zip(both, xa.values, ya.values, strict=True):
        i, j = _cell(ys, vy), _cell(xs, vx)
        sums[i][j] += t["value"]
        counts[i][j] += 1
    z = tuple(
        tuple(s / c if c else None for s, c in zip(srow, crow, strict=True))
        for srow, crow in zip(sums, counts, strict=True)
    )
    return ContourGrid(
        x=xa,
        y=ya,
        xs=tuple(xs),
        ys=tuple(ys),
        z=z,
        points_x=xa.values,
        points_y=ya.values,
        points_value=tuple(t["value"] for t in both),
        numbers=tuple(t["number"] for t in both),
    )


@dataclass(frozen=True)
class TimelineBar:
    """One trial on the timeline: its worker's lane, state, start and end (epoch seconds;
    a running trial ends now)."""

    number: int
    worker: str
    state: str
    start: float
    end: float


def timeline_bars(rows: Sequence[dict[str, Any]], now: float) -> list[TimelineBar]:
    """The bars of trials that started, by worker then start (``rows``: number, state,
    start, complete, worker)."""
    bars = [
        TimelineBar(
            number=int(r["number"]),
            worker=str(r.get("worker") or "unknown worker"),
            state=str(r["state"]),
            start=float(r["start"]),
            end=float(r["complete"] if r.get("complete") is not None else max(now, r["start"])),
        )
        for r in rows
        if r.get("start") is not None
    ]
    return sorted(bars, key=lambda b: (b.worker, b.start, b.number))
