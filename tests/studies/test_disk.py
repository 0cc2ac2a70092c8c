"""Disk: a model is saved without its optimizer state (smaller, still loads compiled and
predicts the same), atomically (a killed save leaves only a partial file), and a real tiny
search keeps exactly the models of its ``--keep-top`` best complete trials; ``list`` and
``show`` print the study's disk use and ``show`` writes nothing without ``--out``."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from hpo32.search.engines.base import SearchContext, save_model
from hpo32.studies.artifacts import human_bytes
from tests.search.engine_helpers import tiny_space
from tests.studies.conftest import run_hpo32, search_args

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _listing(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_model_is_saved_without_optimizer_state(tmp_path):
    import keras

    from hpo32.search.models import build_model, compile_model

    config = {**tiny_space().defaults(), "conv_blocks": 2, "filters_1": 16, "filters_2": 16}
    config.update(fc_layers=1, fc_units_1=32)
    model = build_model(config, (32, 32, 3), 3)
    compile_model(model, config)
    rng = np.random.default_rng(0)
    x = rng.random((64, 32, 32, 3), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 3, 64), 3)
    model.fit(x, y, epochs=1, verbose=0)
    full = tmp_path / "full.keras"
    model.save(full)  # Keras' own: with the optimizer's state
    ctx = SearchContext(space=tiny_space(), splits=None, epochs=1, artifact_dir=tmp_path / "s")
    ctx.artifact_root = tmp_path
    path = tmp_path / save_model(model, ctx, "trial-0")
    assert path == tmp_path / "s" / "trial-0" / "model.keras"
    assert not (path.parent / "model.partial.keras").exists()
    small, big = path.stat().st_size, full.stat().st_size
    print(f"with optimizer state {big} bytes, without {small}")
    assert small < 0.6 * big  # the optimizer's slots are gone
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
    loaded = keras.models.load_model(path)
    assert type(loaded.optimizer).__name__.lower() == config["optimizer"]  # still compiled
    expected = model.predict(x[:8], verbose=0)
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0), expected, rtol=1e-5, atol=1e-6)
    model.save(tmp_path / "again.keras")  # the model itself is unchanged
    assert (tmp_path / "again.keras").stat().st_size == big
    keras.backend.clear_session()


def test_a_killed_save_leaves_only_a_partial_file(tmp_path):
    class Killed(Exception):
        pass

    class HalfWritten:  # a model whose save is killed half way through the file
        def save(self, path):
            path.write_bytes(b"PK\x03\x04 half")
            raise Killed

    ctx = SearchContext(space=tiny_space(), splits=None, epochs=1, artifact_dir=tmp_path / "s")
    ctx.artifact_root = tmp_path
    best = tmp_path / "s" / "trial-0" / "model.keras"
    best.parent.mkdir(parents=True)
    best.write_bytes(b"the best model")
    with pytest.raises(Killed):
        save_model(HalfWritten(), ctx, "trial-0")
    assert best.read_bytes() == b"the best model"  # never a truncated model.keras
    assert (best.parent / "model.partial.keras").is_file()  # what hpo32 gc removes


@pytest.mark.parametrize("keep", [1, 2])
def test_keep_top_keeps_exactly_the_best_k_models(keep, tmp_path, cifar_dir, tiny_spec):
    import keras

    url = f"sqlite:///{tmp_path}/hpo32.db"
    name = f"keep{keep}"
    res = run_hpo32(
        *search_args(
            name,
            tiny_spec,
            cifar_dir,
            url,
            n_trials=6,
            train_limit=90,
            val_limit=30,
            keep_top=keep,
            quiet=True,
        ),
        cwd=tmp_path,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    study = optuna.load_study(study_name=name, storage=url)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) >= keep
    top = sorted(complete, key=lambda t: (-t.value, t.number))[:keep]
    root = tmp_path / "hpo32-artifacts"
    folders = sorted(p.parent.name for p in (root / name).glob("*/model.keras"))
    assert folders == sorted(f"trial-{t.number}" for t in top)
    assert not list((root / name).rglob("model.partial.keras"))
    kept = {t.number for t in top}
    for t in study.get_trials():
        if t.number in kept:
            assert t.user_attrs["model_path"] == f"{name}/trial-{t.number}/model.keras"
        else:  # never a record of a missing file
            assert "model_path" not in t.user_attrs
    saved = [t.number for t in study.get_trials() if "save_seconds" in t.user_attrs]
    print(f"keep {keep}: saved {saved}, kept {folders}")
    for number in set(saved) - kept:  # saved once, pushed out since: file and folder gone
        assert not (root / name / f"trial-{number}").exists()
    images = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    for t in top:
        model = keras.models.load_model(root / t.user_attrs["model_path"])
        probs = model.predict(images, verbose=0)
        assert probs.shape == (2, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-3)
    if keep == 1:
        return

    # list and show print the disk use; show writes nothing without --out
    used = sum(p.stat().st_size for p in (root / name).rglob("*") if p.is_file())
    res = run_hpo32("list", "--json", "--storage", url, cwd=tmp_path)
    [row] = json.loads(res.stdout)
    assert row["disk_bytes"] == used
    before = _listing(tmp_path)
    res = run_hpo32("show", name, "--storage", url, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"disk: {human_bytes(used)} in {root / name}" in res.stdout
    assert "Total params" in res.stdout and "curves" not in res.stdout
    assert _listing(tmp_path) == before  # a read command writes nothing
    res = run_hpo32(
        "show", name, "--no-model", "--out", tmp_path / "plots", "--storage", url, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "plots" / "curves.png").stat().st_size > 1000
    assert "plotly" in (tmp_path / "plots" / "curves.html").read_text()[:100000]
    assert set(_listing(tmp_path)) - set(before) == {
        "plots", "plots/curves.png", "plots/curves.html",
    }  # fmt: skip
