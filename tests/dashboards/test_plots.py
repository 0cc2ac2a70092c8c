"""Issue 15's plots: axes from the study's space, every trial visible, one-epoch curves drawn,
whole-number ticks, time units, the float32 filter, the chance level, the trial page's data,
the EDF, contour and timeline figures, the report's contents."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import plotly.graph_objects as go
import pytest
import sqlalchemy as sa
import yaml

from hpo32.dashboards import data, figures
from hpo32.dashboards.views import plots
from hpo32.dashboards.views.trial import parse_trial_path, trial_path, trial_view
from hpo32.search.space import SearchSpace
from tests.dashboards.dbgen import HOSTILE_NAME, StudyPlan, write_study

#: The space of the "spaced" study: the default, narrowed, recorded as version 2.
SPACE = {
    "base": "default",
    "params": {
        "learning_rate": {"low": 1e-4, "high": 0.1},
        "optimizer": {"choices": ["sgd", "adam", "adamw"]},
        "conv_blocks": {"low": 1, "high": 3},
    },
}


def _valid(fig: dict) -> dict:
    go.Figure(fig)
    return fig


@pytest.fixture(scope="module")
def spaced(tmp_path_factory):
    """A study whose stored spec narrows the default space (space_version 2), its trials
    sampled from that space, each with a worker."""
    url = f"sqlite:///{tmp_path_factory.mktemp('plots')}/spaced.db"
    space = SearchSpace.from_dict(SPACE)
    plan = StudyPlan("spaced", 30, "cifar10", "optuna", seed=21, p_pruned=0.3)
    trials = write_study(url, plan, space)
    engine = sa.create_engine(url)
    spec = {"dataset": "cifar10", "classes": 4, "space": SPACE, "space_version": 2}
    with engine.begin() as con:
        con.execute(
            sa.text("UPDATE hpo32_studies SET spec_json = :s WHERE name = 'spaced'"),
            {"s": json.dumps(spec)},
        )
        for t in trials:
            con.execute(
                sa.text(
                    "INSERT INTO trial_user_attributes (trial_id, key, value_json) "
                    "SELECT trial_id, 'worker', :w FROM trials WHERE number = :n"
                ),
                {"w": json.dumps(f"host:{100 + t.number % 3}"), "n": t.number},
            )
    engine.dispose()
    ro = data.open_engine(url)
    yield ro, trials
    ro.dispose()


# -- axes from the space's bounds -----------------------------------------------------------------
def test_param_axis_takes_the_space_bounds_not_the_data():
    ax = plots.param_axis(
        {"name": "fc_units_3", "kind": "int", "low": 64, "high": 4096, "log": True},
        [100, 300, None],
    )
    assert (ax.low, ax.high) == (pytest.approx(math.log10(64)), pytest.approx(math.log10(4096)))
    assert ax.log and ax.title == "fc_units_3 (log)"
    labels = [t for t in ax.ticktext if t != "inactive"]
    assert labels[0] == "64" and labels[-1] == "4096" and len(labels) == len(set(labels))
    assert all(t.isdigit() for t in labels)  # whole numbers on an integer axis
    assert "inactive" in ax.ticktext and ax.bottom < ax.low
    # a constant value (the "best 25%" case) keeps the space's bounds: never 1.44 for 0-0.6
    drop = plots.param_axis(
        {"name": "fc_dropout_1", "kind": "float", "low": 0.0, "high": 0.6, "log": False},
        [0.3, 0.3],
    )
    assert (drop.low, drop.high) == (0.0, 0.6) and max(drop.tickvals) <= 0.6
    blocks = plots.param_axis(
        {"name": "conv_blocks", "kind": "int", "low": 1, "high": 4, "log": False}, [3, 2, 2, 2, 1]
    )
    assert blocks.ticktext == ("1", "2", "3", "4")  # each integer once, never "3 2 2 2 1"
    wide = plots.param_axis(
        {"name": "n", "kind": "int", "low": 0, "high": 59, "log": False}, list(range(60))
    )
    assert all(float(v).is_integer() for v in wide.tickvals)


def test_categorical_axis_keeps_the_space_order_and_flags_strangers():
    ax = plots.param_axis(
        {"name": "opt", "kind": "categorical", "choices": ["sgd", "adam", "adamw"]},
        ["adamw", "sgd", "lion"],
    )
    assert ax.ticktext == ("sgd", "adam", "adamw", "lion") and ax.values == (2.0, 0.0, 3.0)
    assert ax.outside == 1


def test_param_samples_use_the_stored_space(spaced):
    engine, _ = spaced
    ps = data.param_samples(engine, "spaced")
    specs = {p["name"]: p for p in ps["params"]}
    assert specs["learning_rate"]["high"] == 0.1 and specs["learning_rate"]["log"]
    assert specs["conv_blocks"]["high"] == 3
    assert specs["optimizer"]["choices"] == ["sgd", "adam", "adamw"]
    names = [p["name"] for p in ps["params"]]
    assert "family" not in names  # fixed by the space: no axis
    assert names.index("conv_blocks") < names.index("learning_rate")  # the space's order
    assert data.space_params({"space": SPACE, "space_version": 2})["lr_schedule"]["kind"] == (
        "categorical"
    )
    assert data.space_params("not a spec") is None
    assert data.space_params({"space": {"base": "nope"}}) is None


def test_parallel_figure_axes_equal_the_distribution_bounds(spaced):
    engine, _ = spaced
    ps = data.param_samples(engine, "spaced")
    fig = _valid(figures.parallel_figure(ps))
    axes = figures.parallel_axes(ps, sorted(ps["trials"], key=lambda t: t["value"]))
    by = {a.label: a for a in axes}
    assert by["learning_rate"].low == pytest.approx(-4) and by["learning_rate"].high == (
        pytest.approx(-1)
    )
    assert by["learning_rate"].log and by["optimizer"].ticktext[:3] == ("sgd", "adam", "adamw")
    assert by["conv_blocks"].ticktext == ("1", "2", "3")
    shares = [a["y"] for a in fig["layout"]["annotations"]]
    assert min(shares) >= -1e-9 and max(shares) <= 1 + 1e-9  # every tick on its axis
    top = _valid(figures.parallel_figure(ps, top=0.25))
    best = sorted(ps["trials"], key=lambda t: t["value"])[-math.ceil(len(ps["trials"]) / 4) :]
    top_axes = {a.label: a for a in figures.parallel_axes(ps, best)}
    assert (top_axes["fc_dropout_1"].low, top_axes["fc_dropout_1"].high) == (0.0, 0.6)
    assert top["layout"]["xaxis"]["ticktext"][0] == "value"
    brush = _valid(figures.parallel_figure(ps, brush=True))
    dims = {d["label"]: d for d in brush["data"][0]["dimensions"]}
    assert brush["data"][0]["type"] == "parcoords"
    lr = dims["learning_rate (log)"]
    assert lr["range"] == [pytest.approx(-4), pytest.approx(-1)]
    assert "0.0001" in lr["ticktext"] and "0.1" in lr["ticktext"]


# -- slices ---------------------------------------------------------------------------------------
def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def test_slice_plots_show_every_trial_and_pruned_ones_on_demand(spaced):
    engine, trials = spaced
    for _, color in figures.SLICE_COLORSCALE:  # trial 0 is never white on white
        assert sum(_rgb(color)) < 3 * 200
    ps = data.param_samples(engine, "spaced")
    fig = _valid(figures.slices_figure(ps, params=["learning_rate"], chance=0.25))
    assert (
        len(fig["data"][0]["x"])
        == len(ps["trials"])
        == sum(t.state.name == "COMPLETE" for t in trials)
    )
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert fig["layout"]["xaxis"]["range"][0] < -4 < -1 < fig["layout"]["xaxis"]["range"][1]
    both = data.param_samples(engine, "spaced", states=("COMPLETE", "PRUNED"))
    pruned = [t for t in both["trials"] if t["state"] == "PRUNED"]
    assert pruned and len(both["trials"]) == len(ps["trials"]) + len(pruned)
    fig = _valid(figures.slices_figure(both, params=["optimizer"]))
    names = [t["name"] for t in fig["data"]]
    assert names == ["complete", "pruned (last value)"]
    assert len(fig["data"][1]["x"]) == len(pruned)
    assert fig["layout"]["xaxis"]["categoryarray"][:3] == ["sgd", "adam", "adamw"]


# -- learning curves ------------------------------------------------------------------------------
def test_one_epoch_curves_are_markers_and_the_best_trial_stands_out():
    curves = [
        {
            "number": 0,
            "state": "COMPLETE",
            "value": 0.6,
            "steps": [1, 2, 3],
            "values": [0.3, 0.5, 0.6],
        },
        {
            "number": 1,
            "state": "COMPLETE",
            "value": 0.7,
            "steps": [1, 2, 3],
            "values": [0.4, 0.6, 0.7],
        },
    ]
    curves += [
        {"number": 2 + k, "state": "PRUNED", "value": 0.1, "steps": [1], "values": [0.1 + k / 100]}
        for k in range(10)
    ]
    lc = {
        "curves": curves,
        "mean": {"steps": [1, 2, 3], "values": [0.2, 0.5, 0.6], "counts": [12, 2, 2]},
    }
    fig = _valid(figures.learning_curves_figure(lc, chance=0.1))
    pruned = [t for t in fig["data"] if t.get("legendgroup") == "PRUNED"]
    assert len(pruned) == 1 and pruned[0]["mode"] == "markers" and len(pruned[0]["x"]) == 10
    assert pruned[0]["showlegend"] and pruned[0]["name"] == "pruned (10)"
    best = next(t for t in fig["data"] if t["name"].startswith("best trial"))
    assert best["name"] == "best trial #1" and best["y"] == [0.4, 0.6, 0.7]
    assert best["line"]["width"] > 2
    assert fig["layout"]["xaxis"]["tickformat"] == "d" and fig["layout"]["xaxis"]["dtick"] == 1
    chance = [s for s in fig["layout"]["shapes"] if s["y0"] == s["y1"] == 0.1]
    assert chance and "chance 0.1" in json.dumps(fig["layout"]["annotations"])


def test_learning_curves_of_the_fixture_draw_every_state(engine):
    lc = data.learning_curves(engine, "cifar-optuna")
    fig = _valid(figures.learning_curves_figure(lc))
    drawn = sum(
        len([x for x in t["x"] if x is not None]) for t in fig["data"] if "legendgroup" in t
    )
    assert drawn == sum(len(c["steps"]) for c in lc["curves"])


# -- ticks, units, chance, filter -----------------------------------------------------------------
def test_trial_numbers_get_whole_ticks_and_accuracy_axes_the_chance_level(engine):
    h = data.history(engine, "cifar-optuna")
    fig = _valid(figures.history_figure(h, chance=data.chance(engine, "cifar-optuna")))
    x = fig["layout"]["xaxis"]
    assert x["tickformat"] == "d" and float(x["dtick"]).is_integer() and x["dtick"] >= 1
    assert [s["y0"] for s in fig["layout"]["shapes"]] == [pytest.approx(0.1)]
    small = data.history_from_rows([(k, "COMPLETE", 0.5, 10.0 * k, 10.0 * k + 5) for k in range(3)])
    assert _valid(figures.history_figure(small))["layout"]["xaxis"]["dtick"] == 1
    assert data.class_count(engine, "cifar-optuna") == 10
    assert data.class_count(engine, "inet-optuna") == 1000
    assert data.chance(engine, HOSTILE_NAME) is None  # a plain Optuna study: unknown
    assert plots.chance_level(1) is None and plots.chance_level(4) == 0.25


def test_time_axes_use_a_unit_that_fits_the_study():
    assert plots.time_unit(180).name == "minutes" and plots.time_unit(30).name == "seconds"
    assert plots.time_unit(5 * 3600).name == "hours" and plots.time_unit(9 * 86400).name == "days"
    series = [
        {
            "name": "short",
            "engine": "optuna",
            "hours": [0.01, 0.03, 0.05],
            "best": [0.2, 0.3, 0.4],
            "number": [0, 1, 2],
            "span_hours": 0.05,
            "value": [0.2, 0.3, 0.4],
            "finished": [0.01, 0.03, 0.05],
        }
    ]
    fig = _valid(figures.best_over_time_figure(series, chance=0.1))
    assert fig["layout"]["xaxis"]["title"]["text"].startswith("minutes of search")
    assert fig["data"][0]["x"] == pytest.approx([0.6, 1.8, 3.0])
    tp = _valid(figures.throughput_figure(data.throughput(series)))
    assert (
        "per minute" in tp["layout"]["yaxis"]["title"]["text"]
        and "/min overall" in tp["data"][0]["name"]
    )


def test_filters_compare_float32_values_at_the_shown_precision():
    stored = float(np.float32(0.1))  # 0.10000000149011612: what the database hands back
    rows = [{"value": stored}, {"value": 0.25}, {"value": 0.05}]
    expected = {"greaterThan": 1, "greaterThanOrEqual": 2, "equals": 1, "lessThan": 1,
                "lessThanOrEqual": 2, "notEqual": 2}  # fmt: skip
    for kind, count in expected.items():
        model = {"value": {"filterType": "number", "type": kind, "filter": 0.1}}
        assert data.grid_rows(rows, filter_model=model)[1] == count, kind
    model = {"value": {"filterType": "number", "type": "greaterThan", "filter": 0.1000001}}
    assert data.grid_rows(rows, filter_model=model)[1] == 1


def test_categorical_effects_cover_every_categorical_of_the_space(spaced):
    engine, _ = spaced
    names = data.categorical_names(engine, "spaced")
    assert names[:4] == ["kernel_size", "padding", "batch_norm", "pooling"]
    assert {"optimizer", "activation", "lr_schedule", "tta"} <= set(names)
    eff = data.categorical_effects(engine, "spaced")
    assert list(eff) == names and [e["choice"] for e in eff["optimizer"]] == [
        "sgd",
        "adam",
        "adamw",
    ]
    fig = _valid(figures.categorical_effects_figure([("spaced", eff)]))
    assert len(fig["data"]) == len([p for p in names if any(e["count"] for e in eff[p])])


# -- the trial page, EDF, contour, timeline -------------------------------------------------------
def test_trial_detail_view_and_warm_start(spaced):
    engine, trials = spaced
    best = max((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    detail = data.trial_detail(engine, "spaced", best.number)
    assert detail["value"] == pytest.approx(best.value) and detail["worker"].startswith("host:")
    assert [p for _, p in detail["curves"]["val_accuracy"]] == pytest.approx(
        list(best.intermediate_values.values())
    )
    assert "loss" in detail["curves"] and detail["model_path"].endswith("model.keras")
    shown = trial_view(detail)
    assert ("state", "complete") in shown.facts and shown.timings
    entry = yaml.safe_load(shown.warm_start)["warm_start"][0]
    assert entry == best.user_attrs["config"]
    SearchSpace.from_dict(SPACE).complete(entry)  # a warm_start the study's space takes
    fig = _valid(figures.trial_curves_figure(detail, chance=0.25))
    assert {t["name"] for t in fig["data"]} >= {"validation accuracy", "training loss"}
    assert data.trial_detail(engine, "spaced", 999) is None
    path = trial_path(HOSTILE_NAME, 7)
    assert parse_trial_path(path[len("/study/") :]) == (HOSTILE_NAME, 7)
    assert parse_trial_path("cifar-optuna") is None


def test_edf_contour_and_timeline_figures(spaced):
    engine, trials = spaced
    hist = data.history(engine, "spaced")
    edf = _valid(figures.edf_figure([("spaced", hist["by_number"]["value"])], chance=0.25))
    assert edf["data"][0]["y"][-1] == 1.0 and edf["data"][0]["x"] == sorted(edf["data"][0]["x"])
    ps = data.param_samples(engine, "spaced")
    contour = _valid(figures.contour_figure(ps, "learning_rate", "optimizer"))
    assert [t["type"] for t in contour["data"]] == ["contour", "scatter"]
    assert contour["layout"]["xaxis"]["range"][0] < -4 and contour["layout"]["yaxis"]["ticktext"][
        :3
    ] == [
        "sgd",
        "adam",
        "adamw",
    ]
    assert len(contour["data"][1]["x"]) == len(ps["trials"])
    assert _valid(figures.contour_figure(ps, "learning_rate", "learning_rate"))["data"] == []
    tl = data.timeline(engine, "spaced")
    fig = _valid(figures.timeline_figure(tl))
    lanes = fig["layout"]["yaxis"]["categoryarray"]
    assert lanes == ["host:100", "host:101", "host:102"]
    bars = sum(len([x for x in t["x"] if x is None]) for t in fig["data"])
    assert bars == len(trials)


def test_timeline_of_a_study_without_workers_has_one_lane(engine):
    fig = _valid(figures.timeline_figure(data.timeline(engine, "cifar-kt")))
    assert fig["layout"]["yaxis"]["categoryarray"] == ["unknown worker"]
    assert _valid(figures.timeline_figure(data.timeline(engine, "empty")))["data"] == []


def test_report_has_a_table_of_contents(fixture_db, engine, tmp_path):
    from hpo32.dashboards.report import write_report

    out = write_report(
        fixture_db[0], ["cifar-optuna", "inet-optuna"], tmp_path / "r.html", engine=engine
    )
    text = out.read_text(encoding="utf-8")
    assert "<nav id='toc'>" in text and text.index("<nav id='toc'>") < text.index("<section")
    anchors = [a for a in text.split("href='#")[1:]]
    ids = [a.split("'")[0] for a in anchors]
    assert len(ids) >= 2 + 2 * 4 and all(f"id='{i}'" in text for i in ids)
    assert "Optimization history" in text and "ImageNet32 and CIFAR-10" in text


def test_random_axes_never_repeat_a_tick_label():
    rng = random.Random(3)
    for _ in range(300):
        log = rng.random() < 0.5
        integer = rng.random() < 0.5
        low = rng.choice([1, 2, 16, 64]) if log else rng.randint(-5, 50)
        high = low * rng.choice([2, 8, 100, 5000]) if log else low + rng.randint(1, 3000)
        spec = {
            "name": "p",
            "kind": "int" if integer else "float",
            "low": low,
            "high": high,
            "log": log,
        }
        ax = plots.param_axis(spec, [low, high])
        assert len(ax.ticktext) == len(set(ax.ticktext)), (spec, ax.ticktext)
        assert ax.tickvals == tuple(sorted(ax.tickvals))
        assert ax.low == pytest.approx(math.log10(low) if log else low)
