"""``/study/<name>``: one study, its header and four tabs (overview, parameters, timeline,
trials); only the open tab's components exist, so only its figures are computed."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag  # imported with the app: Dash serves its scripts from the start
from dash import Input, Output, State, dcc, html

from hpo32.dashboards import data, figures
from hpo32.dashboards.pages.common import (
    PAGE_SIZE,
    PageCallbacks,
    PageContext,
    card,
    error,
    graph,
    loading_graph,
    page_stores,
)
from hpo32.dashboards.views import study as view
from hpo32.dashboards.views.trial import trial_path

_PARALLEL_LINES = 500  # an evenly spaced sample (best included) above this many trials

callbacks = PageCallbacks("study", extra=lambda args: (args["name"],))


def layout(ctx: PageContext, name: str, tab: str = "overview") -> list[Any]:
    """The page of study ``name``, ``tab`` open.

    Raises:
        UnknownStudy: no study has that name.
    """
    info = data.study_info(ctx.engine, name)  # raises UnknownStudy
    fp = data.fingerprint(ctx.engine, [name])
    return [
        html.H2(name, id="study-name"),
        html.Div(id="study-header"),
        *page_stores({"page": "study", "name": info["name"]}, fp),
        dcc.Tabs(
            id="study-tabs",
            value=view.tab_or_default(tab),
            children=[
                dcc.Tab(label="Overview", value="overview", id="tab-overview"),
                dcc.Tab(label="Parameters", value="params", id="tab-params"),
                dcc.Tab(label="Timeline", value="timeline", id="tab-timeline"),
                dcc.Tab(label="Trials", value="trials", id="tab-trials"),
            ],
            parent_className="hpo32-tabs",
        ),
        html.Div(id="study-tab"),
    ]


# -- the tabs -----------------------------------------------------------------------------------
@callbacks.on(Output("study-tab", "children"), Input("study-tabs", "value"), checked=False)
def study_tab(ctx: PageContext, tab: str) -> Any:
    """Only the open tab's components exist, so only its figures are computed."""
    if tab == "params":
        return _params_tab()
    if tab == "timeline":
        return [graph("g-timeline"), graph("g-edf")]
    if tab == "trials":
        return card([html.Div(id="trial-table-count"), _trial_table()])
    return _overview_tab()


def _radio(rid: str, value: Any, options: list[tuple[str, Any]]) -> dcc.RadioItems:
    return dcc.RadioItems(
        id=rid,
        value=value,
        inline=True,
        options=[{"label": label, "value": v} for label, v in options],
    )


def _overview_tab() -> list[Any]:
    return [
        card(None, id="study-best"),
        card(
            [
                html.Span("Optimization history against ", className="hpo32-label"),
                _radio(
                    "hist-axis",
                    "number",
                    [(" trial number ", "number"), (" wall-clock time ", "time")],
                ),
                loading_graph("g-history"),
            ]
        ),
        graph("g-curves"),
    ]


def _params_tab() -> list[Any]:
    shares = [(" all ", 1.0), (" best 50% ", 0.5), (" best 25% ", 0.25), (" best 10% ", 0.1)]
    return [
        card(
            [
                html.Span("Parallel coordinates: show ", className="hpo32-label"),
                _radio("pc-top", 1.0, shares),
                html.Span(" drawn as ", className="hpo32-label"),
                _radio("pc-draw", "lines", [(" lines ", "lines"), (" brushable axes ", "brush")]),
                loading_graph("g-parallel"),
            ]
        ),
        card(
            [
                html.Button("Compute parameter importances", id="btn-importance", n_clicks=0),
                html.Span(
                    " PED-ANOVA over the latest 1,000 complete trials; cached "
                    "until new trials complete.",
                    className="hpo32-muted",
                ),
                loading_graph(
                    "g-importance",
                    figures.empty_figure(
                        "Press the button to compute importances.", "Parameter importances"
                    ),
                ),
            ]
        ),
        card(
            [
                html.Span("Slice plot of ", className="hpo32-label"),
                html.Div(
                    dcc.Dropdown(
                        id="slice-param",
                        clearable=False,
                        value="learning_rate",
                        options=[{"label": "learning_rate", "value": "learning_rate"}],
                    ),
                    className="hpo32-slice-pick",
                ),
                dcc.Checklist(
                    id="slice-pruned",
                    options=[{"label": " show pruned trials (last value)", "value": "pruned"}],
                    value=[],
                    inline=True,
                ),
                loading_graph("g-slices"),
            ]
        ),
        card(
            [
                html.Span("Contour of ", className="hpo32-label"),
                _pick("contour-x", "learning_rate"),
                html.Span(" against ", className="hpo32-label"),
                _pick("contour-y", "batch_size"),
                loading_graph("g-contour"),
            ]
        ),
    ]


def _pick(pid: str, value: str) -> html.Div:
    return html.Div(
        dcc.Dropdown(
            id=pid, clearable=False, value=value, options=[{"label": value, "value": value}]
        ),
        className="hpo32-slice-pick",
    )


def _trial_table() -> Any:
    """AG Grid on its infinite row model: the server filters, sorts and pages
    (:func:`trial_rows`); number, state and value stay in view."""
    return html.Div(
        [
            dag.AgGrid(
                id="trial-table",
                rowModelType="infinite",
                columnDefs=[],
                defaultColDef={
                    "sortable": True,
                    "filter": True,
                    "floatingFilter": True,
                    "resizable": True,
                    "minWidth": 90,
                    "filterParams": {"maxNumConditions": 1},
                },
                dashGridOptions={
                    "pagination": True,
                    "paginationPageSize": PAGE_SIZE,
                    "paginationPageSizeSelector": False,
                    "cacheBlockSize": PAGE_SIZE,
                    "maxBlocksInCache": 4,
                    "tooltipShowDelay": 300,
                },
                className="ag-theme-alpine",
                style={"height": "820px", "width": "100%"},
            ),
            html.Div(id="trial-table-refreshed", hidden=True),
        ]
    )


# -- the header and the overview ----------------------------------------------------------------
@callbacks.on(Output("study-header", "children"), Input("fp", "data"))
def study_header(ctx: PageContext, fp: str | None, name: str) -> Any:
    try:
        info = ctx.cached("info", name, fp, lambda: data.study_info(ctx.engine, name))
    except Exception as exc:
        return error(str(exc))
    header = view.study_header(info)
    return html.Div(
        [
            html.Span(header.status, id="study-status", className=f"hpo32-badge-{header.status}"),
            html.Span(header.summary, id="study-summary"),
        ]
    )


@callbacks.on(Output("study-best", "children"), Input("fp", "data"))
def study_best(ctx: PageContext, fp: str | None, name: str) -> Any:
    try:
        best = ctx.cached("best", name, fp, lambda: data.best_trial(ctx.engine, name))
    except Exception as exc:
        return error(f"Cannot read the best trial: {exc}")
    return best_trial_card(best, name)


def best_trial_card(best: dict[str, Any] | None, name: str | None = None) -> html.Div:
    """The best trial's value, test accuracy and config as Dash components (escaped)."""
    shown = view.best_trial(best)
    if shown is None:
        return html.Div([html.H3("Best trial"), html.P("No complete trial yet.")])
    items = [
        html.Div([html.Span(k, className="hpo32-label"), " ", html.B(v)]) for k, v in shown.config
    ]
    return html.Div(
        [
            html.H3(f"Best trial #{shown.number}", id="best-title"),
            html.P(shown.facts, id="best-facts"),
            dcc.Link("open the trial's page", href=trial_path(name, shown.number), id="best-link")
            if name is not None
            else None,
            html.Details(
                [html.Summary("config"), html.Div(items, id="best-config")],
                open=True,
            ),
        ]
    )


@callbacks.on(Output("g-history", "figure"), Input("fp", "data"), Input("hist-axis", "value"))
def g_history(ctx: PageContext, fp: str | None, axis: str | None, name: str) -> Any:
    return ctx.guard(
        lambda: figures.history_figure(
            ctx.cached("history", name, fp, lambda: data.history(ctx.engine, name)),
            axis or "number",
            chance=ctx.chance_of([name], fp),
        ),
        "Optimization history",
    )


@callbacks.on(Output("g-curves", "figure"), Input("fp", "data"))
def g_curves(ctx: PageContext, fp: str | None, name: str) -> Any:
    return ctx.guard(
        lambda: figures.learning_curves_figure(
            ctx.cached("curves", name, fp, lambda: data.learning_curves(ctx.engine, name)),
            chance=ctx.chance_of([name], fp),
        ),
        "Learning curves",
    )


# -- the parameters -----------------------------------------------------------------------------
def _samples(ctx: PageContext, name: str, fp: str | None) -> dict[str, Any]:
    return ctx.cached("samples", name, fp, lambda: data.param_samples(ctx.engine, name, cap=1000))


@callbacks.on(
    Output("g-parallel", "figure"),
    Input("fp", "data"),
    Input("pc-top", "value"),
    Input("pc-draw", "value"),
)
def g_parallel(
    ctx: PageContext, fp: str | None, top: float | None, draw: str | None, name: str
) -> Any:
    share = float(top or 1.0)
    return ctx.guard(
        lambda: figures.parallel_figure(
            ctx.cached(
                "parallel",
                (name, share),
                fp,
                lambda: data.param_samples(ctx.engine, name, cap=_PARALLEL_LINES, top=share),
            ),
            brush=draw == "brush",
        ),
        "Parallel coordinates",
    )


@callbacks.on(
    Output("slice-param", "options"),
    Output("slice-param", "value"),
    Input("fp", "data"),
    State("slice-param", "value"),
)
def slice_params(ctx: PageContext, fp: str | None, current: str | None, name: str) -> Any:
    """The parameters to choose from; the choice changes only when it has to (so the
    slice plot, drawn at once for the default, is not drawn twice)."""
    try:
        names = [p["name"] for p in _samples(ctx, name, fp)["params"]]
    except Exception:
        return [], dash.no_update
    value: Any = dash.no_update
    if current not in names:
        value = "learning_rate" if "learning_rate" in names else (names or [None])[0]
    return [{"label": n, "value": n} for n in names], value


@callbacks.on(
    Output("g-slices", "figure"),
    Input("fp", "data"),
    Input("slice-param", "value"),
    Input("slice-pruned", "value"),
)
def g_slices(
    ctx: PageContext, fp: str | None, param: str | None, pruned: list[str] | None, name: str
) -> Any:
    def samples() -> dict[str, Any]:
        if not pruned:
            return _samples(ctx, name, fp)
        return ctx.cached(
            "samples-pruned",
            name,
            fp,
            lambda: data.param_samples(ctx.engine, name, cap=1000, states=("COMPLETE", "PRUNED")),
        )

    return ctx.guard(
        lambda: figures.slices_figure(
            samples(), params=[param] if param else None, chance=ctx.chance_of([name], fp)
        ),
        "Slice plot",
    )


@callbacks.on(
    Output("contour-x", "options"),
    Output("contour-y", "options"),
    Output("contour-x", "value"),
    Output("contour-y", "value"),
    Input("fp", "data"),
    State("contour-x", "value"),
    State("contour-y", "value"),
)
def contour_params(
    ctx: PageContext, fp: str | None, x: str | None, y: str | None, name: str
) -> Any:
    """The parameters to choose from; a choice changes only when it has to."""
    try:
        names = [p["name"] for p in _samples(ctx, name, fp)["params"]]
    except Exception:
        return [], [], dash.no_update, dash.no_update
    options = [{"label": n, "value": n} for n in names]
    new_x: Any = dash.no_update
    new_y: Any = dash.no_update
    if x not in names:
        x = new_x = "learning_rate" if "learning_rate" in names else (names or [None])[0]
    if y not in names or y == x:
        others = [n for n in names if n != x]
        new_y = "batch_size" if "batch_size" in others else (others or [None])[0]
    return options, options, new_x, new_y


@callbacks.on(
    Output("g-contour", "figure"),
    Input("fp", "data"),
    Input("contour-x", "value"),
    Input("contour-y", "value"),
)
def g_contour(ctx: PageContext, fp: str | None, x: str | None, y: str | None, name: str) -> Any:
    return ctx.guard(lambda: figures.contour_figure(_samples(ctx, name, fp), x, y), "Contour plot")


# -- the timeline -------------------------------------------------------------------------------
@callbacks.on(Output("g-timeline", "figure"), Input("fp", "data"))
def g_timeline(ctx: PageContext, fp: str | None, name: str) -> Any:
    return ctx.guard(
        lambda: figures.timeline_figure(
            ctx.cached("timeline", name, fp, lambda: data.timeline(ctx.engine, name))
        ),
        "Timeline of trials by worker",
    )


@callbacks.on(Output("g-edf", "figure"), Input("fp", "data"))
def g_edf(ctx: PageContext, fp: str | None, name: str) -> Any:
    def make() -> Any:
        hist = ctx.cached("history", name, fp, lambda: data.history(ctx.engine, name))
        return figures.edf_figure(
            [(name, hist["by_number"]["value"])], chance=ctx.chance_of([name], fp)
        )

    return ctx.guard(make, "Empirical distribution")


@callbacks.on(
    Output("g-importance", "figure"),
    Input("btn-importance", "n_clicks"),
    prevent_initial_call=True,
)
def g_importance(ctx: PageContext, _clicks: int | None, name: str) -> Any:
    return ctx.guard(
        lambda: figures.importance_figure([(name, ctx.importance_of(name))]),
        "Parameter importances",
    )


# -- the trials ---------------------------------------------------------------------------------
@callbacks.on(
    Output("trial-table", "getRowsResponse"),
    Output("trial-table", "columnDefs"),
    Output("trial-table-count", "children"),
    Input("trial-table", "getRowsRequest"),
    State("fp", "data"),
    State("trial-table", "columnDefs"),
)
def trial_rows(
    ctx: PageContext,
    request: dict[str, Any] | None,
    fp: str | None,
    shown: list[dict[str, Any]] | None,
    name: str,
) -> Any:
    """The block of rows the grid asks for, filtered and sorted by its models; the columns
    when the study has new ones (a parameter first sampled since the page was drawn)."""
    if not request:
        raise dash.exceptions.PreventUpdate
    try:
        table = ctx.cached("table", name, fp, lambda: data.trial_table(ctx.engine, name))
    except Exception as exc:
        return {"rowData": [], "rowCount": 0}, dash.no_update, error(str(exc))
    rows, matching = data.grid_rows(
        table["rows"],
        request.get("startRow") or 0,
        request.get("endRow"),
        request.get("sortModel"),
        request.get("filterModel"),
    )
    columns = view.table_columns(table)
    return (
        {"rowData": view.linked_rows(rows, name), "rowCount": matching},
        columns if columns != shown else dash.no_update,
        view.table_count(matching, len(table["rows"])),
    )


# a new fingerprint (the study changed): the grid asks again for the rows it shows
_REFRESH_JS = """
function(fp) {
    if (window.dash_ag_grid && dash_ag_grid.getApiAsync) {
        dash_ag_grid.getApiAsync('trial-table').then(function(api) {
            api.refreshInfiniteCache();
        });
    }
    return window.dash_clientside.no_update;
}
"""


def register(ctx: PageContext) -> None:
    """Registers the page's callbacks and the trial table's browser-side refresh."""
    callbacks.register(ctx)
    ctx.app.clientside_callback(
        _REFRESH_JS,
        Output("trial-table-refreshed", "children"),
        Input("fp", "data"),
        prevent_initial_call=True,
    )
