"""What a path shows when it has no page: an unknown path, an unknown study, or the
database failing while a page was built."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from hpo32.dashboards.pages.common import error, page_stores

_NONE = {"page": "none"}  # no callback of any page runs, nor the refresh


def not_found(path: str) -> list[Any]:
    return [
        html.H2("Page not found"),
        html.P(f"No page at {path}."),
        dcc.Link("All studies", href="/"),
    ] + page_stores(_NONE, "")


def unknown_study(exc: Exception) -> list[Any]:
    return [
        html.H2("Study not found"),
        error(str(exc)),
        dcc.Link("All studies", href="/"),
    ] + page_stores(_NONE, "")


def unknown_trial(exc: Exception, study: str) -> list[Any]:
    from hpo32.dashboards.views.studies import study_path

    return [
        html.H2("Trial not found"),
        error(str(exc)),
        dcc.Link("The study's page", href=study_path(study)),
    ] + page_stores(_NONE, "")


def failed(exc: Exception) -> list[Any]:
    return [error(f"Cannot read the database: {exc}")] + page_stores(_NONE, "")
