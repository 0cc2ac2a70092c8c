"""Specs for strong searches: presets sized for the machine, warm starts from named configs
and from another study, and studies made before the recipe was searchable."""

from __future__ import annotations

import time

import optuna
import pytest

from hpo32.search.hardware import machine_kinds
from hpo32.search.space import AIRBENCH94_CONFIG, PLAIN_RECIPE, RECIPE_PARAMS, Fixed
from hpo32.studies.progress import Header
from hpo32.studies.spec import SpecError, StudySpec, load_preset, preset_fits
from tests.studies.conftest import run_hpo32, search_args


@pytest.mark.parametrize(
    ("kind", "trial_budget", "first_epochs", "narrowest"),
    [("cpu", 783.0, 8, 24), ("cpu-bf16", 783.0, 8, 32), ("gpu", 120.0, None, 32)],
)  # fmt: skip
def test_the_fast_preset_takes_the_settings_of_this_kind_of_machine(
    monkeypatch, kind, trial_budget, first_epochs, narrowest
):
    monkeypatch.setenv("HPO32_MACHINE", kind)
    spec = load_preset("cifar10-fast")
    assert spec.trial_seconds == pytest.approx(trial_budget)
    space = spec.build_space()
    (first, _), *_ = spec.warm_start_configs(space)
    # airbench94 as it is; on a CPU the search sizes it (first_epochs) before it starts,
    # and a CPU without bfloat16 leaves room for x0.375 of its widths
    assert (first["width_1"], first["width_2"], first["width_3"]) == (64, 256, 256)
    assert spec.first_epochs == first_epochs
    assert space["width_1"].low == narrowest
    assert "machine" not in spec.to_dict()  # the study records what it ran with
    assert preset_fits()["cifar10-fast"][1] is True
    assert preset_fits()["cifar10-cnn"][1] is None


def test_a_trial_share_sizes_each_trial_from_the_budget_it_is_given(monkeypatch):
    monkeypatch.setenv("HPO32_MACHINE", "cpu-bf16")
    spec = load_preset("cifar10-fast")
    assert spec.trial_budget is None and spec.trial_share == 0.87
    hour = spec.with_overrides(budget=3600.0)
    assert hour.trial_seconds == pytest.approx(3132.0)
    assert Header.of("s", hour).trial_budget == pytest.approx(3132.0)  # what the header shows
    assert spec.with_overrides(trial_budget=60.0).trial_seconds == 60.0  # --trial-budget wins
    assert StudySpec.from_dict({"trial_share": 0.5}).trial_seconds is None  # no budget: none
    for bad in (0, 1.5, -0.2):
        with pytest.raises(SpecError, match="trial_share must be more than 0 and at most 1"):
            StudySpec.from_dict({"budget": "1m", "trial_share": bad})
    with pytest.raises(SpecError, match="trial_share must be a number between 0 and 1"):
        StudySpec.from_dict({"trial_share": "half"})


def test_a_machine_section_takes_the_most_specific_kind_that_fits(monkeypatch):
    both = {"machine": {"cpu": {"epochs": 3}, "cpu-bf16": {"epochs": 5}, "gpu": {"epochs": 9}}}
    plain = {"machine": {"cpu": {"epochs": 3}, "gpu": {"epochs": 9}}}
    monkeypatch.setenv("HPO32_MACHINE", "cpu-bf16")
    assert machine_kinds() == ("cpu-bf16", "cpu")
    assert StudySpec.from_dict(both).epochs == 5
    assert StudySpec.from_dict(plain).epochs == 3  # a CPU with bfloat16 is a CPU too
    monkeypatch.setenv("HPO32_MACHINE", "cpu")
    assert StudySpec.from_dict(both).epochs == 3
    with pytest.raises(SpecError, match="has no settings for a cpu machine"):
        StudySpec.from_dict({"machine": {"cpu-bf16": {"epochs": 5}}}, source="x.yaml")
    monkeypatch.setenv("HPO32_MACHINE", "gpu")
    assert StudySpec.from_dict(both).epochs == 9


def test_a_spec_without_settings_for_this_machine_says_so(monkeypatch):
    monkeypatch.setenv("HPO32_MACHINE", "cpu")
    with pytest.raises(SpecError, match="has no settings for a cpu machine"):
        StudySpec.from_dict({"budget": "1m", "machine": {"gpu": {"epochs": 3}}}, source="x.yaml")
    with pytest.raises(SpecError, match="must map some of gpu, cpu-bf16, cpu to settings"):
        StudySpec.from_dict({"machine": {"tpu": {"epochs": 3}}}, source="x.yaml")


def test_the_fast_preset_starts_from_airbench94_then_variations(monkeypatch):
    monkeypatch.setenv("HPO32_MACHINE", "cpu-bf16")
    spec = load_preset("cifar10-fast")
    space = spec.build_space()
    (first, _), (second, _), *_ = spec.warm_start_configs(space)
    assert first == {k: v for k, v in AIRBENCH94_CONFIG.items() if k in first}
    assert set(first) == set(space.defaults())
    assert second["residual"] is True and second["group_convs"] == 2
    assert {k: v for k, v in second.items() if k not in ("residual", "group_convs")} == {
        k: v for k, v in first.items() if k not in ("residual", "group_convs")
    }


def test_a_named_config_with_a_value_the_space_lacks_is_refused():
    spec = StudySpec.from_dict({"warm_start": [{"config": "airbench94"}]})  # family cnn only
    ((config, _),) = spec.warm_start_configs(spec.build_space())
    assert config["family"] == "cnn"  # adopted: the space's values where it lacks the config's
    with pytest.raises(SpecError, match="names unknown config 'resnet50'"):
        StudySpec.from_dict({"warm_start": [{"config": "resnet50"}]})
    with pytest.raises(SpecError, match="value 9 of 'res_groups' is out of range or inactive"):
        StudySpec.from_dict(
            {"space": {"params": {"family": "resnet"}},
             "warm_start": [{"config": "airbench94", "res_groups": 9}]}
        )  # fmt: skip


def test_a_study_recorded_before_the_recipe_keeps_today_s_recipe():
    old = StudySpec.from_dict({"space_version": 1})
    space = old.build_space()
    for name in RECIPE_PARAMS:
        if name in space:
            assert isinstance(space[name], Fixed), name
    assert {n: space[n].value for n in PLAIN_RECIPE} == PLAIN_RECIPE
    assert space["batch_size"].choices == (32, 64, 128, 256)
    assert space["learning_rate"].high == 0.1
    new = StudySpec.from_dict({}).build_space()
    assert not isinstance(new["lr_schedule"], Fixed) and 512 in new["batch_size"].choices


def test_warm_start_from_another_study_runs_its_best_configs_first(tmp_path, cifar_dir, tiny_spec):
    url = f"sqlite:///{tmp_path}/h.db"
    res = run_hpo32(
        *search_args("a", tiny_spec, cifar_dir, url, n_trials=3, epochs=1), cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    a = optuna.load_study(study_name="a", storage=url)
    ranked = sorted(a.trials, key=lambda t: t.value, reverse=True)
    spec = tiny_spec.read_text() + "warm_start:\n  - {study: a, top: 2}\n"
    (tmp_path / "b.yaml").write_text(spec)
    res = run_hpo32(
        *search_args("b", tmp_path / "b.yaml", cifar_dir, url, n_trials=2, epochs=1),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    b = optuna.load_study(study_name="b", storage=url)
    for trial, source in zip(b.trials, ranked[:2], strict=True):
        assert trial.params == source.params
        assert trial.user_attrs["warm_start_from"] == {"study": "a", "trial": source.number}
    # the dataset-comparison page ranks the carried configs in both studies
    from hpo32.dashboards.data import open_engine, warm_start_ranks

    engine = open_engine(url)
    rows = warm_start_ranks(engine, "b", "a")
    engine.dispose()
    b_ranked = sorted(b.trials, key=lambda t: t.value, reverse=True)
    assert [(r["source"], r["source_trial"], r["target"], r["target_trial"]) for r in rows] == [
        ("a", source.number, "b", trial.number)
        for trial, source in zip(b.trials, ranked[:2], strict=True)
    ]
    for r, trial in zip(rows, b.trials, strict=True):
        assert r["source_value"] == pytest.approx(a.trials[r["source_trial"]].value)
        assert r["target_value"] == pytest.approx(trial.value)
        assert r["target_rank"] == 1 + sum(t.value > trial.value for t in b_ranked)
    assert [r["source_rank"] for r in rows] == [1, 1 + (ranked[1].value < ranked[0].value)]
    assert (rows[0]["source_trials"], rows[0]["target_trials"]) == (3, 2)


def test_warm_start_from_a_missing_study_is_one_sentence_and_writes_nothing(
    tmp_path, cifar_dir, tiny_spec
):
    (tmp_path / "b.yaml").write_text(tiny_spec.read_text() + "warm_start: [{study: nope}]\n")
    res = run_hpo32(
        *search_args("b", tmp_path / "b.yaml", cifar_dir, f"sqlite:///{tmp_path}/h.db", n_trials=1),
        cwd=tmp_path,
    )
    assert res.returncode == 2
    assert "warm_start names study 'nope', which has no complete trial" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "h.db").exists()


def test_a_study_stored_before_the_recipe_resumes_with_it_fixed(tmp_path, cifar_dir, tiny_spec):
    import json

    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path}/h.db"
    common = ("--data-dir", cifar_dir, "--storage", url)
    res = run_hpo32(
        *search_args("old", tiny_spec, cifar_dir, url, n_trials=1, epochs=1), cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    engine = sa.create_engine(url)
    with engine.begin() as con:  # as a study made before space_version was recorded
        (raw,) = con.execute(sa.text("SELECT spec_json FROM hpo32_studies")).one()
        spec = json.loads(raw)
        del spec["space_version"]
        con.execute(sa.text("UPDATE hpo32_studies SET spec_json = :s"), {"s": json.dumps(spec)})
    res = run_hpo32("resume", "old", "--n-trials", 2, *common, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    trials = optuna.load_study(study_name="old", storage=url).trials
    assert len(trials) == 2
    for name, value in PLAIN_RECIPE.items():
        if name in trials[1].user_attrs["config"]:
            assert trials[1].user_attrs["config"][name] == value
    assert "lr_schedule" not in trials[1].params  # fixed, so never sampled


def test_an_imagenet32_study_reports_top5_beside_top1(tmp_path, tiny_spec):
    import json

    from tests.fixtures import write_imagenet32

    write_imagenet32(tmp_path / "in32", n_classes=8, n_per_class=20, n_val_per_class=4)
    url = f"sqlite:///{tmp_path}/h.db"
    res = run_hpo32(
        *search_args(
            "in", tiny_spec, tmp_path / "in32", url, dataset="imagenet32", n_trials=1, epochs=1
        ),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert "test top-5" in res.stdout
    shown = run_hpo32("show", "in", "--storage", url, "--no-model", cwd=tmp_path)
    assert "top-5: val " in shown.stdout, shown.stdout
    info = json.loads(run_hpo32("show", "in", "--json", "--storage", url, cwd=tmp_path).stdout)
    best = info["best_trial"]
    assert best["test_top5"] >= best["test_accuracy"] and best["val_top5"] >= best["value"]
    # predict averages the views the best trial validated with
    from hpo32.storage import Records, artifact_root, make_engine
    from hpo32.studies.best import load_best

    loaded = load_best(Records(make_engine(url), create=False), "in", artifact_root(url))
    assert loaded.tta == best["config"]["tta"]


SIZED_SPEC = """\
dataset: cifar10
epochs: 1
sampler: random
pruner: none
trial_budget: 1m
first_epochs: {epochs}
warm_start:
  - {{width_1: 16, width_2: 32}}
space:
  base: default
  params:
    family: resnet
    res_groups: 2
    stem_width: 8
    stem_whiten: false
    width_1: {{low: 8, high: 32}}
    width_2: {{low: 8, high: 64}}
    group_convs: 1
    batch_size: 32
    tta: none
"""


@pytest.mark.parametrize(
    ("epochs", "widths", "scale"), [(1e9, (8, 16), 0.375), (1e-3, (24, 48), 1.5)]
)
def test_first_epochs_sizes_the_first_config_from_a_probe_of_its_rate(
    tmp_path, cifar_dir, epochs, widths, scale
):
    spec = tmp_path / "sized.yaml"
    spec.write_text(SIZED_SPEC.format(epochs=epochs))
    url = f"sqlite:///{tmp_path}/h.db"
    res = run_hpo32(*search_args("s", spec, cifar_dir, url, n_trials=1), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (trial,) = optuna.load_study(study_name="s", storage=url).trials
    assert (trial.params["width_1"], trial.params["width_2"]) == widths
    assert trial.user_attrs["sizing"]["width_scale"] == scale
    assert trial.user_attrs["sizing"]["probe_images_per_second"] > 0
    sized = "/".join(map(str, widths))
    assert "first config sized for this machine: widths 16/32 train " in res.stdout + res.stderr
    assert f"images/s here; widths {sized} (x{scale:g})" in res.stdout + res.stderr


def test_a_probe_that_fails_leaves_the_first_config_as_given(monkeypatch):
    from hpo32.search import training
    from hpo32.studies import launch

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(training, "probe_rate", broken)
    spec = StudySpec.from_dict({"budget": "15m", "first_epochs": 8})
    space = spec.build_space().override({"family": "resnet"})
    warm = [(dict(AIRBENCH94_CONFIG), {})]
    checked = launch._Checked(space, None, warm, object(), "sqlite://", None)
    events: list[dict] = []
    assert launch._sized(spec, checked, time.monotonic(), events.append) is checked
    assert events == []
