"""hpo32: hyperparameter search for Keras CNNs on 32x32 images, recorded in one database.

The import package maps the repository's folders: ``hpo32.search`` (the ML core),
``hpo32.storage`` (the one database), ``hpo32.dashboards`` (figures, web app, report) and
``hpo32.studies`` (specs, sessions and the ``hpo32`` command). ``docs/ARCHITECTURE.md`` is
the map. Importing this package imports nothing heavy.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hpo32")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
