"""The web app: ``create_app(engine)`` returns a Dash app over one database, opened read-only.

Pages (paths): ``/`` studies, ``/study/<name>`` one study, ``/compare/datasets`` ImageNet32
against CIFAR-10, ``/compare/engines`` Optuna, KerasTuner and AutoKeras on one dataset; one
module each in :mod:`hpo32.dashboards.pages`, styled by ``assets/app.css``.

Live updates: a ``dcc.Interval`` ticks every few seconds and a cheap fingerprint query
(:func:`hpo32.dashboards.data.fingerprint`) decides whether anything changed; only then do the
figures recompute, each from its own data function, cached by (what, study, fingerprint).
Every callback is a few lines over :mod:`hpo32.dashboards.data`, :mod:`hpo32.dashboards.views`
and :mod:`hpo32.dashboards.figures`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dash
from dash import dcc, html

from hpo32.dashboards import figures, pages
from hpo32.dashboards.data import open_engine
from hpo32.dashboards.views.studies import study_path

__all__ = ["create_app", "study_path"]

ASSETS = Path(__file__).resolve().parent / "assets"
_REPORT_ONLY = r"^report\.css$"  # inlined by the offline report, not the app's


def create_app(storage: Any, refresh_seconds: float = 5.0, engine: Any = None) -> dash.Dash:
    """The dashboard over one database.

    Args:
        storage: an engine opened read-only (:func:`hpo32.dashboards.data.open_engine`), or a
            storage URL, opened read-only here.
        refresh_seconds: how often open pages check the database for new data.
        engine: an engine to use instead of opening ``storage`` (tests).

    Raises:
        StorageError: the database cannot be opened.
    """
    if engine is None:
        engine = open_engine(storage) if isinstance(storage, str) else storage
    _warm_imports()
    app = dash.Dash(
        __name__,
        title="hpo32 dashboard",
        update_title=None,  # type: ignore[arg-type]  # dash annotates str; its docs say None
        suppress_callback_exceptions=True,
        assets_folder=str(ASSETS),
        assets_ignore=_REPORT_ONLY,
    )
    app.layout = _layout(refresh_seconds)
    pages.register(pages.PageContext(app, engine))
    return app


def _layout(refresh_seconds: float) -> html.Div:
    """The frame every page shows in: the location, the bar at the top, the refresh tick."""
    nav = html.Div(
        [
            html.B("hpo32"),
            dcc.Link("Studies", href="/", id="nav-studies"),
            dcc.Link("Compare datasets", href="/compare/datasets", id="nav-datasets"),
            dcc.Link("Compare engines", href="/compare/engines", id="nav-engines"),
        ],
        className="hpo32-nav",
    )
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            nav,
            dcc.Interval(id="tick", interval=int(refresh_seconds * 1000), n_intervals=0),
            html.Div(id="page"),
        ],
        className="hpo32-root",
    )


def _warm_imports() -> None:
    """Imports what callbacks need before the server's threads run them: plotly looks up
    numpy in ``sys.modules`` without waiting for another thread's import to finish, and
    would see it half-initialized."""
    import numpy  # noqa: F401
    import optuna.distributions  # noqa: F401
    import plotly.io
    import plotly.subplots  # noqa: F401

    plotly.io.to_json(figures.empty_figure("warm-up"), validate=False)
