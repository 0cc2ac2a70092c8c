"""The Keras backend of a study (``--backend``): chosen before Keras loads, recorded with each
trial, kept by resume, refused where a library lacks it; the PyTorch path never imports
TensorFlow. Keras fixes its backend per process, so every test runs hpo32 in a child."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.studies.conftest import hpo32_env, run_hpo32, search_args

#: Runs hpo32's main in this process (argv after the script), the library NAME made
#: unimportable first when the arguments start ``--block NAME`` (``find_spec`` then finds
#: nothing, as without it installed); prints which tensorflow modules got loaded, as JSON,
#: last.
CHILD = """\
import json, sys
if sys.argv[1] == "--block":
    sys.modules[sys.argv[2]] = None
    del sys.argv[1:3]
from hpo32.studies.cli import main
code = main(sys.argv[1:])
loaded = [m for m, v in sys.modules.items() if v is not None and m.split(".")[0] == "tensorflow"]
print(json.dumps({"code": code, "tensorflow": loaded[:5]}))
"""


def run_child(tmp_path: Path, *args: object, block: str | None = None, **env: str | None):
    """Runs CHILD with ``args``, the library ``block`` unimportable; an ``env`` value of None
    unsets that variable."""
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    argv = [sys.executable, str(script), *(["--block", block] if block else []), *map(str, args)]
    environ = hpo32_env(**{k: v for k, v in env.items() if v is not None})
    for k in [k for k, v in env.items() if v is None]:
        environ.pop(k, None)
    return subprocess.run(
        argv, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=600
    )


def trial_backends(db: Path) -> list[str]:
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT value_json FROM trial_user_attributes WHERE key = 'backend'"
        ).fetchall()
    return [json.loads(v) for (v,) in rows]


def sessions(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT count(*) FROM hpo32_sessions").fetchone()[0])


@pytest.mark.slow
def test_a_torch_search_records_torch_and_never_imports_tensorflow(tmp_path, tiny_spec, cifar_dir):
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    args = ("search", "--spec", tiny_spec, "--data-dir", cifar_dir, "--n-trials", "2")
    res = run_child(
        tmp_path, *map(str, args), "--backend", "torch", "--study", "t", "--storage", url,
        "--json", KERAS_BACKEND="torch",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "tensorflow": []}
    assert trial_backends(db) == ["torch", "torch"]

    shown = run_hpo32("show", "t", "--storage", url, cwd=tmp_path)
    assert "  backend: torch\n" in shown.stdout
    # its model opens on a machine without TensorFlow, $KERAS_BACKEND unset
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 30, 30)).save(tmp_path / "red.png")
    for args in (("predict", "t", str(tmp_path / "red.png"), "--json"), ("show", "t")):
        res = run_child(tmp_path, *args, "--storage", url, block="tensorflow", KERAS_BACKEND=None)
        assert res.returncode == 0, res.stderr[-3000:]
        assert json.loads(res.stdout.strip().splitlines()[-1]) == {"code": 0, "tensorflow": []}
        assert "best model:" in res.stdout or '"predictions"' in res.stdout
    compared = run_hpo32("compare", "t", "--storage", url, "--json", cwd=tmp_path)
    assert json.loads(compared.stdout)[0]["backend"] == "torch"

    before = sessions(db)
    other = run_hpo32("resume", "t", "--storage", url, "--budget", "1m", cwd=tmp_path,
                      KERAS_BACKEND="tensorflow")  # fmt: skip
    assert other.returncode == 2
    [line] = other.stderr.strip().splitlines()
    assert "trains on the torch backend, but KERAS_BACKEND is tensorflow" in line
    assert sessions(db) == before


@pytest.mark.slow
def test_keras_tuner_trains_on_torch_without_tensorflow_installed(tmp_path, tiny_spec, cifar_dir):
    db = tmp_path / "k.db"
    res = run_child(
        tmp_path, "search", "--spec", str(tiny_spec), "--data-dir", str(cifar_dir),
        "--n-trials", "2", "--engine", "keras-tuner:random", "--study", "k",
        "--storage", f"sqlite:///{db}", "--json", block="tensorflow", KERAS_BACKEND="torch",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == {"code": 0, "tensorflow": []}
    assert trial_backends(db) == ["torch", "torch"]


def test_tensorflow_missing_is_one_sentence(tmp_path, tiny_spec):
    db = tmp_path / "none.db"
    res = run_child(
        tmp_path, "search", "--spec", str(tiny_spec), "--n-trials", "1",
        "--data-dir", str(tmp_path / "no-data"), "--backend", "tensorflow", "--study", "t",
        "--storage", f"sqlite:///{db}", block="tensorflow",
    )  # fmt: skip
    [line] = res.stderr.strip().splitlines()
    assert line == (
        "hpo32: error: the tensorflow backend needs TensorFlow: pip install 'hpo32[cpu]' "
        "(or 'hpo32[gpu]' with CUDA)"
    )
    assert json.loads(res.stdout.strip().splitlines()[-1])["code"] == 2
    assert not db.exists()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_missing_jax_is_one_sentence_and_writes_nothing(tmp_path, tiny_spec, how):
    db = tmp_path / "none.db"
    flag = ("--backend", "jax") if how == "flag" else ()
    res = run_child(
        tmp_path, "search", "--spec", str(tiny_spec), "--n-trials", "1", *flag, "--study", "j",
        "--data-dir", str(tmp_path / "no-data"), "--storage", f"sqlite:///{db}", block="jax",
        **({"KERAS_BACKEND": "jax"} if how == "environment" else {}),
    )  # fmt: skip
    assert res.stderr.strip() == "hpo32: error: the jax backend needs JAX: pip install 'hpo32[jax]'"
    assert json.loads(res.stdout.strip().splitlines()[-1])["code"] == 2
    assert not db.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", "tiny.yaml"]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_a_jax_search_records_jax_and_never_imports_tensorflow(tmp_path, tiny_spec, cifar_dir):
    db = tmp_path / "j.db"
    res = run_child(
        tmp_path, *search_args("j", tiny_spec, cifar_dir, f"sqlite:///{db}", n_trials=2,
        backend="jax", json=True), KERAS_BACKEND="jax",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.strip().splitlines()[-1]) == {"code": 0, "tensorflow": []}
    assert trial_backends(db) == ["jax", "jax"]


def test_autokeras_on_torch_is_refused_before_anything_is_written(tmp_path, tiny_spec):
    db = tmp_path / "none.db"
    res = run_hpo32(
        *search_args(
            "a",
            tiny_spec,
            tmp_path / "no-data",
            f"sqlite:///{db}",
            n_trials="1",
            engine="autokeras:greedy",
            backend="torch",
        ),
        cwd=tmp_path,
    )
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "hpo32: error: the autokeras engine runs on the tensorflow backend only (AutoKeras "
        "does not support torch); use --engine optuna or --backend tensorflow."
    )
    assert not db.exists()


def test_an_unknown_backend_in_the_environment_is_one_sentence(tmp_path, tiny_spec):
    res = run_hpo32(
        "check",
        "--spec",
        tiny_spec,
        "--n-trials",
        "1",
        "--no-data",
        cwd=tmp_path,
        KERAS_BACKEND="numpy",
    )
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "hpo32: error: unknown backend 'numpy'; use one of tensorflow, jax, torch."
    )


def test_engines_declare_their_backends():
    from hpo32.search.engines import get

    assert get("optuna").backends == ("tensorflow", "jax", "torch")
    assert get("keras-tuner").backends == ("tensorflow", "jax", "torch")
    assert get("autokeras").backends == ("tensorflow",)
