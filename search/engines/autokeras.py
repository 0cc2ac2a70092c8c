"""The AutoKeras engine: AutoKeras' tuners search the one space through a custom block.

The AutoKeras model is ``image input -> space block -> ClassificationHead``. The space block's
``build(hp, inputs)`` reads a config with :func:`~hpo32.search.engines.tuner_space.hp_config`
and applies the network body of :func:`hpo32.search.models.build_model` (everything but its
softmax layer) to its input; the head adds the softmax layer. So AutoKeras searches hpo32's
space, not its own, and its graph builds hpo32's network layer for layer (the head's
``Dense`` + ``Softmax`` stand for ``build_model``'s softmax ``Dense``; the tests compare them).

AutoKeras scopes a block's hyperparameters by the block's name (``hpo32_space/filters_1``)
and adds its own: the optimizer and learning rate of ``Graph.build`` are pinned to fixed
values (hpo32's config decides both), and the head's dropout is set to 0 (the space has its
own dropouts). Mirrored trials carry the space's own names only: :func:`space_config` reads
the block's scoped values back into a config.

AutoKeras proposes each trial's hyperparameters; the trial then trains that config with
:func:`hpo32.search.training.train_config`, the routine every engine shares (same network, input
pipeline, budgets and measurements), and is mirrored into the Optuna study like a KerasTuner
trial (see :mod:`hpo32.search.engines.tuner`). Budgets, resume and the project folder
(``ctx.artifact_dir / "autokeras"``) work as for the KerasTuner engine; AutoKeras' final
refit of the best model is skipped, each new best trial's model is saved as it finishes.

This module imports autokeras only inside functions.
"""

from __future__ import annotations

import contextlib
import functools
import io
from typing import Any, Callable, Mapping

from hpo32.search.engines.base import LockFn, SearchContext
from hpo32.search.engines.registry import get
from hpo32.search.engines.tuner import run_search, trial_runner, tuner_mixin
from hpo32.search.engines.tuner_space import declare_space, hp_config
from hpo32.search.space import SearchSpace

__all__ = [
    "BLOCK_NAME",
    "PROJECT_NAME",
    "TUNERS",
    "build_autokeras_model",
    "make_auto_model",
    "run",
    "run_autokeras",
    "space_config",
]

#: AutoKeras' tuners this engine runs (the registry's variants).
TUNERS = get("autokeras").variants
#: The AutoKeras project folder, under the study's artifact folder.
PROJECT_NAME = "autokeras"
#: The space block's name: AutoKeras prefixes its hyperparameters with ``BLOCK_NAME + "/"``.
BLOCK_NAME = "hpo32_space"
HEAD_NAME = "classes"
#: AutoKeras' own compile hyperparameters, pinned: the space's config decides instead.
PINNED_HPS = {"optimizer": "adam", "learning_rate": 1e-3}


def space_config(hp: Any, space: SearchSpace) -> dict[str, Any]:
    """The config an AutoKeras trial's hyperparameters hold, under the space's own names.

    Reads the values the space block registered under its scope (``hpo32_space/<name>``),
    exactly as the block itself does when it builds.

    Args:
        hp: a ``keras_tuner.HyperParameters`` of an AutoKeras trial.
        space: the one search space.
    """
    with hp.name_scope(BLOCK_NAME):
        declare_space(hp, space)
        return hp_config(hp, space)


def _body(config: Mapping[str, Any], input_shape: tuple[int, ...]) -> Any:
    """hpo32's network of ``config`` without its softmax layer, as a functional model."""
    import keras

    from hpo32.search.models import build_model

    full = build_model(config, input_shape, 1)
    return keras.Model(full.inputs, full.get_layer("classes").input, name="hpo32_body")


@functools.cache
def _classes() -> tuple[Any, Any, dict[str, Any]]:
    """The AutoKeras node, block and tuner classes of this engine (built on first use)."""
    import autokeras as ak
    import tree

    class ImageInput(ak.ImageInput):
        """AutoKeras' image input without its cast layer: hpo32 feeds float32 images in
        [0, 1], and the saved model then holds Keras layers only (it loads back without
        AutoKeras' custom objects)."""

        def build(self, hp: Any, inputs: Any = None) -> Any:
            return tree.flatten(inputs)[0]

    class SpaceBlock(ak.Block):
        """An AutoKeras block whose search space is hpo32's space.

        ``build`` declares the whole space (so AutoKeras' oracles know every parameter from
        the first trial on), reads the config with ``hp_config`` and applies hpo32's network
        body to its input.
        """

        def __init__(self, space: SearchSpace | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.space = space

        def build(self, hp: Any, inputs: Any = None) -> Any:
            x = tree.flatten(inputs)[0]
            if self.space is None:
                raise ValueError("the space block was made without a search space")
            declare_space(hp, self.space)
            config = hp_config(hp, self.space)
            return _body(config, tuple(x.shape[1:]))(x)

    def tuner_class(name: str) -> type:
        base = {
            "greedy": ak.tuners.Greedy,
            "bayesian": ak.tuners.BayesianOptimization,
            "hyperband": ak.tuners.Hyperband,
            "random": ak.tuners.RandomSearch,
        }[name]
        return type(
            f"Hpo32{base.__name__}",
            (tuner_mixin(), base),
            {
                "__doc__": "An AutoKeras tuner that trains with hpo32's routine and "
                "mirrors every trial."
            },
        )

    tuners = {name: tuner_class(name) for name in TUNERS}
    return ImageInput, SpaceBlock, tuners


def _graph_nodes(space: SearchSpace, num_classes: int) -> tuple[Any, Any]:
    import autokeras as ak

    image_input, space_block, _ = _classes()
    inputs = image_input(name="image")
    features = space_block(space=space, name=BLOCK_NAME)(inputs)
    outputs = ak.ClassificationHead(num_classes=num_classes, dropout=0.0, name=HEAD_NAME)(features)
    return inputs, outputs


def _pinned_hyperparameters() -> Any:
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for name, value in PINNED_HPS.items():
        hp.Fixed(name, value)
    return hp


def make_auto_model(
    space: SearchSpace,
    num_classes: int,
    tuner: str,
    *,
    directory: Any,
    overwrite: bool = False,
    seed: int = 0,
    max_epochs: int = 1,
) -> Any:
    """The ``autokeras.AutoModel`` of this engine: image input, space block, classification
    head, driven by the named tuner (its class extended by hpo32's trial routine).

    Args:
        space: the one search space.
        num_classes: the number of classes (at least 3).
        tuner: one of :data:`TUNERS`.
        directory: the folder holding the project folder :data:`PROJECT_NAME`.
        overwrite: start the project afresh instead of reloading it.
        seed: the tuner's seed.
        max_epochs: Hyperband's full fidelity in epochs.
    """
    import autokeras as ak

    _, _, tuners = _classes()
    inputs, outputs = _graph_nodes(space, num_classes)
    kwargs: dict[str, Any] = {}
    if tuner == "hyperband":
        kwargs.update(max_epochs=max_epochs, factor=3, hyperband_iterations=None)
    with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ..."
        model = ak.AutoModel(
            inputs=inputs,
            outputs=outputs,
            project_name=PROJECT_NAME,
            # No AutoKeras trial limit: the study's count decides (see TrialMirror).
            max_trials=None,
            directory=str(directory),
            objective="val_accuracy",
            tuner=tuners[tuner],
            overwrite=overwrite,
            # AutoKeras (KerasTuner) reads seed 0 as "pick one at random".
            seed=seed + 1,
            hyperparameters=_pinned_hyperparameters(),
            **kwargs,
        )
    # A config that cannot be built fails its trial; it never ends the search.
    model.tuner.oracle.max_consecutive_failed_trials = None
    return model


def build_autokeras_model(
    space: SearchSpace, hp: Any, input_shape: tuple[int, ...], num_classes: int
) -> Any:
    """Builds the Keras model AutoKeras builds for ``hp`` (input, space block, head).

    For checking the translation: with ``hp`` holding a config's values under the block's
    scope, the result has the layers and parameter count of
    :func:`hpo32.search.models.build_model` for that config.

    Args:
        space: the one search space.
        hp: a ``keras_tuner.HyperParameters``; the pinned AutoKeras parameters and the
            space are registered in it when missing.
        input_shape: e.g. ``(32, 32, 3)``.
        num_classes: the number of classes (at least 3).
    """
    from autokeras import graph as graph_module

    inputs, outputs = _graph_nodes(space, num_classes)
    graph = graph_module.Graph(inputs=[inputs], outputs=outputs)
    inputs.shape = tuple(input_shape)
    outputs[0].in_blocks[0].shape = (num_classes,)
    for name, value in PINNED_HPS.items():
        if name not in hp.values:
            hp.Fixed(name, value)
    return graph.build(hp)


def _analysis_sample(splits: Any) -> tuple[Any, Any]:
    """One image per class (float32 in [0, 1]) and one-hot labels: what AutoKeras analyses
    to learn the input shape and the number of classes. Trials train on ``splits``."""
    import numpy as np

    from hpo32.search.data import normalize

    n = splits.num_classes
    y = np.asarray(splits.y_train)
    idx = [int(np.flatnonzero(y == c)[0]) for c in range(n) if np.any(y == c)]
    x = normalize(np.asarray(splits.x_train)[idx])
    return x, np.eye(n, dtype="float32")[y[idx]]


def run_autokeras(
    study: Any,
    ctx: SearchContext,
    tuner: str,
    on_trial_done: Callable[[], None] | None = None,
) -> str:
    """Runs an AutoKeras search over ``ctx.space`` until the budget or the trial count.

    AutoKeras' tuner proposes each trial through the space block; the trial's config (read
    back under the space's own names) trains with :func:`hpo32.search.training.train_config` under
    ``ctx``'s trial and search deadlines, exactly like the Optuna engine, and is mirrored
    into ``study`` as an Optuna trial (engine ``autokeras:<tuner>``, the tuner's trial id in
    ``kt_trial_id``). The optimizer and learning rate are the config's; AutoKeras' own are
    pinned. A new best model is saved as ``.keras`` holding Keras layers only. Budgets,
    resume and Hyperband rungs behave as in
    :func:`hpo32.search.engines.keras_tuner.run_keras_tuner`.

    Args:
        study: an ``optuna.Study`` on an RDB storage, direction maximize.
        ctx: the search context; its splits need at least 3 classes.
        tuner: ``"greedy"``, ``"bayesian"``, ``"hyperband"`` or ``"random"``.
        on_trial_done: called with no arguments after each trial (session bookkeeping).

    Returns:
        Why the run ended: ``"budget"``, ``"n_trials"``, or ``"exhausted"`` when the tuner
        has no further trial to propose. A KeyboardInterrupt propagates after the
        interrupted trial is recorded (as FAIL); the next run retries it.

    Raises:
        ValueError: unknown tuner, or fewer than 3 classes.
        ProjectMissing: the study holds AutoKeras trials but the project folder is gone.
        ProjectBusy: another process is running this study's AutoKeras search.
    """
    if tuner not in TUNERS:
        raise ValueError(f"unknown AutoKeras tuner '{tuner}'; use one of {', '.join(TUNERS)}.")
    if ctx.splits.num_classes < 3:
        raise ValueError(
            f"the autokeras engine needs at least 3 classes, the dataset has "
            f"{ctx.splits.num_classes} (AutoKeras gives 2 classes a single sigmoid output); "
            "use the optuna or keras-tuner engine."
        )

    run_trial = trial_runner(ctx, space_config)

    def make_tuner(overwrite: bool) -> Any:
        auto_model = make_auto_model(
            ctx.space,
            ctx.splits.num_classes,
            tuner,
            directory=ctx.artifact_dir,
            overwrite=overwrite,
            seed=ctx.seed,
            max_epochs=ctx.epochs,
        )
        auto_model.tuner._hpo32_auto_model = auto_model
        return auto_model.tuner

    x, y = _analysis_sample(ctx.splits)

    def search(ak_tuner: Any) -> None:
        ak_tuner._hpo32_auto_model.fit(
            x, y, validation_data=(x, y), epochs=ctx.epochs, batch_size=len(x), verbose=0
        )

    return run_search(
        study,
        ctx,
        f"autokeras:{tuner}",
        project=PROJECT_NAME,
        library="AutoKeras",
        make_tuner=make_tuner,
        run_trial=run_trial,
        search=search,
        on_trial_done=on_trial_done,
    )


def run(
    study: Any,
    ctx: SearchContext,
    variant: str = "",
    on_trial_done: Callable[[], None] | None = None,
    lock: LockFn | None = None,
) -> str:
    """The registry's entry (:meth:`hpo32.search.engines.registry.Engine.run`): the variant
    is the tuner; ``lock`` is not needed (the project lock admits one worker)."""
    return run_autokeras(study, ctx, variant, on_trial_done=on_trial_done)
