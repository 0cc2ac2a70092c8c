"""The service: study specs, launch/resume, budgets, sessions, the ``hpo32`` CLI."""
