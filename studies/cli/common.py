"""What the commands share: exit codes, UserError, the database they read, plain tables."""

from __future__ import annotations

from typing import Any

EXIT_FAILED = 1  # a failure of the run, not of its input (workers that died, a full disk)
EXIT_USER_ERROR = 2
EXIT_FAILURES = 3  # max_failures failed trials in a row stopped the search
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Bad input: printed as one sentence, exit code 2."""


def _records(url_arg: str | None, must_exist: bool = True):
    """hpo32's records over the database, read-only, and its URL (checked, the SQLite file
    required to exist).

    Raises:
        StorageError: the URL is refused or the database cannot be opened (one sentence).
    """
    from hpo32.storage import Records, make_engine, resolve_url, sqlite_path

    url = resolve_url(url_arg, existing=must_exist)
    path = sqlite_path(url)
    return Records(make_engine(url, read_only=path is not None), create=False), url


def _print_table(rows: list[tuple[Any, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
