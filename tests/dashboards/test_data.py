"""The figure data: pure helpers, and SQL over a generated database checked against the
trials that were written."""

from __future__ import annotations

import math
import sqlite3
import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from hpo32.dashboards import data
from hpo32.dashboards.views.studies import study_row
from hpo32.dashboards.views.study import study_header
from tests.dashboards.dbgen import HOSTILE_NAME, StudyPlan, bulk_write_study, write_study


# -- pure helpers -------------------------------------------------------------------------------
def test_best_so_far_is_a_running_maximum_that_skips_missing_values():
    assert data.best_so_far([]) == []
    assert data.best_so_far([None, 0.2, 0.1, None, 0.5, 0.4]) == [None, 0.2, 0.2, 0.2, 0.5, 0.5]


def test_history_from_rows_orders_by_number_and_by_completion_time():
    rows = [  # (number, state, value, start, complete): trial 1 finished before trial 0
        (0, "COMPLETE", 0.5, 100.0, 400.0),
        (1, "COMPLETE", 0.3, 110.0, 200.0),
        (2, "PRUNED", 0.2, 120.0, 250.0),
        (3, "FAIL", None, 130.0, 140.0),
        (4, "RUNNING", None, 300.0, None),
        (5, "COMPLETE", 0.7, 310.0, 350.0),
        (6, "COMPLETE", float("inf"), 320.0, 360.0),  # never plotted
    ]
    h = data.history_from_rows(rows)
    assert h["by_number"] == {
        "number": [0, 1, 5],
        "value": [0.5, 0.3, 0.7],
        "best": [0.5, 0.5, 0.7],
    }
    assert h["by_time"]["number"] == [1, 5, 0]
    assert h["by_time"]["best"] == [0.3, 0.7, 0.7]
    assert h["counts"] == {"COMPLETE": 4, "PRUNED": 1, "FAIL": 1, "RUNNING": 1}
    assert h["trials"]["value"][6] is None


def test_the_search_clock_leaves_out_gaps_and_counts_overlaps_once():
    from hpo32.storage.records import search_clock

    spent = search_clock([(0, 10), (5, 20), (100, 110)])
    assert spent(-5) == 0
    assert spent(10) == 10
    assert spent(20) == 20
    assert spent(50) == 20  # paused between sessions
    assert spent(105) == 25
    assert spent(1000) == 30
    assert search_clock([])(5) == 0


def test_even_sample_spreads_keeps_and_caps():
    assert data.even_sample(range(5), 10) == [0, 1, 2, 3, 4]
    idx = data.even_sample(range(1000), 100, keep=[999])
    assert len(idx) == 100 and 999 in idx and idx == sorted(idx)
    assert max(b - a for a, b in zip(idx, idx[1:], strict=False)) <= 12  # no big holes


def test_select_curve_trials_keeps_every_state_within_the_cap():
    rows = [(i, i, "COMPLETE", i / 1000) for i in range(300)]
    rows += [(1000 + i, 300 + i, "PRUNED", 0.1) for i in range(100)]
    rows += [(2000 + i, 400 + i, "FAIL", None) for i in range(50)]
    rows += [(3000, 500, "RUNNING", None)]
    chosen = data.select_curve_trials(rows, 100)
    assert len(chosen) == len(set(chosen)) == 100
    states = {tid: state for tid, _n, state, _v in rows}
    picked = [states[t] for t in chosen]
    assert picked.count("RUNNING") == 1
    assert picked.count("FAIL") == 10 and picked.count("PRUNED") == 25
    best = sorted((r for r in rows if r[2] == "COMPLETE"), key=lambda r: -r[3])[:64]
    assert {r[0] for r in best} <= set(chosen)
    few = [(i, i, "COMPLETE", 0.5) for i in range(3)] + [
        (10 + i, 10 + i, "FAIL", None) for i in range(30)
    ]
    assert len(data.select_curve_trials(few, 20)) == 20  # the complete ones' room is reused


def test_spearman_with_ties_and_degenerate_inputs():
    assert data.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert data.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert data.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833)
    assert data.spearman([1, 2], [1, 2]) is None
    assert data.spearman([1, 1, 1], [1, 2, 3]) is None


def test_config_key_ignores_key_order_and_float_noise():
    assert data.config_key({"a": 1, "b": 0.1 + 0.2}) == data.config_key({"b": 0.3, "a": 1})
    assert data.config_key({"a": True}) != data.config_key({"a": 1.0})


def _num(kind: str, value: float, to: float | None = None) -> dict:
    cond = {"filterType": "number", "type": kind, "filter": value}
    return cond if to is None else {**cond, "filterTo": to}


def _text(kind: str, value: str) -> dict:
    return {"filterType": "text", "type": kind, "filter": value}


def test_grid_rows_filter_sort_and_slice_as_ag_grid_asks():
    rows = [
        {"number": i, "value": None if i % 5 == 0 else i / 10, "opt": ["adam", "sgd"][i % 2]}
        for i in range(23)
    ]
    desc = [{"colId": "value", "sort": "desc"}]
    block, matching = data.grid_rows(rows, 0, 5, desc)
    assert matching == 23 and [r["number"] for r in block] == [22, 21, 19, 18, 17]
    last, _ = data.grid_rows(rows, 20, 25, desc)
    assert len(last) == 3 and all(r["value"] is None for r in last)  # empty cells last
    first, _ = data.grid_rows(rows, 0, 3, [{"colId": "value", "sort": "asc"}])
    assert [r["number"] for r in first] == [1, 2, 3]
    both = {"opt": _text("contains", "ADA"), "value": _num("greaterThanOrEqual", 1)}
    block, matching = data.grid_rows(rows, 0, 50, None, both)
    assert matching == len(block) == 5 and all(r["opt"] == "adam" for r in block)
    _, matching = data.grid_rows(rows, 0, 50, None, {"value": _num("inRange", 0.3, 0.6)})
    assert matching == 3  # 0.3, 0.4, 0.6 (0.5 is row 5: empty)
    _, matching = data.grid_rows(
        rows, 0, 50, None, {"value": {"filterType": "number", "type": "blank"}}
    )
    assert matching == 5
    either = {"filterType": "text", "operator": "OR",
              "conditions": [_text("equals", "sgd"), _text("startsWith", "ad")]}  # fmt: skip
    assert data.grid_rows(rows, 0, 50, None, {"opt": either})[1] == 23
    legacy = {"filterType": "text", "operator": "AND",
              "condition1": _text("notEqual", "sgd"),
              "condition2": _text("endsWith", "am")}  # fmt: skip
    assert data.grid_rows(rows, 0, 50, None, {"opt": legacy})[1] == 12
    # a condition it cannot read filters nothing out; a block past the end is empty
    assert data.grid_rows(rows, 0, 50, None, {"opt": {"type": "regex", "filter": "x"}})[1] == 23
    assert data.grid_rows(rows, 40, 45) == ([], 23)


def test_cache_computes_once_per_key_and_evicts_oldest():
    cache = data.Cache(size=2)
    calls = []
    for key in ("a", "a", "b", "c", "a"):
        cache.get(key, lambda k=key: calls.append(k) or k)
    assert calls == ["a", "b", "c", "a"]


# -- SQL over the generated database -------------------------------------------------------------
def _complete(plan):
    return [t for t in plan.trials if t.state == TrialState.COMPLETE]


def test_list_studies_covers_hpo32_and_plain_optuna_studies(engine, plans):
    rows = {r["name"]: r for r in data.list_studies(engine)}
    assert set(rows) == set(plans)
    cifar = rows["cifar-optuna"]
    assert (cifar["dataset"], cifar["engine"]) == ("cifar10", "optuna")
    assert cifar["states"]["COMPLETE"] == len(_complete(plans["cifar-optuna"]))
    assert cifar["states"]["RUNNING"] == 2 and cifar["running"]
    assert cifar["best_value"] == pytest.approx(
        max(t.value for t in _complete(plans["cifar-optuna"]))
    )
    assert rows["cifar-kt"]["engine"] == "keras-tuner:random"
    assert rows["empty"]["n_trials"] == 0 and rows["empty"]["best_value"] is None
    assert rows["all-failed"]["states"] == {"FAIL": 6}
    plain = rows[HOSTILE_NAME]
    assert plain["dataset"] is None and plain["engine"] is None and not plain["running"]
    assert rows["cifar-optuna"]["space_key"] == rows["inet-optuna"]["space_key"]
    assert data.default_dataset_pair(list(rows.values())) == ("inet-optuna", "cifar-optuna")


def test_history_matches_the_written_trials(engine, plans):
    plan = plans["cifar-optuna"]
    h = data.history(engine, "cifar-optuna")
    assert h["trials"]["number"] == list(range(len(plan.trials)))
    assert h["trials"]["state"] == [t.state.name for t in plan.trials]
    done = _complete(plan)
    assert h["by_number"]["value"] == pytest.approx([t.value for t in done])
    assert h["by_number"]["best"][-1] == pytest.approx(max(t.value for t in done))
    by_time = sorted(done, key=lambda t: t.datetime_complete)
    assert h["by_time"]["number"] == [t.number for t in by_time]
    assert h["by_time"]["time"][0] == pytest.approx(
        by_time[0].datetime_complete.timestamp(), abs=1e-3
    )
    running = [i for i, s in enumerate(h["trials"]["state"]) if s == "RUNNING"]
    assert all(h["trials"]["complete"][i] is None for i in running)


def test_times_do_not_depend_on_the_local_time_zone(engine, plans, monkeypatch):
    """Optuna stores naive UTC; the dashboards read it as UTC in any zone."""
    plan = plans[HOSTILE_NAME]
    last = max(t.datetime_complete.timestamp() for t in plan.trials)  # in the writer's zone
    first = min(
        t.datetime_complete.timestamp() for t in plan.trials if t.state == TrialState.COMPLETE
    )
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        row = next(r for r in data.list_studies(engine) if r["name"] == HOSTILE_NAME)
        assert row["last_activity"] == pytest.approx(last, abs=1e-3)
        assert data.history(engine, HOSTILE_NAME)["by_time"]["time"][0] == pytest.approx(
            first, abs=1e-3
        )
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("name", ["empty", "all-failed"])
def test_studies_without_complete_trials(engine, name):
    h = data.history(engine, name)
    assert h["by_number"]["value"] == [] and h["by_time"]["best"] == []
    assert data.param_samples(engine, name)["trials"] == []
    imp = data.importances(engine, name)
    assert imp["params"] == [] and "at least 2" in imp["note"]
    assert data.best_trial(engine, name) is None
    assert data.categorical_effects(engine, name) == {p: [] for p in data.EFFECT_PARAMS} or all(
        e["count"] == 0 for v in data.categorical_effects(engine, name).values() for e in v
    )


def test_unknown_study_is_an_error_naming_it(engine):
    with pytest.raises(data.UnknownStudy, match="no-such"):
        data.history(engine, "no-such")
    with pytest.raises(data.UnknownStudy):
        data.study_info(engine, "no-such")


def test_learning_curves_keep_states_and_epochs(engine, plans):
    plan = plans["cifar-optuna"]
    lc = data.learning_curves(engine, "cifar-optuna")
    with_curves = [t for t in plan.trials if t.intermediate_values]
    assert lc["n_total"] == len(with_curves) == lc["n_shown"] and lc["note"] == ""
    by_number = {c["number"]: c for c in lc["curves"]}
    for t in with_curves:
        curve = by_number[t.number]
        assert curve["state"] == t.state.name
        assert curve["steps"] == sorted(t.intermediate_values)
        assert curve["values"] == pytest.approx([t.intermediate_values[s] for s in curve["steps"]])
    assert {"PRUNED", "FAIL", "COMPLETE"} <= {c["state"] for c in lc["curves"]}
    epoch1 = [t.intermediate_values[1] for t in with_curves if 1 in t.intermediate_values]
    assert lc["mean"]["steps"][0] == 1 and lc["mean"]["counts"][0] == len(epoch1)
    assert lc["mean"]["values"][0] == pytest.approx(sum(epoch1) / len(epoch1))
    capped = data.learning_curves(engine, "cifar-optuna", cap=10)
    assert capped["n_shown"] == 10 and "10 of" in capped["note"]


def test_param_samples_keep_conditional_params_absent(engine, plans):
    ps = data.param_samples(engine, "cifar-optuna")
    specs = {p["name"]: p for p in ps["params"]}
    assert specs["learning_rate"]["kind"] == "float" and specs["learning_rate"]["log"]
    assert specs["filters_1"]["kind"] == "int" and specs["filters_1"]["log"]
    assert specs["optimizer"]["kind"] == "categorical"
    assert specs["batch_norm"]["choices"] == [False, True]
    assert [p["name"] for p in ps["params"]][:2] == ["conv_blocks", "filters_1"]
    written = {t.number: t.user_attrs["config"] for t in _complete(plans["cifar-optuna"])}
    for t in ps["trials"]:
        assert t["params"] == written[t["number"]]  # the config attr, inactive ones absent
    assert any("filters_4" not in t["params"] for t in ps["trials"])
    sampled = data.param_samples(engine, "cifar-optuna", cap=10)
    best = max(
        written, key=lambda n: next(t.value for t in plans["cifar-optuna"].trials if t.number == n)
    )
    assert sampled["n_used"] == 10 and best in [t["number"] for t in sampled["trials"]]
    assert "10 of" in sampled["note"]
    best4 = sorted(
        written, key=lambda n: -next(t.value for t in plans["cifar-optuna"].trials if t.number == n)
    )[:4]
    top = data.param_samples(engine, "cifar-optuna", cap=3, top=0.1)  # the best 10%
    keep = math.ceil(0.1 * len(written))
    assert top["n_used"] == 3 and best4[0] in [t["number"] for t in top["trials"]]
    assert {t["number"] for t in top["trials"]} <= set(
        sorted(
            written,
            key=lambda n: -next(t.value for t in plans["cifar-optuna"].trials if t.number == n),
        )[:keep]
    )
    assert top["note"].startswith(f"best 10%: {keep} of {len(written)}")
    assert f"3 of {keep} of those" in top["note"]
    plain = data.param_samples(engine, HOSTILE_NAME)  # no config attr: Optuna's params
    assert "momentum" in {p["name"] for p in plain["params"]}


def test_importances_are_normalized_and_name_the_sample(engine):
    imp = data.importances(engine, "cifar-optuna")
    assert imp["method"] == "PED-ANOVA" and imp["params"]
    assert imp["importances"] == sorted(imp["importances"], reverse=True)
    assert sum(imp["importances"]) == pytest.approx(1.0)
    assert imp["n_used"] == imp["n_complete"]
    few = data.importances(engine, "cifar-optuna", cap=20)
    assert few["n_used"] == 20 and "latest" in few["note"]


def test_categorical_effects_aggregate_like_python(engine, plans):
    effects = data.categorical_effects(engine, "cifar-optuna")
    done = _complete(plans["cifar-optuna"])
    for param in data.EFFECT_PARAMS:
        for entry in effects[param]:
            vals = [t.value for t in done if t.params.get(param) == entry["choice"]]
            assert entry["count"] == len(vals)
            if vals:
                mean = sum(vals) / len(vals)
                assert entry["mean"] == pytest.approx(mean)
                assert entry["max"] == pytest.approx(max(vals))
                std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
                assert entry["std"] == pytest.approx(std, abs=1e-6)
    assert [e["choice"] for e in effects["pooling"]] == ["max", "avg"]


def test_rank_correlation_pairs_the_shared_configs(engine, plans):
    rc = data.rank_correlation(engine, "inet-optuna", "cifar-optuna")
    inet = {
        data.config_key(t.user_attrs["config"]): t.value for t in _complete(plans["inet-optuna"])
    }
    cifar = {
        data.config_key(t.user_attrs["config"]): t.value for t in _complete(plans["cifar-optuna"])
    }
    shared = set(inet) & set(cifar)
    assert rc["n_pairs"] == len(shared) >= 3
    assert sorted(rc["a"]) == pytest.approx(sorted(inet[k] for k in shared))
    expected = data.spearman([inet[k] for k in sorted(shared)], [cifar[k] for k in sorted(shared)])
    assert rc["spearman"] == pytest.approx(expected)
    assert data.rank_correlation(engine, "cifar-kt", "cifar-ak")["n_pairs"] == 0


def test_best_over_time_throughput_and_distribution(engine, plans):
    series = data.best_over_time(engine, ["cifar-optuna", "cifar-kt", "empty"])
    first = series[0]
    assert first["best"] == data.best_so_far(first["value"])
    assert first["hours"] == sorted(first["hours"]) and first["hours"][0] >= 0
    assert first["span_hours"] >= first["hours"][-1]
    assert series[2]["best"] == [] and series[2]["finished"] == []
    tp = data.throughput(series, bins=6)
    assert len(tp["hours"]) == 6
    finished = [t for t in plans["cifar-kt"].trials if t.state != TrialState.RUNNING]
    kt = tp["studies"][1]
    assert kt["finished"] == len(finished)
    width = tp["hours"][1] - tp["hours"][0]
    assert sum(kt["per_hour"]) * width == pytest.approx(len(finished))
    dist = data.value_distribution(series)
    vals = sorted(t.value for t in _complete(plans["cifar-optuna"]))
    assert dist[0]["n"] == len(vals) and dist[0]["min"] == pytest.approx(vals[0])
    assert dist[0]["q1"] <= dist[0]["median"] <= dist[0]["q3"]
    assert dist[2] == {"name": "empty", "engine": "optuna", "n": 0}


def test_best_trial_has_config_and_test_accuracy(engine, plans):
    best = data.best_trial(engine, "cifar-optuna")
    top = max(_complete(plans["cifar-optuna"]), key=lambda t: t.value)
    assert best["number"] == top.number and best["config"] == top.user_attrs["config"]
    assert best["result"]["test_accuracy"] == pytest.approx(top.value - 0.01)
    assert best["param_names"][0] == "conv_blocks"
    plain = data.best_trial(engine, HOSTILE_NAME)
    assert plain["result"] is None and "momentum" in plain["config"]


def test_trial_table_rows_and_types(engine, plans):
    table = data.trial_table(engine, "cifar-optuna")
    plan = plans["cifar-optuna"]
    assert [r["number"] for r in table["rows"]] == [t.number for t in plan.trials]
    assert table["columns"][:3] == ["number", "state", "value"]
    assert table["types"]["value"] == "numeric" and table["types"]["optimizer"] == "text"
    assert table["types"]["batch_norm"] == "text"  # booleans shown as text
    row = table["rows"][0]
    assert row["optimizer"] == plan.trials[0].params["optimizer"]
    assert all(r.get("filters_4") is None for r in table["rows"] if r["conv_blocks"] < 4)
    page, matching = data.grid_rows(
        table["rows"], 0, 10, [{"colId": "value", "sort": "desc"}],
        {"state": {"filterType": "text", "type": "equals", "filter": "COMPLETE"}},
    )  # fmt: skip
    assert matching == len(_complete(plan))
    assert page[0]["value"] == pytest.approx(max(t.value for t in _complete(plan)))


def test_bulk_writer_stores_what_optuna_stores(tmp_path):
    """The benchmark's bulk insert and Optuna's own API give the same database content."""
    plan = StudyPlan("same", 25, "cifar10", "optuna", seed=42, running=1)
    by_api = f"sqlite:///{tmp_path}/api.db"
    by_bulk = f"sqlite:///{tmp_path}/bulk.db"
    trials = write_study(by_api, plan)
    plan2 = StudyPlan("same", 25, "cifar10", "optuna", seed=42, running=1)
    plan2.trials = trials
    bulk_write_study(by_bulk, plan2)
    a = optuna.load_study(study_name="same", storage=by_api).trials
    b = optuna.load_study(study_name="same", storage=by_bulk).trials
    for x, y in zip(a, b, strict=True):
        assert (
            x.number,
            x.state,
            x.value,
            x.params,
            x.distributions,
            x.user_attrs,
            x.intermediate_values,
            x.datetime_start,
            x.datetime_complete,
        ) == (
            y.number,
            y.state,
            y.value,
            y.params,
            y.distributions,
            y.user_attrs,
            y.intermediate_values,
            y.datetime_start,
            y.datetime_complete,
        )
    ea, eb = data.open_engine(by_api), data.open_engine(by_bulk)
    assert data.history(ea, "same") == data.history(eb, "same")
    assert data.trial_table(ea, "same") == data.trial_table(eb, "same")


# -- live data and read-only access ---------------------------------------------------------------
def test_fingerprint_changes_only_when_the_study_changes(tmp_path):
    url = f"sqlite:///{tmp_path}/live.db"
    write_study(url, StudyPlan("a", 5, seed=1))
    write_study(url, StudyPlan("b", 5, seed=2))
    eng = data.open_engine(url)
    fa, fb, fall = data.fingerprint(eng, ["a"]), data.fingerprint(eng, ["b"]), data.fingerprint(eng)
    assert data.fingerprint(eng, ["a"]) == fa  # stable while nothing happens
    study = optuna.load_study(study_name="b", storage=url)
    trial = study.ask()
    trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
    assert data.fingerprint(eng, ["a"]) == fa
    assert data.fingerprint(eng, ["b"]) != fb and data.fingerprint(eng) != fall
    fb = data.fingerprint(eng, ["b"])
    trial.report(0.3, 1)  # a running trial's new epoch
    assert data.fingerprint(eng, ["b"]) != fb
    fb = data.fingerprint(eng, ["b"])
    study.tell(trial, 0.4)
    assert data.fingerprint(eng, ["b"]) != fb
    eng.dispose()


def test_engine_is_read_only_and_never_blocks_a_writer(tmp_path):
    url = f"sqlite:///{tmp_path}/ro.db"
    write_study(url, StudyPlan("a", 20, seed=3))
    eng = data.open_engine(url)
    import sqlalchemy as sa

    with pytest.raises(sa.exc.OperationalError, match="readonly"):
        with eng.begin() as con:
            con.execute(sa.text("DELETE FROM trials"))
    # a writer holds the write lock while the dashboard reads ...
    writer = sqlite3.connect(str(tmp_path / "ro.db"), timeout=1)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE trials SET number = number WHERE trial_id = 1")
    t0 = time.perf_counter()
    assert data.history(eng, "a")["trials"]["number"]
    assert time.perf_counter() - t0 < 1.0
    # ... and readers in several threads never stop it from committing
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data.fingerprint(eng, ["a"])
            data.history(eng, "a")

    threads = [threading.Thread(target=read) for _ in range(4)]
    for th in threads:
        th.start()
    try:
        writer.commit()
        for k in range(20):
            t0 = time.perf_counter()
            writer.execute(
                "INSERT INTO study_user_attributes (study_id, key, value_json) VALUES (1, ?, '1')",
                (f"k{k}",),
            )
            writer.commit()
            assert time.perf_counter() - t0 < 0.5
    finally:
        stop.set()
        for th in threads:
            th.join()
        writer.close()
        eng.dispose()


# -- every database kind ---------------------------------------------------------------------------
def test_every_query_on_every_database_kind(database_url):
    """SQLite, PostgreSQL and MySQL/MariaDB give the same figure data, read-only."""
    import random

    import sqlalchemy as sa

    from hpo32.dashboards import figures
    from hpo32.search.space import default_space
    from tests.dashboards.dbgen import sample_config

    shared = [sample_config(default_space(), random.Random(70 + i)) for i in range(6)]
    a = write_study(database_url, StudyPlan("c", 10, "cifar10", seed=5, configs=shared, running=1))
    write_study(database_url, StudyPlan("i", 6, "imagenet32", seed=6, configs=shared))
    write_study(database_url, StudyPlan(HOSTILE_NAME, 3, None, None, seed=7, hpo32=False))
    eng = data.open_engine(database_url)
    try:
        assert {r["name"] for r in data.list_studies(eng)} == {"c", "i", HOSTILE_NAME}
        h = data.history(eng, "c")
        done = [t for t in a if t.state == TrialState.COMPLETE]
        assert h["by_number"]["value"] == pytest.approx([t.value for t in done])
        assert h["trials"]["state"] == [t.state.name for t in a]
        assert h["by_time"]["time"][0] == pytest.approx(
            min(t.datetime_complete for t in done).timestamp(), abs=1.0
        )
        lc = data.learning_curves(eng, "c")
        assert lc["n_shown"] == sum(bool(t.intermediate_values) for t in a)
        assert len(data.param_samples(eng, "c")["trials"]) == len(done)
        assert data.importances(eng, "c")["params"]
        effects = data.categorical_effects(eng, "c")
        assert sum(e["count"] for e in effects["pooling"]) == len(done)
        assert data.rank_correlation(eng, "i", "c")["n_pairs"] >= 1
        series = data.best_over_time(eng, ["c", "i"])
        figures.best_over_time_figure(series)
        assert len(data.trial_table(eng, "c")["rows"]) == len(a)
        assert data.best_trial(eng, "c")["result"]["test_accuracy"] is not None
        before = data.fingerprint(eng, ["c"])
        study = optuna.load_study(study_name="c", storage=database_url)
        study.tell(study.ask(), 0.5)
        assert data.fingerprint(eng, ["c"]) != before
        with pytest.raises(sa.exc.DBAPIError):  # the dashboards' engine cannot write
            with eng.begin() as con:
                con.execute(sa.text("DELETE FROM trial_values"))
    finally:
        eng.dispose()


def test_trial_times_are_read_as_optuna_writes_them_in_any_time_zone(tmp_path, monkeypatch):
    # Optuna's tables hold naive UTC; the dashboards and `hpo32 list` (storage.records) read
    # them through the one storage.records.to_timestamp, so both agree in any time zone.
    from hpo32.storage import make_engine
    from hpo32.storage.records import Records

    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+5:30: a local reading is 5.5 h off
    time.tzset()
    try:
        url = f"sqlite:///{tmp_path / 'tz.db'}"
        study = optuna.create_study(study_name="tz", storage=url, direction="maximize")
        before = time.time()
        trial = study.ask()
        study.tell(trial, 0.5)
        after = time.time()
        hist = data.history(data.open_engine(url), "tz")
        [start], [complete] = hist["trials"]["start"], hist["trials"]["complete"]
        assert before - 1 <= start <= complete <= after + 1
        [summary] = Records(make_engine(url)).summaries()
        assert before - 1 <= summary.last_activity <= after + 1
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_each_study_shows_the_backend_its_trials_trained_on(tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    write_study(url, StudyPlan("jax-study", 3, seed=1, backend="jax"))
    write_study(url, StudyPlan("older", 3, seed=2))  # made before backends were recorded
    write_study(url, StudyPlan("plain", 3, seed=3, hpo32=False))  # Optuna's own: not known
    study = optuna.create_study(study_name="attr-only", storage=url)
    study.set_user_attr("backend", "torch")  # a plain study that says which it used
    rows = {r["name"]: r for r in data.list_studies(data.open_engine(url))}
    assert {n: r["backend"] for n, r in rows.items()} == {
        "jax-study": "jax",
        "older": "tensorflow",
        "plain": None,
        "attr-only": "torch",
    }
    assert (
        "backend jax" in study_header(data.study_info(data.open_engine(url), "jax-study")).summary
    )
    assert study_row(rows["plain"]).backend == "unknown"
