"""Many workers on one study: SQLite on one host, PostgreSQL and MariaDB for many hosts.

One contract, run against every database kind by a parametrized fixture.
"""

from __future__ import annotations

import os
import signal
import time

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from hpo32.storage import Records, make_engine
from tests.studies.conftest import popen_hpo32, run_hpo32, search_args


def _finished(study) -> list:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


#: Trials the four workers share: six each, enough for them to contend for the last ones.
N_TRIALS = 24


def test_four_workers_finish_exactly_n_trials(database_url, tmp_path, cifar_dir, tiny_spec):
    t0 = time.time()
    res = run_hpo32(
        *search_args(
            "many", tiny_spec, cifar_dir, database_url, n_trials=N_TRIALS, epochs=1, workers=4
        ),
        cwd=tmp_path,
        timeout=900,
    )
    wall = time.time() - t0
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert "database is locked" not in res.stdout + res.stderr
    study = optuna.load_study(study_name="many", storage=database_url)
    trials = study.get_trials(deepcopy=False)
    assert len(_finished(study)) == N_TRIALS
    assert len(trials) == N_TRIALS, {t.state.name for t in trials}
    assert sorted(t.number for t in trials) == list(range(N_TRIALS))
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) >= 2, "the trials were shared among the workers"
    configs = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(configs)) == len(configs), "workers that start together sampled alike"
    records = Records(make_engine(database_url), create=False)
    sessions = records.sessions("many")
    assert len(sessions) == 4 and {s.exit_reason for s in sessions} == {"n_trials"}
    assert sum(s.trials_run for s in sessions) == N_TRIALS
    # the study's budget is wall-clock: overlapping workers count once
    used = records.used_seconds("many")
    assert used <= wall
    assert used < sum(s.ended_at - s.started_at for s in sessions)
    # every read command works on this database too
    res = run_hpo32("list", "--json", "--storage", database_url, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f'"complete": {N_TRIALS}' in res.stdout
    res = run_hpo32("show", "many", "--storage", database_url, cwd=tmp_path)
    assert res.returncode == 0 and f"{N_TRIALS} complete" in res.stdout, res.stderr
    res = run_hpo32("export", "many", "--format", "json", "--storage", database_url, cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.count('"number"') == N_TRIALS, res.stderr


def _wait_for_running_trial_with_epoch(url: str, timeout: float = 180.0):
    """(number, worker pid) of a running trial that has reported an epoch."""
    engine = sa.create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                with engine.connect() as con:
                    row = con.execute(
                        sa.text(
                            "SELECT t.number, a.value_json FROM trials t "
                            "JOIN trial_intermediate_values v ON v.trial_id = t.trial_id "
                            "JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
                            "WHERE t.state = 'RUNNING' AND a.key = 'worker' LIMIT 1"
                        )
                    ).first()
            except sa.exc.DBAPIError:  # the tables are not created yet
                row = None
            if row is not None:
                return row.number, int(row.value_json.strip('"').rsplit(":", 1)[1])
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise AssertionError("no trial reached its first epoch in time")


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_killed_worker_trial_is_retried_and_the_study_finishes(
    database_url, tmp_path, cifar_dir, tiny_spec
):
    url = database_url
    proc = popen_hpo32(
        *search_args("kill", tiny_spec, cifar_dir, url, n_trials=9, epochs=20, workers=3),
        cwd=tmp_path,
        HPO32_HEARTBEAT="1",
    )
    try:
        number, pid = _wait_for_running_trial_with_epoch(url)
        os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "killed by signal 9" in out
    study = optuna.load_study(study_name="kill", storage=url)
    assert len(_finished(study)) == 9
    [failed] = study.get_trials(states=(TrialState.FAIL,))
    assert failed.number == number
    retried = [t for t in _finished(study) if t.system_attrs.get("failed_trial") == number]
    assert len(retried) == 1 and retried[0].params == failed.params
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


def test_worker_joins_an_existing_study_and_stops_when_the_budget_is_spent(
    tmp_path, cifar_dir, tiny_spec
):
    url = f"sqlite:///{tmp_path}/hpo32.db"
    res = run_hpo32(
        *search_args("j", tiny_spec, cifar_dir, url, n_trials=1, epochs=1),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    res = run_hpo32("worker", "j", "--storage", url, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(optuna.load_study(study_name="j", storage=url).trials) == 1  # nothing owed

    res = run_hpo32(
        *search_args("spent", tiny_spec, cifar_dir, url, budget="3s", epochs=1),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    before = len(optuna.load_study(study_name="spent", storage=url).trials)
    res = run_hpo32("worker", "spent", "--storage", url, cwd=tmp_path)
    assert res.returncode == 0
    assert "no budget left" in res.stdout
    assert len(optuna.load_study(study_name="spent", storage=url).trials) == before
    res = run_hpo32("worker", "ghost", "--storage", url, cwd=tmp_path)
    assert res.returncode == 2 and "no study named 'ghost'" in res.stderr


def test_gpus_start_one_worker_per_gpu_each_seeing_only_its_own(tmp_path, cifar_dir, tiny_spec):
    # On a machine without GPUs TensorFlow falls back to the CPU; what matters here is that
    # each worker process was given exactly one of the listed devices.
    url = f"sqlite:///{tmp_path}/hpo32.db"
    res = run_hpo32(
        *search_args("g", tiny_spec, cifar_dir, url, n_trials=4, epochs=1, gpus="0,1"),
        cwd=tmp_path,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    trials = optuna.load_study(study_name="g", storage=url).get_trials()
    assert len(trials) == 4
    by_worker = {}
    for t in trials:
        by_worker.setdefault(t.user_attrs["worker"], set()).add(t.user_attrs["gpu"])
    assert all(len(gpus) == 1 for gpus in by_worker.values())
    assert set().union(*by_worker.values()) <= {"0", "1"}
    assert len(Records(make_engine(url), create=False).sessions("g")) == 2
