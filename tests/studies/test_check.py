"""``hpo32 check``: what search checks before it writes, with nothing written or trained."""

from __future__ import annotations

import os
import subprocess
import sys

from hpo32.search.space import default_space
from hpo32.studies.cli import main
from tests.studies import test_bad_input
from tests.studies.conftest import ROOT, TINY_SPEC
from tests.studies.test_bad_input import _dump

#: The catalogue's database holding study 'kept' (a module fixture).
kept_db = test_bad_input.kept_db


def test_a_good_spec_is_one_line_and_writes_nothing(tmp_path, cifar_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO32_STORAGE", raising=False)
    (tmp_path / "tiny.yaml").write_text(TINY_SPEC)
    code = main(["check", "--spec", "tiny.yaml", "--data-dir", str(cifar_dir), "--budget", "2m"])
    out, err = capsys.readouterr()
    assert code == 0, err
    n = len(default_space())
    assert out == f"hpo32: spec OK (cifar10, optuna, {n} parameters, budget 2m00s)\n"
    assert os.listdir(tmp_path) == ["tiny.yaml"]


def test_a_preset_with_overrides(tmp_path, cifar_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = main(
        ["check", "--preset", "cifar10-cnn", "--data-dir", str(cifar_dir), "--n-trials", "3"]
    )
    out = capsys.readouterr().out
    assert code == 0 and "budget 30m00s, 3 trials)" in out
    assert os.listdir(tmp_path) == []


def test_no_data_skips_loading(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    nowhere = str(tmp_path / "nowhere")
    assert main(["check", "--data-dir", nowhere, "--no-data"]) == 0
    assert main(["check", "--data-dir", nowhere]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpo32: error: ") and "nowhere" in err
    assert os.listdir(tmp_path) == []


def test_a_taken_study_name_is_refused(tmp_path, kept_db, cifar_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _dump(kept_db)
    url = f"sqlite:///{kept_db}"
    assert main(["check", "--study", "kept", "--storage", url, "--data-dir", str(cifar_dir)]) == 2
    assert "kept" in capsys.readouterr().err
    assert main(["check", "--study", "free", "--storage", url, "--data-dir", str(cifar_dir)]) == 0
    assert _dump(kept_db) == before


def test_check_imports_no_tensorflow(tmp_path, cifar_dir):
    code = (
        "import sys; from hpo32.studies.cli import main; "
        f"rc = main(['check', '--data-dir', {str(cifar_dir)!r}]); "
        "print('RC', rc, 'TF', 'tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("HPO32_STORAGE", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert "RC 0 TF False" in out.stdout, out.stderr[-2000:]
    assert os.listdir(tmp_path) == []
