"""The one writer of the files the commands produce (``hpo32 export --out``, ``hpo32 report
--out``).

It refuses, before anything is written, an output that is the database in use (the SQLite
file, its ``-wal``, ``-shm`` and ``-journal`` files, its lock file; by path, through symlinks,
or as a hard link) and an existing path that is not a regular file (a folder, a device, a
fifo). ``-`` means standard output. A regular file is replaced atomically (a temporary file
in the same folder, then :func:`os.replace`), with the mode a plain ``open(path, "w")`` gives:
an existing file keeps its mode, a new one gets ``0o666`` less the umask.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from hpo32.storage.db import StorageError, sqlite_path

__all__ = ["STDOUT", "OutputError", "check_output", "write_output"]

#: The ``--out`` that means standard output.
STDOUT = "-"
#: Suffixes of the files SQLite (and hpo32's study lock) keep beside a database file.
_DATABASE_SUFFIXES = ("", "-wal", "-shm", "-journal", ".hpo32-lock")


class OutputError(StorageError):
    """An output path that cannot or must not be written; one sentence with the fix.

    A :class:`StorageError`, so every command prints it as its other user errors (exit 2).
    """


def check_output(out: str | os.PathLike[str], url: str | None = None) -> Path | None:
    """Checks that ``out`` can be written without harm; writes nothing.

    Args:
        out: the path given, or ``-`` for standard output.
        url: the storage URL in use; its SQLite files are refused.

    Returns:
        The path to write (``~`` expanded), or None for standard output.

    Raises:
        OutputError: ``out`` is a file of the database, an existing path that is not a
            regular file, in a folder that does not exist, or not writable.
    """
    if os.fspath(out) == STDOUT:
        return None
    target = Path(out).expanduser()
    real = Path(os.path.realpath(target))  # where open() would write, through symlinks
    for guarded in _database_files(url):
        if real == Path(os.path.realpath(guarded)) or _same_file(target, guarded):
            raise OutputError(
                f"--out '{out}' is '{guarded}', a file of the database in use; writing it "
                "would destroy the studies, so name another file."
            )
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputError(
            f"cannot write '{out}': {exc.strerror or exc}; pick another --out."
        ) from None
    if mode is not None and not stat.S_ISREG(mode):
        kind = _kind(mode)
        if kind == "a folder":
            raise OutputError(
                f"'{out}' is a folder; name a file to write in it (or - for standard output)."
            )
        raise OutputError(
            f"'{out}' is {kind}, not a regular file; name a file to write "
            "(or - for standard output)."
        )
    if not real.parent.is_dir():
        raise OutputError(f"folder '{real.parent}' does not exist; create it first.")
    if mode is not None and not os.access(real, os.W_OK):
        raise OutputError(f"'{out}' is not writable; fix its mode or pick another --out.")
    if mode is None and not os.access(real.parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create files in folder '{real.parent}'; pick another --out.")
    return target


def write_output(
    out: str | os.PathLike[str], data: str | bytes, url: str | None = None
) -> Path | None:
    """Writes ``data`` (text as UTF-8) to ``out`` after :func:`check_output`.

    Args:
        out: the path, or ``-`` for standard output.
        data: the file's whole content.
        url: the storage URL in use (its files are refused).

    Returns:
        The path written, or None for standard output.

    Raises:
        OutputError: refused by :func:`check_output`, or the write failed (a full disk); a
            file that was there is left as it was.
    """
    target = check_output(out, url)
    if target is None:
        if isinstance(data, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data)
        sys.stdout.flush()
        return None
    raw = data.encode("utf-8") if isinstance(data, str) else data
    real = Path(os.path.realpath(target))
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), mode)  # mkstemp made it 0600
        os.replace(tmp, real)
        tmp = None
    except OSError as exc:
        raise OutputError(
            f"cannot write '{out}': {exc.strerror or exc}; pick another --out."
        ) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _database_files(url: str | None) -> list[Path]:
    """The SQLite file of ``url`` and the files kept beside it; none for other databases."""
    path = sqlite_path(url) if url else None
    if path is None:
        return []
    return [path.with_name(path.name + suffix) for suffix in _DATABASE_SUFFIXES]


def _same_file(a: Path, b: Path) -> bool:
    """Whether two existing paths are one file (a hard link or a symlink to it)."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "something other than a file"


def _umask() -> int:
    """The process's umask (read from /proc where it can be, else set and put back)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
