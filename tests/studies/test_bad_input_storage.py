"""The bad-input catalogue's storage part: storage URLs, output files and predict's inputs.

Each case exits with code 2 and one sentence, no traceback, leaves the database exactly as it
was and, for an output path, the file it names (bytes, mode, kind) as it was.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import optuna
import pytest

from hpo32.storage import Records, make_engine, optuna_storage
from hpo32.studies.cli import main
from tests.studies.conftest import run_hpo32
from tests.studies.test_bad_input import _dump, kept_db  # noqa: F401 (a fixture)

MODEL_PATH = "m/trial-0/model.keras"


def _png(path: Path, width: int, height: int) -> str:
    """An all-black 1-bit grayscale PNG, written row by row (a few kB for 15000x15000)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the row's bits
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return str(path)


def _model_file(path: Path, truncated: bool) -> None:
    """A .keras-shaped zip archive (not a real model), cut in half when ``truncated``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", '{"keras_version": "3"}')
        archive.writestr("config.json", '{"class_name": "Sequential"}')
        archive.writestr("model.weights.h5", os.urandom(20_000))
    if truncated:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt(tmp: Path) -> str:
    path = tmp / "corrupt.db"
    path.write_bytes(os.urandom(8192))
    return f"sqlite:///{path}"


def _fifo(tmp: Path) -> Path:
    path = tmp / "pipe"
    os.mkfifo(path)
    return path


def _symlink(tmp: Path, to: Path) -> Path:
    link = tmp / "link.db"
    link.symlink_to(to)
    return link


def _search(url: str) -> list[str]:
    return ["search", "--study", "fresh", "--n-trials", "1", "--storage", url]


IN_MEMORY = "sqlite://"
MODE_RO = "?mode=ro"

# (id, argv builder taking the context c, fragment expected in the message, the output
# path the case must leave alone or None)
CASES = [
    # -- output files that would destroy input ------------------------------------------
    (
        "export-out-database",
        lambda c: ["export", "kept", "--storage", c.url, "--out", str(c.db)],
        "a file of the database in use",
        lambda c: c.db,
    ),
    (
        "report-out-database",
        lambda c: ["report", "kept", "--storage", c.url, "--out", str(c.db)],
        "a file of the database in use",
        lambda c: c.db,
    ),
    (
        "export-out-wal",
        lambda c: ["export", "kept", "--storage", c.url, "--out", f"{c.db}-wal"],
        "a file of the database in use",
        lambda c: Path(f"{c.db}-wal"),
    ),
    (
        "report-out-shm",
        lambda c: ["report", "kept", "--storage", c.url, "--out", f"{c.db}-shm"],
        "a file of the database in use",
        lambda c: Path(f"{c.db}-shm"),
    ),
    (
        "export-out-journal",
        lambda c: ["export", "kept", "--storage", c.url, "--out", f"{c.db}-journal"],
        "a file of the database in use",
        lambda c: Path(f"{c.db}-journal"),
    ),
    (
        "report-out-symlink-to-database",
        lambda c: ["report", "kept", "--storage", c.url, "--out", str(_symlink(c.tmp, c.db))],
        "a file of the database in use",
        lambda c: c.db,
    ),
    (
        "export-out-relative-database",
        lambda c: ["export", "kept", "--storage", c.url, "--out", os.path.relpath(c.db)],
        "a file of the database in use",
        lambda c: c.db,
    ),
    (
        "report-out-dev-full",
        lambda c: ["report", "kept", "--storage", c.url, "--out", "/dev/full"],
        "is a device, not a regular file",
        lambda c: Path("/dev/full"),
    ),
    (
        "export-out-dev-null",
        lambda c: ["export", "kept", "--storage", c.url, "--out", "/dev/null"],
        "is a device, not a regular file",
        lambda c: Path("/dev/null"),
    ),
    (
        "export-out-fifo",
        lambda c: ["export", "kept", "--storage", c.url, "--out", str(_fifo(c.tmp))],
        "is a fifo, not a regular file",
        lambda c: c.tmp / "pipe",
    ),
    (
        "report-out-folder",
        lambda c: ["report", "kept", "--storage", c.url, "--out", str(c.tmp)],
        "is a folder",
        None,
    ),
    # -- storage URLs ----------------------------------------------------------------------
    (
        "mysql-without-driver",
        lambda c: ["list", "--storage", "mysql://u@127.0.0.1/db"],
        "write mysql+pymysql://",
        None,
    ),
    (
        "async-driver",
        lambda c: ["show", "kept", "--storage", "postgresql+asyncpg://u@127.0.0.1/db"],
        "write postgresql://USER@HOST/DB or postgresql+psycopg://",
        None,
    ),
    (
        "unknown-sqlite-driver",
        lambda c: _search("sqlite+foo:///x.db"),
        "names driver 'foo'",
        None,
    ),
    (
        "non-numeric-port",
        lambda c: ["list", "--storage", "postgresql://u@127.0.0.1:abc/db"],
        "port that is not a number",
        None,
    ),
    ("corrupt-sqlite-search", lambda c: _search(_corrupt(c.tmp)), "is not a database", None),
    (
        "corrupt-sqlite-list",
        lambda c: ["list", "--storage", _corrupt(c.tmp)],
        "is not a database",
        None,
    ),
    (
        "corrupt-sqlite-show",
        lambda c: ["show", "kept", "--storage", _corrupt(c.tmp)],
        "is not a database",
        None,
    ),
    ("in-memory-search", lambda c: _search(IN_MEMORY), "in-memory database", None),
    ("in-memory-list", lambda c: ["list", "--storage", IN_MEMORY], "in-memory database", None),
    (
        "in-memory-show",
        lambda c: ["show", "kept", "--storage", IN_MEMORY],
        "in-memory database",
        None,
    ),
    (
        "in-memory-resume",
        lambda c: ["resume", "kept", "--storage", IN_MEMORY],
        "in-memory database",
        None,
    ),
    (
        "in-memory-worker",
        lambda c: ["worker", "kept", "--storage", IN_MEMORY],
        "in-memory database",
        None,
    ),
    (
        "in-memory-export",
        lambda c: ["export", "kept", "--storage", IN_MEMORY],
        "in-memory database",
        None,
    ),
    (
        "in-memory-report",
        lambda c: ["report", "kept", "--storage", IN_MEMORY],
        "in-memory database",
        None,
    ),
    (
        "in-memory-dashboard",
        lambda c: ["dashboard", "--storage", IN_MEMORY],
        "in-memory database",
        None,
    ),
    (
        "in-memory-memory-name",
        lambda c: ["list", "--storage", "sqlite:///:memory:"],
        "in-memory database",
        None,
    ),
    (
        "mode-ro-list",
        lambda c: ["list", "--storage", c.url + MODE_RO],
        "options after '?'",
        None,
    ),
    ("mode-ro-search", lambda c: _search(c.url + MODE_RO), "options after '?'", None),
    (
        "mode-ro-dashboard",
        lambda c: ["dashboard", "--storage", c.url + MODE_RO],
        "options after '?'",
        None,
    ),
    # -- predict's inputs ------------------------------------------------------------------
    (
        "predict-225-megapixels",
        lambda c: [
            "predict",
            "m",
            _png(c.tmp / "huge.png", 15000, 15000),
            "--storage",
            c.model_url,
        ],
        "more than 89 megapixels",
        None,
    ),
    (
        "predict-truncated-model",
        lambda c: ["predict", "m", _png(c.tmp / "ok.png", 32, 32), "--storage", c.truncated_url],
        "is damaged (not a complete .keras archive)",
        None,
    ),
]


def _study_with_model(tmp: Path, truncated: bool) -> tuple[Path, str]:
    """A database whose study 'm' has a best trial with a saved (fake) model file."""
    url = f"sqlite:///{tmp}/m.db"
    study = optuna.create_study(study_name="m", storage=optuna_storage(url), direction="maximize")
    trial = study.ask()
    trial.suggest_int("conv_blocks", 1, 4)
    trial.set_user_attr("model_path", MODEL_PATH)
    trial.set_user_attr("config", {"conv_blocks": 1})
    study.tell(trial, 0.5)
    Records(make_engine(url)).add_study("m", "optuna", "cifar10", {"epochs": 1}, 60.0)
    _model_file(tmp / "m-artifacts" / MODEL_PATH, truncated)
    return tmp / "m.db", url


@pytest.fixture(scope="module")
def model_db(tmp_path_factory):
    return _study_with_model(tmp_path_factory.mktemp("model"), truncated=False)


@pytest.fixture(scope="module")
def truncated_db(tmp_path_factory):
    return _study_with_model(tmp_path_factory.mktemp("truncated"), truncated=True)


def _snapshot(path: Path | None):
    """What must not change about an output path: its kind, inode and, for a regular
    file, its bytes and mode; None when it does not exist."""
    if path is None:
        return None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    content = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
    return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_ino, st.st_rdev, content)


@pytest.mark.parametrize(
    "argv, fragment, target", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_storage_input_exits_2_with_one_sentence_and_keeps_everything(
    argv,
    fragment,
    target,
    tmp_path,
    kept_db,  # noqa: F811
    model_db,
    truncated_db,
    cifar_dir,
    capsys,
    monkeypatch,
):
    monkeypatch.chdir(tmp_path)
    for name in ("HPO32_STORAGE", "HPO32_ARTIFACTS", "HPO32_HEARTBEAT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HPO32_DATA_DIR", str(cifar_dir))
    c = SimpleNamespace(
        tmp=tmp_path,
        db=kept_db,
        url=f"sqlite:///{kept_db}",
        model_url=model_db[1],
        truncated_url=truncated_db[1],
    )
    args = argv(c)
    protected = target(c) if target else None
    # the database held open elsewhere, as a running search holds it, so that its -wal and
    # -shm files exist throughout: SQLite removes them when the last connection closes, which
    # an engine left by an earlier test in this process may do at any garbage collection
    in_use = sqlite3.connect(kept_db)
    try:
        in_use.execute("SELECT count(*) FROM sqlite_master").fetchall()
        dumps = [_dump(db) for db in (kept_db, model_db[0], truncated_db[0])]
        kept = _snapshot(protected)
        existed = sorted(os.listdir(tmp_path))
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 2, err
        assert fragment in err, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hpo32: error: "), err
        assert "Traceback" not in err + out
        assert [_dump(db) for db in (kept_db, model_db[0], truncated_db[0])] == dumps
        assert _snapshot(protected) == kept
        assert sorted(os.listdir(tmp_path)) == existed  # nothing written beside the inputs
    finally:
        in_use.close()


def test_catalogue_covers_every_storage_defect():
    assert len(CASES) >= 30


def test_a_path_with_url_characters_is_one_file_for_every_command(
    tmp_path, cifar_dir, tiny_spec, capsys, monkeypatch
):
    """search writes the file in a folder named with '#', '?', '%' and a space; list, show,
    export and the dashboard's engine read that file, read-only, and create nothing else."""
    folder = tmp_path / "we#ird ?%dir"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO32_ARTIFACTS", raising=False)
    monkeypatch.delenv("HPO32_STORAGE", raising=False)
    monkeypatch.setenv("HPO32_DATA_DIR", str(cifar_dir))
    url = f"sqlite:///{quote(str(folder))}/h.db"
    code = main(
        ["search", "--study", "odd", "--spec", str(tiny_spec), "--n-trials", "1", "--storage", url]
    )
    assert code == 0, capsys.readouterr().err
    assert (folder / "h.db").is_file()
    capsys.readouterr()
    outside = sorted(os.listdir(tmp_path))
    before = _dump(folder / "h.db")
    assert main(["list", "--storage", url]) == 0
    assert "odd" in capsys.readouterr().out
    assert main(["show", "odd", "--no-model", "--storage", url]) == 0
    assert "study odd" in capsys.readouterr().out
    assert main(["export", "odd", "--storage", url, "--out", "-"]) == 0
    assert capsys.readouterr().out.startswith("number,")

    import sqlalchemy as sa

    from hpo32.dashboards.cli import _url
    from hpo32.dashboards.data import open_engine

    engine = open_engine(_url(url))
    with pytest.raises(sa.exc.OperationalError, match="readonly"):
        with engine.begin() as con:
            con.exec_driver_sql("CREATE TABLE x (a int)")
    assert _dump(folder / "h.db") == before
    assert sorted(os.listdir(tmp_path)) == outside  # no 'we' file opened beside the folder


def test_export_and_report_write_standard_output_and_honour_the_umask(
    tmp_path,
    kept_db,  # noqa: F811
    capsys,
    monkeypatch,
):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{kept_db}"
    old = os.umask(0o022)
    try:
        assert main(["export", "kept", "--storage", url, "--out", "-"]) == 0
        assert capsys.readouterr().out.startswith("number,")
        assert main(["report", "kept", "--storage", url, "--out", "-"]) == 0
        out = capsys.readouterr().out
        assert out.lstrip().startswith("<!DOCTYPE html>") and "hpo32 report: wrote" not in out
        assert main(["export", "kept", "--storage", url, "--out", "t.csv"]) == 0
        assert main(["report", "kept", "--storage", url, "--out", "r.html"]) == 0
    finally:
        os.umask(old)
    for name in ("t.csv", "r.html"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name
    assert sorted(os.listdir(tmp_path)) == ["r.html", "t.csv"]


def test_a_model_that_keras_cannot_load_is_one_sentence(tmp_path, model_db, capsys, monkeypatch):
    """The archive is whole (it passes the cheap check), but Keras cannot read it."""
    monkeypatch.delenv("HPO32_ARTIFACTS", raising=False)
    image = _png(tmp_path / "ok.png", 32, 32)
    before = _dump(model_db[0])
    code = main(["predict", "m", image, "--storage", model_db[1]])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpo32: error: the best model of study 'm'")
    assert "cannot be loaded" in err and "File not found" not in err
    assert _dump(model_db[0]) == before


def test_a_bad_heartbeat_leaves_reading_commands_working(tmp_path, kept_db):  # noqa: F811
    res = run_hpo32(
        "list", "--storage", f"sqlite:///{kept_db}", cwd=tmp_path, HPO32_HEARTBEAT="abc"
    )
    assert res.returncode == 0, res.stderr
    assert "kept" in res.stdout and res.stderr == ""


@pytest.mark.parametrize("value", ["abc", "0"])
def test_a_bad_heartbeat_stops_search_before_the_database(
    value, tmp_path, tiny_spec, cifar_dir, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPO32_HEARTBEAT", value)
    monkeypatch.setenv("HPO32_DATA_DIR", str(cifar_dir))
    url = f"sqlite:///{tmp_path}/hb.db"
    code = main(
        ["search", "--study", "hb", "--spec", str(tiny_spec), "--n-trials", "1", "--storage", url]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpo32: error: HPO32_HEARTBEAT=")
    assert not (tmp_path / "hb.db").exists()
