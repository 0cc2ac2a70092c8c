"""Storage URLs, engines and the Optuna storage over the one database."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_URL",
    "StorageError",
    "artifact_root",
    "make_engine",
    "optuna_storage",
    "resolve_url",
    "sqlite_path",
]

DEFAULT_URL = "sqlite:///hpo32.db"
SQLITE_TIMEOUT_S = 60.0
_SCHEMES = ("sqlite", "postgresql", "mysql", "mariadb")


class StorageError(RuntimeError):
    """The database cannot be opened or used; the message says which URL and how to fix it."""


def resolve_url(url: str | None = None) -> str:
    """The storage URL: the argument, else ``$HPO32_STORAGE``, else ``sqlite:///hpo32.db``.

    Raises:
        StorageError: the URL is not one of sqlite://, postgresql://, mysql://, or the SQLite
            file cannot be created where it points.
    """
    url = url or os.environ.get("HPO32_STORAGE") or DEFAULT_URL
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme not in _SCHEMES:
        raise StorageError(
            f"cannot use storage URL '{url}': write sqlite:///PATH.db, "
            "postgresql://USER@HOST/DB or mysql+pymysql://USER@HOST/DB."
        )
    path = sqlite_path(url)
    if path is not None:
        if path.is_dir():
            raise StorageError(f"storage '{url}' points at a folder; name a .db file instead.")
        if not path.parent.is_dir():
            raise StorageError(
                f"storage '{url}': folder '{path.parent}' does not exist; create it first."
            )
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise StorageError(f"storage '{url}': file '{path}' is not writable; fix its mode.")
        if not path.exists() and not os.access(path.parent, os.W_OK):
            raise StorageError(
                f"storage '{url}': cannot create a database in read-only folder '{path.parent}'."
            )
    return url


def sqlite_path(url: str) -> Path | None:
    """The file behind an ``sqlite:///`` URL, or None for other databases and in-memory."""
    if not url.startswith("sqlite:"):
        return None
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    rest = rest.split("?", 1)[0]
    if rest in ("", ":memory:"):
        return None
    return Path(rest).expanduser().resolve()


def _prepare_sqlite(path: Path) -> None:
    """Switches the file to WAL mode (persistent in the file) so readers never block writers."""
    try:
        con = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S)
        try:
            mode = con.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                con.execute("PRAGMA journal_mode=WAL")
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StorageError(
            f"cannot open SQLite file '{path}': {exc}; point --storage at a valid database."
        ) from None


def engine_kwargs(url: str, read_only: bool = False) -> dict[str, Any]:
    """SQLAlchemy engine settings for a URL: busy timeout for SQLite, pool checks elsewhere."""
    if url.startswith("sqlite"):
        args: dict[str, Any] = {"timeout": SQLITE_TIMEOUT_S}
        return {"connect_args": args}
    return {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2}


#: Statements that make every session of a read-only engine refuse writes.
_READ_ONLY_SESSION = {
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
}


def make_engine(url: str, read_only: bool = False):
    """A SQLAlchemy engine for ``url``; SQLite files get WAL and a busy timeout.

    Args:
        url: a resolved storage URL.
        read_only: refuse writes (the dashboards and read-only commands do). SQLite files
            open with ``mode=ro`` (WAL, so a reader never blocks a search writing to the same
            file) through a thread-safe queue pool; PostgreSQL and MySQL sessions are set to
            read-only transactions.

    Raises:
        StorageError: the database cannot be reached.
    """
    import sqlalchemy as sa

    path = sqlite_path(url)
    if path is not None and not read_only:
        _prepare_sqlite(path)
    if path is not None and read_only:
        if not path.exists():
            raise StorageError(f"database file '{path}' does not exist; run a search first.")
        uri = f"file:{path}?mode=ro"

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT_S, check_same_thread=False)

        # Dash serves callbacks from several threads at once; a queue pool hands each its
        # own connection (the singleton-per-thread pool of a bare sqlite:// URL does not).
        engine = sa.create_engine(
            "sqlite://", creator=connect, poolclass=sa.pool.QueuePool, pool_size=4, max_overflow=8
        )
    else:
        engine = sa.create_engine(url, **engine_kwargs(url))
        statement = _READ_ONLY_SESSION.get(engine.dialect.name) if read_only else None
        if statement:
            _read_only_sessions(engine, statement)
    try:
        with engine.connect():
            pass
    except Exception as exc:  # driver errors differ per database
        raise StorageError(
            f"cannot connect to storage '{_redact(url)}': {_first_line(exc)}."
        ) from None
    return engine


def _read_only_sessions(engine, statement: str) -> None:
    """Runs ``statement`` on every new connection of ``engine`` (before any other use)."""
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "connect")
    def _read_only(dbapi_con, _record) -> None:
        cur = dbapi_con.cursor()
        try:
            cur.execute(statement)
        finally:
            cur.close()
        dbapi_con.commit()  # a SET inside a transaction that rolls back would not stick


def optuna_storage(
    url: str,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    retry_stale: bool = True,
):
    """Optuna's RDB storage over ``url`` (tables created when missing).

    Args:
        url: a resolved storage URL.
        heartbeat_interval: seconds between a running trial's heartbeats, or None for none.
        grace_period: seconds without a heartbeat after which a running trial becomes FAIL.
        retry_stale: re-enqueue a stale trial's params once (a copy runs them again).

    Raises:
        StorageError: the database cannot be reached or holds an incompatible schema.
    """
    import optuna

    path = sqlite_path(url)
    if path is not None:
        _prepare_sqlite(path)
    import warnings

    kwargs: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if heartbeat_interval:
            kwargs["heartbeat_interval"] = heartbeat_interval
            kwargs["grace_period"] = grace_period or heartbeat_interval * 4
            if retry_stale:
                kwargs["heartbeat_stale_trial_callback"] = (
                    optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
                )
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url), **kwargs)
        except Exception as exc:
            raise StorageError(
                f"cannot open storage '{_redact(url)}': {_first_line(exc)}."
            ) from None


def artifact_root(url: str) -> Path:
    """The folder for models and engine project dirs: ``$HPO32_ARTIFACTS``, else beside the
    SQLite file (``NAME-artifacts/``), else ``./hpo32-artifacts``."""
    env = os.environ.get("HPO32_ARTIFACTS")
    if env:
        return Path(env).expanduser().resolve()
    path = sqlite_path(url)
    if path is not None:
        return path.with_name(path.stem + "-artifacts")
    return Path("hpo32-artifacts").resolve()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}@{host}"
    return url
