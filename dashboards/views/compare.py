"""The comparison pages' choices: which studies to offer, which to pick first."""

from __future__ import annotations

from typing import Any

from hpo32.dashboards import data

Option = dict[str, Any]


def dataset_options(studies: list[dict[str, Any]], kind: str) -> list[Option]:
    """The studies on datasets of ``kind`` (imagenet32 or cifar10), as dropdown options."""
    return [
        {
            "label": f"{s['name']} ({s['engine'] or 'unknown'}, "
            f"{s.get('backend') or 'unknown'}, {s['states'].get('COMPLETE', 0)} complete)",
            "value": s["name"],
        }
        for s in studies
        if data.dataset_kind(s["dataset"]) == kind
    ]


def dataset_pair(inet: str | None, cifar: str | None) -> list[tuple[str, str]]:
    """The chosen studies with their dataset's label, the sides with no study left out."""
    return [(n, label) for n, label in ((inet, "ImageNet32"), (cifar, "CIFAR-10")) if n]


def missing_side_note(pair: list[tuple[str, str]], inet: str | None) -> str:
    """What the dataset comparison lacks when a side (or both) has no study."""
    if not pair:
        return "No ImageNet32 or CIFAR-10 study in this database yet."
    missing = "ImageNet32" if not inet else "CIFAR-10"
    return f"No {missing} study in this database: the comparison shows one side only."


def same_space(studies: list[dict[str, Any]], names: list[str]) -> bool:
    """Whether every study in ``names`` records one and the same search space."""
    rows = {s["name"]: s for s in studies}
    keys = {rows.get(n, {}).get("space_key") for n in names}
    return not (len(keys) > 1 or None in keys)


def engine_datasets(studies: list[dict[str, Any]]) -> tuple[list[str], str | None]:
    """The datasets with studies (sorted), and the one with the most engine families first."""
    datasets: dict[str, set[str]] = {}
    for s in studies:
        if s["dataset"]:
            datasets.setdefault(s["dataset"], set()).add(data.engine_family(s["engine"]))
    default = max(datasets, key=lambda d: (len(datasets[d]), d)) if datasets else None
    return sorted(datasets), default


def engine_studies(studies: list[dict[str, Any]], dataset: str | None) -> list[Option]:
    """The studies on ``dataset`` as dropdown options."""
    return [
        {"label": f"{s['name']} ({s['engine'] or 'unknown'})", "value": s["name"]}
        for s in studies
        if dataset is not None and s["dataset"] == dataset
    ]
