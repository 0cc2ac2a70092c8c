from __future__ import annotations

import sqlite3

import pytest

from hpo32.storage import (
    StorageError,
    artifact_root,
    make_engine,
    optuna_storage,
    resolve_url,
    sqlite_path,
)


def test_resolve_url_order(monkeypatch, tmp_path):
    monkeypatch.delenv("HPO32_STORAGE", raising=False)
    assert resolve_url(None) == "sqlite:///hpo32.db"
    env_url = f"sqlite:///{tmp_path}/env.db"
    monkeypatch.setenv("HPO32_STORAGE", env_url)
    assert resolve_url(None) == env_url
    arg_url = f"sqlite:///{tmp_path}/arg.db"
    assert resolve_url(arg_url) == arg_url


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("hpo32.db", "cannot use storage URL 'hpo32.db'"),
        ("redis://localhost", "cannot use storage URL"),
        ("sqlite:////nonexistent-dir/x.db", "folder '/nonexistent-dir' does not exist"),
    ],
)
def test_bad_urls_are_one_sentence(url, fragment):
    with pytest.raises(StorageError) as err:
        resolve_url(url)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_a_directory_is_not_a_database(tmp_path):
    with pytest.raises(StorageError, match="points at a folder"):
        resolve_url(f"sqlite:///{tmp_path}")


def test_sqlite_files_use_wal_and_a_busy_timeout(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    optuna_storage(url)
    con = sqlite3.connect(tmp_path / "s.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    engine = make_engine(url)
    with engine.connect() as c:
        timeout_ms = c.exec_driver_sql("PRAGMA busy_timeout").scalar()
    assert timeout_ms >= 30_000


def test_read_only_engine_refuses_writes(tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    optuna_storage(url)
    engine = make_engine(url, read_only=True)
    import sqlalchemy as sa

    with pytest.raises(sa.exc.OperationalError):
        with engine.begin() as con:
            con.exec_driver_sql("CREATE TABLE x (a int)")


def test_a_file_that_is_not_a_database(tmp_path):
    bad = tmp_path / "junk.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="junk.db"):
        optuna_storage(f"sqlite:///{bad}")


def test_artifacts_live_beside_the_database(tmp_path, monkeypatch):
    monkeypatch.delenv("HPO32_ARTIFACTS", raising=False)
    url = f"sqlite:///{tmp_path}/study.db"
    assert artifact_root(url) == tmp_path / "study-artifacts"
    assert sqlite_path(url) == tmp_path / "study.db"
    monkeypatch.setenv("HPO32_ARTIFACTS", str(tmp_path / "elsewhere"))
    assert artifact_root(url) == tmp_path / "elsewhere"
