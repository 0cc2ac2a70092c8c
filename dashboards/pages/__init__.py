"""The dashboard's pages, one module each, each registering its own callbacks:

* :mod:`~hpo32.dashboards.pages.studies`: ``/``, every study.
* :mod:`~hpo32.dashboards.pages.study`: ``/study/<name>``, one study and its tabs.
* :mod:`~hpo32.dashboards.pages.trial`: ``/study/<name>/trial/<number>``, one trial.
* :mod:`~hpo32.dashboards.pages.datasets`: ``/compare/datasets``, ImageNet32 against CIFAR-10.
* :mod:`~hpo32.dashboards.pages.engines`: ``/compare/engines``, the engines on one dataset.
* :mod:`~hpo32.dashboards.pages.missing`: an unknown path or study, or the database failing.
* :mod:`~hpo32.dashboards.pages.common`: the context, the one page check, shared components.

This module routes a path to its page and refreshes the open page's data fingerprint.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from dash import Input, Output, State
from dash.exceptions import PreventUpdate

from hpo32.dashboards import data
from hpo32.dashboards.pages import datasets, engines, missing, studies, study, trial
from hpo32.dashboards.pages.common import PageCallbacks, PageContext, log
from hpo32.dashboards.views.trial import parse_trial_path

__all__ = ["PageContext", "register", "render"]

callbacks = PageCallbacks(None)


def render(ctx: PageContext, pathname: str | None, search: str | None) -> list[Any]:
    """The page at ``pathname`` (``search``: the query string, ``?tab=...`` on a study)."""
    path = pathname or "/"
    query = urllib.parse.parse_qs((search or "").lstrip("?"))
    try:
        if path in ("/", ""):
            return studies.layout(ctx)
        if path.startswith("/study/") and parse_trial_path(path[len("/study/") :]):
            name, number = parse_trial_path(path[len("/study/") :]) or ("", 0)
            try:
                return trial.layout(ctx, name, number)
            except trial.UnknownTrial as exc:
                return missing.unknown_trial(exc, name)
        if path.startswith("/study/"):
            name = urllib.parse.unquote(path[len("/study/") :])
            return study.layout(ctx, name, (query.get("tab") or ["overview"])[0])
        if path.rstrip("/") == "/compare/datasets":
            return datasets.layout(ctx)
        if path.rstrip("/") == "/compare/engines":
            return engines.layout(ctx)
    except data.UnknownStudy as exc:
        return missing.unknown_study(exc)
    except Exception as exc:
        log.exception("page %s failed", path)
        return missing.failed(exc)
    return missing.not_found(path)


@callbacks.on(Output("page", "children"), Input("url", "pathname"), State("url", "search"))
def route(ctx: PageContext, pathname: str | None, search: str | None) -> list[Any]:
    return render(ctx, pathname, search)


@callbacks.on(
    Output("fp", "data"),
    Input("tick", "n_intervals"),
    State("page-args", "data"),
    State("fp", "data"),
    prevent_initial_call=True,
)
def refresh(ctx: PageContext, _n: int, args: dict[str, Any] | None, old: str | None) -> str:
    """The open page's new fingerprint; no update when nothing changed (or no page is open)."""
    if not args or args.get("page") == "none":
        raise PreventUpdate
    names = [args["name"]] if args.get("page") in ("study", "trial") else None
    try:
        new = data.fingerprint(ctx.engine, names)
    except Exception:  # the next tick tries again
        raise PreventUpdate from None
    if new == old:
        raise PreventUpdate
    return new


def register(ctx: PageContext) -> None:
    """Registers the routing, the refresh and every page's callbacks on ``ctx.app``."""
    callbacks.register(ctx)
    for page in (studies, study, trial, datasets, engines):
        page.register(ctx)
