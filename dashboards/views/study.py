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


def column(name: str, kind: str) -> dict[str, Any]:
    """A DataTable column: numbers formatted (value to 4 decimals, others to 5 digits)."""
    col: dict[str, Any] = {"name": name, "id": name, "type": kind}
    if kind == "numeric":
        col["format"] = {"specifier": _FORMATS.get(name, ".5~g")}
    return col


def table_columns(table: dict[str, Any]) -> list[dict[str, Any]]:
    """The columns of one :func:`hpo32.dashboards.data.trial_table`; the trial number is a
    link to the trial's page (its cells: :func:`linked_rows`)."""
    cols = [column(c, table["types"][c]) for c in table["columns"]]
    for col in cols:
        if col["id"] == "number":
            col.update(type="text", presentation="markdown")
            col.pop("format", None)
    return cols


#: The trial table's columns that stay in view while the others scroll.
FROZEN_COLUMNS = ("number", "state", "value")


def frozen_count(table: dict[str, Any]) -> int:
    """How many leading columns of the table are frozen (:data:`FROZEN_COLUMNS`)."""
    n = 0
    for col in table["columns"]:
        if col not in FROZEN_COLUMNS:
            break
        n += 1
    return n


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
        f"{matching:,} of {total:,} trials match; type in the row "
        "under the headers to filter (e.g. > 0.5, adam), click a header to sort."
    )
