"""``hpo32 --help`` and ``hpo32 list`` start without TensorFlow (and ``list`` without Optuna)."""

from __future__ import annotations

import subprocess
import sys

import optuna

from hpo32.storage import optuna_storage
from tests.studies.conftest import ROOT

PROBE = """
import sys
from hpo32.studies.cli import main
code = main(sys.argv[1:])
heavy = [m for m in ("tensorflow", "keras", "keras_tuner", "autokeras", "plotly", "dash")
         if m in sys.modules]
print("HEAVY", heavy, "OPTUNA", "optuna" in sys.modules, "CODE", code)
"""


def probe(*argv: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    return out.stdout


def test_help_and_list_import_no_ml_framework(tmp_path):
    assert "HEAVY [] OPTUNA False CODE 0" in probe("--help")
    url = f"sqlite:///{tmp_path}/x.db"
    optuna.create_study(study_name="s", storage=optuna_storage(url))
    out = probe("list", "--storage", url)
    assert "HEAVY [] OPTUNA False CODE 0" in out
    assert "s " in out or "\ns" in out


def test_presets_lists_every_preset():
    out = probe("presets")
    for name in (
        "maxnet-imagenet32",
        "alexnet-imagenet32",
        "densenet121-transfer-cifar10",
        "search-cnn",
        "cifar10-cnn",
    ):
        assert name in out
