"""Dashboards: figures from the stored records, the web app and the static HTML report.

* :mod:`hpo32.dashboards.data`: SQL over the one database -> plain dicts (pure, cacheable).
* :mod:`hpo32.dashboards.figures`: those dicts -> plotly figures.
* :mod:`hpo32.dashboards.views`: those dicts -> the typed records a page shows (pure).
* :mod:`hpo32.dashboards.app`: ``create_app(engine)``, the Dash app (read-only, live refresh),
  its pages one module each in :mod:`hpo32.dashboards.pages`, its CSS in ``assets/``.
* :mod:`hpo32.dashboards.report`: ``write_report(url, names, out)``, one offline HTML file.
* :mod:`hpo32.dashboards.cli`: the ``hpo32 dashboard`` and ``hpo32 report`` subcommands.

Importing this package imports nothing heavy; dash, plotly and optuna load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "write_report"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from hpo32.dashboards.app import create_app

        return create_app
    if name == "write_report":
        from hpo32.dashboards.report import write_report

        return write_report
    raise AttributeError(f"module 'dashboards' has no attribute '{name}'")
