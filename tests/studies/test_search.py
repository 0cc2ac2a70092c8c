"""End to end: the real CLI in a fresh process on generated CIFAR-10 files and a real SQLite DB."""

from __future__ import annotations

import csv
import json
import signal
import sqlite3
import time

import optuna
import pytest
from optuna.trial import TrialState

from hpo32.storage import Records, make_engine
from tests.studies.conftest import popen_hpo32, run_hpo32, search_args


def states(study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def test_search_records_trials_then_resume_adds_more(tmp_path, cifar_dir, tiny_spec):
    url = f"sqlite:///{tmp_path}/hpo32.db"
    res = run_hpo32(
        *search_args("tiny", tiny_spec, cifar_dir, url, n_trials=2),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr

    study = optuna.load_study(study_name="tiny", storage=url)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2
    space_names = {
        "conv_blocks",
        "filters_1",
        "filters_2",
        "convs_per_block",
        "fc_layers",
        "fc_units_1",
        "batch_size",
        "activation",
        "optimizer",
        "learning_rate",
    }
    for t in complete:
        assert sorted(t.intermediate_values) == [1, 2]
        assert 0.0 <= t.value <= 1.0
        assert t.value == pytest.approx(t.intermediate_values[2])
        assert set(t.params) <= space_names | set(t.user_attrs["config"])
        for attr in ("train_seconds", "images_per_second", "eval_seconds", "peak_rss_mb"):
            assert t.user_attrs[attr] > 0, attr
        assert t.user_attrs["engine"] == "optuna" and t.user_attrs["dataset"] == "cifar10"
    best = study.best_trial
    model = tmp_path / "hpo32-artifacts" / best.user_attrs["model_path"]
    assert model.is_file()

    records = Records(make_engine(url), create=False)
    result = records.result("tiny")
    assert result["trial_number"] == best.number and 0 <= result["test_accuracy"] <= 1
    [session] = records.sessions("tiny")
    assert session.exit_reason == "n_trials" and session.trials_run == 2

    before = {t.number: (t.params, t.value) for t in complete}
    res = run_hpo32("resume", "tiny", "--n-trials", 3, "--storage", url, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    study = optuna.load_study(study_name="tiny", storage=url)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3
    after = {t.number: (t.params, t.value) for t in complete}
    assert {k: after[k] for k in before} == before  # completed trials are never rerun
    assert len(records.sessions("tiny")) == 2

    # a budget left that is shorter than the quickest first epoch recorded is spent: a trial
    # started now could not measure anything (a new process knows it from the database).
    # Checked here, where every trial ran whole epochs; a budget test's trials may all be cut
    # in their first epoch on a slow machine.
    from hpo32.search.training import first_epoch_seconds  # the rule; unit-tested in test_training

    quickest = min(first_epoch_seconds(t.user_attrs) for t in complete)
    records.set_budget("tiny", records.used_seconds("tiny") + quickest * 0.8)
    res = run_hpo32("resume", "tiny", "--storage", url, cwd=tmp_path)
    assert res.returncode == 0 and "spent its budget" in res.stdout, res.stdout + res.stderr
    assert len(optuna.load_study(study_name="tiny", storage=url).trials) == len(complete)
    records.set_budget("tiny", None)

    # list / show / export read the same database
    res = run_hpo32("list", "--json", "--storage", url, cwd=tmp_path)
    [row] = json.loads(res.stdout)
    assert row["name"] == "tiny" and row["states"]["complete"] == 3
    assert row["best_value"] == pytest.approx(study.best_value)
    res = run_hpo32("show", "tiny", "--json", "--storage", url, cwd=tmp_path)
    info = json.loads(res.stdout)
    assert info["best_trial"]["number"] == study.best_trial.number
    assert info["best_trial"]["config"] == study.best_trial.user_attrs["config"]
    curves = tmp_path / "curves"
    res = run_hpo32("show", "tiny", "--storage", url, "--out", curves, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "best trial" in res.stdout and "conv_blocks" in res.stdout
    assert "Total params" in res.stdout  # the best model's summary
    assert (curves / "curves.png").stat().st_size > 1000
    assert "plotly" in (curves / "curves.html").read_text()[:100000]

    # predict: PNG and JPEG of any size, a table per image whose probabilities sum to 1
    from PIL import Image

    Image.new("RGB", (50, 40), (200, 30, 30)).save(tmp_path / "red.png")
    Image.new("RGB", (32, 32), (20, 30, 200)).save(tmp_path / "blue.jpg")
    res = run_hpo32(
        "predict",
        "tiny",
        tmp_path / "red.png",
        tmp_path / "blue.jpg",
        "--top",
        3,
        "--json",
        "--storage",
        url,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout)
    assert [r["image"] for r in results] == [str(tmp_path / "red.png"), str(tmp_path / "blue.jpg")]
    for r in results:
        assert r["total_probability"] == pytest.approx(1.0, abs=1e-4)
        probs = [p["probability"] for p in r["predictions"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True)
        assert {p["class_name"] for p in r["predictions"]} <= {
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        }
    res = run_hpo32("predict", "tiny", tmp_path / "red.png", "--storage", url, cwd=tmp_path)
    assert "RANK" in res.stdout and "PROBABILITY" in res.stdout
    res = run_hpo32("predict", "tiny", tmp_path / "nope.png", "--storage", url, cwd=tmp_path)
    assert res.returncode == 2 and "image" in res.stderr and "nope.png" in res.stderr
    assert "Traceback" not in res.stderr
    out = tmp_path / "trials.csv"
    res = run_hpo32(
        "export", "tiny", "--format", "csv", "--out", out, "--storage", url, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(out.open()))
    assert [int(r["number"]) for r in rows] == [t.number for t in study.trials]
    assert "params_conv_blocks" in rows[0]


def test_warm_start_configs_run_first_with_the_defaults_filled_in(tmp_path, cifar_dir, tiny_spec):
    from hpo32.studies.spec import load_spec_file

    tiny_spec.write_text(
        tiny_spec.read_text() + "warm_start:\n  - {}\n"
        "  - {conv_blocks: 1, batch_size: 64}\n  - {}\n"
    )
    url = f"sqlite:///{tmp_path}/hpo32.db"
    res = run_hpo32(
        *search_args("w", tiny_spec, cifar_dir, url, n_trials=3, pruner="asha"),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    space = load_spec_file(tiny_spec).build_space()
    trials = optuna.load_study(study_name="w", storage=url).get_trials()
    assert trials[0].user_attrs["config"] == space.defaults()
    assert trials[1].user_attrs["config"] == space.complete({"conv_blocks": 1, "batch_size": 64})
    assert trials[1].user_attrs["config"]["conv_blocks"] == 1
    # the repeated default is queued once; the third trial is the sampler's
    assert len(trials) == 3 and "fixed_params" not in trials[2].system_attrs


def test_search_budget_is_respected(tmp_path, cifar_dir, tiny_spec):
    url = f"sqlite:///{tmp_path}/hpo32.db"
    budget = 20.0  # from the command's start: imports, loading and the test are inside
    res = run_hpo32(
        *search_args("b", tiny_spec, cifar_dir, url, budget=f"{budget:g}s", epochs=3),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    records = Records(make_engine(url), create=False)
    [session] = records.sessions("b")
    assert session.exit_reason == "budget"
    study = optuna.load_study(study_name="b", storage=url)
    trials = study.get_trials()
    assert len(trials) >= 1
    start = session.started_at
    epoch_seconds = max(
        (t.user_attrs["train_seconds"] + t.user_attrs["eval_seconds"])
        / max(1, len(t.intermediate_values))
        for t in trials
        if "train_seconds" in t.user_attrs
    )
    started = [t for t in trials if t.state != TrialState.WAITING]
    for t in started:
        # no trial starts after the budget
        assert t.datetime_start.timestamp() <= start + budget
    for t in trials:
        if t.state == TrialState.WAITING:  # only a trial the budget cut in its first epoch
            cut = trials[t.user_attrs["retry_of"]]
            assert cut.state == TrialState.FAIL and cut.user_attrs["stopped_by"] == "search_budget"
    last_end = max(t.datetime_complete.timestamp() for t in started)
    # a running trial is cut at the budget: the overrun is at most one epoch (plus the save)
    assert last_end - start <= budget + epoch_seconds + 2.0
    assert session.ended_at - start <= budget + epoch_seconds + 10.0
    assert records.used_seconds("b") == pytest.approx(session.ended_at - start)
    # the budget is spent: resume says so and changes nothing
    res = run_hpo32("resume", "b", "--storage", url, cwd=tmp_path)
    assert res.returncode == 0 and "spent its budget" in res.stdout
    assert len(optuna.load_study(study_name="b", storage=url).trials) == len(trials)


def _wait_for_intermediate(db, timeout=120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            con = sqlite3.connect(db)
            n = con.execute("SELECT count(*) FROM trial_intermediate_values").fetchone()[0]
            con.close()
            if n:
                return
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    raise AssertionError("no epoch was recorded in time")


def test_ctrl_c_mid_trial_then_resume_loses_nothing(tmp_path, cifar_dir, tiny_spec):
    db = tmp_path / "hpo32.db"
    url = f"sqlite:///{db}"
    proc = popen_hpo32(
        *search_args("c", tiny_spec, cifar_dir, url, n_trials=3, epochs=30),
        cwd=tmp_path,
    )
    try:
        _wait_for_intermediate(db)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    assert "hpo32 resume c" in out

    study = optuna.load_study(study_name="c", storage=url)
    [interrupted] = study.get_trials(states=(TrialState.FAIL,))
    assert interrupted.user_attrs["stopped_by"] == "interrupt"
    assert interrupted.intermediate_values  # what it measured before the stop is kept
    [waiting] = study.get_trials(states=(TrialState.WAITING,))
    assert waiting.system_attrs["fixed_params"] == interrupted.params
    records = Records(make_engine(url), create=False)
    assert records.sessions("c")[0].exit_reason == "interrupted"

    res = run_hpo32("resume", "c", "--storage", url, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr
    study = optuna.load_study(study_name="c", storage=url)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3
    assert complete[0].params == interrupted.params  # the interrupted config ran again first
    assert states(study) == {"COMPLETE": 3, "FAIL": 1}


def test_a_killed_process_trial_becomes_fail_and_is_retried_on_resume(
    tmp_path, cifar_dir, tiny_spec
):
    db = tmp_path / "hpo32.db"
    url = f"sqlite:///{db}"
    proc = popen_hpo32(
        *search_args("k", tiny_spec, cifar_dir, url, n_trials=2, epochs=30, budget="10m"),
        cwd=tmp_path,
        HPO32_HEARTBEAT="1",
    )
    try:
        _wait_for_intermediate(db)
        proc.kill()  # SIGKILL: no chance to record anything
        proc.wait(timeout=30)
    finally:
        proc.kill()
    study = optuna.load_study(study_name="k", storage=url)
    [running] = study.get_trials(states=(TrialState.RUNNING,))
    records = Records(make_engine(url), create=False)
    [killed] = records.sessions("k")
    assert killed.ended_at is None and killed.last_seen > killed.started_at
    time.sleep(4.5)  # the grace period (4 heartbeats) passes

    res = run_hpo32("resume", "k", "--storage", url, cwd=tmp_path, timeout=600, HPO32_HEARTBEAT="1")
    assert res.returncode == 0, res.stderr
    study = optuna.load_study(study_name="k", storage=url)
    [failed] = study.get_trials(states=(TrialState.FAIL,))
    assert failed.number == running.number
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2
    retried = [t for t in complete if t.system_attrs.get("failed_trial") == failed.number]
    assert len(retried) == 1 and retried[0].params == failed.params
    # the killed session's budget counts up to its last sign of life, not to the resume
    used = records.used_seconds("k")
    sessions = records.sessions("k")
    assert used == pytest.approx(
        (killed.last_seen - killed.started_at) + (sessions[1].ended_at - sessions[1].started_at),
        abs=0.5,
    )
