"""The web app: ``create_app(url)`` returns a Dash app over one database, opened read-only.

Pages (paths): ``/`` studies, ``/study/<name>`` one study, ``/compare/datasets`` ImageNet32
against CIFAR-10, ``/compare/engines`` Optuna, KerasTuner and AutoKeras on one dataset.

Live updates: a ``dcc.Interval`` ticks every few seconds and a cheap fingerprint query
(:func:`hpo32.dashboards.data.fingerprint`) decides whether anything changed; only then do the
figures recompute, each from its own data function, cached by (what, study, fingerprint).
Every callback is a few lines over :mod:`hpo32.dashboards.data` and :mod:`hpo32.dashboards.figures`.
"""

from __future__ import annotations

import logging
import urllib.parse
import warnings
from typing import Any, Callable

import dash
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from hpo32.dashboards import data, figures
from hpo32.storage import make_engine

__all__ = ["create_app", "study_path"]

log = logging.getLogger(__name__)

_PAGE_SIZE = 25
_PARALLEL_LINES = 500  # an evenly spaced sample (best included) above this many trials
_GRAPH_CONFIG = {"displaylogo": False, "responsive": True}
_CARD = {
    "border": "1px solid #e3e3e3",
    "borderRadius": "6px",
    "padding": "8px 12px",
    "margin": "10px 0",
    "background": "white",
}
_ROW = {"display": "flex", "flexWrap": "wrap", "gap": "12px"}
_HALF = {"flex": "1 1 520px", "minWidth": "0"}


def study_path(name: str) -> str:
    """The dashboard path of a study (any characters in the name are quoted)."""
    return "/study/" + urllib.parse.quote(name, safe="")


def _graph(gid: str, style: dict[str, Any] | None = None) -> html.Div:
    return html.Div(
        dcc.Loading(
            dcc.Graph(id=gid, config=_GRAPH_CONFIG, figure=figures.empty_figure("Loading..."))
        ),
        style={**_CARD, **(style or {})},
        className="hpo32-card",
    )


def _error(text: str) -> html.Div:
    return html.Div(
        text,
        className="hpo32-error",
        style={
            "color": "#a94442",
            "background": "#f2dede",
            "padding": "8px",
            "borderRadius": "4px",
            "margin": "8px 0",
        },
    )


def _page_stores(args: dict[str, Any], fp: str) -> list[Any]:
    return [dcc.Store(id="page-args", data=args), dcc.Store(id="fp", data=fp)]


def create_app(url: str, refresh_seconds: float = 5.0, engine=None) -> dash.Dash:
    """The dashboard over the database at ``url``.

    Args:
        url: a storage URL (opened read-only).
        refresh_seconds: how often open pages check the database for new data.
        engine: an engine to use instead of opening ``url`` (tests).

    Raises:
        StorageError: the database cannot be opened.
    """
    engine = engine if engine is not None else make_engine(url, read_only=True)
    _warm_imports()
    cache = data.Cache(size=96)
    app = dash.Dash(
        __name__, title="hpo32 dashboard", update_title=None, suppress_callback_exceptions=True
    )

    def cached(what: str, key: Any, fp: str | None, compute: Callable[[], Any]) -> Any:
        return cache.get((what, key, fp), compute)

    def guard(make_figure: Callable[[], Any], title: str = ""):
        """A figure, or a blank one naming the error (never a broken page)."""
        try:
            return make_figure()
        except data.UnknownStudy as exc:
            return figures.empty_figure(str(exc), title)
        except Exception as exc:  # a database hiccup must not kill the page
            log.exception("figure %s failed", title)
            return figures.empty_figure(f"Cannot read the database: {exc}", title)

    link = {"marginRight": "16px", "color": "#e6edf3", "textDecoration": "none"}
    nav = html.Div(
        [
            html.B("hpo32", style={"marginRight": "20px"}),
            dcc.Link("Studies", href="/", id="nav-studies", style=link),
            dcc.Link("Compare datasets", href="/compare/datasets", id="nav-datasets", style=link),
            dcc.Link("Compare engines", href="/compare/engines", id="nav-engines", style=link),
        ],
        style={"padding": "10px 16px", "background": "#24292f", "color": "white"},
        className="hpo32-nav",
    )
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh=False),
            nav,
            dcc.Interval(id="tick", interval=int(refresh_seconds * 1000), n_intervals=0),
            html.Div(
                id="page",
                style={"padding": "6px 18px", "background": "#f6f8fa", "minHeight": "100vh"},
            ),
        ],
        style={"fontFamily": "system-ui, sans-serif"},
    )

    # -- routing --------------------------------------------------------------------------
    @app.callback(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
    def route(pathname: str | None, search: str | None):
        path = pathname or "/"
        query = urllib.parse.parse_qs((search or "").lstrip("?"))
        try:
            if path in ("/", ""):
                return studies_page()
            if path.startswith("/study/"):
                return study_page(
                    urllib.parse.unquote(path[len("/study/") :]),
                    (query.get("tab") or ["overview"])[0],
                )
            if path.rstrip("/") == "/compare/datasets":
                return datasets_page()
            if path.rstrip("/") == "/compare/engines":
                return engines_page()
        except data.UnknownStudy as exc:
            return [
                html.H2("Study not found"),
                _error(str(exc)),
                dcc.Link("All studies", href="/"),
            ] + _page_stores({"page": "none"}, "")
        except Exception as exc:
            log.exception("page %s failed", path)
            return [_error(f"Cannot read the database: {exc}")] + _page_stores({"page": "none"}, "")
        return [
            html.H2("Page not found"),
            html.P(f"No page at {path}."),
            dcc.Link("All studies", href="/"),
        ] + _page_stores({"page": "none"}, "")

    @app.callback(
        Output("fp", "data"),
        Input("tick", "n_intervals"),
        State("page-args", "data"),
        State("fp", "data"),
        prevent_initial_call=True,
    )
    def refresh(_n, args, old):
        if not args or args.get("page") == "none":
            raise PreventUpdate
        names = [args["name"]] if args.get("page") == "study" else None
        try:
            new = data.fingerprint(engine, names)
        except Exception:  # the next tick tries again
            raise PreventUpdate from None
        if new == old:
            raise PreventUpdate
        return new

    # -- studies ----------------------------------------------------------------------------
    def studies_page():
        fp = data.fingerprint(engine)
        return (
            [html.H2("Studies")]
            + _page_stores({"page": "studies"}, fp)
            + [html.Div(id="studies-table", className="hpo32-card", style=_CARD)]
        )

    @app.callback(
        Output("studies-table", "children"), Input("fp", "data"), State("page-args", "data")
    )
    def studies_table(fp, args):
        if not args or args.get("page") != "studies":
            raise PreventUpdate
        try:
            rows = cached("studies", None, fp, lambda: data.list_studies(engine))
        except Exception as exc:
            return _error(f"Cannot read the database: {exc}")
        if not rows:
            return html.P("No studies in this database yet; start one with 'hpo32 search'.")
        head = [
            "Study",
            "Dataset",
            "Engine",
            "Complete",
            "Pruned",
            "Failed",
            "Running",
            "Best val. accuracy",
            "Budget used",
            "Last activity",
            "Status",
        ]
        body = []
        for r in rows:
            s = r["states"]
            budget = figures.fmt_duration(r["used_seconds"])
            if r["budget_seconds"]:
                pct = 100.0 * r["used_seconds"] / r["budget_seconds"]
                budget += f" of {figures.fmt_duration(r['budget_seconds'])} ({pct:.0f}%)"
            body.append(
                html.Tr(
                    [
                        html.Td(
                            dcc.Link(r["name"], href=study_path(r["name"]), className="study-link")
                        ),
                        html.Td(r["dataset"] or "unknown"),
                        html.Td(r["engine"] or "unknown"),
                        html.Td(s.get("COMPLETE", 0)),
                        html.Td(s.get("PRUNED", 0)),
                        html.Td(s.get("FAIL", 0)),
                        html.Td(s.get("RUNNING", 0)),
                        html.Td(figures.fmt_value(r["best_value"])),
                        html.Td(budget),
                        html.Td(figures.fmt_time(r["last_activity"])),
                        html.Td(
                            "running" if r["running"] else "stopped",
                            style={
                                "color": "#2ca02c" if r["running"] else "#666",
                                "fontWeight": "bold" if r["running"] else "normal",
                            },
                        ),
                    ]
                )
            )
        cell = {"padding": "4px 10px", "textAlign": "left"}
        return html.Table(
            [html.Thead(html.Tr([html.Th(h, style=cell) for h in head])), html.Tbody(body)],
            id="studies",
            style={"borderCollapse": "collapse", "width": "100%"},
        )

    # -- one study --------------------------------------------------------------------------
    def study_page(name: str, tab: str = "overview"):
        info = data.study_info(engine, name)  # raises UnknownStudy
        fp = data.fingerprint(engine, [name])
        tab = tab if tab in ("overview", "params", "trials") else "overview"
        return [
            html.H2(name, id="study-name", style={"wordBreak": "break-all"}),
            html.Div(id="study-header"),
            *_page_stores({"page": "study", "name": info["name"]}, fp),
            dcc.Tabs(
                id="study-tabs",
                value=tab,
                children=[
                    dcc.Tab(label="Overview", value="overview", id="tab-overview"),
                    dcc.Tab(label="Parameters", value="params", id="tab-params"),
                    dcc.Tab(label="Trials", value="trials", id="tab-trials"),
                ],
                style={"marginTop": "8px"},
            ),
            html.Div(id="study-tab"),
        ]

    @app.callback(Output("study-tab", "children"), Input("study-tabs", "value"))
    def study_tab(tab):
        """Only the open tab's components exist, so only its figures are computed."""
        if tab == "params":
            return [
                html.Div(
                    [
                        html.Span("Parallel coordinates: show ", style={"color": "#555"}),
                        dcc.RadioItems(
                            id="pc-top",
                            value=1.0,
                            inline=True,
                            options=[
                                {"label": " all ", "value": 1.0},
                                {"label": " best 50% ", "value": 0.5},
                                {"label": " best 25% ", "value": 0.25},
                                {"label": " best 10% ", "value": 0.1},
                            ],
                            style={"display": "inline-block"},
                        ),
                        dcc.Loading(
                            dcc.Graph(
                                id="g-parallel",
                                config=_GRAPH_CONFIG,
                                figure=figures.empty_figure("Loading..."),
                            )
                        ),
                    ],
                    style=_CARD,
                    className="hpo32-card",
                ),
                html.Div(
                    [
                        html.Button(
                            "Compute parameter importances", id="btn-importance", n_clicks=0
                        ),
                        html.Span(
                            " PED-ANOVA over the latest 1,000 complete trials; cached "
                            "until new trials complete.",
                            style={"color": "#666"},
                        ),
                        dcc.Loading(
                            dcc.Graph(
                                id="g-importance",
                                config=_GRAPH_CONFIG,
                                figure=figures.empty_figure(
                                    "Press the button to compute importances.",
                                    "Parameter importances",
                                ),
                            )
                        ),
                    ],
                    style=_CARD,
                    className="hpo32-card",
                ),
                html.Div(
                    [
                        html.Span("Slice plot of ", style={"color": "#555"}),
                        html.Div(
                            dcc.Dropdown(
                                id="slice-param",
                                clearable=False,
                                value="learning_rate",
                                options=[{"label": "learning_rate", "value": "learning_rate"}],
                            ),
                            style={
                                "width": "320px",
                                "display": "inline-block",
                                "verticalAlign": "middle",
                            },
                        ),
                        dcc.Loading(
                            dcc.Graph(
                                id="g-slices",
                                config=_GRAPH_CONFIG,
                                figure=figures.empty_figure("Loading..."),
                            )
                        ),
                    ],
                    style=_CARD,
                    className="hpo32-card",
                ),
            ]
        if tab == "trials":
            return html.Div(
                [html.Div(id="trial-table-count"), _trial_table()],
                style=_CARD,
                className="hpo32-card",
            )
        return [
            html.Div(id="study-best", className="hpo32-card", style=_CARD),
            html.Div(
                [
                    html.Span("Optimization history against ", style={"color": "#555"}),
                    dcc.RadioItems(
                        id="hist-axis",
                        value="number",
                        inline=True,
                        options=[
                            {"label": " trial number ", "value": "number"},
                            {"label": " wall-clock time ", "value": "time"},
                        ],
                        style={"display": "inline-block"},
                    ),
                    dcc.Loading(
                        dcc.Graph(
                            id="g-history",
                            config=_GRAPH_CONFIG,
                            figure=figures.empty_figure("Loading..."),
                        )
                    ),
                ],
                style=_CARD,
                className="hpo32-card",
            ),
            _graph("g-curves"),
        ]

    def _trial_table():
        from dash import dash_table

        with warnings.catch_warnings():  # deprecated in favour of dash-ag-grid; dash<5 has it
            warnings.simplefilter("ignore", DeprecationWarning)
            return dash_table.DataTable(
                id="trial-table",
                columns=[{"name": "number", "id": "number"}],
                data=[],
                page_action="custom",
                page_current=0,
                page_size=_PAGE_SIZE,
                sort_action="custom",
                sort_mode="multi",
                sort_by=[],
                filter_action="custom",
                filter_query="",
                style_table={"overflowX": "auto"},
                style_cell={
                    "fontSize": "13px",
                    "padding": "3px 6px",
                    "maxWidth": "220px",
                    "overflow": "hidden",
                    "textOverflow": "ellipsis",
                },
                style_data_conditional=[
                    {
                        "if": {"filter_query": f'{{state}} = "{state}"', "column_id": "state"},
                        "color": color,
                    }
                    for state, color in figures.STATE_COLORS.items()
                ],
            )

    def _study(args) -> str:
        if not args or args.get("page") != "study":
            raise PreventUpdate
        return args["name"]

    @app.callback(
        Output("study-header", "children"), Input("fp", "data"), State("page-args", "data")
    )
    def study_header(fp, args):
        name = _study(args)
        try:
            info = cached("info", name, fp, lambda: data.study_info(engine, name))
        except Exception as exc:
            return _error(str(exc))
        s = info["states"]
        budget = figures.fmt_duration(info["used_seconds"])
        if info["budget_seconds"]:
            budget += f" of {figures.fmt_duration(info['budget_seconds'])}"
        parts = [
            f"dataset {info['dataset'] or 'unknown'}",
            f"engine {info['engine'] or 'unknown'}",
            f"{info['n_trials']} trials"
            + "".join(f", {s[k]} {k.lower()}" for k in data.STATES if s.get(k)),
            f"best {figures.fmt_value(info['best_value'])}",
            f"search time {budget}",
            f"last activity {figures.fmt_time(info['last_activity'])}",
        ]
        return html.Div(
            [
                html.Span(
                    "running" if info["running"] else "stopped",
                    id="study-status",
                    style={
                        "color": "white",
                        "background": "#2ca02c" if info["running"] else "#888",
                        "padding": "2px 8px",
                        "borderRadius": "10px",
                        "marginRight": "10px",
                    },
                ),
                html.Span(" · ".join(parts), id="study-summary"),
            ]
        )

    @app.callback(Output("study-best", "children"), Input("fp", "data"), State("page-args", "data"))
    def study_best(fp, args):
        name = _study(args)
        try:
            best = cached("best", name, fp, lambda: data.best_trial(engine, name))
        except Exception as exc:
            return _error(f"Cannot read the best trial: {exc}")
        return best_trial_card(best)

    def history_data(name, fp):
        return cached("history", name, fp, lambda: data.history(engine, name))

    @app.callback(
        Output("g-history", "figure"),
        Input("fp", "data"),
        Input("hist-axis", "value"),
        State("page-args", "data"),
    )
    def g_history(fp, axis, args):
        name = _study(args)
        return guard(
            lambda: figures.history_figure(history_data(name, fp), axis or "number"),
            "Optimization history",
        )

    @app.callback(Output("g-curves", "figure"), Input("fp", "data"), State("page-args", "data"))
    def g_curves(fp, args):
        name = _study(args)
        return guard(
            lambda: figures.learning_curves_figure(
                cached("curves", name, fp, lambda: data.learning_curves(engine, name))
            ),
            "Learning curves",
        )

    def samples(name, fp):
        return cached("samples", name, fp, lambda: data.param_samples(engine, name, cap=1000))

    @app.callback(
        Output("g-parallel", "figure"),
        Input("fp", "data"),
        Input("pc-top", "value"),
        State("page-args", "data"),
    )
    def g_parallel(fp, top, args):
        name = _study(args)
        top = float(top or 1.0)
        return guard(
            lambda: figures.parallel_figure(
                cached(
                    "parallel",
                    (name, top),
                    fp,
                    lambda: data.param_samples(engine, name, cap=_PARALLEL_LINES, top=top),
                )
            ),
            "Parallel coordinates",
        )

    @app.callback(
        Output("slice-param", "options"),
        Output("slice-param", "value"),
        Input("fp", "data"),
        State("slice-param", "value"),
        State("page-args", "data"),
    )
    def slice_params(fp, current, args):
        """The parameters to choose from; the choice changes only when it has to (so the
        slice plot, drawn at once for the default, is not drawn twice)."""
        name = _study(args)
        try:
            names = [p["name"] for p in samples(name, fp)["params"]]
        except Exception:
            return [], dash.no_update
        value = dash.no_update
        if current not in names:
            value = "learning_rate" if "learning_rate" in names else (names or [None])[0]
        return [{"label": n, "value": n} for n in names], value

    @app.callback(
        Output("g-slices", "figure"),
        Input("fp", "data"),
        Input("slice-param", "value"),
        State("page-args", "data"),
    )
    def g_slices(fp, param, args):
        name = _study(args)
        return guard(
            lambda: figures.slices_figure(samples(name, fp), params=[param] if param else None),
            "Slice plot",
        )

    def importance_of(name: str):
        key = data.completed_key(engine, name)
        return cache.get(("importance", name, key), lambda: data.importances(engine, name))

    @app.callback(
        Output("g-importance", "figure"),
        Input("btn-importance", "n_clicks"),
        State("page-args", "data"),
        prevent_initial_call=True,
    )
    def g_importance(_clicks, args):
        name = _study(args)
        return guard(
            lambda: figures.importance_figure([(name, importance_of(name))]),
            "Parameter importances",
        )

    @app.callback(
        Output("trial-table", "data"),
        Output("trial-table", "columns"),
        Output("trial-table", "page_count"),
        Output("trial-table-count", "children"),
        Input("fp", "data"),
        Input("trial-table", "page_current"),
        Input("trial-table", "page_size"),
        Input("trial-table", "sort_by"),
        Input("trial-table", "filter_query"),
        State("page-args", "data"),
    )
    def trial_table(fp, page, size, sort_by, filter_query, args):
        name = _study(args)
        try:
            table = cached("table", name, fp, lambda: data.trial_table(engine, name))
        except Exception as exc:
            return [], [{"name": "number", "id": "number"}], 1, _error(str(exc))
        rows, matching, pages = data.page_rows(
            table["rows"], page or 0, size or _PAGE_SIZE, sort_by, filter_query
        )
        columns = [_column(c, table["types"][c]) for c in table["columns"]]
        count = (
            f"{matching:,} of {len(table['rows']):,} trials match; type in the row "
            "under the headers to filter (e.g. > 0.5, adam), click a header to sort."
        )
        return rows, columns, pages, count

    # -- compare datasets ---------------------------------------------------------------------
    def datasets_page():
        fp = data.fingerprint(engine)
        studies = data.list_studies(engine)
        inet_default, cifar_default = data.default_dataset_pair(studies)

        def options(kind: str) -> list[dict[str, str]]:
            return [
                {
                    "label": f"{s['name']} ({s['engine'] or 'unknown'}, "
                    f"{s['states'].get('COMPLETE', 0)} complete)",
                    "value": s["name"],
                }
                for s in studies
                if data.dataset_kind(s["dataset"]) == kind
            ]

        pick = {"flex": "1 1 360px"}
        return [
            html.H2("Compare datasets: ImageNet32 and CIFAR-10"),
            *_page_stores({"page": "datasets"}, fp),
            html.Div(
                [
                    html.Div(
                        [
                            html.Label("ImageNet32 study"),
                            dcc.Dropdown(
                                id="ds-inet",
                                options=options("imagenet32"),
                                value=inet_default,
                                clearable=False,
                            ),
                        ],
                        style=pick,
                    ),
                    html.Div(
                        [
                            html.Label("CIFAR-10 study"),
                            dcc.Dropdown(
                                id="ds-cifar",
                                options=options("cifar10"),
                                value=cifar_default,
                                clearable=False,
                            ),
                        ],
                        style=pick,
                    ),
                ],
                style=_ROW,
            ),
            html.Div(id="ds-note"),
            _graph("g-ds-best"),
            html.Div(
                [
                    html.Button(
                        "Compute parameter importances", id="btn-ds-importance", n_clicks=0
                    ),
                    dcc.Loading(
                        dcc.Graph(
                            id="g-ds-importance",
                            config=_GRAPH_CONFIG,
                            figure=figures.empty_figure(
                                "Press the button to compute importances.", "Parameter importances"
                            ),
                        )
                    ),
                ],
                style=_CARD,
                className="hpo32-card",
            ),
            _graph("g-ds-effects"),
            _graph("g-ds-rank"),
        ]

    def _pair(args, inet, cifar) -> list[tuple[str, str]]:
        if not args or args.get("page") != "datasets":
            raise PreventUpdate
        return [(n, label) for n, label in ((inet, "ImageNet32"), (cifar, "CIFAR-10")) if n]

    @app.callback(
        Output("ds-note", "children"),
        Input("fp", "data"),
        Input("ds-inet", "value"),
        Input("ds-cifar", "value"),
        State("page-args", "data"),
    )
    def ds_note(fp, inet, cifar, args):
        pair = _pair(args, inet, cifar)
        if len(pair) < 2:
            missing = "ImageNet32" if not inet else "CIFAR-10"
            return (
                _error(f"No {missing} study in this database: the comparison shows one side only.")
                if pair
                else _error("No ImageNet32 or CIFAR-10 study in this database yet.")
            )
        rows = {
            s["name"]: s for s in cached("studies", None, fp, lambda: data.list_studies(engine))
        }
        keys = {rows.get(n, {}).get("space_key") for n, _ in pair}
        if len(keys) > 1 or None in keys:
            return html.P(
                "Note: these studies do not record the same search space; shared "
                "configs are still compared where they exist.",
                style={"color": "#8a6d3b"},
            )
        return html.P("Both studies search the same space.", style={"color": "#3c763d"})

    @app.callback(
        Output("g-ds-best", "figure"),
        Input("fp", "data"),
        Input("ds-inet", "value"),
        Input("ds-cifar", "value"),
        State("page-args", "data"),
    )
    def g_ds_best(fp, inet, cifar, args):
        pair = _pair(args, inet, cifar)
        title = "Best so far against search time"

        def make():
            if not pair:
                return figures.empty_figure("No ImageNet32 or CIFAR-10 study yet.", title)
            series = cached(
                "over-time",
                tuple(n for n, _ in pair),
                fp,
                lambda: data.best_over_time(engine, [n for n, _ in pair]),
            )
            labels = [f"{label}: {n}" for n, label in pair]
            return figures.best_over_time_figure(series, title, labels=labels)

        return guard(make, title)

    @app.callback(
        Output("g-ds-importance", "figure"),
        Input("btn-ds-importance", "n_clicks"),
        State("ds-inet", "value"),
        State("ds-cifar", "value"),
        State("page-args", "data"),
        prevent_initial_call=True,
    )
    def g_ds_importance(_clicks, inet, cifar, args):
        pair = _pair(args, inet, cifar)
        return guard(
            lambda: figures.importance_figure(
                [(f"{label}: {n}", importance_of(n)) for n, label in pair]
            ),
            "Parameter importances",
        )

    @app.callback(
        Output("g-ds-effects", "figure"),
        Input("fp", "data"),
        Input("ds-inet", "value"),
        Input("ds-cifar", "value"),
        State("page-args", "data"),
    )
    def g_ds_effects(fp, inet, cifar, args):
        pair = _pair(args, inet, cifar)
        return guard(
            lambda: figures.categorical_effects_figure(
                [
                    (
                        f"{label}: {n}",
                        cached("effects", n, fp, lambda n=n: data.categorical_effects(engine, n)),
                    )
                    for n, label in pair
                ]
            ),
            "Effect of each categorical choice",
        )

    @app.callback(
        Output("g-ds-rank", "figure"),
        Input("fp", "data"),
        Input("ds-inet", "value"),
        Input("ds-cifar", "value"),
        State("page-args", "data"),
    )
    def g_ds_rank(fp, inet, cifar, args):
        pair = _pair(args, inet, cifar)
        title = "Same configs on both datasets"
        if len(pair) < 2:
            return figures.empty_figure("Pick a study on each dataset.", title)
        return guard(
            lambda: figures.rank_correlation_figure(
                cached(
                    "rank", (inet, cifar), fp, lambda: data.rank_correlation(engine, inet, cifar)
                ),
                f"ImageNet32: {inet}",
                f"CIFAR-10: {cifar}",
            ),
            title,
        )

    # -- compare engines ----------------------------------------------------------------------
    def engines_page():
        fp = data.fingerprint(engine)
        studies = data.list_studies(engine)
        datasets: dict[str, set[str]] = {}
        for s in studies:
            if s["dataset"]:
                datasets.setdefault(s["dataset"], set()).add(data.engine_family(s["engine"]))
        default = max(datasets, key=lambda d: (len(datasets[d]), d)) if datasets else None
        return [
            html.H2("Compare engines on one dataset"),
            *_page_stores({"page": "engines"}, fp),
            html.Div(
                [
                    html.Div(
                        [
                            html.Label("Dataset"),
                            dcc.Dropdown(
                                id="en-dataset",
                                value=default,
                                clearable=False,
                                options=[{"label": d, "value": d} for d in sorted(datasets)],
                            ),
                        ],
                        style={"flex": "0 1 260px"},
                    ),
                    html.Div(
                        [html.Label("Studies"), dcc.Dropdown(id="en-studies", multi=True)],
                        style={"flex": "1 1 520px"},
                    ),
                ],
                style=_ROW,
            ),
            _graph("g-en-best"),
            html.Div([_graph("g-en-throughput", _HALF), _graph("g-en-dist", _HALF)], style=_ROW),
        ]

    @app.callback(
        Output("en-studies", "options"),
        Output("en-studies", "value"),
        Input("en-dataset", "value"),
        State("fp", "data"),
    )
    def en_studies(dataset, fp):
        studies = cached("studies", None, fp, lambda: data.list_studies(engine))
        sel = [s for s in studies if dataset is not None and s["dataset"] == dataset]
        opts = [
            {"label": f"{s['name']} ({s['engine'] or 'unknown'})", "value": s["name"]} for s in sel
        ]
        return opts, [s["name"] for s in sel]

    def engine_series(names, fp):
        return cached("over-time", tuple(names), fp, lambda: data.best_over_time(engine, names))

    def _engines(args, names) -> list[str]:
        if not args or args.get("page") != "engines":
            raise PreventUpdate
        return list(names or [])

    @app.callback(
        Output("g-en-best", "figure"),
        Input("fp", "data"),
        Input("en-studies", "value"),
        State("page-args", "data"),
    )
    def g_en_best(fp, names, args):
        names = _engines(args, names)
        title = "Best so far against search time"
        if not names:
            return figures.empty_figure("No studies on this dataset.", title)
        return guard(
            lambda: figures.best_over_time_figure(engine_series(names, fp), title, by_engine=True),
            title,
        )

    @app.callback(
        Output("g-en-throughput", "figure"),
        Input("fp", "data"),
        Input("en-studies", "value"),
        State("page-args", "data"),
    )
    def g_en_throughput(fp, names, args):
        names = _engines(args, names)
        if not names:
            return figures.empty_figure("No studies on this dataset.", "Trials per hour")
        return guard(
            lambda: figures.throughput_figure(data.throughput(engine_series(names, fp))),
            "Trials per hour",
        )

    @app.callback(
        Output("g-en-dist", "figure"),
        Input("fp", "data"),
        Input("en-studies", "value"),
        State("page-args", "data"),
    )
    def g_en_dist(fp, names, args):
        names = _engines(args, names)
        title = "Distribution of validation accuracy"
        if not names:
            return figures.empty_figure("No studies on this dataset.", title)
        return guard(
            lambda: figures.distribution_figure(data.value_distribution(engine_series(names, fp))),
            title,
        )

    return app


_FORMATS = {"value": ".4f", "duration_s": ".1f", "train_seconds": ".1f", "number": "d"}


def _column(name: str, kind: str) -> dict[str, Any]:
    """A DataTable column: numbers formatted (value to 4 decimals, others to 5 digits)."""
    col: dict[str, Any] = {"name": name, "id": name, "type": kind}
    if kind == "numeric":
        col["format"] = {"specifier": _FORMATS.get(name, ".5~g")}
    return col


def _warm_imports() -> None:
    """Imports what callbacks need before the server's threads run them: plotly looks up
    numpy in ``sys.modules`` without waiting for another thread's import to finish, and
    would see it half-initialized."""
    import numpy  # noqa: F401
    import optuna.distributions  # noqa: F401
    import plotly.io
    import plotly.subplots  # noqa: F401

    plotly.io.to_json(figures.empty_figure("warm-up"), validate=False)


def best_trial_card(best: dict[str, Any] | None) -> html.Div:
    """The best trial's value, test accuracy and config as Dash components (escaped)."""
    if best is None:
        return html.Div([html.H3("Best trial"), html.P("No complete trial yet.")])
    facts = figures.best_trial_facts(best)
    attrs = best.get("user_attrs") or {}
    for key, label in (("images_per_second", "images/s"), ("peak_rss_mb", "peak RSS MB")):
        if attrs.get(key) is not None:
            facts.append(f"{label} {attrs[key]}")
    config = best.get("config") or {}
    items = [
        html.Div(
            [html.Span(k, style={"color": "#555"}), " ", html.B(_plain(config[k]))],
            style={"padding": "2px 0", "borderBottom": "1px solid #eee"},
        )
        for k in best.get("param_names") or sorted(config)
    ]
    return html.Div(
        [
            html.H3(f"Best trial #{best['number']}", id="best-title", style={"margin": "4px 0"}),
            html.P(" · ".join(facts), id="best-facts"),
            html.Details(
                [
                    html.Summary("config"),
                    html.Div(
                        items,
                        id="best-config",
                        style={
                            "display": "grid",
                            "columnGap": "24px",
                            "gridTemplateColumns": "repeat(auto-fill, minmax(230px, 1fr))",
                        },
                    ),
                ],
                open=True,
            ),
        ]
    )


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
