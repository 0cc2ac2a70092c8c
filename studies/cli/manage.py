"""``hpo32 delete``: remove a study (Optuna's rows and hpo32's in one transaction, then its
artifacts), after a question on a terminal or with ``--yes``."""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from hpo32.studies.cli.common import UserError


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
    trials = f"{standing.trials} trial{'s' * (standing.trials != 1)}"
    folder = artifact_root(url) / name
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserError(
                f"deleting study '{name}' ({trials}) cannot be undone; confirm with --yes."
            )
        answer = input(f"hpo32: delete study '{name}' ({trials}) and {folder}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("hpo32: nothing deleted.")
            return 0
    records.delete_study(name)
    removed = ""
    if folder.is_dir() and not args.keep_artifacts:
        shutil.rmtree(folder)
        removed = f" and its artifacts in {folder}"
    print(f"hpo32: deleted study '{name}' ({trials}){removed}.")
    return 0


def add_parser(sub, storage: list[argparse.ArgumentParser]) -> None:
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
