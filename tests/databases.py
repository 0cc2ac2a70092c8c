"""Real database servers for the multi-worker tests: one fresh database per test.

PostgreSQL on 127.0.0.1:5432 (trust auth) and MariaDB/MySQL on 127.0.0.1:3306 (root, no
password). Where a server is absent, the test using it skips and says so.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/test"
KINDS = ("sqlite", "postgresql", "mysql")


def _admin_engine(url: str):
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect():
            pass
    except Exception as exc:  # the server is not there
        engine.dispose()
        pytest.skip(f"no database server at {url.split('@')[-1]}: {str(exc).splitlines()[0]}")
    return engine


@contextlib.contextmanager
def fresh_database(kind: str, tmp_path) -> Iterator[str]:
    """Yields the URL of an empty database of ``kind``; drops it afterwards."""
    import sqlalchemy as sa

    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/hpo32.db"
        return
    name = f"hpo32_{uuid.uuid4().hex[:12]}"
    admin_url = POSTGRES_ADMIN if kind == "postgresql" else MYSQL_ADMIN
    admin = _admin_engine(admin_url)
    with admin.connect() as con:
        con.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as con:
            if kind == "postgresql":
                con.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
            con.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()
