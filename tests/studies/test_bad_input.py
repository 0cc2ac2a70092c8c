"""A catalogue of bad inputs: each exits with code 2 and one clear sentence, no traceback, and
leaves the database exactly as it was."""

from __future__ import annotations

import os
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pytest

from hpo32.storage import Records, StorageError, make_engine, optuna_storage, resolve_url
from hpo32.studies.cli import main
from tests.fixtures import write_cifar10, write_class_folders, write_imagenet32
from tests.studies.conftest import TINY_SPEC, run_hpo32


def _spec(tmp: Path, text: str, name: str = "spec.yaml") -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def _cifar_with(tmp: Path, batch: object | bytes) -> str:
    root = tmp / "badcifar"
    write_cifar10(root, n_per_batch=10, n_test=10)
    raw = batch if isinstance(batch, bytes) else pickle.dumps(batch, protocol=2)
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(raw)
    return str(root)


def _truncated_pickle(tmp: Path) -> str:
    root = tmp / "trunc"
    written = write_cifar10(root, n_per_batch=10, n_test=10)
    path = written.path / "data_batch_2"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return str(root)


def _truncated_npz(tmp: Path) -> str:
    root = tmp / "in32"
    written = write_imagenet32(root)
    path = written.files["train_1"]
    path.write_bytes(path.read_bytes()[:300])
    return str(root)


def _one_class(tmp: Path) -> str:
    root = tmp / "oneclass"
    write_class_folders(root, classes=["only"], n_per_class=4)
    return str(root)


def search(*extra: str) -> list[str]:
    return ["search", "--study", "fresh", "--n-trials", "1", *extra]


# (id, argv builder taking (tmp, url, data), fragment expected in the message)
CASES = [
    (
        "malformed-yaml",
        lambda t, u, d: search("--spec", _spec(t, "epochs: [1, 2\n"), "--storage", u),
        "is not valid YAML/JSON",
    ),
    (
        "unknown-spec-key",
        lambda t, u, d: search("--spec", _spec(t, "colour: red\n"), "--storage", u),
        "unknown key 'colour'",
    ),
    (
        "warm-start-unknown-parameter",
        lambda t, u, d: search(
            "--spec", _spec(t, "warm_start:\n  - {filter_1: 32}\n"), "--storage", u
        ),
        "warm_start config 1: no parameter named 'filter_1' in the space",
    ),
    (
        "warm-start-not-a-list",
        lambda t, u, d: search(
            "--spec", _spec(t, "warm_start: {batch_norm: true}\n"), "--storage", u
        ),
        "warm_start must be a list of configs",
    ),
    (
        "warm-start-other-engine",
        lambda t, u, d: search(
            "--spec", _spec(t, "engine: keras-tuner:random\nwarm_start: [{}]\n"), "--storage", u
        ),
        "warm_start works with the optuna engine, not 'keras-tuner:random'",
    ),
    (
        "unknown-parameter",
        lambda t, u, d: search(
            "--spec", _spec(t, "space:\n  params:\n    wings: {low: 1, high: 2}\n"), "--storage", u
        ),
        "unknown parameter 'wings'",
    ),
    (
        "low-above-high",
        lambda t, u, d: search(
            "--spec",
            _spec(t, "space:\n  params:\n    conv_blocks: {low: 3, high: 1}\n"),
            "--storage",
            u,
        ),
        "'conv_blocks': low (3) is greater than high (1)",
    ),
    (
        "log-low-zero",
        lambda t, u, d: search(
            "--spec", _spec(t, "space:\n  params:\n    learning_rate: {low: 0.0}\n"), "--storage", u
        ),
        "'learning_rate': a log scale needs low > 0",
    ),
    (
        "empty-choices",
        lambda t, u, d: search(
            "--spec", _spec(t, "space:\n  params:\n    activation: {choices: []}\n"), "--storage", u
        ),
        "'activation': choices must not be empty",
    ),
    (
        "condition-on-missing",
        lambda t, u, d: search(
            "--spec",
            _spec(
                t,
                "space:\n  params:\n    momentum: {type: float, low: 0.5, high: 0.9,"
                " when: {parent: solver, values: [sgd]}}\n",
            ),
            "--storage",
            u,
        ),
        "refers to unknown parameter 'solver'",
    ),
    (
        "duplicate-names",
        lambda t, u, d: search(
            "--spec",
            _spec(t, "space:\n  params:\n    conv_blocks: 2\n    conv_blocks: 3\n"),
            "--storage",
            u,
        ),
        "key 'conv_blocks' appears twice",
    ),
    (
        "unknown-engine",
        lambda t, u, d: search("--engine", "sklearn", "--storage", u),
        "unknown engine 'sklearn'",
    ),
    (
        "unknown-sampler",
        lambda t, u, d: search("--sampler", "annealing", "--storage", u),
        "unknown sampler 'annealing'",
    ),
    (
        "unknown-pruner",
        lambda t, u, d: search("--pruner", "sometimes", "--storage", u),
        "unknown pruner 'sometimes'",
    ),
    (
        "unknown-precision",
        lambda t, u, d: search("--precision", "fp8", "--storage", u),
        "unknown precision 'fp8'; use one of auto, float32, bfloat16, float16",
    ),
    (
        "zero-epoch-images",
        lambda t, u, d: search("--epoch-images", "0", "--storage", u),
        "--epoch-images: must be at least 1, got 0",
    ),
    (
        "unknown-dataset",
        lambda t, u, d: search("--dataset", "mnist", "--storage", u),
        "unknown dataset 'mnist'",
    ),
    (
        "unknown-preset",
        lambda t, u, d: search("--preset", "resnet-9000", "--storage", u),
        "unknown preset 'resnet-9000'",
    ),
    (
        "negative-budget",
        lambda t, u, d: search("--budget=-5m", "--storage", u),
        "budget must be positive",
    ),
    (
        "zero-budget",
        lambda t, u, d: search("--budget", "0s", "--storage", u),
        "budget must be positive",
    ),
    (
        "unparsable-budget",
        lambda t, u, d: search("--budget", "soon", "--storage", u),
        "cannot read budget 'soon'",
    ),
    (
        "zero-trials",
        lambda t, u, d: ["search", "--study", "fresh", "--n-trials", "0", "--storage", u],
        "must be at least 1",
    ),
    (
        "unparsable-url",
        lambda t, u, d: search("--storage", "hpo32.db"),
        "cannot use storage URL 'hpo32.db'",
    ),
    (
        "unreachable-postgres",
        lambda t, u, d: search("--storage", "postgresql://nobody@127.0.0.1:1/nothing"),
        "cannot connect to storage",
    ),
    (
        "directory-as-sqlite",
        lambda t, u, d: search("--storage", f"sqlite:///{t}"),
        "points at a folder",
    ),
    # /proc/sys is read-only even for root (CI runs as root, which ignores file modes)
    (
        "read-only-sqlite",
        lambda t, u, d: search("--storage", "sqlite:////proc/sys/hpo32.db"),
        "cannot create a database in read-only folder '/proc/sys'",
    ),
    (
        "missing-data-dir",
        lambda t, u, d: search("--data-dir", str(t / "nowhere"), "--storage", u),
        "nowhere",
    ),
    (
        "truncated-npz",
        lambda t, u, d: search(
            "--dataset", "imagenet32", "--data-dir", _truncated_npz(t), "--storage", u
        ),
        "train_data_batch_1.npz",
    ),
    (
        "truncated-pickle",
        lambda t, u, d: search("--data-dir", _truncated_pickle(t), "--storage", u),
        "data_batch_2",
    ),
    (
        "not-a-cifar-batch",
        lambda t, u, d: search("--data-dir", _cifar_with(t, {b"rows": [1, 2, 3]}), "--storage", u),
        "data_batch_1",
    ),
    (
        "labels-out-of-range",
        lambda t, u, d: search(
            "--data-dir",
            _cifar_with(t, {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 10]}),
            "--storage",
            u,
        ),
        "label 10",
    ),
    (
        "wrong-image-size",
        lambda t, u, d: search(
            "--data-dir",
            _cifar_with(t, {b"data": np.zeros((4, 3000), np.uint8), b"labels": [0, 1, 2, 3]}),
            "--storage",
            u,
        ),
        "data_batch_1",
    ),
    (
        "one-class-folder",
        lambda t, u, d: search("--dataset", f"folder:{_one_class(t)}", "--storage", u),
        "class",
    ),
    (
        "name-with-quotes",
        lambda t, u, d: ["search", "--study", "it's", "--storage", u],
        "is not allowed",
    ),
    (
        "name-with-slash",
        lambda t, u, d: ["search", "--study", "a/b", "--storage", u],
        "is not allowed",
    ),
    (
        "name-with-html",
        lambda t, u, d: ["search", "--study", "<script>", "--storage", u],
        "is not allowed",
    ),
    (
        "existing-study",
        lambda t, u, d: ["search", "--study", "kept", "--n-trials", "1", "--storage", u],
        "already exists",
    ),
    (
        "resume-missing",
        lambda t, u, d: ["resume", "ghost", "--storage", u],
        "no study named 'ghost'",
    ),
    ("show-missing", lambda t, u, d: ["show", "ghost", "--storage", u], "no study named 'ghost'"),
    (
        "worker-missing",
        lambda t, u, d: ["worker", "ghost", "--storage", u],
        "no study named 'ghost'",
    ),
    (
        "export-missing",
        lambda t, u, d: ["export", "ghost", "--storage", u],
        "no study named 'ghost'",
    ),
    (
        "bad-gpu-list",
        lambda t, u, d: search("--gpus", "zero,one", "--storage", u),
        "is not a list of GPU numbers",
    ),
]


@pytest.fixture(scope="module")
def kept_db(tmp_path_factory):
    """A database that already holds a study with a finished trial."""
    tmp = tmp_path_factory.mktemp("kept")
    url = f"sqlite:///{tmp}/hpo32.db"
    study = optuna.create_study(
        study_name="kept", storage=optuna_storage(url), direction="maximize"
    )
    trial = study.ask()
    trial.suggest_int("conv_blocks", 1, 4)
    study.tell(trial, 0.5)
    Records(make_engine(url)).add_study("kept", "optuna", "cifar10", {"epochs": 1}, 60.0)
    return tmp / "hpo32.db"


def _dump(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


@pytest.mark.parametrize("argv, fragment", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_sentence_and_keeps_the_database(
    argv, fragment, tmp_path, kept_db, cifar_dir, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO32_STORAGE", raising=False)
    monkeypatch.setenv("HPO32_DATA_DIR", str(cifar_dir))
    url = f"sqlite:///{kept_db}"
    before = _dump(kept_db)
    code = main(argv(tmp_path, url, cifar_dir))
    err = capsys.readouterr().err
    assert code == 2, err
    assert fragment in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpo32: error: "), err
    assert "Traceback" not in err
    assert _dump(kept_db) == before
    assert not (tmp_path / "hpo32.db").exists()


def test_catalogue_is_large_enough():
    assert len(CASES) >= 25


def test_bad_input_in_a_real_process_prints_no_traceback(tmp_path, cifar_dir):
    spec = _spec(tmp_path, TINY_SPEC + "colour: red\n")
    res = run_hpo32(
        "search",
        "--study",
        "x",
        "--spec",
        spec,
        "--storage",
        f"sqlite:///{tmp_path}/x.db",
        cwd=tmp_path,
    )
    assert res.returncode == 2
    assert res.stderr.strip().startswith("hpo32: error: unknown key 'colour'")
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "x.db").exists()
    assert os.listdir(tmp_path) == ["spec.yaml"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files regardless of mode")
def test_a_read_only_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "ro.db"
    optuna_storage(f"sqlite:///{path}")
    path.chmod(0o444)
    with pytest.raises(StorageError, match="is not writable"):
        resolve_url(f"sqlite:///{path}")
