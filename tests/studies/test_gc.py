"""``hpo32 gc``: on a real SQLite database with real files, it removes exactly what no study
refers to (a deleted study's folder, a superseded trial's model, the model of a killed save
that no trial records, a partial file), keeps every kept model (the best's above all) and
anything of a running study; ``--dry-run`` removes nothing."""

from __future__ import annotations

import json

import optuna
import pytest

from hpo32.storage import Records, artifact_root, make_engine
from hpo32.studies.cli import main


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO32_ARTIFACTS", raising=False)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return f"sqlite:///{tmp_path}/hpo32.db"


def _study(url: str, name: str, values: list[float], saved: list[int], keep_top: int = 1):
    """An hpo32 study whose trial k has value ``values[k]``; the trials in ``saved`` record
    a ``model_path`` (their files are written by the caller)."""

    def objective(trial):
        k = trial.number
        trial.suggest_float("x", 0, 1)
        if k in saved:
            trial.set_user_attr("model_path", f"{name}/trial-{k}/model.keras")
        return values[k]

    study = optuna.create_study(study_name=name, storage=url, direction="maximize")
    study.optimize(objective, n_trials=len(values))
    records = Records(make_engine(url))
    spec = {"epochs": 1, "keep_top": keep_top}
    records.add_study(name, "optuna", "cifar10", spec, 60.0)
    records.end_session(records.begin_session(name), "budget", len(values))
    return records


def _write(path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"m" * size)


def _listing(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_gc_removes_exactly_what_no_study_refers_to(db, capsys, monkeypatch):
    root = artifact_root(db)
    # study s keeps 1: trial 1 is the best; trial 0 was the best once (superseded, its
    # model_path still recorded); trial 3's model was written by a save killed before its
    # path was recorded; the best's folder holds the partial file of a killed later save
    _study(db, "s", [0.1, 0.5, 0.3, 0.4], saved=[0, 1])
    _write(root / "s" / "trial-0" / "model.keras", 1000)
    _write(root / "s" / "trial-1" / "model.keras", 2000)
    _write(root / "s" / "trial-1" / "model.partial.keras", 300)
    _write(root / "s" / "trial-3" / "model.keras", 400)  # truncated: nothing records it
    _write(root / "s" / "keras_tuner" / "oracle.json", 10)  # a project folder: not a model
    # study two keeps 2 of 3 saved models
    _study(db, "two", [0.2, 0.6, 0.4], saved=[0, 1, 2], keep_top=2)
    for k, size in enumerate((100, 200, 300)):
        _write(root / "two" / f"trial-{k}" / "model.keras", size)
    # a study that no longer exists, and a folder hpo32 never wrote
    _write(root / "gone" / "trial-0" / "model.keras", 5000)
    _write(root / "notes" / "readme.txt", 7)
    # a running study: nothing of it is touched, not even its orphan
    busy = _study(db, "busy", [0.3], saved=[0])
    _write(root / "busy" / "trial-0" / "model.keras", 50)
    _write(root / "busy" / "trial-9" / "model.keras", 60)
    busy.begin_session("busy")  # this process: a live session
    before = _listing(root)

    assert main(["gc", "--storage", db, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert _listing(root) == before  # nothing removed
    assert "would free 6.8 kB (5 items); nothing removed" in out
    assert "study 'busy' is running" in out

    assert main(["gc", "--storage", db]) == 2  # no terminal, no --yes
    assert "confirm with --yes" in capsys.readouterr().err
    assert _listing(root) == before

    assert main(["gc", "--storage", db, "--yes"]) == 0
    out = capsys.readouterr().out
    removed = set(before) - set(_listing(root))
    assert {p for p in removed if p.count("/") <= 1 or p.endswith(".keras")} == {
        "gone",
        "gone/trial-0",
        "gone/trial-0/model.keras",
        "s/trial-0",
        "s/trial-0/model.keras",
        "s/trial-1/model.partial.keras",
        "s/trial-3",
        "s/trial-3/model.keras",
        "two/trial-0",
        "two/trial-0/model.keras",
    }
    assert set(_listing(root)) - set(before) == set()
    for kept in ("s/trial-1/model.keras", "two/trial-1/model.keras", "two/trial-2/model.keras"):
        assert (root / kept).is_file()
    assert (root / "notes" / "readme.txt").is_file() and (root / "s" / "keras_tuner").is_dir()
    assert (root / "busy" / "trial-9" / "model.keras").is_file()
    assert "freed 6.8 kB (6800 bytes)" in out
    assert "trial 0's model, not among the 1 kept" in out
    assert "no trial records this model (a killed save)" in out
    assert "study 'gone' no longer exists" in out

    # the superseded trials' records no longer name a missing file
    for name, number in (("s", 0), ("two", 0)):
        attrs = optuna.load_study(study_name=name, storage=db).trials[number].user_attrs
        assert "model_path" not in attrs
    best = optuna.load_study(study_name="s", storage=db).best_trial
    assert (root / best.user_attrs["model_path"]).is_file()

    assert main(["gc", "--storage", db, "--yes"]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_gc_asks_on_a_terminal(db, capsys, monkeypatch):
    root = artifact_root(db)
    _study(db, "s", [0.5], saved=[])
    _write(root / "gone" / "trial-0" / "model.keras", 10)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["n", "yes"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert main(["gc", "--storage", db]) == 0
    assert "nothing removed" in capsys.readouterr().out and (root / "gone").is_dir()
    assert main(["gc", "--storage", db]) == 0
    assert not (root / "gone").exists()


def test_list_and_show_print_disk_use(db, capsys):
    root = artifact_root(db)
    _study(db, "s", [0.1, 0.5], saved=[1])
    _write(root / "s" / "trial-1" / "model.keras", 1500)
    _write(root / "s" / "trial-1" / "extra.bin", 500)
    assert main(["list", "--json", "--storage", db]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["disk_bytes"] == 2000
    assert main(["list", "--storage", db]) == 0
    out = capsys.readouterr().out
    assert "DISK" in out.splitlines()[0] and "2.0 kB" in out
    before = _listing(root)
    assert main(["show", "s", "--json", "--no-model", "--storage", db]) == 0
    assert json.loads(capsys.readouterr().out)["disk_bytes"] == 2000
    assert main(["show", "s", "--no-model", "--storage", db]) == 0
    assert f"disk: 2.0 kB in {root / 's'}" in capsys.readouterr().out
    assert _listing(root) == before  # show writes nothing without --out
