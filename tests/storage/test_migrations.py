"""hpo32's tables carry a version; a database made by an older hpo32 opens in this one with
its rows kept, and one from a newer hpo32 is refused in one sentence, on every database."""

from __future__ import annotations

import json
import time

import optuna
import pytest
import sqlalchemy as sa

from hpo32.storage import Records, StorageError, make_engine, optuna_storage, queries
from hpo32.storage.migrations import SCHEMA_VERSION, stored_version


def _write_version_1(url: str) -> None:
    """The tables as hpo32 0.1 made them (before hpo32_meta; with the workdir column)."""
    md = sa.MetaData()
    studies = sa.Table(
        "hpo32_studies",
        md,
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("engine", sa.String(64), nullable=False),
        sa.Column("dataset", sa.String(512), nullable=False),
        sa.Column("spec_json", sa.Text, nullable=False),
        sa.Column("budget_seconds", sa.Double, nullable=True),
        sa.Column("workdir", sa.String(1024), nullable=True),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    sessions = sa.Table(
        "hpo32_sessions",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("study_name", sa.String(255), nullable=False, index=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.Column("ended_at", sa.Double, nullable=True),
        sa.Column("exit_reason", sa.String(64), nullable=True),
        sa.Column("trials_run", sa.Integer, nullable=False, default=0),
        sa.Column("heartbeat_s", sa.Double, nullable=False, default=30.0),
    )
    sa.Table(
        "hpo32_results",
        md,
        sa.Column("study_name", sa.String(255), primary_key=True),
        sa.Column("trial_number", sa.Integer, nullable=False),
        sa.Column("val_accuracy", sa.Double, nullable=True),
        sa.Column("test_accuracy", sa.Double, nullable=True),
        sa.Column("model_path", sa.String(1024), nullable=True),
        sa.Column("evaluated_at", sa.Double, nullable=False),
    )
    engine = sa.create_engine(url)
    md.create_all(engine)
    now = time.time()
    with engine.begin() as con:
        con.execute(
            studies.insert().values(
                name="old", engine="optuna", dataset="cifar10", spec_json=json.dumps({"epochs": 3}),
                budget_seconds=600.0, workdir="old", created_at=now,
            )
        )  # fmt: skip
        con.execute(
            sessions.insert().values(
                study_name="old", host="h", pid=1, started_at=now - 100, last_seen=now - 40,
                ended_at=now - 40, exit_reason="budget", trials_run=2, heartbeat_s=30.0,
            )
        )  # fmt: skip
    engine.dispose()


def test_a_version_1_database_is_upgraded_with_its_rows(database_url):
    url = database_url
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    old = optuna.create_study(study_name="old", storage=optuna_storage(url))
    old.set_user_attr("class_ids", ["n01", "n02"])  # where versions 1 and 2 kept them
    old.set_user_attr("class_names", ["tench", "goldfish"])
    old.set_user_attr("dataset", "imagenet32")
    _write_version_1(url)
    engine = make_engine(url)
    reader = Records(engine, create=False)  # a reader changes nothing
    assert reader.study("old")["spec"] == {"epochs": 3}
    assert queries.study_classes(engine, "old") == (["n01", "n02"], ["tench", "goldfish"])
    with engine.connect() as con:
        assert stored_version(con) == 1

    records = Records(engine)  # a writer upgrades
    with engine.connect() as con:
        assert stored_version(con) == SCHEMA_VERSION
        columns = {c["name"] for c in sa.inspect(con).get_columns("hpo32_studies")}
    assert "workdir" not in columns
    assert queries.study_classes(engine, "old") == (["n01", "n02"], ["tench", "goldfish"])
    assert queries.study_attrs(engine, "old") == {"dataset": "imagenet32"}  # moved out
    row = records.study("old")
    assert row["spec"] == {"epochs": 3} and row["budget_seconds"] == 600.0
    assert records.used_seconds("old") == pytest.approx(60.0)
    records.add_study("new", "optuna", "cifar10", {}, 60.0, ["0", "1"], ["cat", "dog"])
    Records(engine)  # again: nothing left to do
    assert records.study("new") is not None
    assert queries.study_classes(engine, "new") == (["0", "1"], ["cat", "dog"])
    records.forget_study("new")
    assert queries.study_classes(engine, "new") == ([], [])
    engine.dispose()


def test_a_database_from_a_newer_hpo32_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/hpo32.db"
    engine = make_engine(url)
    Records(engine)
    with engine.begin() as con:
        con.execute(sa.text("UPDATE hpo32_meta SET value = '99' WHERE key = 'schema_version'"))
    for create in (True, False):
        with pytest.raises(StorageError, match="version 99, made by a newer hpo32"):
            Records(engine, create=create)
    engine.dispose()
