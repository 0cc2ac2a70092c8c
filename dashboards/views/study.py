"""One study's page: its header line, its best trial and its trial table's columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hpo32.dashboards import data, figures
from hpo32.dashboards.views.studies import budget_used

TABS = ("overview", "params", "timeline", "trials")

_FORMATS = {"value": ".4f", "duration_s": ".1f", "train_seconds": ".1f", "number": "d"}


def tab_or_default(tab: str) -> str:
    """``tab`` if the page has it, else the overview."""
    return tab if tab in TABS else "overview"


@dataclass(frozen=True)
class StudyHeader:
    """The line under a study's name: running or stopped, then its facts."""

    running: bool
    summary: str

    @property
    def status(self) -> str:
        return "running" if self.running else "stopped"


def study_header(info: dict[str, Any]) -> StudyHeader:
    """The header of one :func:`hpo32.dashboards.data.study_info` record."""
    s = info["states"]
    parts = [
        f"dataset {info['dataset'] or 'unknown'}",
        f"engine {info['engine'] or 'unknown'}",
        f"backend {info.get('backend') or 'unknown'}",
        f"{info['n_trials']} trials"
        + "".join(f", {s[k]} {k.lower()}" for k in data.STATES if s.get(k)),
        f"best {figures.fmt_value(info['best_value'])}",
        f"search time {budget_used(info['used_seconds'], info['budget_seconds'], percent=False)}",
        f"last activity {figures.fmt_time(info['last_activity'])}",
    ]
    return StudyHeader(running=bool(info["running"]), summary=" · ".join(parts))


@dataclass(frozen=True)
class BestTrial:
    """The best trial as shown: its number, its facts in one line, its config's values."""

    number: int
    facts: str
    config: tuple[tuple[str, str], ...]


def best_trial(best: dict[str, Any] | None) -> BestTrial | None:
    """The view of one :func:`hpo32.dashboards.data.best_trial` record (None: none yet)."""
    if best is None:
        return None
    facts = figures.best_trial_facts(best)
    attrs = best.get("user_attrs") or {}
    for key, label in (("images_per_second", "images/s"), ("peak_rss_mb", "peak RSS MB")):
        if attrs.get(key) is not None:
            facts.append(f"{label} {attrs[key]}")
    config = best.get("config") or {}
    return BestTrial(
        number=best["number"],
        facts=" · ".join(facts),
        config=tuple((k, plain(config[k])) for k in best.get("param_names") or sorted(config)),
    )


def plain(value: Any) -> str:
    """A config value as text (floats to 4 significant digits)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


#: The trial table's columns that stay in view while the others scroll (pinned left).
FROZEN_COLUMNS = ("number", "state", "value")


def column(name: str, kind: str) -> dict[str, Any]:
    """An AG Grid column definition: numbers filtered as numbers and shown formatted (value to
    4 decimals, others to 5 significant digits; d3-format, which dash-ag-grid provides), text
    filtered as text; :data:`FROZEN_COLUMNS` pinned left."""
    col: dict[str, Any] = {"field": name, "headerName": name}
    if kind == "numeric":
        spec = _FORMATS.get(name, ".5~g")
        col["filter"] = "agNumberColumnFilter"
        col["valueFormatter"] = {
            # dash-ag-grid evaluates this with its own small interpreter: a number is a value
            # equal to its unary plus; text ('inf') and empty cells are shown as they are
            "function": f"params.value === +params.value ? d3.format('{spec}')(params.value)"
            " : params.value"
        }
    else:
        col["filter"] = "agTextColumnFilter"
    if name in FROZEN_COLUMNS:
        col["pinned"] = "left"
    return col


def table_columns(table: dict[str, Any]) -> list[dict[str, Any]]:
    """The column definitions of one :func:`hpo32.dashboards.data.trial_table`: the trial
    number is a link to the trial's page (its cells: :func:`linked_rows`), the state in its
    colour."""
    cols = [column(c, table["types"][c]) for c in table["columns"]]
    for col in cols:
        if col["field"] == "number":
            col.pop("valueFormatter", None)
            col["cellRenderer"] = "markdown"
        elif col["field"] == "state":
            col["cellStyle"] = {
                "styleConditions": [
                    {"condition": f"params.value === '{state}'", "style": {"color": color}}
                    for state, color in figures.STATE_COLORS.items()
                ]
            }
    return cols


def linked_rows(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """One page of the table's rows with each trial number a markdown link to its page."""
    from hpo32.dashboards.views.trial import trial_path

    out = []
    for r in rows:
        r = dict(r)
        if isinstance(r.get("number"), int):
            r["number"] = f"[{r['number']}]({trial_path(name, r['number'])})"
        out.append(r)
    return out


def table_count(matching: int, total: int) -> str:
    """The line above the trial table."""
    return (
        f"{matching:,} of {total:,} trials match; type in the row under the headers to filter "
        "(a column's menu picks the comparison: > 0.5, contains adam), click a header to sort."
    )
