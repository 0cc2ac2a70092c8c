"""Plotly figures from the plain data of :mod:`hpo32.dashboards.data` (no database access here).

Each function returns a plotly figure as a dict (``{"data": [...], "layout": {...}}``), the
form ``dcc.Graph`` and ``plotly.io.to_html`` take. Layouts are built with plotly's own API;
traces are plain dicts, because plotly's graph objects validate and deep-copy every array,
which alone takes seconds for a 10,000-trial study (the tests validate every figure with
``plotly.graph_objects.Figure``).

Every text that came from the database (study names, parameter names, categorical choices)
goes through :func:`esc` before plotly sees it: plotly renders a few HTML tags in titles,
labels and hover text, so ``<`` and ``&`` must arrive escaped to be shown as typed. Hover
templates never contain such text (it goes in trace names or ``customdata``).
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from typing import Any, Sequence

import plotly.graph_objects as go

from hpo32.dashboards.views import plots
from hpo32.durations import format_duration

__all__ = [
    "SLICE_COLORSCALE",
    "STATE_COLORS",
    "best_over_time_figure",
    "categorical_effects_figure",
    "contour_figure",
    "distribution_figure",
    "edf_figure",
    "empty_figure",
    "esc",
    "fmt_time",
    "fmt_value",
    "history_figure",
    "importance_figure",
    "learning_curves_figure",
    "parallel_axes",
    "parallel_figure",
    "rank_correlation_figure",
    "slices_figure",
    "throughput_figure",
    "timeline_figure",
    "trial_curves_figure",
]

Figure = dict[str, Any]

STATE_COLORS = {
    "COMPLETE": "#1f77b4",
    "PRUNED": "#ff7f0e",
    "FAIL": "#d62728",
    "RUNNING": "#2ca02c",
    "WAITING": "#7f7f7f",
}
STATES_ORDER = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
ENGINE_COLORS = {
    "optuna": "#1f77b4",
    "keras-tuner": "#ff7f0e",
    "autokeras": "#2ca02c",
    "unknown": "#7f7f7f",
}
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_HEIGHT = 380


# -- text --------------------------------------------------------------------------------------
def esc(text: Any) -> str:
    """``text`` made safe for plotly titles, labels and hover text (``<``, ``>``, ``&``)."""
    return html.escape(str(text), quote=False)


def best_trial_facts(best: dict[str, Any]) -> list[str]:
    """The best trial's facts as short phrases: validation accuracy, test accuracy (or that
    it is not evaluated yet, or for which trial it was), and how long it took."""
    facts = [f"validation accuracy {fmt_value(best['value'])}"]
    result = best.get("result")
    if result and result.get("test_accuracy") is not None:
        which = (
            ""
            if result["trial_number"] == best["number"]
            else f" (evaluated for trial #{result['trial_number']})"
        )
        facts.append(f"test accuracy {fmt_value(result['test_accuracy'])}{which}")
    else:
        facts.append("test accuracy not evaluated yet")
    if best.get("duration_seconds") is not None:
        facts.append(f"took {format_duration(best['duration_seconds'])}")
    return facts


def fmt_time(ts: float | None) -> str:
    """A local ``YYYY-MM-DD HH:MM:SS`` for epoch seconds; ``-`` for None."""
    if ts is None:
        return "-"
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def fmt_value(value: float | None, digits: int = 4) -> str:
    """A value to ``digits`` decimals; ``-`` for None."""
    return "-" if value is None else f"{value:.{digits}f}"


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts).isoformat(timespec="seconds")


def _title_note(title: str, note: str) -> str:
    return f"{title}<br><sup>{esc(note)}</sup>" if note else title


# -- figure assembly ---------------------------------------------------------------------------
def _frame(
    title: str, height: int = _HEIGHT, subplots: dict[str, Any] | None = None, **layout: Any
) -> go.Figure:
    """An empty figure with the common layout (traces are added as dicts by :func:`_done`)."""
    if subplots is not None:
        from plotly.subplots import make_subplots

        fig = make_subplots(**subplots)
    else:
        fig = go.Figure()
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.18},
        **layout,
    )
    return fig


def _done(fig: go.Figure, traces: list[dict[str, Any]]) -> Figure:
    out = fig.to_plotly_json()
    out["data"] = traces
    return out


def _axes_of(fig: go.Figure, row: int, col: int) -> dict[str, str]:
    """``{"xaxis": "x3", "yaxis": "y3"}`` for a subplot of a ``make_subplots`` figure."""
    sub = fig.get_subplot(row, col)
    return {
        "xaxis": sub.xaxis.plotly_name.replace("axis", ""),
        "yaxis": sub.yaxis.plotly_name.replace("axis", ""),
    }


def empty_figure(message: str, title: str = "") -> Figure:
    """A blank figure that says why it is blank (no trials yet, nothing to compare)."""
    fig = _frame(esc(title), height=260)
    fig.add_annotation(
        text=esc(message),
        showarrow=False,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        font={"size": 14, "color": "#666"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _done(fig, [])


# -- one study ---------------------------------------------------------------------------------
def _record_steps(x: Sequence[Any], best: Sequence[float | None]) -> tuple[list, list]:
    """The best-so-far line reduced to where it changes (and its last point): the same
    step line, a few points instead of one per trial."""
    xs: list[Any] = []
    ys: list[Any] = []
    for i, b in enumerate(best):
        if b is not None and (not ys or b != ys[-1]):
            xs.append(x[i])
            ys.append(b)
    if ys and xs[-1] != x[-1]:
        xs.append(x[-1])
        ys.append(ys[-1])
    return xs, ys


def _pruned_trace(trials: dict[str, Any], axis: str) -> dict[str, Any] | None:
    """Pruned trials' last values as orange crosses (``axis`` as :func:`history_figure`'s);
    None when no pruned trial has a value there."""
    pruned = [
        i
        for i, s in enumerate(trials["state"])
        if s == "PRUNED"
        and trials["value"][i] is not None
        and (axis == "number" or trials["complete"][i] is not None)
    ]
    if not pruned:
        return None
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "pruned (last epoch)",
        "x": (
            [trials["number"][i] for i in pruned]
            if axis == "number"
            else [_iso(trials["complete"][i]) for i in pruned]
        ),
        "y": [trials["value"][i] for i in pruned],
        "customdata": [trials["number"][i] for i in pruned],
        "marker": {
            "color": STATE_COLORS["PRUNED"],
            "size": 5,
            "symbol": "x",
            "opacity": 0.6,
        },
        "hovertemplate": "trial #%{customdata} (pruned)<br>value %{y:.4f}<extra></extra>",
    }


def history_figure(
    h: dict[str, Any], axis: str = "number", max_points: int = 3000, chance: float | None = None
) -> Figure:
    """Each complete trial's value and the best so far against trial number (``axis=
    "number"``, whole-number ticks) or finishing time (``"time"``); pruned trials' last
    values in orange; the chance level (``chance``) as a dotted line when known.

    Above ``max_points`` complete trials, every trial is drawn as a density (a 2-D
    histogram, one image instead of thousands of markers) with the best ``max_points // 6``
    as points on top.
    """
    counts = h["counts"]
    summary = ", ".join(
        f"{counts[s]} {s.lower()}"
        for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
        if counts.get(s)
    )
    what = "trial number" if axis == "number" else "time"
    title = f"Optimization history against {what}"
    src = h["by_number"] if axis == "number" else h["by_time"]
    if not src["value"]:
        return empty_figure(f"No complete trials yet ({summary or 'no trials'}).", title)
    x = src["number"] if axis == "number" else [_iso(t) for t in src["time"]]
    values = src["value"]
    trials = h["trials"]
    traces: list[dict[str, Any]] = []
    dense = len(values) > max_points
    if dense:
        top = sorted(sorted(range(len(values)), key=lambda i: -values[i])[: max_points // 6])
        traces.append(
            {
                "type": "histogram2d",
                "x": x,
                "y": values,
                "nbinsx": 120,
                "nbinsy": 60,
                "name": "all complete trials (density)",
                "showlegend": True,
                "showscale": False,
                "colorscale": [[0, "rgba(255,255,255,0)"], [1e-6, "#deebf7"], [1, "#08306b"]],
                "hovertemplate": "%{z} trials<extra></extra>",
            }
        )
        summary += f"; density of all, points for the best {len(top):,}"
    else:
        top = list(range(len(values)))
    traces.append(
        {
            "type": "scatter",
            "x": [x[i] for i in top],
            "y": [values[i] for i in top],
            "mode": "markers",
            "name": "best complete trials" if dense else "complete trial",
            "customdata": [src["number"][i] for i in top],
            "marker": {"color": STATE_COLORS["COMPLETE"], "size": 6, "opacity": 0.7},
            "hovertemplate": "trial #%{customdata}<br>value %{y:.4f}<extra></extra>",
        }
    )
    if not dense and (pruned := _pruned_trace(trials, axis)) is not None:
        traces.append(pruned)
    bx, by = _record_steps(x, src["best"])
    traces.append(
        {
            "type": "scatter",
            "x": bx,
            "y": by,
            "mode": "lines",
            "name": "best so far",
            "line": {"color": "#d62728", "width": 2, "shape": "hv"},
            "hovertemplate": "best so far %{y:.4f}<extra></extra>",
        }
    )
    fig = _frame(_title_note(title, summary))
    if axis == "number":
        numbers = h["trials"]["number"] or [0]
        fig.update_xaxes(title="trial number", **_int_ticks(min(numbers), max(numbers)))
    else:
        fig.update_xaxes(title="finished at")
    fig.update_yaxes(title="validation accuracy")
    _chance_line(fig, chance)
    return _done(fig, traces)


def _chance_line(fig: go.Figure, chance: float | None, yrefs: Sequence[str] = ("y",)) -> None:
    """A dotted line at the accuracy of guessing (1 / classes) across each y axis of
    ``yrefs`` (one per row of subplots), labelled once."""
    if chance is None:
        return
    for yref in yrefs:
        fig.add_shape(
            type="line",
            xref="paper",
            x0=0,
            x1=1,
            yref=yref,
            y0=chance,
            y1=chance,
            line={"color": "#888", "dash": "dot", "width": 1},
            name="chance",
        )
    fig.add_annotation(
        text=f"chance {chance:.3g}",
        x=1,
        xref="paper",
        xanchor="right",
        y=chance,
        yref=yrefs[0],
        yanchor="bottom",
        showarrow=False,
        font={"size": 10, "color": "#666"},
    )


def _int_ticks(lo: float, hi: float) -> dict[str, Any]:
    """Axis settings for whole numbers (trial numbers, epochs): never a fractional tick."""
    return {"tickformat": "d", "tick0": 0, "dtick": plots.int_step(max(hi - lo, 1), 8)}


_CURVE_STYLES = {
    "COMPLETE": "solid",
    "PRUNED": "dash",
    "FAIL": "dot",
    "RUNNING": "solid",
    "WAITING": "dot",
}


def _state_curves(state: str, curves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One state's curves: the multi-epoch ones as one line trace (trials separated by
    gaps), the one-epoch ones as markers (a one-point line draws nothing), one legend entry."""
    color = STATE_COLORS.get(state, "#7f7f7f")
    hover = f"trial #%{{customdata}} ({state.lower()})<br>epoch %{{x}}: %{{y:.4f}}<extra></extra>"
    name = f"{state.lower()} ({len(curves)})"
    lines = [c for c in curves if len(c["steps"]) > 1]
    points = [c for c in curves if len(c["steps"]) == 1]
    traces = []
    if lines:
        xs: list[Any] = []
        ys: list[Any] = []
        nums: list[Any] = []
        for c in lines:
            xs += c["steps"] + [None]
            ys += c["values"] + [None]
            nums += [c["number"]] * len(c["steps"]) + [None]
        traces.append(
            {
                "type": "scatter",
                "x": xs,
                "y": ys,
                "customdata": nums,
                "connectgaps": False,
                "mode": "lines+markers" if state in ("FAIL", "RUNNING") else "lines",
                "line": {"color": color, "width": 1.2, "dash": _CURVE_STYLES.get(state, "solid")},
                "marker": {"size": 4},
                "opacity": 0.55 if state == "COMPLETE" else 0.8,
                "hovertemplate": hover,
            }
        )
    if points:
        traces.append(
            {
                "type": "scatter",
                "x": [c["steps"][0] for c in points],
                "y": [c["values"][0] for c in points],
                "customdata": [c["number"] for c in points],
                "mode": "markers",
                "marker": {
                    "color": color,
                    "size": 7,
                    "symbol": "circle-open",
                    "line": {"width": 2},
                },
                "opacity": 0.85,
                "hovertemplate": hover,
            }
        )
    for k, t in enumerate(traces):
        t.update(name=name, legendgroup=state, showlegend=k == 0)
    return traces


def _best_curve(curves: list[dict[str, Any]]) -> dict[str, Any] | None:
    done = [c for c in curves if c["state"] == "COMPLETE" and c.get("value") is not None]
    return max(done, key=lambda c: (c["value"], -c["number"])) if done else None


def learning_curves_figure(lc: dict[str, Any], chance: float | None = None) -> Figure:
    """Validation accuracy per epoch, one trace per state (pruned dashed, failed dotted with
    markers, running with markers; curves of one epoch as markers), the best complete trial
    highlighted, the mean over all trials, and the chance level when known."""
    title = "Learning curves (validation accuracy per epoch)"
    if not lc["curves"]:
        return empty_figure("No trial has reported an epoch yet.", title)
    by_state: dict[str, list[dict[str, Any]]] = {}
    for c in lc["curves"]:
        by_state.setdefault(c["state"], []).append(c)
    traces = []
    for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING", *sorted(by_state)):
        curves = by_state.pop(state, None)
        if curves:
            traces += _state_curves(state, curves)
    best = _best_curve(lc["curves"])
    if best is not None:
        traces.append(
            {
                "type": "scatter",
                "x": best["steps"],
                "y": best["values"],
                "mode": "lines+markers",
                "name": f"best trial #{best['number']}",
                "line": {"color": "#d62728", "width": 3},
                "marker": {"size": 6},
                "hovertemplate": f"best trial #{best['number']}<br>epoch %{{x}}: %{{y:.4f}}"
                "<extra></extra>",
            }
        )
    mean = lc["mean"]
    if mean["steps"]:
        traces.append(
            {
                "type": "scatter",
                "x": mean["steps"],
                "y": mean["values"],
                "mode": "lines" if len(mean["steps"]) > 1 else "markers",
                "name": "mean of all trials",
                "line": {"color": "black", "width": 3},
                "marker": {"color": "black", "size": 8, "symbol": "diamond"},
                "customdata": mean["counts"],
                "hovertemplate": "epoch %{x}: mean %{y:.4f} over %{customdata} trials"
                "<extra></extra>",
            }
        )
    fig = _frame(_title_note(title, lc.get("note", "")))
    steps = [s for c in lc["curves"] for s in c["steps"]] or [1]
    fig.update_xaxes(title="epoch", **_int_ticks(min(steps), max(steps)))
    fig.update_yaxes(title="validation accuracy")
    _chance_line(fig, chance)
    return _done(fig, traces)


def parallel_axes(ps: dict[str, Any], trials: Sequence[dict[str, Any]]) -> list[plots.Axis]:
    """The value axis, then one axis per parameter from the space's bounds (see
    :func:`hpo32.dashboards.views.plots.param_axis`), for ``trials`` in that order."""
    axes = [plots.value_axis([t["value"] for t in trials])]
    axes += [
        plots.param_axis(spec, [t["params"].get(spec["name"]) for t in trials])
        for spec in ps["params"]
    ]
    return axes


def parallel_figure(ps: dict[str, Any], top: float = 1.0, brush: bool = False) -> Figure:
    """Parallel coordinates of complete trials: the value axis first, then each parameter
    on its space's bounds (log axes for log parameters, whole-number ticks for integers,
    choices in the space's order); inactive conditional parameters sit on an "inactive"
    tick.

    Drawn as SVG lines (one trace per color band) rather than plotly's WebGL ``parcoords``,
    which takes seconds to start on machines without a GPU; ``brush=True`` draws the
    ``parcoords`` instead, whose axes can be brushed (drag along an axis to keep the trials
    within a range).

    Args:
        ps: :func:`hpo32.dashboards.data.param_samples` output.
        top: keep only the best fraction of the trials (1.0: all).
        brush: draw brushable axes (WebGL).
    """
    title = "Parallel coordinates"
    trials = sorted(ps["trials"], key=lambda t: t["value"])
    if top < 1.0 and trials:
        trials = trials[len(trials) - max(1, math.ceil(top * len(trials))) :]
    if not trials or not ps["params"]:
        return empty_figure("No complete trials with parameters yet.", title)
    axes = parallel_axes(ps, trials)
    kept = "" if top >= 1.0 else f"best {top:.0%} shown; "
    note = kept + (ps.get("note") or f"{len(trials)} complete trials")
    outside = [f"{ax.label} ({ax.outside})" for ax in axes if ax.outside]
    if outside:
        note += "; outside the space's bounds: " + ", ".join(outside)
    if brush:
        return _parcoords(axes, _title_note(title, note + "; drag along an axis to brush"))
    traces = _parallel_traces(trials, axes)
    shapes, labels = _parallel_axes(axes)
    fig = _frame(_title_note(title, note), height=480, hovermode="closest")
    fig.update_layout(
        margin={"l": 50, "r": 20, "t": 150, "b": 20}, shapes=shapes, annotations=labels
    )
    fig.update_xaxes(
        tickvals=list(range(len(axes))),
        ticktext=[esc(ax.title) for ax in axes],
        side="top",
        tickangle=-40,
        showgrid=False,
        zeroline=False,
        range=[-0.6, len(axes) - 0.6],
    )
    fig.update_yaxes(visible=False, range=[-0.03, 1.03])
    return _done(fig, traces)


def _parcoords(axes: list[plots.Axis], title: str) -> Figure:
    """The brushable (WebGL) drawing of the same axes."""
    value = axes[0]
    fig = _frame(title, height=520)
    fig.update_layout(margin={"l": 60, "r": 40, "t": 130, "b": 30})
    trace = {
        "type": "parcoords",
        "line": {
            "color": list(value.values),
            "colorscale": "Viridis",
            "cmin": value.low,
            "cmax": value.high,
            "showscale": True,
            "colorbar": {"title": {"text": "value"}, "thickness": 12},
        },
        "labelangle": -30,
        "labelside": "top",
        "dimensions": [
            {
                "label": esc(ax.title),
                "values": list(ax.values),
                "range": [ax.bottom, ax.top],
                "tickvals": list(ax.tickvals),
                "ticktext": [esc(t) for t in ax.ticktext],
            }
            for ax in axes
        ],
    }
    return _done(fig, [trace])


def _parallel_traces(trials: list[dict[str, Any]], axes: list[plots.Axis]) -> list[dict[str, Any]]:
    """The trials' lines, one trace per color band of their value, and the color bar."""
    from plotly.colors import sample_colorscale

    value = axes[0]
    vlo, vhi = value.low, value.high
    vspan = (vhi - vlo) or 1.0
    norm = [[ax.share(v) for v in ax.values] for ax in axes]
    bands = 10
    colors = sample_colorscale("Viridis", [(b + 0.5) / bands for b in range(bands)])
    lines: list[tuple[list[Any], list[Any], list[Any]]] = [([], [], []) for _ in range(bands)]
    xs = list(range(len(axes)))
    for i, t in enumerate(trials):
        band = max(0, min(int((t["value"] - vlo) / vspan * bands), bands - 1))
        x, y, cd = lines[band]
        x.extend(xs)
        x.append(None)
        y.extend(col[i] for col in norm)
        y.append(None)
        cd.extend([t["number"]] * len(xs))
        cd.append(None)
    traces: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "x": x,
            "y": y,
            "customdata": cd,
            "mode": "lines",
            "showlegend": False,
            "line": {"color": colors[band], "width": 1},
            "opacity": 0.45 + 0.05 * band,
            "hovertemplate": "trial #%{customdata}<extra></extra>",
        }
        for band, (x, y, cd) in enumerate(lines)
        if x
    ]
    traces.append(
        {
            "type": "scatter",
            "x": [None],
            "y": [None],
            "mode": "markers",
            "showlegend": False,
            "hoverinfo": "skip",
            "marker": {
                "colorscale": "Viridis",
                "cmin": vlo,
                "cmax": vhi,
                "color": [vlo],
                "showscale": True,
                "colorbar": {"title": {"text": "value"}, "thickness": 12},
            },
        }
    )
    return traces


def _parallel_axes(axes: list[plots.Axis]) -> tuple[list[Any], list[Any]]:
    """The vertical axis lines and their tick labels."""
    shapes, labels = [], []
    for k, ax in enumerate(axes):
        shapes.append(
            {
                "type": "line",
                "x0": k,
                "x1": k,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#444", "width": 1},
            }
        )
        for tv, tt in zip(ax.tickvals, ax.ticktext, strict=True):
            labels.append(
                {
                    "x": k,
                    "y": ax.share(tv),
                    "text": esc(tt),
                    "showarrow": False,
                    "xanchor": "right",
                    "xshift": -3,
                    "font": {"size": 9, "color": "#333"},
                }
            )
    return shapes, labels


#: The slice plots' trial-number colours: dark to light blue, never white (every trial shows).
SLICE_COLORSCALE = [[0.0, "#08306b"], [0.5, "#2171b5"], [1.0, "#9ecae1"]]


def _slice_axis(spec: dict[str, Any], sel: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A slice plot's x axis: the choices in the space's order, or the space's bounds (a
    log axis for log parameters, whole-number ticks for integers)."""
    raw = [t["params"][spec["name"]] for t in sel]
    ax = plots.param_axis(spec, raw)
    if spec["kind"] == "categorical":
        return {
            "type": "category",
            "categoryorder": "array",
            "categoryarray": [esc(c) for c in ax.ticktext if c != "inactive"],
        }
    pad = 0.04 * ((ax.top - ax.bottom) or 1.0)
    ticks = [(v, t) for v, t in zip(ax.tickvals, ax.ticktext, strict=True) if t != "inactive"]
    out: dict[str, Any] = {
        "range": [ax.low - pad, ax.high + pad],
        "tickvals": [10**v if ax.log else v for v, _ in ticks],
        "ticktext": [t for _, t in ticks],
    }
    if ax.log:
        out["type"] = "log"
    return out


def _slice_trace(
    spec: dict[str, Any], sel: Sequence[dict[str, Any]], names: dict[str, str], pruned: bool
) -> dict[str, Any]:
    categorical = spec["kind"] == "categorical"
    marker: dict[str, Any] = (
        {"size": 6, "color": STATE_COLORS["PRUNED"], "symbol": "x", "opacity": 0.7}
        if pruned
        else {
            "size": 6,
            "color": [t["number"] for t in sel],
            "coloraxis": "coloraxis",
            "opacity": 0.85,
            "line": {"width": 0.5, "color": "#08306b"},
        }
    )
    return {
        "type": "scatter",
        "mode": "markers",
        "name": "pruned (last value)" if pruned else "complete",
        "legendgroup": "pruned" if pruned else "complete",
        **names,
        "x": [
            esc(t["params"][spec["name"]]) if categorical else t["params"][spec["name"]]
            for t in sel
        ],
        "y": [t["value"] for t in sel],
        "customdata": [t["number"] for t in sel],
        "marker": marker,
        "hovertemplate": "trial #%{customdata}"
        + (" (pruned)" if pruned else "")
        + "<br>%{x}<br>value %{y:.4f}<extra></extra>",
    }


def slices_figure(
    ps: dict[str, Any],
    params: Sequence[str] | None = None,
    cols: int = 4,
    chance: float | None = None,
) -> Figure:
    """One slice plot per parameter: value against the parameter's value, complete trials
    coloured by trial number (a scale that never reaches white), pruned trials (when
    ``ps`` holds them) as orange crosses at their last value; x axes on the space's bounds.

    Args:
        ps: :func:`hpo32.dashboards.data.param_samples` output.
        params: the parameters to plot (default: all), in a grid of ``cols`` columns.
        chance: the accuracy of guessing, drawn as a dotted line when given.
    """
    title = "Slice plots" if params is None or len(params) != 1 else "Slice plot"
    trials = ps["trials"]
    specs = [
        s
        for s in ps["params"]
        if any(s["name"] in t["params"] for t in trials) and (params is None or s["name"] in params)
    ]
    if not trials or not specs:
        return empty_figure("No complete trials with parameters yet.", title)
    cols = min(cols, len(specs))
    rows = math.ceil(len(specs) / cols)
    n_pruned = sum(1 for t in trials if t.get("state") == "PRUNED")
    note = ps.get("note", "") or ""
    if n_pruned:
        note = (note + "; " if note else "") + f"{n_pruned} pruned trials at their last value"
    fig = _frame(
        _title_note(title, note),
        height=90 + (210 if rows > 1 else 300) * rows,
        subplots={
            "rows": rows,
            "cols": cols,
            "shared_yaxes": True,
            "subplot_titles": [esc(s["name"]) for s in specs],
            "horizontal_spacing": 0.04,
            "vertical_spacing": min(0.12, 0.5 / max(rows - 1, 1)),
        },
        coloraxis={
            "colorscale": SLICE_COLORSCALE,
            "colorbar": {"title": {"text": "trial"}, "thickness": 12},
        },
    )
    traces = []
    axis_updates: dict[str, dict[str, Any]] = {}
    for k, spec in enumerate(specs):
        r, c = divmod(k, cols)
        names = _axes_of(fig, r + 1, c + 1)
        sel = [t for t in trials if t["params"].get(spec["name"]) is not None]
        for pruned in (False, True):
            part = [t for t in sel if (t.get("state") == "PRUNED") == pruned]
            if part or not pruned:
                trace = _slice_trace(spec, part, names, pruned)
                trace["showlegend"] = bool(n_pruned) and k == 0
                traces.append(trace)
        axis_updates["xaxis" + names["xaxis"][1:]] = _slice_axis(spec, sel)
    fig.update_layout(**axis_updates)
    fig.update_annotations(font_size=12)
    fig.update_yaxes(title="value", col=1)
    _chance_line(fig, chance, [_axes_of(fig, r + 1, 1)["yaxis"] for r in range(rows)])
    return _done(fig, traces)


def importance_figure(results: Sequence[tuple[str, dict[str, Any]]]) -> Figure:
    """Horizontal bars of parameter importances; several studies side by side.

    Args:
        results: ``(label, importances data)`` per study.
    """
    title = "Parameter importances"
    usable = [(label, r) for label, r in results if r["params"]]
    if not usable:
        why = "; ".join(f"{label}: {r['note']}" for label, r in results if r.get("note"))
        return empty_figure(why or "Not enough complete trials.", title)
    first = usable[0][1]
    mean: dict[str, float] = {}
    for _, r in usable:
        for p, v in zip(r["params"], r["importances"], strict=True):
            mean[p] = mean.get(p, 0.0) + v / len(usable)
    order = sorted(mean, key=lambda p: (mean[p], p))  # most important (on average) on top
    traces = []
    notes = []
    for k, (label, r) in enumerate(usable):
        imp = dict(zip(r["params"], r["importances"], strict=True))
        traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": esc(label),
                "y": [esc(p) for p in order],
                "x": [imp.get(p, 0.0) for p in order],
                "marker": {"color": _PALETTE[k % len(_PALETTE)]},
                "hovertemplate": "%{y}: %{x:.3f}<extra>%{fullData.name}</extra>",
            }
        )
        used = (
            f"latest {r['n_used']:,} of {r['n_complete']:,}"
            if r["n_used"] < r["n_complete"]
            else f"{r['n_used']:,}"
        )
        notes.append(
            f"{label}: {used} complete trials" if len(usable) > 1 else f"{used} complete trials"
        )
    note = f"{first.get('method', '')}; " + "; ".join(notes)
    fig = _frame(
        _title_note(title, note), height=max(_HEIGHT, 80 + 22 * len(order)), barmode="group"
    )
    fig.update_xaxes(title="importance")
    return _done(fig, traces)


# -- comparisons -------------------------------------------------------------------------------
def _label(s: dict[str, Any]) -> str:
    return f"{s['name']} ({s.get('engine') or 'unknown engine'})"


def _color(k: int, s: dict[str, Any], by_engine: bool) -> str:
    if by_engine:
        family = (s.get("engine") or "unknown").split(":", 1)[0]
        if family in ENGINE_COLORS:
            return ENGINE_COLORS[family]
    return _PALETTE[k % len(_PALETTE)]


def _series_unit(series: Sequence[dict[str, Any]]) -> plots.TimeUnit:
    span = max((s.get("span_hours") or max(s.get("hours") or [0.0]) for s in series), default=0)
    return plots.time_unit(3600.0 * span)


def best_over_time_figure(
    series: Sequence[dict[str, Any]],
    title: str = "Best so far against search time",
    labels: Sequence[str] | None = None,
    by_engine: bool = False,
    chance: float | None = None,
) -> Figure:
    """Best value so far against search time (in a unit that fits the longest study:
    seconds, minutes, hours or days), one line per study."""
    if not any(s["best"] for s in series):
        return empty_figure("No complete trials yet.", title)
    unit = _series_unit(series)
    scale = 3600.0 / unit.seconds
    dashes = ("solid", "dash", "dot", "dashdot")
    traces = []
    for k, s in enumerate(series):
        if not s["best"]:
            continue
        traces.append(
            {
                "type": "scatter",
                "x": [h * scale for h in s["hours"]],
                "y": s["best"],
                "mode": "lines" if len(s["best"]) > 1 else "markers",
                "name": esc(labels[k] if labels else _label(s)),
                "customdata": s["number"],
                "line": {
                    "shape": "hv",
                    "width": 2,
                    "color": _color(k, s, by_engine),
                    "dash": dashes[k % len(dashes)]
                    if by_engine
                    else dashes[k // len(_PALETTE) % len(dashes)],
                },
                "hovertemplate": f"%{{x:.2f}} {unit.short}: best %{{y:.4f}} "
                "(trial #%{customdata})<extra>%{fullData.name}</extra>",
            }
        )
    fig = _frame(title)
    fig.update_xaxes(title=f"{unit.name} of search (pauses between sessions left out)")
    fig.update_yaxes(title="best validation accuracy")
    _chance_line(fig, chance)
    return _done(fig, traces)


def throughput_figure(tp: dict[str, Any], by_engine: bool = True) -> Figure:
    """Finished trials per unit of search time (hours, or minutes for short studies), per
    study, and each study's overall rate."""
    if not any(s["finished"] for s in tp["studies"]):
        return empty_figure("No finished trials yet.", "Trials per hour")
    span = 3600.0 * (tp["hours"][-1] + tp["hours"][0]) if tp["hours"] else 0.0
    unit = plots.time_unit(span)
    unit = unit if unit.seconds >= 60 else plots.time_unit(60.0)  # minutes at least
    scale = 3600.0 / unit.seconds  # hours -> unit
    per = unit.name[:-1]
    traces = []
    for k, s in enumerate(tp["studies"]):
        rate = f"{s['rate'] / scale:.1f}/{unit.short} overall" if s["rate"] is not None else "-"
        traces.append(
            {
                "type": "bar",
                "x": [h * scale for h in tp["hours"]],
                "y": [r / scale for r in s["per_hour"]],
                "name": esc(f"{_label(s)}: {rate}"),
                "opacity": 0.8,
                "marker": {"color": _color(k, s, by_engine)},
                "hovertemplate": f"{per} %{{x:.2f}}: %{{y:.1f}} trials/{unit.short}<extra></extra>",
            }
        )
    fig = _frame(f"Trials per {per}", barmode="group")
    fig.update_xaxes(title=f"{unit.name} of search")
    fig.update_yaxes(title=f"finished trials per {per}")
    return _done(fig, traces)


def distribution_figure(
    stats: Sequence[dict[str, Any]], by_engine: bool = True, chance: float | None = None
) -> Figure:
    """Box plots of complete trials' values per study, from precomputed quartiles."""
    title = "Distribution of validation accuracy (complete trials)"
    if not any(s["n"] for s in stats):
        return empty_figure("No complete trials yet.", title)
    traces = []
    for k, s in enumerate(stats):
        if not s["n"]:
            continue
        label = esc(f"{_label(s)} n={s['n']}")
        color = _color(k, s, by_engine)
        traces.append(
            {
                "type": "box",
                "x": [label],
                "name": label,
                "q1": [s["q1"]],
                "median": [s["median"]],
                "q3": [s["q3"]],
                "lowerfence": [s["lowerfence"]],
                "upperfence": [s["upperfence"]],
                "mean": [s["mean"]],
                "boxpoints": False,
                "marker": {"color": color},
            }
        )
        if s.get("outliers"):
            traces.append(
                {
                    "type": "scatter",
                    "x": [label] * len(s["outliers"]),
                    "y": s["outliers"],
                    "mode": "markers",
                    "showlegend": False,
                    "marker": {"color": color, "size": 4},
                    "hovertemplate": "%{y:.4f}<extra></extra>",
                }
            )
    fig = _frame(title, showlegend=False)
    fig.update_yaxes(title="validation accuracy")
    _chance_line(fig, chance)
    return _done(fig, traces)


def categorical_effects_figure(
    effects: Sequence[tuple[str, dict[str, list[dict[str, Any]]]]], cols: int = 4
) -> Figure:
    """Each categorical choice's mean value minus the study's mean (± standard error), one
    bar color per study, so datasets of different difficulty compare on one scale; one
    subplot per categorical parameter (every one the studies have), ``cols`` a row.

    Args:
        effects: ``(label, categorical_effects data)`` per study.
    """
    title = (
        "Effect of each categorical choice: mean validation accuracy minus the "
        "study's mean (± standard error)"
    )
    params: list[str] = []
    for _, eff in effects:
        params += [
            p for p, entries in eff.items() if any(e["count"] for e in entries) and p not in params
        ]
    if not params:
        return empty_figure("No complete trials with these parameters yet.", title)
    cols = min(cols, len(params))
    rows = math.ceil(len(params) / cols)
    fig = _frame(
        title,
        height=100 + 260 * rows,
        barmode="group",
        subplots={
            "rows": rows,
            "cols": cols,
            "shared_yaxes": True,
            "subplot_titles": [esc(p) for p in params],
            "horizontal_spacing": 0.05,
            "vertical_spacing": min(0.15, 0.6 / max(rows - 1, 1)),
        },
    )
    traces = []
    for k, (label, eff) in enumerate(effects):
        for c, p in enumerate(params):
            traces.append(_effect_trace(fig, k, label, eff.get(p, []), divmod(c, cols), c == 0))
    fig.update_yaxes(title="difference from the study's mean", col=1, zeroline=True)
    return _done(fig, traces)


def _effect_trace(
    fig: go.Figure,
    k: int,
    label: str,
    entries: list[dict[str, Any]],
    cell: tuple[int, int],
    legend: bool,
) -> dict[str, Any]:
    entries = [e for e in entries if e["count"]]
    n = sum(e["count"] for e in entries)
    base = sum(e["mean"] * e["count"] for e in entries) / n if n else 0.0
    return {
        "type": "bar",
        **_axes_of(fig, cell[0] + 1, cell[1] + 1),
        "name": esc(label),
        "legendgroup": esc(label),
        "showlegend": legend,
        "x": [esc(e["choice"]) for e in entries],
        "y": [e["mean"] - base for e in entries],
        "error_y": {
            "type": "data",
            "array": [e["std"] / math.sqrt(e["count"]) for e in entries],
        },
        "marker": {"color": _PALETTE[k % len(_PALETTE)]},
        "customdata": [[e["count"], e["max"], e["mean"]] for e in entries],
        "hovertemplate": "%{x}: mean %{customdata[2]:.4f} (%{y:+.4f}), best "
        "%{customdata[1]:.4f}, %{customdata[0]} trials"
        "<extra>%{fullData.name}</extra>",
    }


def rank_correlation_figure(rc: dict[str, Any], label_a: str, label_b: str) -> Figure:
    """The same configs' values in two studies, with Spearman's rank correlation."""
    title = "Same configs on both datasets"
    if not rc["n_pairs"]:
        return empty_figure("No config was evaluated (complete) in both studies.", title)
    rho = rc["spearman"]
    note = f"{rc['n_pairs']} shared configs, Spearman rank correlation " + (
        f"{rho:.3f}" if rho is not None else "undefined (needs 3+ varied pairs)"
    )
    names = [esc(label_a), esc(label_b)]
    fig = _frame(_title_note(title, note))
    fig.update_xaxes(title=esc(label_a))
    fig.update_yaxes(title=esc(label_b))
    return _done(
        fig,
        [
            {
                "type": "scatter",
                "x": rc["a"],
                "y": rc["b"],
                "mode": "markers",
                "name": "config",
                "marker": {"size": 8, "color": "#1f77b4"},
                "customdata": [[na, nb, *names] for na, nb in rc["numbers"]],
                "hovertemplate": "%{customdata[2]} #%{customdata[0]}: %{x:.4f}<br>"
                "%{customdata[3]} #%{customdata[1]}: %{y:.4f}<extra></extra>",
            }
        ],
    )


# -- EDF, contour, timeline, one trial ------------------------------------------------------
def edf_figure(
    series: Sequence[tuple[str, Sequence[float | None]]], chance: float | None = None
) -> Figure:
    """The empirical distribution function of complete trials' values, one step line per
    study: at each value, the share of trials that scored at most it (a curve further right
    is a better study); the chance level as a vertical line when known."""
    title = "Empirical distribution of validation accuracy (complete trials)"
    edfs = [plots.edf(label, values) for label, values in series]
    if not any(e.values for e in edfs):
        return empty_figure("No complete trials yet.", title)
    traces = [
        {
            "type": "scatter",
            "x": list(e.values),
            "y": list(e.shares),
            "mode": "lines" if len(e.values) > 1 else "markers",
            "line": {"shape": "hv", "width": 2, "color": _PALETTE[k % len(_PALETTE)]},
            "name": esc(f"{e.label} (n={len(e.values)})"),
            "hovertemplate": "%{y:.0%} of trials at or below %{x:.4f}<extra></extra>",
        }
        for k, e in enumerate(edfs)
        if e.values
    ]
    fig = _frame(title)
    fig.update_xaxes(title="validation accuracy")
    fig.update_yaxes(title="share of complete trials", range=[0, 1.02], tickformat=".0%")
    if chance is not None:
        fig.add_vline(x=chance, line={"color": "#888", "dash": "dot", "width": 1})
        fig.add_annotation(
            text=f"chance {chance:.3g}",
            x=chance,
            y=1,
            yref="paper",
            xanchor="left",
            showarrow=False,
            font={"size": 10, "color": "#666"},
        )
    return _done(fig, traces)


def _grid_axis(ax: plots.Axis, title: str) -> dict[str, Any]:
    ticks = [(v, t) for v, t in zip(ax.tickvals, ax.ticktext, strict=True) if t != "inactive"]
    pad = 0.04 * ((ax.high - ax.low) or 1.0) if ax.kind != "categorical" else 0.5
    return {
        "title": esc(title),
        "tickvals": [v for v, _ in ticks],
        "ticktext": [esc(t) for _, t in ticks],
        "range": [ax.low - pad, ax.high + pad],
        "zeroline": False,
    }


def contour_figure(ps: dict[str, Any], x: str | None, y: str | None) -> Figure:
    """The mean value over a grid of two parameters (contours of the cells where trials
    fell, gaps bridged) with the trials as points; axes on the space's bounds (log axes in
    log10 with the values as tick labels, categories by choice)."""
    title = "Contour plot"
    specs = {s["name"]: s for s in ps["params"]}
    if x not in specs or y not in specs or x == y:
        return empty_figure("Pick two different parameters.", title)
    grid = plots.contour_grid(specs[x], specs[y], ps["trials"])
    if not grid.points_value:
        return empty_figure(f"No complete trial has both {x} and {y}.", title)
    traces: list[dict[str, Any]] = [
        {
            "type": "contour",
            "x": list(grid.xs),
            "y": list(grid.ys),
            "z": [list(row) for row in grid.z],
            "connectgaps": True,
            "colorscale": "Viridis",
            "contours": {"coloring": "heatmap"},
            "colorbar": {"title": {"text": "mean value"}, "thickness": 12},
            "hovertemplate": "mean value %{z:.4f}<extra></extra>",
            "name": "mean value",
        },
        {
            "type": "scatter",
            "mode": "markers",
            "x": list(grid.points_x),
            "y": list(grid.points_y),
            "customdata": [[n, v] for n, v in zip(grid.numbers, grid.points_value, strict=True)],
            "marker": {"size": 6, "color": "white", "line": {"width": 1, "color": "#333"}},
            "name": "trial",
            "hovertemplate": "trial #%{customdata[0]}: %{customdata[1]:.4f}<extra></extra>",
        },
    ]
    note = f"{len(grid.points_value)} complete trials with both parameters"
    fig = _frame(_title_note(title, note), height=480, showlegend=False)
    fig.update_layout(
        xaxis=_grid_axis(grid.x, grid.x.title), yaxis=_grid_axis(grid.y, grid.y.title)
    )
    return _done(fig, traces)


def timeline_figure(tl: dict[str, Any]) -> Figure:
    """Each trial as a bar from its start to its end (a running one: to now), one lane per
    worker, coloured by state."""
    title = "Timeline of trials by worker"
    bars = plots.timeline_bars(tl["rows"], tl["now"])
    if not bars:
        return empty_figure("No trial has started yet.", title)
    by_state: dict[str, list[plots.TimelineBar]] = {}
    for b in bars:
        by_state.setdefault(b.state, []).append(b)
    traces = []
    for state in (*STATES_ORDER, *sorted(by_state)):
        sel = by_state.pop(state, None)
        if not sel:
            continue
        xs: list[Any] = []
        ys: list[Any] = []
        cd: list[Any] = []
        for b in sel:
            xs += [_iso(b.start), _iso(b.end), None]
            ys += [esc(b.worker)] * 2 + [None]
            cd += [[b.number, format_duration(b.end - b.start)]] * 2 + [None]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": xs,
                "y": ys,
                "customdata": cd,
                "name": f"{state.lower()} ({len(sel)})",
                "line": {"color": STATE_COLORS.get(state, "#7f7f7f"), "width": 10},
                "marker": {"size": 4, "symbol": "line-ns-open"},
                "connectgaps": False,
                "hovertemplate": f"trial #%{{customdata[0]}} ({state.lower()}), "
                "%{customdata[1]}<extra></extra>",
            }
        )
    lanes = sorted({b.worker for b in bars})
    fig = _frame(title, height=max(260, 160 + 40 * len(lanes)))
    fig.update_xaxes(title="time", type="date")
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=[esc(w) for w in lanes])
    return _done(fig, traces)


_TRIAL_METRICS = (
    ("val_accuracy", "validation accuracy", 1),
    ("accuracy", "training accuracy", 1),
    ("val_top5", "validation top-5", 1),
    ("val_loss", "validation loss", 2),
    ("loss", "training loss", 2),
)


def trial_curves_figure(detail: dict[str, Any], chance: float | None = None) -> Figure:
    """One trial's per-epoch metrics: accuracies on the left, losses on the right (markers
    on every epoch, so a one-epoch trial shows)."""
    title = f"Trial #{detail['number']}: per-epoch metrics"
    curves = detail.get("curves") or {}
    if not curves:
        return empty_figure("This trial reported no epoch.", title)
    fig = _frame(
        title,
        subplots={"rows": 1, "cols": 2, "subplot_titles": ["accuracy", "loss"]},
    )
    traces = []
    for k, (key, label, col) in enumerate(_TRIAL_METRICS):
        pts = curves.get(key)
        if not pts:
            continue
        traces.append(
            {
                "type": "scatter",
                **_axes_of(fig, 1, col),
                "x": [p[0] for p in pts],
                "y": [p[1] for p in pts],
                "mode": "lines+markers",
                "name": label,
                "line": {"color": _PALETTE[k % len(_PALETTE)], "width": 2},
                "marker": {"size": 6},
                "hovertemplate": f"{label}<br>epoch %{{x}}: %{{y:.4f}}<extra></extra>",
            }
        )
    epochs = [p[0] for pts in curves.values() for p in pts] or [1]
    fig.update_xaxes(title="epoch", **_int_ticks(min(epochs), max(epochs)))
    _chance_line(fig, chance)
    return _done(fig, traces)
