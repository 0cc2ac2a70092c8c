"""The one database: URLs, engine tuning, hpo32's own tables, queries and artifacts.

Optuna's RDB schema is the system of record for trials; the ``hpo32_*`` tables beside it hold
study specs, budgets, sessions and test results.
"""

from __future__ import annotations

from hpo32.storage.db import (
    DEFAULT_URL,
    StorageError,
    artifact_root,
    heartbeat_seconds,
    make_engine,
    optuna_storage,
    resolve_url,
    sqlite_path,
)
from hpo32.storage.output import OutputError, check_output, write_output
from hpo32.storage.records import (
    Records,
    Session,
    StudySummary,
    consumed_seconds,
    merge_intervals,
)

__all__ = [
    "DEFAULT_URL",
    "OutputError",
    "Records",
    "Session",
    "StorageError",
    "StudySummary",
    "artifact_root",
    "check_output",
    "consumed_seconds",
    "heartbeat_seconds",
    "make_engine",
    "merge_intervals",
    "optuna_storage",
    "resolve_url",
    "sqlite_path",
    "write_output",
]
