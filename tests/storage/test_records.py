from __future__ import annotations

import time

import optuna
import pytest

from hpo32.storage import (
    Records,
    consumed_seconds,
    make_engine,
    merge_intervals,
    optuna_storage,
)


def test_consumed_seconds_is_the_union_of_intervals():
    assert consumed_seconds([]) == 0
    assert consumed_seconds([(0, 10), (20, 25)]) == 15
    # concurrent workers overlap: the budget is wall-clock, not a sum
    assert consumed_seconds([(0, 10), (5, 12), (11, 13), (30, 31)]) == 14
    assert consumed_seconds([(5, 5), (7, 6)]) == 0


def test_merge_intervals_is_the_union_both_the_budget_and_the_time_axis_use():
    assert merge_intervals([(20, 25), (0, 10), (5, 12), (12, 13), (30, 30), (40, None)]) == [
        (0, 13),
        (20, 25),
    ]
    from hpo32.storage.records import search_clock

    intervals = [(0.0, 10.0), (5.0, 12.0), (11.0, 13.0), (30.0, 31.0)]
    assert search_clock(intervals)(1e9) == consumed_seconds(intervals)


@pytest.fixture
def records(tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    optuna_storage(url)
    return Records(make_engine(url)), url


def test_sessions_account_budget_across_resumes(records, monkeypatch):
    rec, _ = records
    clock = [1000.0]
    monkeypatch.setattr("hpo32.storage.records.time.time", lambda: clock[0])
    rec.add_study("s", "optuna", "cifar10", {"epochs": 1}, 600.0)
    first = rec.begin_session("s")
    clock[0] = 1100.0
    rec.end_session(first, "interrupted", 3)
    clock[0] = 5000.0
    second = rec.begin_session("s")
    clock[0] = 5030.0
    assert rec.used_seconds("s") == pytest.approx(130.0)  # running session counts up to now
    rec.touch_session(second, 1)
    clock[0] = 9000.0  # the process died without ending its session
    assert rec.used_seconds("s") == pytest.approx(130.0)  # counted up to its last sign of life
    sessions = rec.sessions("s")
    assert [s.exit_reason for s in sessions] == ["interrupted", None]
    assert sessions[0].trials_run == 3


def test_summaries_and_best_trial_come_from_sql(records):
    rec, url = records
    study = optuna.create_study(study_name="a", storage=url, direction="maximize")
    for value in (0.2, 0.7, 0.5):
        trial = study.ask()
        trial.suggest_int("conv_blocks", 1, 4)
        trial.set_user_attr("config", {"conv_blocks": trial.params["conv_blocks"]})
        study.tell(trial, value)
    pruned = study.ask()
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    study.ask()  # left running
    rec.add_study("a", "optuna", "cifar10", {}, 60.0)
    [summary] = rec.summaries()
    assert summary.name == "a" and summary.dataset == "cifar10"
    assert summary.states == {"complete": 3, "pruned": 1, "running": 1}
    assert summary.best_value == pytest.approx(0.7)
    best = rec.best_trial("a")
    assert best["number"] == 1 and best["value"] == pytest.approx(0.7)
    assert best["config"] == {"conv_blocks": study.trials[1].params["conv_blocks"]}
    assert rec.best_trial("missing") is None


def test_a_killed_session_on_this_host_is_dead_at_once(records):
    """Not "running" for four more heartbeats: its process is gone, so its budget ends at
    its last sign of life."""
    import subprocess
    import sys

    import sqlalchemy as sa

    from hpo32.storage.records import sessions_table

    rec, _ = records
    rec.add_study("k", "optuna", "cifar10", {}, 600.0)
    session = rec.begin_session("k")
    assert rec.sessions("k")[0].alive(time.time())  # this process: alive
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    with rec.engine.begin() as con:
        con.execute(
            sa.update(sessions_table)
            .where(sessions_table.c.id == session)
            .values(pid=int(gone.stdout), last_seen=time.time() - 5)
        )
    [dead] = rec.sessions("k")
    assert not dead.alive(time.time())
    assert dead.end(time.time()) == dead.last_seen


def test_delete_study_removes_every_row_of_one_study(database_url):
    """Optuna's rows and hpo32's go in one transaction; the other study is untouched."""
    import sqlalchemy as sa

    url = database_url
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = optuna_storage(url, heartbeat_interval=60)
    for name in ("gone", "kept"):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        study.set_user_attr("dataset", "cifar10")
        for _ in range(2):
            trial = study.ask()
            trial.suggest_int("conv_blocks", 1, 4)
            trial.report(0.1, 1)
            trial.set_user_attr("config", {})
            study.tell(trial, 0.5)
        study.enqueue_trial({"conv_blocks": 2})
    engine = make_engine(url)
    records = Records(engine)
    for name in ("gone", "kept"):
        records.add_study(name, "optuna", "cifar10", {}, 60.0)
        records.begin_session(name)
    records.delete_study("gone")
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["kept"]
    assert len(optuna.load_study(study_name="kept", storage=storage).trials) == 3
    with engine.connect() as con:
        n_trials = con.execute(sa.text("SELECT count(*) FROM trials")).scalar()
        n_params = con.execute(sa.text("SELECT count(*) FROM trial_params")).scalar()
    assert (n_trials, n_params) == (3, 2)  # the queued trial has no params yet
    assert records.study("gone") is None and records.sessions("gone") == []
    assert records.study("kept") is not None and len(records.sessions("kept")) == 1
    engine.dispose()
