"""The storage contract: every read of :mod:`hpo32.storage.queries` gives the same rows on
SQLite, PostgreSQL and MySQL/MariaDB, over a small study written with Optuna and Records
and read through a read-only engine."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from hpo32.storage import Records, make_engine, optuna_storage, queries

SPEC = {"epochs": 2, "space": {"base": "default"}}


@pytest.fixture
def written(database_url):
    """``(url, trial ids by number, t0, t1)``: study ``a`` (hpo32's, five trials in every
    state) and plain Optuna study ``b``, written between wall-clock times t0 and t1."""
    url = database_url
    t0 = time.time() - 1.0
    storage = optuna_storage(url)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="a", storage=storage, direction="maximize")
    study.set_user_attr("class_ids", ["n01", "n02"])
    study.set_user_attr("dataset", "ignored: hpo32's row wins")
    curves = {0: [0.1, 0.3], 1: [0.4, 0.8], 2: [0.05]}
    for number, value in enumerate((0.5, 0.8, None, None, None)):
        trial = study.ask()
        blocks = trial.suggest_int("conv_blocks", 1, 4)
        act = trial.suggest_categorical("activation", ["relu", "elu"])
        for step, acc in enumerate(curves.get(number, [])):
            trial.report(acc, step)
        if number != 4:
            trial.set_user_attr("config", {"conv_blocks": blocks, "activation": act})
        trial.set_user_attr("history", {"val_accuracy": curves.get(number, [0.2])})
        trial.set_user_attr("stopped_by", "epochs")
        if number == 2:
            study.tell(trial, state=TrialState.PRUNED)
        elif number == 3:
            study.tell(trial, state=TrialState.FAIL)
        elif value is not None:
            study.tell(trial, value)  # trial 4 is left running
    plain = optuna.create_study(study_name="b", storage=storage, direction="maximize")
    plain.set_user_attr("dataset", "cifar10")
    plain.set_user_attr("engine", "keras-tuner:random")
    plain.add_trial(
        optuna.trial.create_trial(
            params={"conv_blocks": 2},
            distributions={"conv_blocks": IntDistribution(1, 4)},
            value=0.6,
        )
    )
    records = Records(make_engine(url))
    records.add_study("a", "optuna", "cifar10", SPEC, 600.0)
    session = records.begin_session("a")
    records.end_session(session, "n_trials", 5)
    records.set_result("a", 1, 0.8, 0.75, "a/best.keras")
    ids = {t.number: t._trial_id for t in study.get_trials(deepcopy=False)}
    t1 = time.time() + 1.0
    records.engine.dispose()
    yield url, ids, t0, t1


def test_every_query_gives_the_written_rows(written):
    url, ids, t0, t1 = written
    engine = make_engine(url, read_only=True)
    try:
        _check(engine, ids, t0, t1)
    finally:
        engine.dispose()


def _check(engine, ids, t0, t1):
    assert queries.has_table(engine, "hpo32_sessions") and not queries.has_table(engine, "nope")
    sid = queries.study_id(engine, "a")
    with pytest.raises(queries.UnknownStudy, match="no study named 'nope'"):
        queries.study_id(engine, "nope")
    with pytest.raises(queries.UnknownStudy):
        queries.trials(engine, "nope")

    # trials, in number order, with their values and times
    trials = queries.trials(engine, "a")
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert [t.trial_id for t in trials] == [ids[n] for n in range(5)]
    assert [t.state for t in trials] == ["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "RUNNING"]
    assert [t.value for t in trials][:2] == [pytest.approx(0.5), pytest.approx(0.8)]
    assert trials[2].value == pytest.approx(0.05)  # Optuna keeps a pruned trial's last epoch
    assert [t.value for t in trials][3:] == [None, None]
    assert all(t0 <= t.started <= t1 for t in trials)
    assert all(t0 <= t.completed <= t1 for t in trials[:4]) and trials[4].completed is None
    done = queries.complete_trials(engine, "a")
    assert [(c.trial_id, c.number) for c in done] == [(ids[0], 0), (ids[1], 1)]
    assert [c.value for c in done] == [pytest.approx(0.5), pytest.approx(0.8)]

    # parameters in external form, with their distributions
    params = queries.trial_params(engine, [ids[0], ids[1], ids[4]])
    assert set(params) == {ids[0], ids[1], ids[4]}
    p = params[ids[0]]
    assert set(p) == {"conv_blocks", "activation"}
    assert p["activation"].value in ("relu", "elu")
    assert p["activation"].distribution == CategoricalDistribution(["relu", "elu"])
    assert p["conv_blocks"].distribution == IntDistribution(1, 4)
    assert isinstance(p["conv_blocks"].value, int)
    assert queries.study_trial_params(engine, "a") == queries.trial_params(engine, ids.values())
    assert queries.trial_params(engine, []) == {}

    # user attributes of trials
    configs = queries.trial_attr(engine, list(ids.values()), "config")
    assert set(configs) == {ids[n] for n in range(4)}  # trial 4 has none
    assert configs[ids[0]] == {n: v.value for n, v in params[ids[0]].items()}
    attrs = queries.study_trial_attrs(engine, "a", ("stopped_by", "config"))
    assert attrs[ids[4]] == {"stopped_by": "epochs"}
    assert attrs[ids[1]]["config"] == configs[ids[1]]
    assert queries.trial_user_attr(engine, "a", 1, "history") == {"val_accuracy": [0.4, 0.8]}
    assert queries.trial_user_attr(engine, "a", 1, "absent", default={}) == {}
    assert queries.trial_user_attr(engine, "a", 99, "history") is None

    # studies: attributes, specs, labels
    assert queries.study_attrs(engine, "a") == {
        "class_ids": ["n01", "n02"],
        "dataset": "ignored: hpo32's row wins",
    }
    assert queries.study_attrs(engine, "nope") == {}
    by_name = queries.study_attrs_by_name(engine, keys=("dataset", "engine"))
    assert by_name["b"] == {"dataset": "cifar10", "engine": "keras-tuner:random"}
    assert queries.study_specs(engine) == {"a": SPEC}
    assert queries.study_specs(engine, ["a"]) == {"a": SPEC}
    assert queries.study_specs(engine, ["b", "nope"]) == {}
    labels = queries.study_labels(engine, ["a", "b"])
    assert labels["a"] == queries.StudyLabel("cifar10", "optuna")
    assert labels["b"] == queries.StudyLabel("cifar10", "keras-tuner:random")
    with pytest.raises(queries.UnknownStudy):
        queries.study_labels(engine, ["a", "nope"])

    # hpo32's rows
    [session] = queries.sessions(engine, "a")
    assert session.exit_reason == "n_trials" and session.trials_run == 5
    assert t0 <= session.started_at <= session.ended_at <= t1
    assert queries.sessions(engine, "b") == []
    result = queries.study_result(engine, "a")
    assert result is not None and result["trial_number"] == 1
    assert result["test_accuracy"] == pytest.approx(0.75)
    assert queries.study_result(engine, "b") is None

    # learning curves
    means = queries.curve_means(engine, "a")
    assert [(m.step, m.count) for m in means] == [(0, 3), (1, 2)]
    assert means[0].mean == pytest.approx((0.1 + 0.4 + 0.05) / 3)
    assert means[1].mean == pytest.approx((0.3 + 0.8) / 2)
    curve = queries.curve_trials(engine, "a")
    assert [(c.number, c.has_intermediate) for c in curve] == [
        (0, True),
        (1, True),
        (2, True),
        (3, False),  # only a history attribute
        (4, False),
    ]
    assert curve[1].value == pytest.approx(0.8) and curve[3].value is None
    points = queries.intermediate_values(engine, [ids[0], ids[3]])
    assert set(points) == {ids[0]}
    assert sorted(points[ids[0]]) == [(0, pytest.approx(0.1)), (1, pytest.approx(0.3))]

    # categorical effects
    stats = queries.choice_stats(engine, "a", ["activation"])
    assert sum(s.count for s in stats) == 2 and {s.param_name for s in stats} == {"activation"}
    by_choice: dict[str, list[float]] = {}
    for n in (0, 1):
        by_choice.setdefault(params[ids[n]]["activation"].value, []).append(done[n].value)
    for s in stats:
        choice = queries.distribution(s.distribution_json).to_external_repr(s.raw_value)
        vals = by_choice[choice]
        assert s.count == len(vals) and s.max == pytest.approx(max(vals))
        assert s.mean == pytest.approx(sum(vals) / len(vals))
        assert s.mean_square == pytest.approx(sum(v * v for v in vals) / len(vals))

    # change marks
    marks = queries.change_marks(engine)
    assert marks is not None
    assert marks.trials[0] == 6 and marks.trials[4] == 1  # six trials, one running
    assert marks.studies == (2, max(sid, queries.study_id(engine, "b")))
    assert marks.sessions is not None and marks.sessions[0] == 1
    assert marks.live_sessions == ()  # the session ended
    assert marks.has_results and marks.newest_result is not None
    assert marks.newest_running_step is None  # the running trial reported no epoch
    only_a = queries.change_marks(engine, ["a"])
    assert only_a is not None and only_a.trials[0] == 5 and only_a.studies == (sid,)
    count, newest, finished = queries.complete_marks(engine, "a")
    assert count == 2 and newest == ids[1] and finished is not None

    # one snapshot serves several reads
    with queries.snapshot(engine) as con:
        assert queries.trials(con, "a") == trials
        assert queries.curve_trials(con, "a") == curve
        with queries.snapshot(con) as same:
            assert same is con
