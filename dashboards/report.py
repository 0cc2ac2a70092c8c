"""``hpo32 report``: the dashboard's figures for some studies in one self-contained HTML file.

plotly.js is inlined once, so the file opens offline. Every text from the database is
escaped with :func:`html.escape`; figures are serialized by plotly, which escapes ``<`` in
its JSON, so nothing a study is named can run in the page.
"""

from __future__ import annotations

import html
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from hpo32.dashboards import data, figures
from hpo32.durations import format_duration
from hpo32.storage import make_engine
from hpo32.storage.db import redact_url
from hpo32.storage.output import OutputError, check_output, write_output

if TYPE_CHECKING:
    import sqlalchemy as sa  # the engine storage opens (types only)

__all__ = ["ReportError", "build_report", "write_report"]


class ReportError(ValueError):
    """A report cannot be written (unknown study, bad output path); one sentence with the fix."""


# the stylesheet, kept with the app's in assets/ (the app leaves it out)
_CSS = "\n" + (Path(__file__).resolve().parent / "assets" / "report.css").read_text("utf-8")

_TOP_ROWS = 50


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


class _Html:
    """Collects the page; the first figure carries plotly.js, the others reference it;
    sections and their headings are listed for the table of contents."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._figures = 0
        self.toc: list[tuple[int, str, str]] = []  # (level, anchor, heading text)

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def section(self, heading: str) -> None:
        """Opens a ``<section>`` with an ``<h2>`` the table of contents links to."""
        anchor = f"s{len(self.toc) + 1}"
        self.toc.append((2, anchor, heading))
        self.parts.append(f"<section id='{anchor}'><h2>{_e(heading)}</h2>")

    def heading(self, heading: str) -> None:
        """An ``<h3>`` inside the open section, listed under it in the contents."""
        anchor = f"s{len(self.toc) + 1}"
        self.toc.append((3, anchor, heading))
        self.parts.append(f"<h3 id='{anchor}'>{_e(heading)}</h3>")

    def contents(self) -> str:
        """The table of contents: a nested list of links to every section and heading."""
        out = ["<nav id='toc'><b>Contents</b><ul>"]
        open_sub = False
        for level, anchor, text in self.toc:
            if level == 2 and open_sub:
                out.append("</ul></li>")
                open_sub = False
            if level == 3 and not open_sub:
                if out[-1].endswith("</li>"):
                    out[-1] = out[-1][: -len("</li>")]
                out.append("<ul>")
                open_sub = True
            out.append(f"<li><a href='#{anchor}'>{_e(text)}</a></li>")
        if open_sub:
            out.append("</ul></li>")
        out.append("</ul></nav>")
        return "".join(out)

    def figure(self, fig: dict[str, Any]) -> None:
        import plotly.io as pio

        self._figures += 1
        self.parts.append(
            pio.to_html(
                fig,
                full_html=False,
                include_plotlyjs=self._figures == 1,
                validate=False,
                div_id=f"figure-{self._figures}",
                config={"displaylogo": False, "responsive": True},
            )
        )


def _summary_table(rows: Sequence[dict[str, Any]]) -> str:
    head = (
        "Study",
        "Dataset",
        "Engine",
        "Backend",
        "Complete",
        "Pruned",
        "Failed",
        "Running",
        "Best val. accuracy",
        "Search time",
        "Last activity",
    )
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for r in rows:
        s = r["states"]
        budget = format_duration(r["used_seconds"])
        if r["budget_seconds"]:
            budget += f" of {format_duration(r['budget_seconds'])}"
        cells = (
            r["name"],
            r["dataset"] or "unknown",
            r["engine"] or "unknown",
            r.get("backend") or "unknown",
            s.get("COMPLETE", 0),
            s.get("PRUNED", 0),
            s.get("FAIL", 0),
            s.get("RUNNING", 0),
            figures.fmt_value(r["best_value"]),
            budget,
            figures.fmt_time(r["last_activity"]),
        )
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _best_html(best: dict[str, Any] | None) -> str:
    if best is None:
        return "<h3>Best trial</h3><p class='muted'>No complete trial yet.</p>"
    facts = figures.best_trial_facts(best)
    config = best.get("config") or {}
    items = "".join(
        f"<div><span class='muted'>{_e(k)}</span> <b>{_e(_plain(config[k]))}</b></div>"
        for k in best.get("param_names") or sorted(config)
    )
    return (
        f"<h3>Best trial #{_e(best['number'])}</h3><p>{_e(' · '.join(facts))}</p>"
        f"<div class='config'>{items}</div>"
    )


def _plain(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _top_trials_html(table: dict[str, Any]) -> str:
    rows, matching = data.grid_rows(
        table["rows"],
        0,
        _TOP_ROWS,
        [{"colId": "value", "sort": "desc"}],
        {"state": {"filterType": "text", "type": "equals", "filter": "COMPLETE"}},
    )
    if not rows:
        return "<p class='muted'>No complete trials.</p>"
    cols = [c for c in table["columns"] if c not in ("state", "started", "fail_reason")]
    out = [
        f"<p class='muted'>The {len(rows)} best of {matching} complete trials.</p>",
        "<div style='overflow-x:auto'><table><thead><tr>",
        *(f"<th>{_e(c)}</th>" for c in cols),
        "</tr></thead><tbody>",
    ]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append("" if v is None else f"{v:.4f}" if c == "value" else _plain(v))
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def build_report(engine: sa.Engine, names: Sequence[str], source: str = "") -> str:
    """The report's HTML for studies ``names`` over a read-only ``engine``.

    Raises:
        ReportError: a name is not a study of the database.
    """
    studies = {s["name"]: s for s in data.list_studies(engine)}
    missing = [n for n in names if n not in studies]
    if missing:
        raise ReportError(
            f"no study named {', '.join(repr(m) for m in missing)} in "
            f"{source or 'the database'}; see 'hpo32 list'."
        )
    names = list(dict.fromkeys(names))
    page = _Html()
    title = "hpo32 report: " + ", ".join(names)
    page.add(f"<header><b>hpo32 report</b> · {_e(', '.join(names))}</header><main>")
    page.add(
        f"<p class='muted'>Generated {_e(time.strftime('%Y-%m-%d %H:%M:%S'))} from "
        f"{_e(redact_url(source))}.</p>"
    )
    page.section("Studies")
    page.add(_summary_table([studies[n] for n in names]) + "</section>")
    imps: dict[str, dict[str, Any]] = {}
    for name in names:
        imps[name] = _study_section(page, engine, name)
    _dataset_section(page, engine, [studies[n] for n in names], imps)
    _engine_sections(page, engine, [studies[n] for n in names])
    page.add("</main>")
    head, body = page.parts[:2], page.parts[2:]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        + "".join(head)
        + page.contents()
        + "".join(body)
        + "</body></html>"
    )


def _study_section(page: _Html, engine: sa.Engine, name: str) -> dict[str, Any]:
    """One study's section: best trial, history, curves, parameters, best trials; returns
    its importances (the dataset comparison shows them again)."""
    chance = data.chance(engine, name)
    page.section(name)
    page.add(_best_html(data.best_trial(engine, name)))
    page.heading("Optimization history")
    hist = data.history(engine, name)
    page.figure(figures.history_figure(hist, "number", chance=chance))
    page.figure(figures.history_figure(hist, "time", chance=chance))
    page.heading("Learning curves")
    page.figure(figures.learning_curves_figure(data.learning_curves(engine, name), chance=chance))
    page.heading("Parameters")
    samples = data.param_samples(engine, name, cap=1000)
    page.figure(figures.parallel_figure(samples))
    imps = data.importances(engine, name)
    page.figure(figures.importance_figure([(name, imps)]))
    if len(samples["trials"]) > 300:
        idx = data.even_sample(samples["trials"], 300)
        samples = {
            **samples,
            "trials": [samples["trials"][i] for i in idx],
            "note": f"300 of {samples['n_complete']:,} complete trials (evenly spaced)",
        }
    page.figure(figures.slices_figure(samples, chance=chance))
    page.heading("Best trials")
    page.add(_top_trials_html(data.trial_table(engine, name)))
    page.add("</section>")
    return imps


def _dataset_section(
    page: _Html, engine: sa.Engine, rows: list[dict[str, Any]], imps: dict[str, dict[str, Any]]
) -> None:
    inet, cifar = data.default_dataset_pair(rows)
    if not inet or not cifar:
        return
    pair = [(inet, "ImageNet32"), (cifar, "CIFAR-10")]
    labels = [f"{label}: {n}" for n, label in pair]
    page.section("ImageNet32 and CIFAR-10")
    page.figure(
        figures.best_over_time_figure(data.best_over_time(engine, [inet, cifar]), labels=labels)
    )
    page.figure(
        figures.importance_figure(
            [(lab, imps[n]) for (n, _), lab in zip(pair, labels, strict=True)]
        )
    )
    page.figure(
        figures.categorical_effects_figure(
            [
                (lab, data.categorical_effects(engine, n))
                for (n, _), lab in zip(pair, labels, strict=True)
            ]
        )
    )
    page.figure(
        figures.rank_correlation_figure(
            data.rank_correlation(engine, inet, cifar), labels[0], labels[1]
        )
    )
    page.add("</section>")


def _engine_sections(page: _Html, engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    by_dataset: dict[str, list[str]] = {}
    for r in rows:
        if r["dataset"]:
            by_dataset.setdefault(r["dataset"], []).append(r["name"])
    for dataset, names in sorted(by_dataset.items()):
        engines = {data.engine_family(r["engine"]) for r in rows if r["name"] in names}
        if len(names) < 2 or len(engines) < 2:
            continue
        series = data.best_over_time(engine, names)
        page.section(f"Engines on {dataset}")
        levels = {data.chance(engine, n) for n in names}
        chance = levels.pop() if len(levels) == 1 else None
        page.figure(figures.best_over_time_figure(series, by_engine=True, chance=chance))
        page.figure(figures.throughput_figure(data.throughput(series)))
        page.figure(figures.distribution_figure(data.value_distribution(series), chance=chance))
        page.add("</section>")


def write_report(
    url: str, names: Sequence[str], out: str | os.PathLike[str], engine: sa.Engine | None = None
) -> Path | None:
    """Writes the report of studies ``names`` in the database at ``url`` to ``out``
    through :func:`hpo32.storage.output.write_output`: atomically (a reader never sees half
    a file), with the mode a plain ``open`` gives, ``-`` to standard output; ``out`` is
    checked before the database is read.

    Returns:
        The path written, or None for standard output.

    Raises:
        ReportError: unknown study, or ``out`` must not or cannot be written (the database
            itself, a folder, a device, a missing folder).
        StorageError: the database cannot be opened.
    """
    if not names:
        raise ReportError("name at least one study to report; see 'hpo32 list'.")
    try:
        check_output(out, url)
    except OutputError as exc:
        raise ReportError(str(exc)) from None
    engine = engine if engine is not None else make_engine(url, read_only=True)
    text = build_report(engine, names, source=url)
    try:
        return write_output(out, text, url)
    except OutputError as exc:
        raise ReportError(str(exc)) from None
