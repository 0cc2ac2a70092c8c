"""Storage URLs: every one is refused in one sentence or opens the file every command opens."""

from __future__ import annotations

import os
import sqlite3
import warnings
from urllib.parse import quote

import pytest

from hpo32.storage import (
    StorageError,
    heartbeat_seconds,
    make_engine,
    optuna_storage,
    resolve_url,
    sqlite_path,
)
from hpo32.storage.db import sqlite_read_only_uri

#: A folder name with every character a URL or SQLite's file: URI gives a meaning to.
ODD_FOLDER = "we#ird ?%dir"


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("mysql://u@127.0.0.1/db", "write mysql+pymysql://"),
        ("mariadb://u@127.0.0.1/db", "write mariadb+pymysql://"),
        ("postgresql+asyncpg://u@127.0.0.1/db", "asynchronous driver 'asyncpg'"),
        ("sqlite+aiosqlite:///x.db", "asynchronous driver 'aiosqlite'"),
        ("sqlite+foo:///x.db", "names driver 'foo'"),
        ("postgresql://u@127.0.0.1:abc/db", "port that is not a number"),
        ("sqlite://", "in-memory database"),
        ("sqlite:///:memory:", "in-memory database"),
        ("sqlite:///x.db?mode=ro", "options after '?'"),
        ("sqlite:///a?b/x.db", "write a '?' in the path as %3F"),
        ("redis://127.0.0.1", "cannot use storage URL"),
    ],
)
def test_unusable_urls_are_one_sentence(url, fragment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for check in (resolve_url, make_engine, optuna_storage):
        with pytest.raises(StorageError) as err:
            check(url)
        message = str(err.value)
        assert fragment in message and "\n" not in message, message
        assert message.endswith(".")
    assert os.listdir(tmp_path) == []  # nothing created on the way


def test_a_password_is_not_repeated(tmp_path):
    with pytest.raises(StorageError) as err:
        resolve_url("postgresql://u:s3cret@127.0.0.1:abc/db")
    assert "s3cret" not in str(err.value)


def test_mode_ro_gives_no_warnings(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(StorageError):
            make_engine(f"sqlite:///{tmp_path}/x.db?mode=ro")


def test_a_path_with_url_characters_opens_one_file(tmp_path, monkeypatch):
    folder = tmp_path / ODD_FOLDER
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{quote(str(folder))}/h.db"
    assert sqlite_path(url) == folder / "h.db"
    assert resolve_url(url) == url
    optuna_storage(url)  # a writer creates the file in the odd folder
    assert (folder / "h.db").is_file()
    before = sorted(os.listdir(tmp_path))
    engine = make_engine(resolve_url(url, existing=True), read_only=True)
    with engine.connect() as con:
        assert con.exec_driver_sql("SELECT count(*) FROM studies").scalar() == 0
    assert sorted(os.listdir(tmp_path)) == before == [ODD_FOLDER]  # no 'we' file beside


def test_a_hash_in_a_path_reads_that_file_read_only(tmp_path):
    folder = tmp_path / "a#b"
    folder.mkdir()
    url = f"sqlite:///{folder}/h.db"  # '#' needs no escape in a SQLAlchemy URL
    optuna_storage(url)
    engine = make_engine(url, read_only=True)
    import sqlalchemy as sa

    with pytest.raises(sa.exc.OperationalError, match="readonly"):
        with engine.begin() as con:
            con.exec_driver_sql("CREATE TABLE x (a int)")
    assert sorted(os.listdir(tmp_path)) == ["a#b"]  # 'a' was neither opened nor created


def test_the_read_only_uri_escapes_the_path(tmp_path):
    folder = tmp_path / ODD_FOLDER
    folder.mkdir()
    path = folder / "h.db"
    sqlite3.connect(path).execute("CREATE TABLE t (a int)").connection.commit()
    uri = sqlite_read_only_uri(path)
    assert uri.endswith("?mode=ro") and "#" not in uri and " " not in uri
    con = sqlite3.connect(uri, uri=True)
    assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        con.execute("INSERT INTO t VALUES (1)")


@pytest.mark.parametrize("read_only", [True, False])
def test_a_corrupt_sqlite_file_is_one_sentence(tmp_path, read_only):
    bad = tmp_path / "hpo32.db"
    bad.write_bytes(os.urandom(8192))
    before = bad.read_bytes()
    with pytest.raises(StorageError, match="is not a database") as err:
        make_engine(f"sqlite:///{bad}", read_only=read_only)
    assert str(bad) in str(err.value)
    assert bad.read_bytes() == before


def test_reading_needs_an_existing_file_but_not_a_writable_one(tmp_path):
    with pytest.raises(StorageError, match="no database at"):
        resolve_url(f"sqlite:///{tmp_path}/none.db", existing=True)
    assert not (tmp_path / "none.db").exists()
    path = tmp_path / "ro.db"
    optuna_storage(f"sqlite:///{path}")
    path.chmod(0o444)
    assert resolve_url(f"sqlite:///{path}", existing=True)


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "99999", "30s"])
def test_a_bad_heartbeat_is_one_sentence(value, monkeypatch):
    monkeypatch.setenv("HPO32_HEARTBEAT", value)
    with pytest.raises(StorageError, match="HPO32_HEARTBEAT") as err:
        heartbeat_seconds()
    assert "\n" not in str(err.value)


def test_heartbeat_default_and_value(monkeypatch):
    monkeypatch.delenv("HPO32_HEARTBEAT", raising=False)
    assert heartbeat_seconds() == 30
    monkeypatch.setenv("HPO32_HEARTBEAT", " 7 ")
    assert heartbeat_seconds() == 7
