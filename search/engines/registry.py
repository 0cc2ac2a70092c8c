"""The search engines by name, and the contract every engine keeps.

An engine is one library's way of proposing configs of the one
:class:`~hpo32.search.space.SearchSpace`: ``optuna`` (its samplers and pruners),
``keras-tuner`` (KerasTuner's oracles) and ``autokeras`` (AutoKeras' tuners). A study names
its engine in full, ``<engine>`` or ``<engine>:<variant>`` (:func:`engine_names`); this module
is the only place that parses those names (:func:`parse_engine`).

The contract of :meth:`Engine.run` ``(study, ctx, variant, on_trial_done, lock) -> str``:

- **What it records.** Every trial it starts becomes an Optuna trial of ``study``, whatever
  the library: params under the space's own names, with the distributions
  :mod:`~hpo32.search.engines.optuna_space` derives from the space (fixed parameters only in
  the config), the validation accuracy of each epoch as intermediate values, and the user
  attributes ``engine`` (the full name), ``dataset``, ``epochs``, ``config``, ``worker``
  (``gpu`` when given one), the training result's (``history``, ``stopped_by``, timings,
  fidelity, ``backend``), ``trial_seconds``, and ``model_path`` of each new best, saved as a plain
  ``.keras`` file. Every config trains with :meth:`SearchContext.train
  <hpo32.search.engines.base.SearchContext.train>` (one routine, one network builder, the
  same budgets), and every trial is recorded by
  :func:`~hpo32.search.engines.record.record_trial`, so the rules for failures are the same:
  an invalid config or a trial that measured no epoch is FAIL with ``fail_reason``, a trial
  of less than the full fidelity is PRUNED, an interrupted one is FAIL with
  ``stopped_by: interrupt`` and runs again in the next session. ``recording`` says how a
  trial reaches the study: ``native`` (asked from Optuna, told when done) or ``mirrored``
  (the library keeps its own records; hpo32 adds the finished trial, once per tuner trial
  id, idempotently on resume).
- **When it stops.** Before each trial it calls ``hpo32.search.signals.check()`` and
  ``ctx.check_failures()``; it starts no trial once ``ctx.budget_spent()`` (less left than
  the quickest first epoch plus the test reserve) and returns ``"budget"``, nor once the
  study holds ``ctx.n_trials`` finished (complete or pruned) trials, counted across sessions
  and workers, and returns ``"n_trials"``; a tuner whose oracle has nothing left to propose
  returns ``"exhausted"``. A running trial is cut between batches by the trial and search
  deadlines. ``on_trial_done()`` is called after each trial; ``lock`` (a context-manager
  factory) serializes "count the trials, ask for one" across workers, for the engines that
  run several (``parallel``), and is ignored by the others.
- **What it raises.** ``KeyboardInterrupt`` (Ctrl-C, SIGTERM) after recording the running
  trial; :class:`~hpo32.search.engines.base.TooManyFailures` after ``ctx.max_failures``
  failed trials in a row; ``ValueError`` for a variant or a dataset the engine cannot take
  (AutoKeras needs at least 3 classes), before any trial; a tuner's ``ProjectMissing`` and
  ``ProjectBusy`` (:mod:`hpo32.search.engines.tuner`); and an unexpected error of a trial,
  after recording it as FAIL with ``error``.

Engine modules load on first use: importing this module (or :mod:`hpo32.search.engines`)
imports no ML framework and no Optuna, so ``hpo32 --help``, ``list`` and ``presets`` start
without them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from hpo32.search.engines.base import LockFn, SearchContext

__all__ = ["ENGINES", "Engine", "EngineRun", "engine_names", "get", "parse_engine"]


class EngineRun(Protocol):
    """The ``run`` function every engine module exposes (see the module's contract)."""

    def __call__(
        self,
        study: Any,
        ctx: SearchContext,
        variant: str = "",
        on_trial_done: Callable[[], None] | None = None,
        lock: LockFn | None = None,
    ) -> str: ...


@dataclass(frozen=True)
class Engine:
    """One search engine.

    Attributes:
        name: ``optuna``, ``keras-tuner`` or ``autokeras``.
        variants: the library's algorithms a study picks after a colon (empty: none).
        parallel: whether several workers may run one study (a tuner's oracle lives in one
            project folder, so its engines take one worker).
        recording: how a trial reaches the study: ``native`` or ``mirrored``.
        library: the library's name, for messages.
        module: the module holding the engine's ``run`` (:class:`EngineRun`).
        backends: the Keras backends its library runs on (a study on another is refused
            before anything is written): Optuna trains on any; KerasTuner 1.4 is
            multi-backend with Keras 3 (it imports TensorFlow only on that backend);
            AutoKeras 3.0 supports TensorFlow only (keras-team/autokeras#1908).
    """

    name: str
    variants: tuple[str, ...]
    parallel: bool
    recording: str
    library: str
    module: str
    backends: tuple[str, ...] = ("tensorflow", "jax", "torch")

    @property
    def full_names(self) -> tuple[str, ...]:
        """The names a study spec gives this engine, ``keras-tuner:random`` etc."""
        if not self.variants:
            return (self.name,)
        return tuple(f"{self.name}:{v}" for v in self.variants)

    def run(
        self,
        study: Any,
        ctx: SearchContext,
        variant: str = "",
        on_trial_done: Callable[[], None] | None = None,
        lock: LockFn | None = None,
    ) -> str:
        """Runs this engine on ``study`` (the contract: this module's docstring).

        Returns:
            Why it ended: ``"budget"``, ``"n_trials"`` or ``"exhausted"``.
        """
        run: EngineRun = importlib.import_module(self.module).run
        return run(study, ctx, variant, on_trial_done=on_trial_done, lock=lock)


#: Every engine, in the order names are listed (``optuna`` first: the default).
ENGINES: tuple[Engine, ...] = (
    Engine(
        name="optuna",
        variants=(),
        parallel=True,
        recording="native",
        library="Optuna",
        module="hpo32.search.engines.optuna",
    ),
    Engine(
        name="keras-tuner",
        variants=("random", "bayesian", "hyperband"),
        parallel=False,
        recording="mirrored",
        library="KerasTuner",
        module="hpo32.search.engines.keras_tuner",
    ),
    Engine(
        name="autokeras",
        variants=("greedy", "bayesian", "hyperband", "random"),
        parallel=False,
        recording="mirrored",
        library="AutoKeras",
        module="hpo32.search.engines.autokeras",
        backends=("tensorflow",),
    ),
)
_BY_NAME = {engine.name: engine for engine in ENGINES}


def engine_names() -> tuple[str, ...]:
    """Every full engine name a study can give, ``optuna`` first."""
    return tuple(full for engine in ENGINES for full in engine.full_names)


def _unknown(name: object) -> ValueError:
    shown = repr(name) if len(repr(name)) <= 82 else repr(name)[:79] + "...'"
    return ValueError(f"unknown engine {shown}; use one of {', '.join(engine_names())}.")


def get(name: str) -> Engine:
    """The engine called ``name`` (``optuna``, ``keras-tuner``, ``autokeras``).

    Raises:
        ValueError: no engine has that name (one sentence listing the names).
    """
    engine = _BY_NAME.get(name) if isinstance(name, str) else None
    if engine is None:
        raise _unknown(name)
    return engine


def parse_engine(name: str) -> tuple[Engine, str]:
    """The engine and variant of a full name: ``"keras-tuner:random"`` gives the KerasTuner
    engine and ``"random"``; ``"optuna"`` gives the Optuna engine and ``""``.

    Raises:
        ValueError: not one of :func:`engine_names` (one sentence listing them).
    """
    if not isinstance(name, str) or name not in engine_names():
        raise _unknown(name)
    family, _, variant = name.partition(":")
    return _BY_NAME[family], variant
