"""One trial's page: its path, its facts, config and timings as shown, and its config as a
``warm_start`` entry to paste into a study spec."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from hpo32.dashboards import figures
from hpo32.dashboards.views.studies import study_path
from hpo32.dashboards.views.study import plain
from hpo32.durations import format_duration

_TIMING_LABELS = {
    "train_seconds": "training",
    "eval_seconds": "evaluation",
    "save_seconds": "saving the model",
    "trial_seconds": "whole trial",
}


def trial_path(name: str, number: int) -> str:
    """The dashboard path of trial ``number`` of study ``name``."""
    return f"{study_path(name)}/trial/{int(number)}"


def parse_trial_path(rest: str) -> tuple[str, int] | None:
    """``(study name, trial number)`` from the part of a path after ``/study/`` when it
    names a trial (``<quoted name>/trial/<number>``), else None."""
    quoted, sep, number = rest.rpartition("/trial/")
    if not sep or not number.isdigit() or "/" in quoted:
        return None
    return urllib.parse.unquote(quoted), int(number)


@dataclass(frozen=True)
class TrialView:
    """A trial as its page shows it, every text formatted."""

    title: str
    state: str
    facts: tuple[tuple[str, str], ...]
    config: tuple[tuple[str, str], ...]
    timings: tuple[tuple[str, str], ...]
    model_path: str | None
    warm_start: str


def warm_start_yaml(config: dict[str, Any]) -> str:
    """The config as a study spec's ``warm_start`` list of one entry (YAML)."""
    import yaml

    return yaml.safe_dump(
        {"warm_start": [dict(config)]}, sort_keys=False, default_flow_style=False, width=100
    )


def _timing(key: str, value: Any) -> tuple[str, str]:
    if key in _TIMING_LABELS and isinstance(value, (int, float)):
        return _TIMING_LABELS[key], f"{format_duration(value)} ({value:.1f} s)"
    if key == "images_per_second" and isinstance(value, (int, float)):
        return "images/s", f"{value:,.1f}"
    if key == "peak_rss_mb" and isinstance(value, (int, float)):
        return "peak RSS", f"{value:,.0f} MB"
    return key.replace("_", " "), plain(value)


def trial_view(detail: dict[str, Any]) -> TrialView:
    """The view of one :func:`hpo32.dashboards.data.trial_detail` record."""
    facts: list[tuple[str, str]] = [
        ("state", detail["state"].lower()),
        ("validation accuracy", figures.fmt_value(detail["value"])),
        ("started", figures.fmt_time(detail["started"])),
        ("finished", figures.fmt_time(detail["completed"])),
        ("took", format_duration(detail["duration_seconds"])),
    ]
    for key, label in (
        ("worker", "worker"),
        ("stopped_by", "stopped by"),
        ("fail_reason", "failed because"),
    ):
        if detail.get(key):
            facts.append((label, str(detail[key])))
    for key in ("engine", "dataset", "epochs"):
        if detail["attrs"].get(key) is not None:
            facts.append((key, plain(detail["attrs"][key])))
    config = detail["config"] or {}
    return TrialView(
        title=f"Trial #{detail['number']} of {detail['name']}",
        state=detail["state"],
        facts=tuple(facts),
        config=tuple((k, plain(v)) for k, v in config.items()),
        timings=tuple(_timing(k, v) for k, v in detail["timings"].items()),
        model_path=str(detail["model_path"]) if detail.get("model_path") else None,
        warm_start=warm_start_yaml(config),
    )
