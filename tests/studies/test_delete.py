"""``hpo32 delete``: a study goes with its trials, hpo32's rows and its artifacts; what
Optuna's own tools made, and what a study Optuna deleted left, can be removed too."""

from __future__ import annotations

import optuna
import pytest

from hpo32.storage import Records, artifact_root, make_engine
from hpo32.studies.cli import main


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO32_ARTIFACTS", raising=False)
    url = f"sqlite:///{tmp_path}/hpo32.db"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return url


def _hpo32_study(url: str, name: str) -> None:
    study = optuna.create_study(study_name=name, storage=url, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    records = Records(make_engine(url))
    records.add_study(name, "optuna", "cifar10", {"epochs": 1}, 60.0)
    records.end_session(records.begin_session(name), "budget", 2)
    folder = artifact_root(url) / name / "trial-0"
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"model")


def test_delete_removes_a_study_its_rows_and_its_artifacts(db, capsys):
    _hpo32_study(db, "gone")
    _hpo32_study(db, "kept")
    assert main(["delete", "gone", "--storage", db, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "deleted study 'gone' (2 trials) and its artifacts" in out
    assert [s.study_name for s in optuna.get_all_study_summaries(db)] == ["kept"]
    records = Records(make_engine(db), create=False)
    assert records.study("gone") is None and records.sessions("gone") == []
    assert not (artifact_root(db) / "gone").exists()
    assert records.study("kept") is not None and (artifact_root(db) / "kept").is_dir()


def test_delete_removes_what_optuna_alone_holds(db, capsys):
    optuna.create_study(study_name="plain", storage=db).optimize(lambda t: 0.0, n_trials=1)
    assert main(["delete", "plain", "--storage", db, "--yes", "--keep-artifacts"]) == 0
    assert optuna.get_all_study_summaries(db) == []
    _hpo32_study(db, "orphan")
    optuna.delete_study(study_name="orphan", storage=db)  # hpo32's rows stay behind
    assert main(["delete", "orphan", "--storage", db, "--yes", "--keep-artifacts"]) == 0
    assert Records(make_engine(db), create=False).study("orphan") is None
    assert (artifact_root(db) / "orphan").is_dir()  # kept as asked
    assert "deleted study 'orphan' (0 trials)." in capsys.readouterr().out


def test_delete_refuses_a_missing_or_running_study(db, capsys):
    _hpo32_study(db, "busy")
    Records(make_engine(db)).begin_session("busy")  # this process: a live session
    for name, message in (("ghost", "no study named 'ghost'"), ("busy", "study 'busy' is running")):
        assert main(["delete", name, "--storage", db, "--yes"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("hpo32: error: ") and message in err
    assert len(optuna.load_study(study_name="busy", storage=db).trials) == 2


def test_delete_asks_on_a_terminal_and_refuses_without_one(db, capsys, monkeypatch):
    _hpo32_study(db, "q")
    assert main(["delete", "q", "--storage", db]) == 2  # stdin is not a terminal here
    assert "confirm with --yes" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    assert main(["delete", "q", "--storage", db]) == 0
    assert "nothing deleted" in capsys.readouterr().out
    assert len(optuna.load_study(study_name="q", storage=db).trials) == 2
    assert main(["delete", "q", "--storage", db]) == 0
    assert optuna.get_all_study_summaries(db) == []
