"""The studies list: one :class:`StudyRow` per study, and the path of a study's page."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from hpo32.dashboards import figures
from hpo32.durations import format_duration

HEADINGS = (
    "Study",
    "Dataset",
    "Engine",
    "Fidelity",
    "Backend",
    "Complete",
    "Pruned",
    "Failed",
    "Running",
    "Best val. accuracy",
    "Budget used",
    "Last activity",
    "Status",
)


def study_path(name: str) -> str:
    """The dashboard path of a study (any characters in the name are quoted)."""
    return "/study/" + urllib.parse.quote(name, safe="")


@dataclass(frozen=True)
class StudyRow:
    """One line of the studies list, every cell as shown."""

    name: str
    path: str
    dataset: str
    engine: str
    fidelity: str
    backend: str
    complete: int
    pruned: int
    failed: int
    running_trials: int
    best: str
    budget: str
    last_activity: str
    running: bool

    @property
    def status(self) -> str:
        return "running" if self.running else "stopped"


def budget_used(used: float, budget: float | None, percent: bool = True) -> str:
    """``used`` as a duration, with the budget (and the share used) when there is one."""
    text = format_duration(used)
    if budget:
        text += f" of {format_duration(budget)}"
        if percent:
            text += f" ({100.0 * used / budget:.0f}%)"
    return text


def study_row(r: dict[str, Any]) -> StudyRow:
    """The row of one :func:`hpo32.dashboards.data.list_studies` record."""
    s = r["states"]
    return StudyRow(
        name=r["name"],
        path=study_path(r["name"]),
        dataset=r["dataset"] or "unknown",
        engine=r["engine"] or "unknown",
        fidelity=r.get("fidelity") or "-",
        backend=r.get("backend") or "unknown",
        complete=s.get("COMPLETE", 0),
        pruned=s.get("PRUNED", 0),
        failed=s.get("FAIL", 0),
        running_trials=s.get("RUNNING", 0),
        best=figures.fmt_value(r["best_value"]),
        budget=budget_used(r["used_seconds"], r["budget_seconds"]),
        last_activity=figures.fmt_time(r["last_activity"]),
        running=bool(r["running"]),
    )
