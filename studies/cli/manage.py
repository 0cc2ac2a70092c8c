"""``hpo32 delete``: remove a study (Optuna's rows and hpo32's in one transaction, then its
artifacts), after a question on a terminal or with ``--yes``; ``hpo32 gc``: remove the
artifacts no study refers to (superseded models, orphans of killed saves, folders of deleted
studies), likewise."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from typing import TYPE_CHECKING

from hpo32.studies.cli.common import UserError
from hpo32.studies.progress import plural

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _confirmed(args: argparse.Namespace, refusal: str, question: str, declined: str) -> bool:
    """Whether to go on with what cannot be undone: ``--yes``, else a "y" to ``question`` on a
    terminal (printing ``declined`` otherwise).

    Raises:
        UserError: ``refusal``, without ``--yes`` and without a terminal to ask on.
    """
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise UserError(refusal)
    answer = input(f"hpo32: {question} [y/N] ")
    if answer.strip().lower() in ("y", "yes"):
        return True
    print(f"hpo32: {declined}.")
    return False


def cmd_delete(args: argparse.Namespace) -> int:
    """Deletes study ``args.name``: also one made with Optuna's own tools, or the rows a study
    deleted by Optuna left behind. Refused while a session of it is running."""
    from hpo32.storage import Records, artifact_root, make_engine, queries, resolve_url
    from hpo32.studies.launch import StudyNotFound

    name = args.name
    url = resolve_url(args.storage, existing=True)
    engine = make_engine(url)
    standing = queries.study_standing(engine, name)
    if not (standing.optuna or standing.hpo32):
        raise StudyNotFound(f"no study named '{name}' in {url}; see hpo32 list.")
    records = Records(engine, create=False)
    if standing.hpo32:
        live = [s for s in records.sessions(name) if s.alive(time.time())]
        if live:
            raise UserError(
                f"study '{name}' is running (pid {live[0].pid} on {live[0].host}); stop it "
                "first, then delete it."
            )
    trials = plural(standing.trials, "trial")
    folder = artifact_root(url) / name
    if not _confirmed(
        args,
        refusal=f"deleting study '{name}' ({trials}) cannot be undone; confirm with --yes.",
        question=f"delete study '{name}' ({trials}) and {folder}?",
        declined="nothing deleted",
    ):
        return 0
    records.delete_study(name)
    removed = ""
    if folder.is_dir() and not args.keep_artifacts:
        shutil.rmtree(folder)
        removed = f" and its artifacts in {folder}"
    print(f"hpo32: deleted study '{name}' ({trials}){removed}.")
    return 0


def add_parser(sub: Subparsers, storage: list[argparse.ArgumentParser]) -> None:
    """Declares ``hpo32 delete``."""
    p = sub.add_parser(
        "delete",
        help="delete a study: its trials, hpo32's records and its artifacts",
        parents=storage,
    )
    p.set_defaults(func=cmd_delete)
    p.add_argument("name", help="the study to delete")
    p.add_argument("--yes", action="store_true", help="do not ask (required without a terminal)")
    p.add_argument(
        "--keep-artifacts", action="store_true", help="keep the study's saved models on disk"
    )


def cmd_gc(args: argparse.Namespace) -> int:
    """Removes what no study refers to under the database's artifact folder (see
    :mod:`hpo32.studies.artifacts`), after listing it; ``--dry-run`` only lists."""
    from hpo32.storage import artifact_root, make_engine, resolve_url
    from hpo32.studies.artifacts import gc_plan, human_bytes, remove

    url = resolve_url(args.storage, existing=True)
    engine = make_engine(url)
    plan = gc_plan(engine, artifact_root(url))
    for note in plan.skipped:
        print(f"hpo32: {note}.")
    if not plan.removals:
        print(f"hpo32: nothing to remove in {plan.root}.")
        return 0
    width = max(len(human_bytes(r.bytes)) for r in plan.removals)
    for r in plan.removals:
        print(f"  {human_bytes(r.bytes).rjust(width)}  {r.path}  ({r.reason})")
    items = plural(len(plan.removals), "item")
    if args.dry_run:
        print(f"hpo32: would free {human_bytes(plan.bytes)} ({items}); nothing removed.")
        return 0
    if not _confirmed(
        args,
        refusal=f"removing {items} ({human_bytes(plan.bytes)}) cannot be undone; confirm "
        "with --yes, or list them with --dry-run.",
        question=f"remove {items} ({human_bytes(plan.bytes)})?",
        declined="nothing removed",
    ):
        return 0
    freed = remove(engine, plan)
    print(f"hpo32: removed {items}, freed {human_bytes(freed)} ({freed} bytes).")
    return 0


def add_gc_parser(sub: Subparsers, storage: list[argparse.ArgumentParser]) -> None:
    """Declares ``hpo32 gc``."""
    p = sub.add_parser(
        "gc",
        help="remove saved models and folders no study refers to",
        parents=storage,
    )
    p.set_defaults(func=cmd_gc)
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--yes", action="store_true", help="do not ask (required without a terminal)"
    )
    which.add_argument(
        "--dry-run", action="store_true", help="list what would be removed, remove nothing"
    )
