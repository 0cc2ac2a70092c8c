"""A study's artifact folder on disk: how much it holds, and what ``hpo32 gc`` removes.

A study keeps the models of its ``keep_top`` best complete trials (the search deletes the
ones a better trial pushes out, :func:`hpo32.search.engines.record.drop_superseded`). What
is left over anyway (a kill between a save and its record, a trial killed before it was
told, a spec whose ``keep_top`` shrank, a study deleted with Optuna's own tools, a partial
file of a killed save) is what no study refers to; :func:`gc_plan` lists it and
:func:`remove` deletes it. Neither ever touches a study with a live session, nor a kept model
(the best trial's is always kept). Imports no ML framework.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["GcPlan", "Removal", "disk_bytes", "gc_plan", "human_bytes", "remove"]

#: A model folder: ``trial-N`` (Optuna trials), ``<engine>-trial-<id>`` (tuner trials).
MODEL_FOLDER = re.compile(r"(?:[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*-)?trial-[A-Za-z0-9_]+")

#: The tuner engines' project folders and their lock files inside a study's folder.
PROJECTS = ("keras_tuner", "autokeras")


def disk_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (links not followed; 0 when missing)."""
    total = 0
    for top, _dirs, files in os.walk(folder):
        for name in files:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:  # removed meanwhile
                continue
            if not os.path.islink(os.path.join(top, name)):
                total += st.st_size
    return total


def human_bytes(n: int | None) -> str:
    """``n`` bytes in decimal units: ``0 B``, ``812 B``, ``4.2 kB``, ``681.0 MB``."""
    if n is None:
        return "-"
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            return f"{value:.1f} {unit}"
    return f"{n} B"  # pragma: no cover


@dataclass(frozen=True)
class Removal:
    """One thing ``gc`` removes.

    Attributes:
        study: the study folder it lies in (the folder's name).
        path: the file or folder.
        bytes: its size.
        reason: why nothing refers to it, in words.
        trial: a trial whose ``model_path`` names it (cleared first).
    """

    study: str
    path: Path
    bytes: int
    reason: str
    trial: int | None = None


@dataclass
class GcPlan:
    """What ``gc`` would remove, and the study folders it leaves alone and why."""

    root: Path
    removals: list[Removal] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.removals)


def _is_study_folder(folder: Path) -> bool:
    """Whether a folder of no known study looks like one hpo32 wrote (empty, or holding a
    model folder or a tuner project), so that a foreign folder under a shared artifact root
    (``HPO32_ARTIFACTS``) is never taken for a leftover."""
    children = list(folder.iterdir())
    return not children or any(
        (c.is_dir() and (MODEL_FOLDER.fullmatch(c.name) or c.name in PROJECTS)) for c in children
    )


def _live(engine: sa.Engine, name: str) -> str | None:
    """A sentence naming a live session of study ``name``, or None."""
    from hpo32.storage import queries

    now = time.time()
    live = [s for s in queries.sessions(engine, name) if s.alive(now)]
    if not live:
        return None
    return f"study '{name}' is running (pid {live[0].pid} on {live[0].host}); left alone"


def gc_plan(engine: sa.Engine, root: Path) -> GcPlan:
    """Lists what no study refers to under the artifact ``root`` of the database ``engine``:
    folders of studies that no longer exist, model folders that are not among their study's
    kept models (superseded, or of no trial: a killed save), partial files in kept ones.

    A study's kept models are those of its ``keep_top`` best complete trials (its stored
    spec's key, default 1), as the search keeps them.
    """
    from hpo32.search.engines.base import MODEL_FILE, PARTIAL_MODEL_FILE
    from hpo32.search.engines.record import kept_numbers
    from hpo32.storage import queries

    plan = GcPlan(root)
    if not root.is_dir():
        return plan
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        name = folder.name
        standing = queries.study_standing(engine, name)
        if not (standing.optuna or standing.hpo32):
            if _is_study_folder(folder):
                plan.removals.append(
                    Removal(name, folder, disk_bytes(folder), f"study '{name}' no longer exists")
                )
            continue
        busy = _live(engine, name)
        if busy:
            plan.skipped.append(busy)
            continue
        trials = queries.model_trials(engine, name) if standing.optuna else []
        spec = queries.study_spec(engine, name)
        keep = spec.get("keep_top", 1) if isinstance(spec, dict) else 1
        keep = keep if isinstance(keep, int) and not isinstance(keep, bool) else 1
        complete = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
        kept = kept_numbers(((t.number, t.value) for t in complete), keep)  # type: ignore[misc]
        kept_folders = set()
        owner: dict[Path, int] = {}
        for t in trials:
            where = (root / t.model_path).parent.resolve()
            if t.number in kept and t.state == "COMPLETE":
                kept_folders.add(where)
            else:
                owner.setdefault(where, t.number)
        for child in sorted(folder.iterdir()):
            if not (
                child.is_dir() and not child.is_symlink() and MODEL_FOLDER.fullmatch(child.name)
            ):
                continue
            where = child.resolve()
            if where in kept_folders:
                stray = child / PARTIAL_MODEL_FILE
                if stray.is_file() and not stray.is_symlink():
                    plan.removals.append(
                        Removal(
                            name, stray, stray.lstat().st_size, "a partial file of a killed save"
                        )
                    )
                continue
            number = owner.get(where)
            if number is not None:
                reason = f"trial {number}'s model, not among the {keep} kept"
            elif (child / MODEL_FILE).exists() or (child / PARTIAL_MODEL_FILE).exists():
                reason = "no trial records this model (a killed save)"
            else:
                reason = "no trial records this folder"
            plan.removals.append(Removal(name, child, disk_bytes(child), reason, number))
    return plan


def remove(engine: sa.Engine, plan: GcPlan) -> int:
    """Removes what ``plan`` lists, study by study: a study that has started a session since
    the plan was made is left alone; the trials whose ``model_path`` names a removed model
    have it cleared first.

    Returns:
        The bytes freed.
    """
    from hpo32.storage import queries
    from hpo32.storage.records import drop_model_paths

    freed = 0
    by_study: dict[str, list[Removal]] = {}
    for r in plan.removals:
        by_study.setdefault(r.study, []).append(r)
    for name, removals in by_study.items():
        if queries.study_standing(engine, name).hpo32 and _live(engine, name):
            continue
        numbers = [r.trial for r in removals if r.trial is not None]
        if numbers:
            drop_model_paths(engine, name, numbers)
        for r in removals:
            if r.path.is_dir() and not r.path.is_symlink():
                shutil.rmtree(r.path, ignore_errors=True)
            else:
                try:
                    r.path.unlink()
                except FileNotFoundError:
                    continue
            freed += r.bytes
    return freed
