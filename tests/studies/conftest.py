from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import write_cifar10

ROOT = Path(__file__).resolve().parents[2]

#: A tiny space so that a trial on a few hundred 32x32 images takes about a second.
TINY_SPEC = """\
dataset: cifar10
epochs: 2
sampler: random
pruner: none
space:
  params:
    conv_blocks: {low: 1, high: 2}
    filters_1: {low: 8, high: 16}
    filters_2: {low: 8, high: 16}
    convs_per_block: {low: 1, high: 2}
    fc_layers: {low: 0, high: 1}
    fc_units_1: {low: 16, high: 32}
    batch_size: {choices: [32, 64]}
"""


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, n_per_batch=40, n_test=40)
    return root


@pytest.fixture
def tiny_spec(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SPEC)
    return path


def hpo32_env(**extra: str) -> dict[str, str]:
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        TF_CPP_MIN_LOG_LEVEL="3",
        HPO32_ARTIFACTS="",
        CUDA_VISIBLE_DEVICES="",
    )
    env.pop("HPO32_STORAGE", None)
    env.pop("HPO32_DATA_DIR", None)
    env.update(extra)
    return env


def run_hpo32(*args: str, cwd: Path, timeout: float = 300, **env: str):
    """Runs the real command line in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "hpo32.studies.cli", *map(str, args)],
        cwd=cwd,
        env=hpo32_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def popen_hpo32(*args: str, cwd: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hpo32.studies.cli", *map(str, args)],
        cwd=cwd,
        env=hpo32_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def search_args(study: str, spec: Path, data_dir: Path, storage: str, **options: object):
    """``hpo32 search``'s arguments as the tests give them: the study, spec, data dir and
    storage that each one names, then ``options`` as flags (``n_trials=2`` is
    ``--n-trials 2``; ``True``, a flag without a value)."""
    out: list[object] = ["search", "--study", study, "--spec", spec, "--data-dir", data_dir]
    for key, value in options.items():
        out.append("--" + key.replace("_", "-"))
        if value is not True:
            out.append(value)
    return (*out, "--storage", storage)
