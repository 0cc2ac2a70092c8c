"""Fixtures for every test folder: one fresh database of each kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.databases import KINDS, fresh_database


@pytest.fixture(params=KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, once per kind: SQLite, PostgreSQL, MySQL/MariaDB
    (``tests.databases``); dropped afterwards. Where a server is absent the test skips and
    says why. A test that needs fewer kinds narrows it:
    ``@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)``."""
    with fresh_database(request.param, tmp_path) as url:
        yield url
