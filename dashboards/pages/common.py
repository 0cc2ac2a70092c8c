"""What every page shares: the context its callbacks run in, the one page check, and the
small components (cards, graphs, error boxes, the page's stores).

Each page's layout holds two stores: ``page-args`` (which page is shown, and for a study its
name) and ``fp`` (the data fingerprint, updated by the refresh tick). A callback registered
through :class:`PageCallbacks` for a page gets ``page-args`` as its last state and runs only
while that page is shown; that check is written here once, in :meth:`PageCallbacks.register`.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

import dash
from dash import State, dcc, html
from dash.exceptions import PreventUpdate

from hpo32.dashboards import data, figures

log = logging.getLogger("hpo32.dashboards.app")

GRAPH_CONFIG: dcc.Graph.Config = {"displaylogo": False, "responsive": True}
PAGE_SIZE = 25


@dataclass
class PageContext:
    """The app, the read-only engine and the figure cache the callbacks share."""

    app: dash.Dash
    engine: Any
    cache: data.Cache = field(default_factory=lambda: data.Cache(size=96))

    def cached(self, what: str, key: Any, fp: str | None, compute: Callable[[], Any]) -> Any:
        """``compute()``, cached by (what, key, fingerprint)."""
        return self.cache.get((what, key, fp), compute)

    def guard(self, make_figure: Callable[[], Any], title: str = "") -> Any:
        """A figure, or a blank one naming the error (never a broken page)."""
        try:
            return make_figure()
        except data.UnknownStudy as exc:
            return figures.empty_figure(str(exc), title)
        except Exception as exc:  # a database hiccup must not kill the page
            log.exception("figure %s failed", title)
            return figures.empty_figure(f"Cannot read the database: {exc}", title)

    def studies(self, fp: str | None) -> list[dict[str, Any]]:
        """:func:`hpo32.dashboards.data.list_studies`, cached by fingerprint."""
        return self.cached("studies", None, fp, lambda: data.list_studies(self.engine))

    def over_time(self, names: list[str], fp: str | None) -> list[dict[str, Any]]:
        """:func:`hpo32.dashboards.data.best_over_time` of ``names``, cached by fingerprint."""
        return self.cached(
            "over-time", tuple(names), fp, lambda: data.best_over_time(self.engine, names)
        )

    def chance_of(self, names: list[str], fp: str | None) -> float | None:
        """The accuracy of guessing shared by the studies ``names`` (None when unknown or
        when they differ), cached by fingerprint."""
        levels = {
            self.cached("chance", n, fp, functools.partial(data.chance, self.engine, n))
            for n in names
        }
        return levels.pop() if len(levels) == 1 else None

    def importance_of(self, name: str) -> dict[str, Any]:
        """A study's importances, cached until its set of complete trials changes."""
        key = data.completed_key(self.engine, name)
        return self.cache.get(
            ("importance", name, key), lambda: data.importances(self.engine, name)
        )


Callback = Callable[..., Any]


class PageCallbacks:
    """The callbacks of one page, declared next to their functions and registered together.

    Args:
        page: the ``page-args`` page they belong to; None for callbacks that run anywhere
            (they get no ``page-args``).
        extra: what of ``page-args`` the callbacks get as their last arguments (the study's
            name on a study's page); by default nothing.
    """

    def __init__(
        self, page: str | None, extra: Callable[[dict[str, Any]], tuple[Any, ...]] | None = None
    ) -> None:
        self.page = page
        self.extra = extra or (lambda args: ())
        self._declared: list[tuple[tuple[Any, ...], dict[str, Any], Callback, bool]] = []

    def on(self, *deps: Any, checked: bool = True, **kwargs: Any) -> Callable[[Callback], Callback]:
        """Declares ``fn(ctx, *values)`` as a callback over ``deps``; ``checked=False``: it
        runs whatever page is shown (no ``page-args``). Returns ``fn`` unchanged."""

        def declare(fn: Callback) -> Callback:
            self._declared.append((deps, kwargs, fn, checked and self.page is not None))
            return fn

        return declare

    def register(self, ctx: PageContext) -> None:
        """Registers every declared callback on ``ctx.app``, each bound to ``ctx``."""
        for deps, kwargs, fn, checked in self._declared:
            if checked:
                ctx.app.callback(*deps, State("page-args", "data"), **kwargs)(
                    self._on_page(ctx, fn)
                )
            else:
                ctx.app.callback(*deps, **kwargs)(functools.wraps(fn)(functools.partial(fn, ctx)))

    def _on_page(self, ctx: PageContext, fn: Callback) -> Callback:
        """``fn`` run only while this page is shown: the page check, written once."""

        @functools.wraps(fn)
        def run(*values: Any) -> Any:
            *rest, args = values
            if not args or args.get("page") != self.page:
                raise PreventUpdate
            return fn(ctx, *rest, *self.extra(args))

        return run


# -- components ---------------------------------------------------------------------------------
def error(text: str) -> html.Div:
    """A red box with one sentence."""
    return html.Div(text, className="hpo32-error")


def page_stores(args: dict[str, Any], fp: str) -> list[Any]:
    """The stores every page holds: which page it is, and the data fingerprint."""
    return [dcc.Store(id="page-args", data=args), dcc.Store(id="fp", data=fp)]


def loading_graph(gid: str, figure: Any = None) -> dcc.Loading:
    """A graph (with a spinner while it computes) showing ``figure`` or "Loading..."."""
    return dcc.Loading(
        dcc.Graph(
            id=gid,
            config=GRAPH_CONFIG,
            figure=figure if figure is not None else figures.empty_figure("Loading..."),
        )
    )


def card(children: Any, class_name: str = "", **kwargs: Any) -> html.Div:
    """A white box."""
    return html.Div(children, className=f"hpo32-card {class_name}".strip(), **kwargs)


def graph(gid: str, class_name: str = "") -> html.Div:
    """A graph in its own box."""
    return card(loading_graph(gid), class_name)
