"""The one writer of output files: never the database, never a device, the umask honoured."""

from __future__ import annotations

import os
import stat

import pytest

from hpo32.storage import OutputError, check_output, optuna_storage, write_output


@pytest.fixture
def db(tmp_path):
    """A real SQLite database (WAL, so -wal and -shm files sit beside it) and its URL."""
    url = f"sqlite:///{tmp_path}/hpo32.db"
    optuna_storage(url)
    return tmp_path / "hpo32.db", url


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_mode_open_gives(tmp_path, umask, mask, expected):
    umask(mask)
    out = tmp_path / "out.csv"
    assert write_output(out, "a,b\n") == out
    assert out.read_text() == "a,b\n"
    assert _mode(out) == expected
    assert os.listdir(tmp_path) == ["out.csv"]  # no temporary file left


def test_an_existing_file_keeps_its_mode_and_is_replaced(tmp_path, umask):
    out = tmp_path / "r.html"
    out.write_text("old")
    out.chmod(0o640)
    write_output(out, b"new")
    assert out.read_bytes() == b"new" and _mode(out) == 0o640


def test_a_symlink_is_written_through(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_output(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_dash_writes_to_standard_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert write_output("-", "text\n") is None
    assert capsys.readouterr().out == "text\n"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal", ".hpo32-lock"])
def test_the_database_and_its_files_are_refused(db, suffix):
    path, url = db
    out = path.with_name(path.name + suffix)
    existed = out.exists()
    before = (out.read_bytes(), _mode(out)) if existed else None
    with pytest.raises(OutputError, match="a file of the database in use"):
        write_output(out, "x", url)
    assert ((out.read_bytes(), _mode(out)) if existed else None) == before
    assert out.exists() == existed


def test_the_database_is_refused_through_links_and_relative_paths(db, tmp_path, monkeypatch):
    path, url = db
    before = path.read_bytes()
    (tmp_path / "sym.db").symlink_to(path)
    os.link(path, tmp_path / "hard.db")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    for out in (tmp_path / "sym.db", tmp_path / "hard.db", "../hpo32.db", "./../sub/../hpo32.db"):
        with pytest.raises(OutputError, match="a file of the database in use"):
            check_output(out, url)
    assert path.read_bytes() == before


@pytest.mark.parametrize("out, kind", [("/dev/null", "a device"), ("/dev/full", "a device")])
def test_a_device_is_refused(out, kind):
    before = os.stat(out)
    with pytest.raises(OutputError, match=f"is {kind}, not a regular file"):
        write_output(out, "x")
    after = os.stat(out)
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_a_fifo_and_a_folder_are_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="is a fifo"):
        write_output(fifo, "x")  # would block forever if it opened the fifo
    with pytest.raises(OutputError, match="is a folder"):
        write_output(tmp_path, "x")
    assert os.listdir(tmp_path) == ["pipe"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(OutputError, match="does not exist; create it first"):
        check_output(tmp_path / "no" / "x.csv")


def test_refusals_are_one_sentence(db, tmp_path):
    path, url = db
    for out in (path, "/dev/null", tmp_path, tmp_path / "no" / "x"):
        with pytest.raises(OutputError) as err:
            check_output(out, url)
        assert "\n" not in str(err.value) and str(err.value).endswith(".")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files regardless of mode")
def test_a_read_only_file_is_refused_and_kept(tmp_path):
    out = tmp_path / "ro.csv"
    out.write_text("keep")
    out.chmod(0o444)
    with pytest.raises(OutputError, match="is not writable"):
        write_output(out, "x")
    assert out.read_text() == "keep"


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "x.csv"
    out.write_text("old")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError, match="No space left on device"):
        write_output(out, "new")
    assert out.read_text() == "old" and os.listdir(tmp_path) == ["x.csv"]
