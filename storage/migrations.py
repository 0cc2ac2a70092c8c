"""Versions of hpo32's own tables and the steps from each to the next.

A database records the version of its ``hpo32_*`` tables in ``hpo32_meta``
(``schema_version``); one written before that table existed is version 1. A writer
(:class:`hpo32.storage.records.Records` with ``create=True``) brings an older database up
to :data:`SCHEMA_VERSION` step by step, keeping every row; a reader leaves it as it is (the
queries read columns every version has) and refuses a database from a newer hpo32. Optuna's
own tables are Optuna's to migrate.

Versions:

1. ``hpo32_studies``, ``hpo32_sessions``, ``hpo32_results``; ``hpo32_studies.workdir``
   written, never read.
2. ``hpo32_meta`` holds the version; ``workdir`` dropped.
3. ``hpo32_classes`` holds each study's class ids and names, which lived in Optuna's study
   user attributes ``class_ids``/``class_names`` (5 KB for 200 classes, shown by every
   ``optuna studies``); they move there and leave Optuna's table.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from hpo32.storage import schema

__all__ = ["SCHEMA_VERSION", "check_readable", "stored_version", "upgrade", "write_classes"]

SCHEMA_VERSION = 3
_KEY = "schema_version"


def stored_version(con: sa.Connection) -> int | None:
    """The version of the database's hpo32 tables; None when it has none."""
    insp = sa.inspect(con)
    if not insp.has_table("hpo32_studies"):
        return None
    if not insp.has_table("hpo32_meta"):
        return 1
    meta = schema.hpo32_meta
    value = con.execute(sa.select(meta.c.value).where(meta.c.key == _KEY)).scalar()
    return int(value) if value is not None else 1


def _newer(version: int) -> Exception:
    from hpo32.storage.db import StorageError

    return StorageError(
        f"this database's hpo32 tables are version {version}, made by a newer hpo32 than this "
        f"one (which knows up to {SCHEMA_VERSION}); upgrade hpo32 with pip install -U hpo32."
    )


def check_readable(engine: sa.Engine) -> None:
    """Raises StorageError for a database made by a newer hpo32 (read-only: no writes)."""
    with engine.connect() as con:
        version = stored_version(con)
    if version is not None and version > SCHEMA_VERSION:
        raise _newer(version)


def _drop_workdir(con: sa.Connection) -> None:
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    columns = {c["name"] for c in sa.inspect(con).get_columns("hpo32_studies")}
    if "workdir" in columns:
        ops = Operations(MigrationContext.configure(con))
        with ops.batch_alter_table("hpo32_studies") as batch:  # SQLite: copy and rename
            batch.drop_column("workdir")


def _move_classes(con: sa.Connection) -> None:
    import json

    schema.hpo32_classes.create(con, checkfirst=True)
    if not sa.inspect(con).has_table("study_user_attributes"):
        return
    studies, attrs = schema.studies, schema.study_user_attributes
    ours = {r.name for r in con.execute(sa.select(schema.hpo32_studies.c.name))}
    rows = con.execute(
        sa.select(studies.c.study_id, studies.c.study_name, attrs.c.key, attrs.c.value_json)
        .join(attrs, attrs.c.study_id == studies.c.study_id)
        .where(attrs.c.key.in_(("class_ids", "class_names")))
    ).all()
    found: dict[tuple[int, str], dict[str, list]] = {}
    for sid, name, key, value in rows:
        if name in ours:
            found.setdefault((sid, name), {})[key] = json.loads(value)
    for (sid, name), values in found.items():
        ids = [str(c) for c in values.get("class_ids") or []]
        names = [str(c) for c in values.get("class_names") or ids]
        write_classes(con, name, ids, names)
        con.execute(
            attrs.delete().where(
                attrs.c.study_id == sid, attrs.c.key.in_(("class_ids", "class_names"))
            )
        )


def write_classes(con: sa.Connection, name: str, ids: list[str], names: list[str]) -> None:
    """Replaces study ``name``'s class rows (ids and names in label order)."""
    table = schema.hpo32_classes
    con.execute(table.delete().where(table.c.study_name == name))
    if ids:
        con.execute(
            table.insert(),
            [
                {"study_name": name, "position": k, "class_id": i, "class_name": n}
                for k, (i, n) in enumerate(zip(ids, names, strict=False))
            ],
        )


#: STEPS[v] takes a database from version v to v + 1.
STEPS: dict[int, Callable[[sa.Connection], None]] = {1: _drop_workdir, 2: _move_classes}


def upgrade(engine: sa.Engine) -> int | None:
    """Creates hpo32's tables where missing and brings older ones to :data:`SCHEMA_VERSION`.

    Safe to run from several processes at once: each step checks before it changes, and
    a process that loses a race to write the version reads the winner's.

    Returns:
        The version the database had before (None when it had no hpo32 tables).

    Raises:
        StorageError: the database is from a newer hpo32.
    """
    with engine.begin() as con:
        before = stored_version(con)
        if before is not None and before > SCHEMA_VERSION:
            raise _newer(before)
        if before == SCHEMA_VERSION:
            return before
        for version in range(before or SCHEMA_VERSION, SCHEMA_VERSION):
            STEPS[version](con)
        schema.metadata.create_all(con, tables=list(schema.HPO32_TABLES))
    try:
        with engine.begin() as con:
            meta = schema.hpo32_meta
            con.execute(meta.delete().where(meta.c.key == _KEY))
            con.execute(meta.insert().values(key=_KEY, value=str(SCHEMA_VERSION)))
    except sa.exc.IntegrityError:  # another process wrote it first
        pass
    return before
