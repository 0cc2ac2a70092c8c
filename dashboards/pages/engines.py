"""``/compare/engines``: the studies on one dataset side by side (best so far over search
time, trials per hour, the distribution of validation accuracy), by engine."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, dcc, html

from hpo32.dashboards import data, figures
from hpo32.dashboards.pages.common import PageCallbacks, PageContext, graph, page_stores
from hpo32.dashboards.views.compare import engine_datasets, engine_studies

callbacks = PageCallbacks("engines")

_STUDIES = (Input("fp", "data"), Input("en-studies", "value"))
_NONE = "No studies on this dataset."


def layout(ctx: PageContext) -> list[Any]:
    fp = data.fingerprint(ctx.engine)
    datasets, default = engine_datasets(data.list_studies(ctx.engine))
    return [
        html.H2("Compare engines on one dataset"),
        *page_stores({"page": "engines"}, fp),
        html.Div(
            [
                html.Div(
                    [
                        html.Label("Dataset"),
                        dcc.Dropdown(
                            id="en-dataset",
                            value=default,
                            clearable=False,
                            options=[{"label": d, "value": d} for d in datasets],
                        ),
                    ],
                    className="hpo32-pick-narrow",
                ),
                html.Div(
                    [html.Label("Studies"), dcc.Dropdown(id="en-studies", multi=True)],
                    className="hpo32-pick-wide",
                ),
            ],
            className="hpo32-row",
        ),
        graph("g-en-best"),
        html.Div(
            [graph("g-en-throughput", "hpo32-half"), graph("g-en-dist", "hpo32-half")],
            className="hpo32-row",
        ),
        graph("g-en-edf"),
    ]


@callbacks.on(
    Output("en-studies", "options"),
    Output("en-studies", "value"),
    Input("en-dataset", "value"),
    State("fp", "data"),
    checked=False,
)
def en_studies(ctx: PageContext, dataset: str | None, fp: str | None) -> Any:
    opts = engine_studies(ctx.studies(fp), dataset)
    return opts, [o["value"] for o in opts]


@callbacks.on(Output("g-en-best", "figure"), *_STUDIES)
def g_en_best(ctx: PageContext, fp: str | None, names: list[str] | None) -> Any:
    title = "Best so far against search time"
    if not names:
        return figures.empty_figure(_NONE, title)
    return ctx.guard(
        lambda: figures.best_over_time_figure(
            ctx.over_time(list(names), fp),
            title,
            by_engine=True,
            chance=ctx.chance_of(list(names), fp),
        ),
        title,
    )


@callbacks.on(Output("g-en-throughput", "figure"), *_STUDIES)
def g_en_throughput(ctx: PageContext, fp: str | None, names: list[str] | None) -> Any:
    title = "Trials per hour"
    if not names:
        return figures.empty_figure(_NONE, title)
    return ctx.guard(
        lambda: figures.throughput_figure(data.throughput(ctx.over_time(list(names), fp))),
        title,
    )


@callbacks.on(Output("g-en-dist", "figure"), *_STUDIES)
def g_en_dist(ctx: PageContext, fp: str | None, names: list[str] | None) -> Any:
    title = "Distribution of validation accuracy"
    if not names:
        return figures.empty_figure(_NONE, title)
    return ctx.guard(
        lambda: figures.distribution_figure(
            data.value_distribution(ctx.over_time(list(names), fp)),
            chance=ctx.chance_of(list(names), fp),
        ),
        title,
    )


@callbacks.on(Output("g-en-edf", "figure"), *_STUDIES)
def g_en_edf(ctx: PageContext, fp: str | None, names: list[str] | None) -> Any:
    title = "Empirical distribution of validation accuracy"
    if not names:
        return figures.empty_figure(_NONE, title)
    return ctx.guard(
        lambda: figures.edf_figure(
            [(s["name"], s["value"]) for s in ctx.over_time(list(names), fp)],
            chance=ctx.chance_of(list(names), fp),
        ),
        title,
    )


register = callbacks.register
