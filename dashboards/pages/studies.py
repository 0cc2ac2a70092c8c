"""``/``: every study in the database, one row each."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, dcc, html

from hpo32.dashboards import data
from hpo32.dashboards.pages.common import PageCallbacks, PageContext, card, error, page_stores
from hpo32.dashboards.views.studies import HEADINGS, StudyRow, study_row

callbacks = PageCallbacks("studies")


def layout(ctx: PageContext) -> list[Any]:
    fp = data.fingerprint(ctx.engine)
    return (
        [html.H2("Studies")]
        + page_stores({"page": "studies"}, fp)
        + [card(None, id="studies-table")]
    )


@callbacks.on(Output("studies-table", "children"), Input("fp", "data"))
def studies_table(ctx: PageContext, fp: str | None) -> Any:
    try:
        rows = ctx.studies(fp)
    except Exception as exc:
        return error(f"Cannot read the database: {exc}")
    if not rows:
        return html.P("No studies in this database yet; start one with 'hpo32 search'.")
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in HEADINGS])),
            html.Tbody([_row(study_row(r)) for r in rows]),
        ],
        id="studies",
    )


def _row(r: StudyRow) -> html.Tr:
    return html.Tr(
        [
            html.Td(dcc.Link(r.name, href=r.path, className="study-link")),
            html.Td(r.dataset),
            html.Td(r.engine),
            html.Td(r.fidelity),
            html.Td(r.backend),
            html.Td(r.complete),
            html.Td(r.pruned),
            html.Td(r.failed),
            html.Td(r.running_trials),
            html.Td(r.best),
            html.Td(r.budget),
            html.Td(r.last_activity),
            html.Td(r.status, className=f"hpo32-{r.status}"),
        ]
    )


register = callbacks.register
