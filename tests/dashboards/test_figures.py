"""Figures from figure data: valid plotly, the right traces, escaped text."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import plotly.io as pio
import pytest

from hpo32.dashboards import data, figures
from hpo32.durations import format_duration
from tests.dashboards.dbgen import HOSTILE_NAME


def _valid(fig: dict) -> dict:
    go.Figure(fig)  # raises on any property plotly does not know
    return fig


def _texts(fig: dict) -> str:
    """Every string plotly will render as text, as one JSON blob."""
    return json.dumps(fig)


def test_esc_escapes_what_plotly_would_render_as_html():
    assert figures.esc("<b>x</b> & 'y'") == "&lt;b&gt;x&lt;/b&gt; &amp; 'y'"
    assert format_duration(3725) == "1h02m" and format_duration(None) == "-"
    assert figures.fmt_value(None) == "-" and figures.fmt_value(0.123456) == "0.1235"


@pytest.mark.parametrize("axis", ["number", "time"])
def test_history_figure_has_points_best_line_and_pruned(engine, axis):
    h = data.history(engine, "cifar-optuna")
    fig = _valid(figures.history_figure(h, axis))
    names = [t["name"] for t in fig["data"]]
    assert names == ["complete trial", "pruned (last epoch)", "best so far"]
    best = fig["data"][2]["y"]
    assert best == sorted(best) and best[-1] == pytest.approx(max(h["by_number"]["value"]))
    if axis == "time":
        assert fig["data"][0]["x"][0][:4].isdigit() and "T" in fig["data"][0]["x"][0]
    else:
        assert fig["data"][0]["x"] == h["by_number"]["number"]
    assert "2 running" in fig["layout"]["title"]["text"]


@pytest.mark.parametrize("name", ["empty", "all-failed"])
def test_figures_of_studies_without_results_say_why(engine, name):
    h = data.history(engine, name)
    fig = _valid(figures.history_figure(h))
    assert fig["data"] == [] and "No complete trials yet" in fig["layout"]["annotations"][0]["text"]
    ps = data.param_samples(engine, name)
    for make in (figures.parallel_figure, figures.slices_figure):
        assert _valid(make(ps))["data"] == []
    assert _valid(figures.importance_figure([(name, data.importances(engine, name))]))["data"] == []
    lc = _valid(figures.learning_curves_figure(data.learning_curves(engine, name)))
    if name == "all-failed":  # failed trials may still have epochs to show
        assert all(t["name"].startswith(("fail", "mean")) for t in lc["data"])


def test_learning_curves_separate_states_by_style(engine):
    fig = _valid(figures.learning_curves_figure(data.learning_curves(engine, "cifar-optuna")))
    styles = {
        t["name"].split(" ")[0]: t["line"].get("dash", "solid") for t in fig["data"] if "line" in t
    }
    assert styles["complete"] == "solid" and styles["pruned"] == "dash"
    assert styles["fail"] == "dot" and "mean" in styles
    complete = next(t for t in fig["data"] if t["name"].startswith("complete"))
    assert None in complete["x"]  # one trace per state, trials separated by gaps


def test_parallel_figure_axes_and_inactive_ticks(engine):
    ps = data.param_samples(engine, "cifar-optuna")
    fig = _valid(figures.parallel_figure(ps))
    labels = fig["layout"]["xaxis"]["ticktext"]
    assert labels[0] == "value" and "learning_rate (log)" in labels
    ticks = [a["text"] for a in fig["layout"]["annotations"]]
    assert "inactive" in ticks  # filters_4 is absent when conv_blocks < 4
    assert "adamax" in ticks and "leaky_relu" in ticks
    lines = sum(
        len([x for x in t["x"] if x is None]) for t in fig["data"] if t.get("mode") == "lines"
    )
    assert lines == len(ps["trials"])
    top = _valid(figures.parallel_figure(ps, top=0.25))
    top_lines = sum(
        len([x for x in t["x"] if x is None]) for t in top["data"] if t.get("mode") == "lines"
    )
    assert top_lines == -(-len(ps["trials"]) // 4)


def test_slices_figure_one_subplot_per_parameter(engine):
    ps = data.param_samples(engine, "cifar-optuna")
    fig = _valid(figures.slices_figure(ps))
    assert len(fig["data"]) == len(ps["params"])
    axes = {t["xaxis"] for t in fig["data"]}
    assert len(axes) == len(ps["params"])
    lr = next(k for k, p in enumerate(ps["params"]) if p["name"] == "learning_rate")
    axis = "xaxis" + fig["data"][lr]["xaxis"][1:]
    assert fig["layout"][axis]["type"] == "log"
    one = _valid(figures.slices_figure(ps, params=["optimizer"]))
    assert len(one["data"]) == 1 and one["layout"]["xaxis"]["type"] == "category"


def test_comparison_figures(engine):
    series = data.best_over_time(engine, ["cifar-optuna", "cifar-kt", "cifar-ak", "empty"])
    fig = _valid(figures.best_over_time_figure(series, by_engine=True))
    assert len(fig["data"]) == 3  # the empty study has no line
    colors = {t["name"]: t["line"]["color"] for t in fig["data"]}
    assert len(set(colors.values())) == 3
    _valid(figures.throughput_figure(data.throughput(series)))
    box = _valid(figures.distribution_figure(data.value_distribution(series)))
    assert [t["type"] for t in box["data"]].count("box") == 3
    eff = _valid(
        figures.categorical_effects_figure(
            [
                ("ImageNet32", data.categorical_effects(engine, "inet-optuna")),
                ("CIFAR-10", data.categorical_effects(engine, "cifar-optuna")),
            ]
        )
    )
    params = data.categorical_names(engine, "cifar-optuna")
    assert {"optimizer", "activation", "pooling", "batch_norm"} <= set(params)
    assert len(eff["data"]) == 2 * len(params)  # every categorical of the space
    for trace in eff["data"]:  # differences from the study's mean, weighted by counts
        counts = [c[0] for c in trace["customdata"]]
        assert sum(y * n for y, n in zip(trace["y"], counts, strict=True)) == pytest.approx(
            0.0, abs=1e-9
        )
    rc = data.rank_correlation(engine, "inet-optuna", "cifar-optuna")
    fig = _valid(figures.rank_correlation_figure(rc, "ImageNet32", "CIFAR-10"))
    assert (
        "Spearman" in fig["layout"]["title"]["text"] and len(fig["data"][0]["x"]) == rc["n_pairs"]
    )
    imp = _valid(
        figures.importance_figure(
            [
                ("a", data.importances(engine, "inet-optuna")),
                ("b", data.importances(engine, "cifar-optuna")),
            ]
        )
    )
    assert len(imp["data"]) == 2 and imp["data"][0]["orientation"] == "h"


def test_names_from_the_database_are_escaped_everywhere(engine):
    """A study, parameter or choice named like HTML is shown as text, never parsed."""
    ps = data.param_samples(engine, HOSTILE_NAME)
    ps["params"].append(
        {"name": "<i>p</i>", "kind": "categorical", "choices": ["<script>x</script>"], "log": False}
    )
    for t in ps["trials"]:
        t["params"]["<i>p</i>"] = "<script>x</script>"
    series = data.best_over_time(engine, [HOSTILE_NAME])
    figs = [
        figures.parallel_figure(ps),
        figures.slices_figure(ps),
        figures.best_over_time_figure(series),
        figures.distribution_figure(data.value_distribution(series)),
        figures.throughput_figure(data.throughput(series)),
        figures.importance_figure([(HOSTILE_NAME, data.importances(engine, HOSTILE_NAME))]),
        figures.rank_correlation_figure(
            data.rank_correlation(engine, HOSTILE_NAME, HOSTILE_NAME), HOSTILE_NAME, "x"
        ),
        figures.categorical_effects_figure(
            [
                (
                    HOSTILE_NAME,
                    {"opt": [{"choice": "<b>", "count": 1, "mean": 0.5, "std": 0.0, "max": 0.5}]},
                )
            ]
        ),
        figures.empty_figure("<img src=x>", HOSTILE_NAME),
    ]
    for fig in figs:
        text = _texts(_valid(fig))
        assert "<img" not in text and "<script" not in text and "<i>p" not in text
        assert "<b>bold" not in text
        html = pio.to_html(fig, include_plotlyjs=False, full_html=False, validate=False)
        assert "<img src=x" not in html and "</script>x" not in html
    assert "&lt;img src=x onerror" in _texts(figs[2])  # the name, escaped, in the legend


def test_history_of_a_large_study_is_a_density_with_the_best_points():
    rows = [(k, "COMPLETE", (k * 37 % 101) / 100, 10.0 * k, 10.0 * k + 5) for k in range(60)]
    rows.append((60, "PRUNED", 0.3, 600.0, 605.0))
    h = data.history_from_rows(rows)
    small = _valid(figures.history_figure(h))
    assert [t["type"] for t in small["data"]] == ["scatter", "scatter", "scatter"]
    dense = _valid(figures.history_figure(h, max_points=30))
    kinds = [t["type"] for t in dense["data"]]
    assert kinds == ["histogram2d", "scatter", "scatter"]
    assert len(dense["data"][0]["x"]) == 60  # every trial in the density
    best_points = dense["data"][1]
    assert (
        len(best_points["y"]) == 5 and min(best_points["y"]) >= sorted(h["by_number"]["value"])[-5]
    )
    line = dense["data"][2]  # best so far, one point per change (and the last trial)
    assert sorted(set(line["y"])) == sorted(set(h["by_number"]["best"]))
    assert line["y"] == sorted(line["y"]) and len(line["y"]) <= len(set(line["y"])) + 1
    assert line["x"][-1] == 59 and "density of all" in dense["layout"]["title"]["text"]
