"""The install: one import package ``hpo32``, its command, and workers no folder can shadow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import optuna

from hpo32 import __version__
from tests.studies.conftest import ROOT, TINY_SPEC, hpo32_env

HPO32 = Path(sys.executable).with_name("hpo32")  # the console script pip installed


def test_a_wheel_installs_exactly_one_top_level_package(tmp_path):
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools would reuse stale files
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("hpo32-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"hpo32"}
    assert "hpo32/studies/presets/cifar10-cpu.yaml" in names
    assert "hpo32/search/space.py" in names


def test_python_m_hpo32_and_version():
    out = subprocess.run(
        [sys.executable, "-m", "hpo32", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"hpo32 {__version__}"
    assert __version__[0].isdigit()


def test_workers_start_from_a_folder_whose_modules_would_shadow_hpo32(tmp_path):
    from tests.fixtures import write_cifar10

    data = tmp_path / "data"
    write_cifar10(data, n_per_batch=40, n_test=40)
    work = tmp_path / "work"
    work.mkdir()
    for name in ("search", "hpo32", "studies", "storage"):
        (work / f"{name}.py").write_text("raise SystemExit('the current folder shadowed hpo32')\n")
    (work / "tiny.yaml").write_text(TINY_SPEC)
    env = hpo32_env()
    env.pop("PYTHONPATH")  # as a user runs it: nothing but the installed package
    url = f"sqlite:///{work}/hpo32.db"
    res = subprocess.run(
        [str(HPO32), "search", "--study", "w", "--spec", "tiny.yaml", "--data-dir", str(data),
         "--n-trials", "2", "--epochs", "1", "--workers", "2", "--storage", url],
        cwd=work, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "shadowed" not in res.stdout + res.stderr
    study = optuna.load_study(study_name="w", storage=url)
    assert len(study.trials) == 2
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}
    assert os.path.exists(work / "hpo32.db")
