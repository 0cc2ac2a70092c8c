"""The search engines over the one space: Optuna, KerasTuner and AutoKeras as siblings.

Import the registry's names from here (:mod:`hpo32.search.engines.registry`: the ``Engine``
record, :func:`engine_names`, :func:`parse_engine`, :func:`get`, and the contract every engine
keeps). The engine modules (``optuna``, ``keras_tuner``, ``autokeras``) and what they share
(``base``, ``record``, ``optuna_space``, ``tuner_space``, ``tuner``) load on first use, so
importing this package imports no ML framework and no Optuna.
"""

from hpo32.search.engines.registry import (
    ENGINES,
    Engine,
    EngineRun,
    engine_names,
    get,
    parse_engine,
)

__all__ = ["ENGINES", "Engine", "EngineRun", "engine_names", "get", "parse_engine"]
