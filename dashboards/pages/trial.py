"""``/study/<name>/trial/<number>``: one trial: its facts, config, per-epoch curves,
timings, the model's path, and its config as a ``warm_start`` entry to copy."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, dcc, html

from hpo32.dashboards import data, figures
from hpo32.dashboards.pages.common import (
    GRAPH_CONFIG,
    PageCallbacks,
    PageContext,
    card,
    error,
    page_stores,
)
from hpo32.dashboards.views.studies import study_path
from hpo32.dashboards.views.trial import trial_path, trial_view

callbacks = PageCallbacks("trial", extra=lambda args: (args["name"], args["number"]))


class UnknownTrial(LookupError):
    """The study has no trial of that number."""


def layout(ctx: PageContext, name: str, number: int) -> list[Any]:
    """The page of trial ``number`` of study ``name``.

    Raises:
        UnknownStudy: no study has that name.
        UnknownTrial: the study has no such trial.
    """
    info = data.study_info(ctx.engine, name)  # raises UnknownStudy
    if data.trial_detail(ctx.engine, name, number) is None:
        raise UnknownTrial(f"study '{name}' has no trial #{number}.")
    fp = data.fingerprint(ctx.engine, [name])
    return [
        html.Div(
            [dcc.Link(f"← {info['name']}", href=study_path(info["name"]), id="trial-back")],
            className="hpo32-muted",
        ),
        html.H2(f"Trial #{number}", id="trial-title"),
        *page_stores({"page": "trial", "name": info["name"], "number": number}, fp),
        html.Div(id="trial-body"),
    ]


def _pairs(rows: tuple[tuple[str, str], ...], tid: str) -> html.Table:
    return html.Table(
        html.Tbody([html.Tr([html.Th(k, className="hpo32-label"), html.Td(v)]) for k, v in rows]),
        id=tid,
        className="hpo32-pairs",
    )


@callbacks.on(Output("trial-body", "children"), Input("fp", "data"))
def trial_body(ctx: PageContext, fp: str | None, name: str, number: int) -> Any:
    try:
        detail = ctx.cached(
            "trial", (name, number), fp, lambda: data.trial_detail(ctx.engine, name, number)
        )
        chance = ctx.cached("chance", name, fp, lambda: data.chance(ctx.engine, name))
    except Exception as exc:
        return error(f"Cannot read the trial: {exc}")
    if detail is None:
        return error(f"Study '{name}' has no trial #{number}.")
    shown = trial_view(detail)
    nav = [
        dcc.Link(f"#{n}", href=trial_path(name, n), id=f"trial-{label}")
        for n, label in ((number - 1, "prev"), (number + 1, "next"))
        if n >= 0
    ]
    return [
        html.Div(
            [html.Span(shown.state.lower(), id="trial-state", className="hpo32-label"), *nav],
            className="hpo32-trial-nav",
        ),
        html.Div(
            [
                card([html.H3("Facts"), _pairs(shown.facts, "trial-facts")], "hpo32-half"),
                card(
                    [
                        html.H3("Timings"),
                        _pairs(shown.timings, "trial-timings")
                        if shown.timings
                        else html.P("No timings recorded.", className="hpo32-muted"),
                        html.H3("Model"),
                        html.Code(shown.model_path or "no model saved", id="trial-model"),
                    ],
                    "hpo32-half",
                ),
            ],
            className="hpo32-row",
        ),
        card(
            dcc.Graph(
                id="g-trial-curves",
                config=GRAPH_CONFIG,
                figure=figures.trial_curves_figure(detail, chance),
            )
        ),
        html.Div(
            [
                card([html.H3("Config"), _pairs(shown.config, "trial-config")], "hpo32-half"),
                card(
                    [
                        html.H3(
                            [
                                "Copy as warm_start ",
                                html.Button("copy", id="trial-copy", n_clicks=0),
                                html.Span(id="trial-copied", className="hpo32-muted"),
                            ]
                        ),
                        html.P(
                            "Paste into a study spec: the next study tries this config first.",
                            className="hpo32-muted",
                        ),
                        html.Pre(shown.warm_start, id="trial-warm-start"),
                    ],
                    "hpo32-half",
                ),
            ],
            className="hpo32-row",
        ),
    ]


# the copy button runs in the browser: the clipboard is the reader's, not the server's
_COPY_JS = """
function(n) {
    if (!n) { return window.dash_clientside.no_update; }
    const text = document.getElementById('trial-warm-start').innerText;
    if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text);
        return ' copied';
    }
    const range = document.createRange();
    range.selectNodeContents(document.getElementById('trial-warm-start'));
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    return document.execCommand('copy') ? ' copied' : ' selected: press Ctrl+C';
}
"""


def register(ctx: PageContext) -> None:
    """Registers the page's callbacks and the copy button's browser-side one."""
    callbacks.register(ctx)
    ctx.app.clientside_callback(
        _COPY_JS,
        Output("trial-copied", "children"),
        Input("trial-copy", "n_clicks"),
        prevent_initial_call=True,
    )
