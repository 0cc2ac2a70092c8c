"""What a search guarantees when things go wrong: stops that are never lost, an end to a run
of failing trials, study names that never become dead ends, and the data folder the user
named being the only place looked at."""

from __future__ import annotations

import os
import signal
import time

import optuna
import pytest

from hpo32.search import signals
from hpo32.storage import Records, make_engine, queries
from hpo32.studies.cli import main
from tests.fixtures import write_cifar10
from tests.studies.conftest import popen_hpo32, run_hpo32, search_args
from tests.studies.test_search import _wait_for_intermediate, states


# -- signals -----------------------------------------------------------------------------------
def test_a_signal_is_a_request_that_check_turns_into_an_interrupt():
    with signals.stop_on_signals():
        assert signals.requested() is None
        signals.check()  # nothing pending: no effect
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.requested() == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            signals.check()
        with pytest.raises(KeyboardInterrupt):  # asked twice: raised at once
            os.kill(os.getpid(), signal.SIGINT)
    assert signals.requested() is None  # cleared, and the old handlers are back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_landing_in_a_finalizer_is_not_swallowed():
    """A handler that raised inside ``__del__`` was printed as "Exception ignored" and lost
    (4 SIGTERMs in 9); a recorded request survives wherever the signal lands."""

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)  # the handler runs here, inside the finalizer

    with signals.stop_on_signals():
        obj = Finalized()
        del obj
        assert signals.requested() == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            signals.check()


def test_sigterm_mid_trial_records_the_trial_and_resume_finishes(tmp_path, cifar_dir, tiny_spec):
    db = tmp_path / "hpo32.db"
    url = f"sqlite:///{db}"
    proc = popen_hpo32(
        *search_args("t", tiny_spec, cifar_dir, url, n_trials=2, epochs=30),
        cwd=tmp_path,
    )
    try:
        _wait_for_intermediate(db)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "Exception ignored" not in out
    study = optuna.load_study(study_name="t", storage=url)
    assert states(study) == {"FAIL": 1, "WAITING": 1}  # nothing left RUNNING
    [session] = Records(make_engine(url), create=False).sessions("t")
    assert session.exit_reason == "interrupted" and session.ended_at is not None

    res = run_hpo32("resume", "t", "--storage", url, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr
    assert states(optuna.load_study(study_name="t", storage=url)) == {"COMPLETE": 2, "FAIL": 1}


# -- a run of failures -------------------------------------------------------------------------
@pytest.mark.parametrize("flag, expected", [([], 5), (["--max-failures", "2"], 2)])
def test_consecutive_failures_stop_the_search_with_exit_3(
    flag, expected, tmp_path, cifar_dir, tiny_spec, monkeypatch, capsys
):
    """Every trial fails as it starts (as a config the builder refuses only at run time
    would): the search ends after ``max_failures`` in a row instead of running forever."""
    from hpo32.search import training
    from hpo32.search.models import InvalidConfig

    def refuse(config, *args, **kwargs):
        raise InvalidConfig("the network shrinks 32x32 below one pixel")

    monkeypatch.setattr(training, "train_config", refuse)
    url = f"sqlite:///{tmp_path}/hpo32.db"
    argv = ["search", "--study", "f", "--spec", str(tiny_spec), "--data-dir", str(cifar_dir)]
    code = main([*argv, "--n-trials", "1", "--storage", url, *flag])
    err = capsys.readouterr().err
    assert code == 3, err
    [line] = err.strip().splitlines()
    assert line.startswith(f"hpo32: the search stopped after {expected} failed trials in a row")
    assert "the last: the network shrinks 32x32 below one pixel" in line
    study = optuna.load_study(study_name="f", storage=url)
    assert states(study) == {"FAIL": expected}
    assert all("below one pixel" in t.user_attrs["fail_reason"] for t in study.trials)
    [session] = Records(make_engine(url), create=False).sessions("f")
    assert session.exit_reason == "failures" and session.ended_at is not None


# -- study names -------------------------------------------------------------------------------
def _search(tmp_path, cifar_dir, tiny_spec, name: str, url: str, **env: str):
    return run_hpo32(
        *search_args(name, tiny_spec, cifar_dir, url, n_trials=1, epochs=1),
        cwd=tmp_path,
        **env,
    )


def test_a_study_killed_while_being_made_leaves_its_name_free(tmp_path, cifar_dir, tiny_spec):
    url = f"sqlite:///{tmp_path}/hpo32.db"
    res = _search(tmp_path, cifar_dir, tiny_spec, "k", url, HPO32_FAULT="after_create_study")
    assert res.returncode == -signal.SIGKILL
    assert optuna.load_study(study_name="k", storage=url)  # Optuna's half exists
    res = run_hpo32("resume", "k", "--storage", url, cwd=tmp_path)
    assert res.returncode == 2 and "no study named 'k'" in res.stderr
    res = _search(tmp_path, cifar_dir, tiny_spec, "k", url)
    assert res.returncode == 0, res.stderr
    assert states(optuna.load_study(study_name="k", storage=url)) == {"COMPLETE": 1}
    fidelity = queries.study_fidelity(make_engine(url), "k")  # recorded with the study
    assert (fidelity.classes, fidelity.train_images, fidelity.epochs) == (10, 180, 1)


def test_names_held_by_optuna_alone(tmp_path, cifar_dir, tiny_spec):
    """A study Optuna's own tools made with trials is refused with the way out; one that
    Optuna deleted leaves hpo32 rows that are cleaned, not billed to the next study."""
    url = f"sqlite:///{tmp_path}/hpo32.db"
    foreign = optuna.create_study(study_name="plain", storage=url)
    foreign.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    for argv in (["search", "--study", "plain", "--n-trials", "1"], ["resume", "plain"]):
        res = run_hpo32(*argv, "--storage", url, cwd=tmp_path)
        assert res.returncode == 2, res.stderr
        assert "hpo32 delete plain" in res.stderr and "Traceback" not in res.stderr
    assert len(optuna.load_study(study_name="plain", storage=url).trials) == 2

    assert _search(tmp_path, cifar_dir, tiny_spec, "d", url).returncode == 0
    optuna.delete_study(study_name="d", storage=url)  # hpo32's rows stay behind
    res = run_hpo32("resume", "d", "--storage", url, cwd=tmp_path)
    assert res.returncode == 2 and "no study named 'd'" in res.stderr
    res = _search(tmp_path, cifar_dir, tiny_spec, "d", url)
    assert res.returncode == 0, res.stderr
    records = Records(make_engine(url), create=False)
    [session] = records.sessions("d")  # the deleted study's session is gone
    assert records.used_seconds("d") == pytest.approx(session.ended_at - session.started_at)
    assert states(optuna.load_study(study_name="d", storage=url)) == {"COMPLETE": 1}


def test_two_commands_making_one_name_get_one_sentence(tmp_path, cifar_dir, monkeypatch, capsys):
    """The other command's study appears between the check and the write."""
    from hpo32.studies import launch as runner

    url = f"sqlite:///{tmp_path}/hpo32.db"
    real = runner._standing
    calls = []

    def racing(u, name):
        calls.append(name)
        if len(calls) == 2:  # under the lock: the other command has made it meanwhile
            optuna.create_study(study_name=name, storage=u).optimize(lambda t: 0.0, n_trials=1)
        return real(u, name)

    monkeypatch.setattr(runner, "_standing", racing)
    code = main(
        [
            "search",
            "--study",
            "r",
            "--n-trials",
            "1",
            "--data-dir",
            str(cifar_dir),
            "--storage",
            url,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip().startswith("hpo32: error: study 'r' holds 1 trial that hpo32")


# -- the data folder ---------------------------------------------------------------------------
def test_a_named_data_dir_is_the_only_place_looked_at(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "keras"
    write_cifar10(cache / "datasets", n_per_batch=10, n_test=10)
    monkeypatch.setenv("KERAS_HOME", str(cache))
    monkeypatch.delenv("HPO32_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nonexistent"
    url = f"sqlite:///{tmp_path}/hpo32.db"
    code = main(
        ["search", "--study", "m", "--n-trials", "1", "--data-dir", str(missing), "--storage", url]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"CIFAR-10 not found in {missing}" in err and "--download" in err
    assert not (tmp_path / "hpo32.db").exists()
    monkeypatch.setenv("HPO32_DATA_DIR", str(missing))  # named through the environment
    from hpo32.search.data import DataError, load_dataset

    with pytest.raises(DataError, match="not found in"):
        load_dataset("cifar10")
    monkeypatch.delenv("HPO32_DATA_DIR")
    assert len(load_dataset("cifar10").x_test) == 10  # no folder named: the Keras cache


def test_resume_honours_its_data_dir(tmp_path, cifar_dir, tiny_spec):
    url = f"sqlite:///{tmp_path}/hpo32.db"
    assert _search(tmp_path, cifar_dir, tiny_spec, "r", url).returncode == 0
    res = run_hpo32(
        "resume", "r", "--n-trials", "2", "--data-dir", tmp_path / "nope", "--storage", url,
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "CIFAR-10 not found in" in res.stderr and "Traceback" not in res.stderr
    assert states(optuna.load_study(study_name="r", storage=url)) == {"COMPLETE": 1}


# -- failures of the run rather than of the input ----------------------------------------------
def test_a_stored_spec_that_is_not_json_is_one_sentence(tmp_path, capsys):
    import sqlite3

    url = f"sqlite:///{tmp_path}/hpo32.db"
    optuna.create_study(study_name="j", storage=url, direction="maximize")
    Records(make_engine(url)).add_study("j", "optuna", "cifar10", {"epochs": 1}, 60.0)
    with sqlite3.connect(tmp_path / "hpo32.db") as con:
        con.execute("UPDATE hpo32_studies SET spec_json = '{\"epochs\": 1' WHERE name = 'j'")
    assert main(["resume", "j", "--storage", url]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("hpo32: error: the stored spec of study 'j' is damaged")


def test_a_full_disk_is_one_sentence_and_exit_1(tmp_path, monkeypatch, capsys):
    import errno

    from hpo32.studies import launch as runner

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "hpo32.db-wal"))

    monkeypatch.setattr(runner, "search", full)
    assert main(["search", "--study", "s", "--n-trials", "1"]) == 1
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"hpo32: the disk is full writing {tmp_path / 'hpo32.db-wal'}")


def test_download_fetches_cifar10_into_the_named_folder(tmp_path, monkeypatch, capsys):
    """``--download`` fetches the archive into the folder the user named (the official
    archive's reader then reads it there); here the fetch is a local copy, no network."""
    import shutil

    from hpo32.search.data import cifar10

    source = tmp_path / "source"
    write_cifar10(source, n_per_batch=10, n_test=10)
    archive = shutil.make_archive(str(tmp_path / "cifar"), "gztar", source)
    fetched = []

    def fetch(url, dest, sha256):
        fetched.append(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(archive, dest)

    monkeypatch.setattr(cifar10, "_download", fetch)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.chdir(tmp_path)
    named = tmp_path / "data"
    argv = ["check", "--data-dir", str(named), "--n-trials", "1"]
    assert main(argv) == 2 and not fetched  # never fetched unasked
    assert "add --download" in capsys.readouterr().err
    assert main([*argv, "--download"]) == 0, capsys.readouterr().err
    assert fetched == [named / cifar10.CIFAR10_ARCHIVE]
