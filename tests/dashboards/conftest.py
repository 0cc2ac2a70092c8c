"""Shared fixtures: one generated database with every case the dashboards must survive."""

from __future__ import annotations

import pytest

from tests.dashboards.dbgen import build_fixture


@pytest.fixture(scope="session")
def fixture_db(tmp_path_factory):
    """``(url, plans)``: the database of :func:`dbgen.build_fixture` (read it, never write)."""
    path = tmp_path_factory.mktemp("dashboards") / "fixture.db"
    url = f"sqlite:///{path}"
    plans = build_fixture(url, bulk=True)
    return url, plans


@pytest.fixture(scope="session")
def engine(fixture_db):
    """A read-only engine over :func:`fixture_db`."""
    from hpo32.dashboards.data import open_engine

    eng = open_engine(fixture_db[0])
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def plans(fixture_db):
    return fixture_db[1]
