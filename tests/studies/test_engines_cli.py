"""The real CLI with every engine on one dataset, recorded in one database, then compared."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

from tests.studies.conftest import run_hpo32, search_args

ENGINES = ["keras-tuner:random", "autokeras:greedy"]


@pytest.mark.slow
def test_engines_record_side_by_side_resume_without_duplicates_and_compare(
    tmp_path, cifar_dir, tiny_spec
):
    url = f"sqlite:///{tmp_path}/hpo32.db"
    names = []
    for engine in ["optuna", *ENGINES]:
        name = engine.replace(":", "-")
        names.append(name)
        res = run_hpo32(
            *search_args(name, tiny_spec, cifar_dir, url, engine=engine, n_trials=2, epochs=1),
            cwd=tmp_path,
            timeout=600,
        )
        assert res.returncode == 0, res.stdout + res.stderr
        study = optuna.load_study(study_name=name, storage=url)
        finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
        assert len(finished) == 2
        assert {t.user_attrs["engine"] for t in finished} == {engine}
        for t in finished:
            assert t.intermediate_values
    # resume a KerasTuner study: one more trial, none duplicated
    res = run_hpo32(
        "resume", "keras-tuner-random", "--n-trials", 3, "--storage", url, cwd=tmp_path, timeout=600
    )
    assert res.returncode == 0, res.stdout + res.stderr
    study = optuna.load_study(study_name="keras-tuner-random", storage=url)
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) == 3
    ids = [t.user_attrs["kt_trial_id"] for t in finished]
    assert len(set(ids)) == 3

    res = run_hpo32("compare", *names, "--json", "--storage", url, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["study"] for r in rows] == names
    assert [r["engine"] for r in rows] == ["optuna", *ENGINES]
    for r in rows:
        assert r["dataset"] == "cifar10"
        assert 0 <= r["best_val_accuracy"] <= 1
        assert r["median_seconds_per_trial"] > 0
        assert r["seconds_to_95pct_of_best"] is not None
        assert r["test_accuracy"] is not None
    res = run_hpo32("compare", *names, "--storage", url, cwd=tmp_path)
    assert "TO 95% OF BEST" in res.stdout and "autokeras:greedy" in res.stdout
    res = run_hpo32("compare", "nope", "--storage", url, cwd=tmp_path)
    assert res.returncode == 2 and "no study named 'nope'" in res.stderr


def test_several_workers_are_refused_for_keras_tuner(tmp_path, cifar_dir, tiny_spec):
    res = run_hpo32(
        "search",
        "--study",
        "kt",
        "--spec",
        tiny_spec,
        "--engine",
        "keras-tuner:random",
        "--workers",
        2,
        "--n-trials",
        2,
        "--storage",
        f"sqlite:///{tmp_path}/x.db",
        cwd=tmp_path,
    )
    assert res.returncode == 2 and "one worker per study" in res.stderr
    assert not (tmp_path / "x.db").exists()
