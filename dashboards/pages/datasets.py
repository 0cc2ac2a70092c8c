"""``/compare/datasets``: a study on ImageNet32 against one on CIFAR-10 (best so far over
search time, importances, categorical effects, the same configs ranked on both)."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, dcc, html

from hpo32.dashboards import data, figures
from hpo32.dashboards.pages.common import (
    PageCallbacks,
    PageContext,
    card,
    error,
    graph,
    loading_graph,
    page_stores,
)
from hpo32.dashboards.views.compare import (
    dataset_options,
    dataset_pair,
    missing_side_note,
    same_space,
)

callbacks = PageCallbacks("datasets")

_PAIR = (Input("fp", "data"), Input("ds-inet", "value"), Input("ds-cifar", "value"))


def layout(ctx: PageContext) -> list[Any]:
    fp = data.fingerprint(ctx.engine)
    studies = data.list_studies(ctx.engine)
    inet_default, cifar_default = data.default_dataset_pair(studies)
    return [
        html.H2("Compare datasets: ImageNet32 and CIFAR-10"),
        *page_stores({"page": "datasets"}, fp),
        html.Div(
            [
                _pick(
                    "ImageNet32 study",
                    "ds-inet",
                    dataset_options(studies, "imagenet32"),
                    inet_default,
                ),
                _pick(
                    "CIFAR-10 study", "ds-cifar", dataset_options(studies, "cifar10"), cifar_default
                ),
            ],
            className="hpo32-row",
        ),
        html.Div(id="ds-note"),
        graph("g-ds-best"),
        card(
            [
                html.Button("Compute parameter importances", id="btn-ds-importance", n_clicks=0),
                loading_graph(
                    "g-ds-importance",
                    figures.empty_figure(
                        "Press the button to compute importances.", "Parameter importances"
                    ),
                ),
            ]
        ),
        graph("g-ds-effects"),
        graph("g-ds-rank"),
        card(None, id="ds-warm"),
    ]


def _pick(label: str, pid: str, options: list[dict[str, Any]], value: str | None) -> html.Div:
    return html.Div(
        [html.Label(label), dcc.Dropdown(id=pid, options=options, value=value, clearable=False)],
        className="hpo32-pick",
    )


@callbacks.on(Output("ds-note", "children"), *_PAIR)
def ds_note(ctx: PageContext, fp: str | None, inet: str | None, cifar: str | None) -> Any:
    pair = dataset_pair(inet, cifar)
    if len(pair) < 2:
        return error(missing_side_note(pair, inet))
    if not same_space(ctx.studies(fp), [n for n, _ in pair]):
        return html.P(
            "Note: these studies do not record the same search space; shared "
            "configs are still compared where they exist.",
            className="hpo32-warn",
        )
    return html.P("Both studies search the same space.", className="hpo32-ok")


@callbacks.on(Output("g-ds-best", "figure"), *_PAIR)
def g_ds_best(ctx: PageContext, fp: str | None, inet: str | None, cifar: str | None) -> Any:
    pair = dataset_pair(inet, cifar)
    title = "Best so far against search time"

    def make() -> Any:
        if not pair:
            return figures.empty_figure("No ImageNet32 or CIFAR-10 study yet.", title)
        series = ctx.over_time([n for n, _ in pair], fp)
        labels = [f"{label}: {n}" for n, label in pair]
        return figures.best_over_time_figure(series, title, labels=labels)

    return ctx.guard(make, title)


@callbacks.on(
    Output("g-ds-importance", "figure"),
    Input("btn-ds-importance", "n_clicks"),
    State("ds-inet", "value"),
    State("ds-cifar", "value"),
    prevent_initial_call=True,
)
def g_ds_importance(
    ctx: PageContext, _clicks: int | None, inet: str | None, cifar: str | None
) -> Any:
    pair = dataset_pair(inet, cifar)
    return ctx.guard(
        lambda: figures.importance_figure(
            [(f"{label}: {n}", ctx.importance_of(n)) for n, label in pair]
        ),
        "Parameter importances",
    )


@callbacks.on(Output("g-ds-effects", "figure"), *_PAIR)
def g_ds_effects(ctx: PageContext, fp: str | None, inet: str | None, cifar: str | None) -> Any:
    pair = dataset_pair(inet, cifar)

    def effects(n: str) -> Any:
        return ctx.cached("effects", n, fp, lambda: data.categorical_effects(ctx.engine, n))

    return ctx.guard(
        lambda: figures.categorical_effects_figure(
            [(f"{label}: {n}", effects(n)) for n, label in pair]
        ),
        "Effect of each categorical choice",
    )


@callbacks.on(Output("g-ds-rank", "figure"), *_PAIR)
def g_ds_rank(ctx: PageContext, fp: str | None, inet: str | None, cifar: str | None) -> Any:
    pair = dataset_pair(inet, cifar)
    title = "Same configs on both datasets"
    if len(pair) < 2 or inet is None or cifar is None:
        return figures.empty_figure("Pick a study on each dataset.", title)
    return ctx.guard(
        lambda: figures.rank_correlation_figure(
            ctx.cached(
                "rank", (inet, cifar), fp, lambda: data.rank_correlation(ctx.engine, inet, cifar)
            ),
            f"ImageNet32: {inet}",
            f"CIFAR-10: {cifar}",
        ),
        title,
    )


_WARM_HEADINGS = ("config from", "its rank there", "carried to", "its rank there")


@callbacks.on(Output("ds-warm", "children"), *_PAIR)
def ds_warm(ctx: PageContext, fp: str | None, inet: str | None, cifar: str | None) -> Any:
    title = html.H3("Warm-started configs: their rank on both datasets")
    if len(dataset_pair(inet, cifar)) < 2 or inet is None or cifar is None:
        return [title, html.P("Pick a study on each dataset.")]
    try:
        rows = ctx.cached(
            "warm", (inet, cifar), fp, lambda: data.warm_start_ranks(ctx.engine, inet, cifar)
        )
    except Exception as exc:
        return [title, error(f"Cannot read the database: {exc}")]
    if not rows:
        return [
            title,
            html.P(
                "Neither study started from the other's configs; to try one study's best "
                "first, make the other with warm_start: [{study: NAME, top: K}]."
            ),
        ]
    return [
        title,
        html.Table(
            [
                html.Thead(html.Tr([html.Th(h) for h in _WARM_HEADINGS])),
                html.Tbody([_warm_row(r) for r in rows]),
            ],
            id="ds-warm-table",
        ),
    ]


def _warm_row(r: dict[str, Any]) -> html.Tr:
    def rank(value: float | None, rank: int | None, of: int) -> str:
        return "not complete" if value is None else f"{rank} of {of} ({value:.4f})"

    return html.Tr(
        [
            html.Td(f"{r['source']} #{r['source_trial']}"),
            html.Td(rank(r["source_value"], r["source_rank"], r["source_trials"])),
            html.Td(f"{r['target']} #{r['target_trial']}"),
            html.Td(rank(r["target_value"], r["target_rank"], r["target_trials"])),
        ]
    )


register = callbacks.register
