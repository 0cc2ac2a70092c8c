"""A per-study lock shared by every worker of a study, whatever the database.

Workers hold it only while they count a study's trials and ask Optuna for the next one, so
that ``n_trials`` is met exactly even with many workers: PostgreSQL advisory locks,
MySQL/MariaDB named locks, and for SQLite (one host by nature) a lock file beside the
database.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator

import sqlalchemy as sa

from hpo32.storage.db import sqlite_path

__all__ = ["study_lock"]


def _key(study_name: str) -> int:
    """A stable signed 63-bit key for PostgreSQL's advisory locks."""
    digest = hashlib.sha256(f"hpo32:{study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True) >> 1


@contextlib.contextmanager
def study_lock(
    engine: sa.Engine, url: str, study_name: str, timeout_s: int = 600
) -> Iterator[None]:
    """Holds the study's lock for the duration of the ``with`` block.

    Args:
        engine: a SQLAlchemy engine on the study's database.
        url: the storage URL (decides the kind of lock).
        study_name: the study.
        timeout_s: MySQL's wait for the named lock.
    """
    path = sqlite_path(url)
    if path is not None:
        with open(path.with_name(path.name + ".hpo32-lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if url.startswith("sqlite"):  # in-memory: one process
        yield
        return
    dialect = engine.dialect.name
    with engine.connect() as con:
        if dialect == "postgresql":
            con.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _key(study_name)})
            release = sa.text("SELECT pg_advisory_unlock(:k)")
            params: dict[str, object] = {"k": _key(study_name)}
        elif dialect in ("mysql", "mariadb"):
            name = "hpo32:" + hashlib.sha256(study_name.encode()).hexdigest()[:40]
            con.execute(sa.text("SELECT GET_LOCK(:n, :t)"), {"n": name, "t": timeout_s})
            release = sa.text("SELECT RELEASE_LOCK(:n)")
            params = {"n": name}
        else:  # pragma: no cover - other databases are refused by resolve_url
            yield
            return
        con.commit()
        try:
            yield
        finally:
            con.execute(release, params)
            con.commit()
