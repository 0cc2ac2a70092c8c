"""``hpo32 compare``: search time on the budget's clock (pauses between sessions left out),
and each study's fidelity, with a note when compared studies differ in it."""

from __future__ import annotations

import datetime as dt
import json
import time

import optuna
import pytest
from optuna.distributions import IntDistribution

from hpo32.storage import Records, make_engine
from hpo32.studies.cli import main


def _trial(study, value: float, start: float, end: float) -> None:
    trial = optuna.trial.create_trial(
        params={"conv_blocks": 2},
        distributions={"conv_blocks": IntDistribution(1, 4)},
        value=value,
    )
    trial.datetime_start = dt.datetime.fromtimestamp(start)
    trial.datetime_complete = dt.datetime.fromtimestamp(end)
    study.add_trial(trial)


@pytest.fixture
def db(tmp_path):
    """Study 'paused': a trial in a 500-s session, then, after a 25-minute pause, a better
    one in a second session; study 'small': 10 classes recorded, one quick trial."""
    url = f"sqlite:///{tmp_path}/hpo32.db"
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    now = time.time()
    records = Records(make_engine(url))
    paused = optuna.create_study(study_name="paused", storage=url, direction="maximize")
    _trial(paused, 0.5, now - 1900, now - 1600)
    _trial(paused, 0.9, now - 8, now - 2)
    records.add_study("paused", "optuna", "cifar10", {"epochs": 3}, 900.0)
    first = records.begin_session("paused", started_at=now - 2000)
    records.end_session(first, "interrupted", 1)
    with records.engine.begin() as con:  # the first session ended 25 minutes ago
        con.exec_driver_sql(
            "UPDATE hpo32_sessions SET ended_at = ?, last_seen = ? WHERE id = ?",
            (now - 1500, now - 1500, first),
        )
    second = records.begin_session("paused", started_at=now - 10)
    records.end_session(second, "budget", 1)
    small = optuna.create_study(study_name="small", storage=url, direction="maximize")
    small.set_user_attr(
        "fidelity",
        {"classes": 10, "train_images": 450, "image_size": 32, "epochs": 1, "epoch_images": None},
    )
    _trial(small, 0.4, now - 5, now - 3)
    records.add_study("small", "optuna", "cifar10", {"epochs": 1}, 60.0)
    return url


def test_time_to_95_percent_leaves_out_the_pause(db, capsys):
    assert main(["compare", "paused", "--json", "--storage", db]) == 0
    [row] = json.loads(capsys.readouterr().out)
    # 500 s of the first session plus 8 s of the second, not the 1,898 s of wall clock
    assert row["seconds_to_95pct_of_best"] == pytest.approx(508, abs=2)


def test_compare_shows_fidelity_and_notes_a_difference(db, capsys):
    assert main(["compare", "paused", "small", "--storage", db]) == 0
    out = capsys.readouterr().out
    assert "FIDELITY" in out
    assert "10 classes, 450 images, 1 epoch, 32 px" in out
    note = [line for line in out.splitlines() if "differ in fidelity" in line]
    assert note and "paused: 3 epochs" in note[0]
    assert main(["compare", "small", "small", "--storage", db]) == 0
    assert "differ in fidelity" not in capsys.readouterr().out


def test_list_shows_each_study_fidelity(db, capsys):
    assert main(["list", "--storage", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "FIDELITY" in lines[0]
    [small] = [line for line in lines if line.startswith("small ")]
    assert "10 classes, 450 images, 1 epoch, 32 px" in small
    [paused] = [line for line in lines if line.startswith("paused ")]
    assert "3 epochs" in paused  # from its spec: made before fidelity was recorded
    assert main(["list", "--json", "--storage", db]) == 0
    shown = {r["name"]: r["fidelity"] for r in json.loads(capsys.readouterr().out)}
    assert shown["small"] == "10 classes, 450 images, 1 epoch, 32 px"
    assert shown["paused"] == "3 epochs"
