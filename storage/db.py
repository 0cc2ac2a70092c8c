"""Storage URLs, engines and the Optuna storage over the one database."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import optuna
    import sqlalchemy as sa

__all__ = [
    "DEFAULT_URL",
    "StorageError",
    "artifact_root",
    "heartbeat_seconds",
    "make_engine",
    "optuna_storage",
    "redact_url",
    "resolve_url",
    "sqlite_path",
    "sqlite_read_only_uri",
]

DEFAULT_URL = "sqlite:///hpo32.db"
SQLITE_TIMEOUT_S = 60.0
_SCHEMES = ("sqlite", "postgresql", "mysql", "mariadb")
#: The URL to suggest per database, for a scheme or driver hpo32 cannot use.
_SUGGEST = {
    "sqlite": "sqlite:///PATH.db",
    "postgresql": "postgresql://USER@HOST/DB or postgresql+psycopg://USER@HOST/DB",
    "mysql": "mysql+pymysql://USER@HOST/DB",
    "mariadb": "mariadb+pymysql://USER@HOST/DB",
}
#: Seconds between heartbeats when ``$HPO32_HEARTBEAT`` is unset, and the most it may be.
DEFAULT_HEARTBEAT_S = 30
MAX_HEARTBEAT_S = 3600


class StorageError(RuntimeError):
    """The database cannot be opened or used; the message says which URL and how to fix it."""


def heartbeat_seconds() -> int:
    """Seconds between a live session's heartbeats (and Optuna's trial heartbeats):
    ``$HPO32_HEARTBEAT``, else 30. Read when asked, never at import, so a bad value breaks
    only the commands that beat.

    Raises:
        StorageError: the value is not a whole number of seconds from 1 to 3600 (0 would
            turn heartbeats off and make the session's writer spin).
    """
    text = os.environ.get("HPO32_HEARTBEAT", "").strip()
    if not text:
        return DEFAULT_HEARTBEAT_S
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_HEARTBEAT_S:
        raise StorageError(
            f"HPO32_HEARTBEAT={text[:40]!r} is not a whole number of seconds from 1 to "
            f"{MAX_HEARTBEAT_S}; set it to e.g. {DEFAULT_HEARTBEAT_S} or unset it."
        )
    return value


def resolve_url(url: str | None = None, existing: bool = False) -> str:
    """The storage URL: the argument, else ``$HPO32_STORAGE``, else ``sqlite:///hpo32.db``.

    The path of an ``sqlite:///`` URL is read as SQLAlchemy reads it (percent escapes
    decoded: a ``?`` in a folder's name is written ``%3F``, a ``%`` as ``%25``), so every
    command, the Optuna storage and the dashboards open the same file.

    Args:
        url: the URL given on the command line, or None.
        existing: the command only reads: a SQLite file must exist (it need not be writable).

    Raises:
        StorageError: the URL cannot be parsed, names a database other than SQLite,
            PostgreSQL or MySQL/MariaDB, a driver that is unknown, asynchronous or not
            installed, an in-memory database, SQLite options, or a SQLite file that cannot be
            created (or, with ``existing``, does not exist) where it points.
    """
    url = url or os.environ.get("HPO32_STORAGE") or DEFAULT_URL
    path = _checked_file(url)
    if path is None:
        return url
    if path.is_dir():
        raise StorageError(f"storage '{url}' points at a folder; name a .db file instead.")
    if existing:
        if not path.exists():
            raise StorageError(
                f"no database at '{path}'; run 'hpo32 search' first or pass --storage."
            )
        return url
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


def _parse_url(url: str) -> sa.engine.URL:
    """``url`` as SQLAlchemy's URL, its database and driver checked usable here.

    Raises:
        StorageError: one sentence naming what is wrong and the URL to write instead.
    """
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import make_url

    shown = redact_url(url)
    usage = f"write {_SUGGEST['sqlite']}, postgresql://USER@HOST/DB or {_SUGGEST['mysql']}"
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme not in _SCHEMES:
        raise StorageError(f"cannot use storage URL '{shown}': {usage}.")
    try:
        parsed = make_url(url)
    except ValueError:  # int() of the port
        raise StorageError(
            f"storage URL '{shown}' has a port that is not a number; write HOST:PORT with "
            "digits, e.g. 127.0.0.1:5432."
        ) from None
    except sa_exc.ArgumentError:
        raise StorageError(f"cannot parse storage URL '{shown}': {usage}.") from None
    suggest = _SUGGEST[scheme]
    try:
        dialect = parsed.get_dialect()
    except sa_exc.NoSuchModuleError:
        raise StorageError(
            f"storage URL '{shown}' names driver '{parsed.get_driver_name()}', which "
            f"SQLAlchemy does not know for {scheme}; write {suggest}."
        ) from None
    if getattr(dialect, "is_async", False):
        raise StorageError(
            f"storage URL '{shown}' names the asynchronous driver '{dialect.driver}', which "
            f"hpo32 does not support; write {suggest}."
        )
    try:
        dialect.import_dbapi()
    except ImportError:
        default = "" if "+" in parsed.drivername else " (the default for " + scheme + "://)"
        raise StorageError(
            f"storage URL '{shown}' needs the Python driver '{dialect.driver}'{default}, which "
            f"is not installed; write {suggest}."
        ) from None
    return parsed


def _checked_file(url: str) -> Path | None:
    """The SQLite file of ``url`` (None for a server database), the URL checked usable.

    Raises:
        StorageError: as :func:`resolve_url`, for what the URL itself gets wrong.
    """
    parsed = _parse_url(url)
    return _sqlite_file(url, parsed) if parsed.get_backend_name() == "sqlite" else None


def _sqlite_file(url: str, parsed: sa.engine.URL) -> Path:
    """The file of a parsed SQLite URL, which must name one and take no options.

    Raises:
        StorageError: an in-memory database, or a URL with a query string.
    """
    if parsed.query or "?" in url:  # SQLAlchemy drops a bare '?name' part, so look at the text
        raise StorageError(
            f"storage '{url}' has options after '?', which hpo32 does not take for SQLite "
            "(commands that only read open the file read-only already); drop them, and "
            "write a '?' in the path as %3F."
        )
    database = parsed.database or ""
    if database in ("", ":memory:"):
        raise StorageError(
            f"storage '{url}' is an in-memory database, lost when the command exits; "
            "name a file: sqlite:///PATH.db."
        )
    return Path(database).expanduser().resolve()


def sqlite_path(url: str) -> Path | None:
    """The file behind an ``sqlite:///`` URL (percent escapes decoded, as SQLAlchemy reads
    it), or None for other databases, in-memory and URLs that do not parse."""
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import make_url

    try:
        database = make_url(url).database or ""
    except (ValueError, sa_exc.ArgumentError):
        return None
    if database in ("", ":memory:"):
        return None
    return Path(database).expanduser().resolve()


def sqlite_read_only_uri(path: Path) -> str:
    """The ``file:`` URI that opens ``path`` read-only (``sqlite3.connect(uri, uri=True)``):
    the path percent-escaped, so a ``#``, ``?`` or ``%`` in it stays part of the name."""
    return f"file:{quote(str(path))}?mode=ro"


def _engine_url(url: str):
    """What SQLAlchemy and Optuna are handed: for a SQLite file, a URL rebuilt from
    :func:`sqlite_path` (``~`` expanded, escapes re-applied); other URLs unchanged."""
    path = sqlite_path(url)
    if path is None:
        return url
    from sqlalchemy.engine import URL, make_url

    return URL.create(make_url(url).drivername, database=str(path)).render_as_string()


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


def make_engine(url: str, read_only: bool = False) -> sa.Engine:
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

    path = _checked_file(url)
    if path is not None and not read_only:
        _prepare_sqlite(path)
    if path is not None and read_only:
        if not path.exists():
            raise StorageError(f"database file '{path}' does not exist; run a search first.")
        uri = sqlite_read_only_uri(path)

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT_S, check_same_thread=False)

        # Dash serves callbacks from several threads at once; a queue pool hands each its
        # own connection (the singleton-per-thread pool of a bare sqlite:// URL does not).
        engine = sa.create_engine(
            "sqlite://", creator=connect, poolclass=sa.pool.QueuePool, pool_size=4, max_overflow=8
        )
    else:
        try:
            engine = sa.create_engine(_engine_url(url), **engine_kwargs(url))
        except (sa.exc.ArgumentError, TypeError, ValueError) as exc:  # e.g. a bad option
            raise StorageError(
                f"cannot use storage URL '{redact_url(url)}': {_first_line(exc)}."
            ) from None
        statement = _READ_ONLY_SESSION.get(engine.dialect.name) if read_only else None
        if statement:
            _read_only_sessions(engine, statement)
    try:
        with engine.connect() as con:
            if path is not None:  # the header and schema are read here, not at first query
                con.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
    except sa.exc.DatabaseError as exc:
        if path is None:
            raise StorageError(
                f"cannot connect to storage '{redact_url(url)}': {_first_line(exc)}."
            ) from None
        raise StorageError(
            f"cannot open SQLite file '{path}': {_first_line(exc)}; point --storage at a "
            "valid database."
        ) from None
    except Exception as exc:  # driver errors differ per database
        raise StorageError(
            f"cannot connect to storage '{redact_url(url)}': {_first_line(exc)}."
        ) from None
    return engine


def _read_only_sessions(engine: sa.Engine, statement: str) -> None:
    """Runs ``statement`` on every new connection of ``engine`` (before any other use)."""
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "connect")
    def _read_only(dbapi_con: Any, _record: Any) -> None:
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
) -> optuna.storages.RDBStorage:
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

    path = _checked_file(url)
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
            return optuna.storages.RDBStorage(
                _engine_url(url), engine_kwargs=engine_kwargs(url), **kwargs
            )
        except Exception as exc:
            raise StorageError(
                f"cannot open storage '{redact_url(url)}': {_first_line(exc)}."
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


def redact_url(url: str) -> str:
    """The URL without its password (what messages and pages show)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}@{host}"
    return url
