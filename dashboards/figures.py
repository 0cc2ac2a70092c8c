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

__all__ = [
    "STATE_COLORS",
    "best_over_time_figure",
    "categorical_effects_figure",
    "distribution_figure",
    "empty_figure",
    "esc",
    "fmt_duration",
    "fmt_time",
    "fmt_value",
    "history_figure",
    "importance_figure",
    "learning_curves_figure",
    "parallel_figure",
    "rank_correlation_figure",
    "slices_figure",
    "throughput_figure",
]

Figure = dict[str, Any]

STATE_COLORS = {
    "COMPLETE": "#1f77b4",
    "PRUNED": "#ff7f0e",
    "FAIL": "#d62728",
    "RUNNING": "#2ca02c",
    "WAITING": "#7f7f7f",
}
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


def fmt_duration(seconds: float | None) -> str:
    """``2h05m``, ``5m30s``, ``42s``; ``-`` for None."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"


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
        facts.append(f"took {fmt_duration(best['duration_seconds'])}")
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


def history_figure(h: dict[str, Any], axis: str = "number", max_points: int = 3000) -> Figure:
    """Each complete trial's value and the best so far against trial number (``axis=
    "number"``) or finishing time (``"time"``); pruned trials' last values in orange.

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
    pruned = [
        i
        for i, s in enumerate(trials["state"])
        if s == "PRUNED"
        and trials["value"][i] is not None
        and (axis == "number" or trials["complete"][i] is not None)
    ]
    if pruned and not dense:
        traces.append(
            {
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
        )
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
    fig.update_xaxes(title="trial number" if axis == "number" else "finished at")
    fig.update_yaxes(title="validation accuracy")
    return _done(fig, traces)


def learning_curves_figure(lc: dict[str, Any]) -> Figure:
    """Validation accuracy per epoch, one line per trial colored by state (pruned dashed,
    failed dotted with markers, running with markers), and the mean over all trials."""
    title = "Learning curves (validation accuracy per epoch)"
    if not lc["curves"]:
        return empty_figure("No trial has reported an epoch yet.", title)
    styles = {
        "COMPLETE": "solid",
        "PRUNED": "dash",
        "FAIL": "dot",
        "RUNNING": "solid",
        "WAITING": "dot",
    }
    by_state: dict[str, list[dict[str, Any]]] = {}
    for c in lc["curves"]:
        by_state.setdefault(c["state"], []).append(c)
    traces = []
    for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING", *sorted(by_state)):
        curves = by_state.pop(state, None)
        if not curves:
            continue
        xs: list[Any] = []
        ys: list[Any] = []
        nums: list[Any] = []
        for c in curves:  # one trace per state, trials separated by gaps: cheap to draw
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
                "name": f"{state.lower()} ({len(curves)})",
                "line": {
                    "color": STATE_COLORS.get(state, "#7f7f7f"),
                    "width": 1.2,
                    "dash": styles.get(state, "solid"),
                },
                "marker": {"size": 4},
                "opacity": 0.55 if state == "COMPLETE" else 0.8,
                "hovertemplate": f"trial #%{{customdata}} ({state.lower()})<br>epoch %{{x}}: "
                "%{y:.4f}<extra></extra>",
            }
        )
    mean = lc["mean"]
    if mean["steps"]:
        traces.append(
            {
                "type": "scatter",
                "x": mean["steps"],
                "y": mean["values"],
                "mode": "lines",
                "name": "mean of all trials",
                "line": {"color": "black", "width": 3},
                "customdata": mean["counts"],
                "hovertemplate": "epoch %{x}: mean %{y:.4f} over %{customdata} trials"
                "<extra></extra>",
            }
        )
    fig = _frame(_title_note(title, lc.get("note", "")))
    fig.update_xaxes(title="epoch", dtick=1 if max(mean["steps"] or [1]) <= 30 else None)
    fig.update_yaxes(title="validation accuracy")
    return _done(fig, traces)


def _axis_values(spec: dict[str, Any], trials: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One parallel-coordinates axis: numbers (log10 on log axes), categorical choices as
    indices, inactive (conditional) values at a separate "inactive" tick below the rest."""
    name = spec["name"]
    raw = [t["params"].get(name) for t in trials]
    missing = any(v is None for v in raw)
    if spec["kind"] == "categorical":
        choices = list(spec["choices"])
        for v in raw:
            if v is not None and v not in choices:
                choices.append(v)
        index = {repr(c): i for i, c in enumerate(choices)}
        values = [index[repr(v)] if v is not None else -1 for v in raw]
        tickvals = list(range(len(choices)))
        ticktext = [esc(c) for c in choices]
        if missing:
            tickvals.insert(0, -1)
            ticktext.insert(0, "inactive")
        lo, hi = (-1 if missing else 0), max(len(choices) - 1, 0)
        return {
            "label": esc(name),
            "values": values,
            "tickvals": tickvals,
            "ticktext": ticktext,
            "range": [lo - 0.2, hi + 0.2],
        }
    log = spec.get("log") and all(v is None or (isinstance(v, (int, float)) and v > 0) for v in raw)
    nums = [
        (math.log10(v) if log else float(v)) if isinstance(v, (int, float)) else None for v in raw
    ]
    present = [v for v in nums if v is not None] or [0.0]
    lo, hi = min(present), max(present)
    span = (hi - lo) or 1.0
    ticks = [lo + span * k / 4 for k in range(5)]

    def label(v: float) -> str:
        value = 10**v if log else v
        if spec["kind"] == "int":
            return str(int(round(value)))
        return f"{value:.3g}"

    tickvals, ticktext = list(ticks), [label(v) for v in ticks]
    out_lo = lo
    if missing:
        out_lo = lo - 0.15 * span
        tickvals.insert(0, out_lo)
        ticktext.insert(0, "inactive")
    values = [v if v is not None else out_lo for v in nums]
    return {
        "label": esc(name) + (" (log)" if log else ""),
        "values": values,
        "tickvals": tickvals,
        "ticktext": ticktext,
        "range": [out_lo, lo + span],
    }


def parallel_figure(ps: dict[str, Any], top: float = 1.0) -> Figure:
    """Parallel coordinates of complete trials: the value axis first, then each parameter;
    inactive conditional parameters sit on an "inactive" tick.

    Drawn as SVG lines (one trace per color band) rather than plotly's WebGL ``parcoords``,
    which takes seconds to start on machines without a GPU.

    Args:
        ps: :func:`hpo32.dashboards.data.param_samples` output.
        top: keep only the best fraction of the trials (1.0: all).
    """
    title = "Parallel coordinates"
    trials = sorted(ps["trials"], key=lambda t: t["value"])
    if top < 1.0 and trials:
        trials = trials[len(trials) - max(1, math.ceil(top * len(trials))) :]
    if not trials or not ps["params"]:
        return empty_figure("No complete trials with parameters yet.", title)
    values = [t["value"] for t in trials]
    vlo, vhi = min(values), max(values)
    vspan = (vhi - vlo) or 1.0
    axes = [
        {
            "label": "value",
            "values": values,
            "tickvals": [vlo + vspan * k / 4 for k in range(5)],
            "ticktext": [f"{vlo + vspan * k / 4:.3f}" for k in range(5)],
            "range": [vlo, vlo + vspan],
        }
    ]
    axes += [_axis_values(spec, trials) for spec in ps["params"]]
    traces = _parallel_traces(trials, axes, vlo, vhi)
    shapes, labels = _parallel_axes(axes)
    kept = "" if top >= 1.0 else f"best {top:.0%} shown; "
    note = kept + (ps.get("note") or f"{len(trials)} complete trials")
    fig = _frame(_title_note(title, note), height=480, hovermode="closest")
    fig.update_layout(
        margin={"l": 50, "r": 20, "t": 150, "b": 20}, shapes=shapes, annotations=labels
    )
    fig.update_xaxes(
        tickvals=list(range(len(axes))),
        ticktext=[ax["label"] for ax in axes],
        side="top",
        tickangle=-40,
        showgrid=False,
        zeroline=False,
        range=[-0.6, len(axes) - 0.6],
    )
    fig.update_yaxes(visible=False, range=[-0.03, 1.03])
    return _done(fig, traces)


def _parallel_traces(
    trials: list[dict[str, Any]], axes: list[dict[str, Any]], vlo: float, vhi: float
) -> list[dict[str, Any]]:
    """The trials' lines, one trace per color band of their value, and the color bar."""
    from plotly.colors import sample_colorscale

    vspan = (vhi - vlo) or 1.0
    norm = []
    for ax in axes:
        lo, hi = ax["range"]
        span = (hi - lo) or 1.0
        norm.append([(v - lo) / span for v in ax["values"]])
    bands = 10
    colors = sample_colorscale("Viridis", [(b + 0.5) / bands for b in range(bands)])
    lines: list[tuple[list[Any], list[Any], list[Any]]] = [([], [], []) for _ in range(bands)]
    xs = list(range(len(axes)))
    for i, t in enumerate(trials):
        band = min(int((t["value"] - vlo) / vspan * bands), bands - 1)
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


def _parallel_axes(axes: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """The vertical axis lines and their tick labels."""
    shapes, labels = [], []
    for k, ax in enumerate(axes):
        lo, hi = ax["range"]
        span = (hi - lo) or 1.0
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
        for tv, tt in zip(ax["tickvals"], ax["ticktext"], strict=True):
            labels.append(
                {
                    "x": k,
                    "y": (tv - lo) / span,
                    "text": tt,
                    "showarrow": False,
                    "xanchor": "right",
                    "xshift": -3,
                    "font": {"size": 9, "color": "#333"},
                }
            )
    return shapes, labels


def slices_figure(ps: dict[str, Any], params: Sequence[str] | None = None, cols: int = 4) -> Figure:
    """One slice plot per parameter: value against the parameter's value, colored by trial
    number (categorical parameters on a category axis, log-scale ones on a log axis).

    Args:
        ps: :func:`hpo32.dashboards.data.param_samples` output.
        params: the parameters to plot (default: all), in a grid of ``cols`` columns.
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
    fig = _frame(
        _title_note(title, ps.get("note", "")),
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
            "colorscale": "Blues",
            "colorbar": {"title": {"text": "trial"}, "thickness": 12},
        },
    )
    traces = []
    axis_updates: dict[str, dict[str, Any]] = {}
    for k, spec in enumerate(specs):
        r, c = divmod(k, cols)
        names = _axes_of(fig, r + 1, c + 1)
        sel = [t for t in trials if t["params"].get(spec["name"]) is not None]
        categorical = spec["kind"] == "categorical"
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "showlegend": False,
                **names,
                "x": [
                    esc(t["params"][spec["name"]]) if categorical else t["params"][spec["name"]]
                    for t in sel
                ],
                "y": [t["value"] for t in sel],
                "customdata": [t["number"] for t in sel],
                "marker": {
                    "size": 5,
                    "color": [t["number"] for t in sel],
                    "coloraxis": "coloraxis",
                    "opacity": 0.75,
                },
                "hovertemplate": "trial #%{customdata}<br>%{x}<br>value %{y:.4f}<extra></extra>",
            }
        )
        axis = "xaxis" + names["xaxis"][1:]
        if categorical:
            axis_updates[axis] = {
                "type": "category",
                "categoryorder": "array",
                "categoryarray": [esc(ch) for ch in spec["choices"]],
            }
        elif spec.get("log"):
            axis_updates[axis] = {"type": "log"}
    fig.update_layout(**axis_updates)
    fig.update_annotations(font_size=12)
    fig.update_yaxes(title="value", col=1)
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


def best_over_time_figure(
    series: Sequence[dict[str, Any]],
    title: str = "Best so far against search time",
    labels: Sequence[str] | None = None,
    by_engine: bool = False,
) -> Figure:
    """Best value so far against hours of search, one line per study."""
    if not any(s["best"] for s in series):
        return empty_figure("No complete trials yet.", title)
    dashes = ("solid", "dash", "dot", "dashdot")
    traces = []
    for k, s in enumerate(series):
        if not s["best"]:
            continue
        traces.append(
            {
                "type": "scatter",
                "x": s["hours"],
                "y": s["best"],
                "mode": "lines",
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
                "hovertemplate": "%{x:.2f} h: best %{y:.4f} (trial #%{customdata})"
                "<extra>%{fullData.name}</extra>",
            }
        )
    fig = _frame(title)
    fig.update_xaxes(title="hours of search (pauses between sessions left out)")
    fig.update_yaxes(title="best validation accuracy")
    return _done(fig, traces)


def throughput_figure(tp: dict[str, Any], by_engine: bool = True) -> Figure:
    """Finished trials per hour of search, per study, and each study's overall rate."""
    title = "Trials per hour"
    if not any(s["finished"] for s in tp["studies"]):
        return empty_figure("No finished trials yet.", title)
    traces = []
    for k, s in enumerate(tp["studies"]):
        rate = f"{s['rate']:.1f}/h overall" if s["rate"] is not None else "-"
        traces.append(
            {
                "type": "bar",
                "x": tp["hours"],
                "y": s["per_hour"],
                "name": esc(f"{_label(s)}: {rate}"),
                "opacity": 0.8,
                "marker": {"color": _color(k, s, by_engine)},
                "hovertemplate": "hour %{x:.2f}: %{y:.1f} trials/h<extra></extra>",
            }
        )
    fig = _frame(title, barmode="group")
    fig.update_xaxes(title="hours of search")
    fig.update_yaxes(title="finished trials per hour")
    return _done(fig, traces)


def distribution_figure(stats: Sequence[dict[str, Any]], by_engine: bool = True) -> Figure:
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
    return _done(fig, traces)


def categorical_effects_figure(
    effects: Sequence[tuple[str, dict[str, list[dict[str, Any]]]]],
) -> Figure:
    """Each categorical choice's mean value minus the study's mean (± standard error), one
    bar color per study, so datasets of different difficulty compare on one scale.

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
    fig = _frame(
        title,
        barmode="group",
        subplots={
            "rows": 1,
            "cols": len(params),
            "shared_yaxes": True,
            "subplot_titles": [esc(p) for p in params],
            "horizontal_spacing": 0.05,
        },
    )
    traces = []
    for k, (label, eff) in enumerate(effects):
        for c, p in enumerate(params):
            entries = [e for e in eff.get(p, []) if e["count"]]
            n = sum(e["count"] for e in entries)
            base = sum(e["mean"] * e["count"] for e in entries) / n if n else 0.0
            traces.append(
                {
                    "type": "bar",
                    **_axes_of(fig, 1, c + 1),
                    "name": esc(label),
                    "legendgroup": esc(label),
                    "showlegend": c == 0,
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
            )
    fig.update_yaxes(title="difference from the study's mean", col=1, zeroline=True)
    return _done(fig, traces)


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
