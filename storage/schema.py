"""Every table hpo32 touches, declared once on one :data:`metadata`.

Optuna's RDB tables are the system of record for trials; they are declared here with only
the columns hpo32 reads (Optuna creates and migrates them, hpo32 never does). hpo32's own
``hpo32_*`` tables hold what Optuna does not keep: the study spec and budget, the sessions
that consumed it, and the test result of the best trial; :func:`create_hpo32_tables` creates
them when missing.

Optuna stores trial datetimes as naive UTC and ``trials.state`` as an enum (a native type in
PostgreSQL and MySQL): compare it through :func:`state_is`.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "HPO32_TABLES",
    "OPTUNA_TABLES",
    "create_hpo32_tables",
    "hpo32_classes",
    "hpo32_meta",
    "hpo32_results",
    "hpo32_sessions",
    "hpo32_studies",
    "metadata",
    "state_is",
    "studies",
    "study_user_attributes",
    "trial_intermediate_values",
    "trial_params",
    "trial_user_attributes",
    "trial_values",
    "trials",
]

metadata = sa.MetaData()

# -- Optuna's tables (read only; the columns hpo32 reads) -------------------------------------
studies = sa.Table(
    "studies",
    metadata,
    sa.Column("study_id", sa.Integer, primary_key=True),
    sa.Column("study_name", sa.String(512)),
)
study_user_attributes = sa.Table(
    "study_user_attributes",
    metadata,
    sa.Column("study_user_attribute_id", sa.Integer, primary_key=True),
    sa.Column("study_id", sa.Integer),
    sa.Column("key", sa.String(512)),
    sa.Column("value_json", sa.Text),
)
trials = sa.Table(
    "trials",
    metadata,
    sa.Column("trial_id", sa.Integer, primary_key=True),
    sa.Column("number", sa.Integer),
    sa.Column("study_id", sa.Integer),
    sa.Column("state", sa.String(16)),  # an enum in PostgreSQL/MySQL; read as its name
    sa.Column("datetime_start", sa.DateTime),
    sa.Column("datetime_complete", sa.DateTime),
)
trial_values = sa.Table(
    "trial_values",
    metadata,
    sa.Column("trial_value_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("objective", sa.Integer),
    sa.Column("value", sa.Float),
)
trial_params = sa.Table(
    "trial_params",
    metadata,
    sa.Column("param_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("param_name", sa.String(512)),
    sa.Column("param_value", sa.Float),
    sa.Column("distribution_json", sa.Text),
)
trial_intermediate_values = sa.Table(
    "trial_intermediate_values",
    metadata,
    sa.Column("trial_intermediate_value_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("step", sa.Integer),
    sa.Column("intermediate_value", sa.Float),
)
trial_user_attributes = sa.Table(
    "trial_user_attributes",
    metadata,
    sa.Column("trial_user_attribute_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("key", sa.String(512)),
    sa.Column("value_json", sa.Text),
)

# -- hpo32's own tables -----------------------------------------------------------------------
hpo32_studies = sa.Table(
    "hpo32_studies",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("engine", sa.String(64), nullable=False),
    sa.Column("dataset", sa.String(512), nullable=False),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("budget_seconds", sa.Double, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
)
hpo32_sessions = sa.Table(
    "hpo32_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_name", sa.String(255), nullable=False, index=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
    sa.Column("ended_at", sa.Double, nullable=True),
    sa.Column("exit_reason", sa.String(64), nullable=True),
    sa.Column("trials_run", sa.Integer, nullable=False, default=0),
    sa.Column("heartbeat_s", sa.Double, nullable=False, default=30.0),
)
hpo32_results = sa.Table(
    "hpo32_results",
    metadata,
    sa.Column("study_name", sa.String(255), primary_key=True),
    sa.Column("trial_number", sa.Integer, nullable=False),
    sa.Column("val_accuracy", sa.Double, nullable=True),
    sa.Column("test_accuracy", sa.Double, nullable=True),
    sa.Column("model_path", sa.String(1024), nullable=True),
    sa.Column("evaluated_at", sa.Double, nullable=False),
)

hpo32_classes = sa.Table(  # a study's classes in label order (what predict names)
    "hpo32_classes",
    metadata,
    sa.Column("study_name", sa.String(255), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("class_id", sa.String(255), nullable=False),
    sa.Column("class_name", sa.String(512), nullable=False),
)
hpo32_meta = sa.Table(  # the version of hpo32's tables (storage/migrations.py)
    "hpo32_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

#: Optuna's tables as declared here (never created by hpo32).
OPTUNA_TABLES = (
    studies,
    study_user_attributes,
    trials,
    trial_values,
    trial_params,
    trial_intermediate_values,
    trial_user_attributes,
)
#: hpo32's own tables, created by :func:`create_hpo32_tables`.
HPO32_TABLES = (hpo32_studies, hpo32_sessions, hpo32_results, hpo32_classes, hpo32_meta)


def create_hpo32_tables(engine: sa.Engine) -> None:
    """Creates hpo32's tables where missing and upgrades older ones (Optuna's are left to
    Optuna); see :mod:`hpo32.storage.migrations`."""
    from hpo32.storage.migrations import upgrade

    upgrade(engine)


def state_is(state: str) -> sa.ColumnElement[bool]:
    """``trials.state = state`` on every database: PostgreSQL stores the state as an enum,
    which a text parameter cannot be compared with, so the column is read as text."""
    return sa.cast(trials.c.state, sa.String(16)) == state
