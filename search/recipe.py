"""The training recipe around a network: learning-rate schedules that end with the trial,
weight averaging (EMA) and test-time augmentation.

A schedule is a factor of the config's ``learning_rate`` as a function of training progress
(0 at the first step, 1 at the last). The last step is a :class:`Plan`: the planned steps
(epochs x steps per epoch), lowered while training when the trial budget or the search
budget will cut the trial sooner, so that the rate reaches its end value at the cut
(budgeted training, Li et al., ICLR 2020). Configs recorded before these parameters existed
read today's recipe from the defaults here: a constant rate, no EMA, no test-time
augmentation.

NumPy only at import time; Keras is imported where a callback or a prediction needs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

if TYPE_CHECKING:
    import keras

__all__ = [
    "SCHEDULES",
    "TTA_MODES",
    "Plan",
    "lr_factor",
    "predict_views",
    "schedule_callback",
    "swap_ema_weights",
    "tta_of",
    "tta_views",
    "view_count",
]

#: ``lr_schedule`` values; ``constant`` is the recipe of studies made before schedules.
SCHEDULES = ("constant", "linear", "cosine", "onecycle")
#: ``tta`` values: views averaged at validation, test and prediction.
TTA_MODES = ("none", "flip", "flip_translate")
#: ``onecycle`` starts (and a warm-up starts) at this share of the peak rate.
_ONECYCLE_START = 0.04


def lr_factor(schedule: str, progress: float, warmup: float = 0.0) -> float:
    """The learning rate's share of its peak after ``progress`` of the training (0..1).

    ``constant`` stays at 1, ``linear`` and ``cosine`` decay to 0 at the end, ``onecycle``
    rises from 4 % to the peak along half a cosine over the warm-up (a quarter of the
    training when ``warmup`` is 0) and falls to 0 along the other half. A ``warmup`` > 0
    ramps the other schedules linearly from 0 over that share first.

    Raises:
        ValueError: unknown schedule.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown lr_schedule '{schedule}'; use one of {', '.join(SCHEDULES)}.")
    p = min(max(float(progress), 0.0), 1.0)
    if schedule == "onecycle":
        rise = warmup if warmup > 0 else 0.25
        if p < rise:
            up = (1 - math.cos(math.pi * p / rise)) / 2
            return _ONECYCLE_START + (1 - _ONECYCLE_START) * up
        return (1 + math.cos(math.pi * (p - rise) / max(1 - rise, 1e-12))) / 2
    if warmup > 0 and p < warmup:
        return p / warmup
    rest = (p - warmup) / max(1 - warmup, 1e-12) if warmup > 0 else p
    if schedule == "linear":
        return 1.0 - rest
    if schedule == "cosine":
        return (1 + math.cos(math.pi * rest)) / 2
    return 1.0


@dataclass
class Plan:
    """The steps a trial plans to train: its schedule ends at ``total_steps``.

    Attributes:
        planned_steps: epochs x steps per epoch, fixed at the start.
        total_steps: where the schedule ends; the budget callback lowers it when a deadline
            will cut the training sooner (never below the steps already run plus one, never
            above the plan).
        steps_done: training steps run so far.
        refit: whether ``total_steps`` was lowered to fit a deadline.
        last_factor: the rate's share of its peak at the last step run (1 before any).
    """

    planned_steps: int
    total_steps: int = 0
    steps_done: int = 0
    refit: bool = False
    last_factor: float = 1.0

    def __post_init__(self) -> None:
        self.total_steps = self.total_steps or self.planned_steps

    def fit_to(self, steps_left: float) -> None:
        """Ends the schedule after ``steps_left`` more steps, or as planned when that is
        sooner (a later, better estimate of the step time may move the end either way)."""
        end = self.steps_done + max(1, int(steps_left))
        self.total_steps = min(self.planned_steps, end)
        self.refit = self.total_steps < self.planned_steps

    def progress(self) -> float:
        """Training progress of the step about to run (0 .. 1)."""
        return min(self.steps_done / max(self.total_steps - 1, 1), 1.0)


def schedule_callback(config: Mapping[str, Any], plan: Plan) -> keras.callbacks.Callback:
    """A Keras callback that sets the optimizer's rate before every step from ``plan``.

    Reads ``learning_rate``, ``lr_schedule`` (default ``constant``) and ``warmup_fraction``
    (default 0) from ``config``; whoever runs the steps counts them into ``plan.steps_done``
    (the budget callback of :func:`hpo32.search.training.train_config`). After training the
    optimizer holds the config's rate again, so a saved model continues from it.
    """
    import keras

    schedule = str(config.get("lr_schedule", "constant"))
    warmup = float(config.get("warmup_fraction", 0.0))
    lr_factor(schedule, 0.0, warmup)  # an unknown schedule fails before training

    class Schedule(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if schedule != "constant" or warmup > 0:
                optimizer = getattr(self.model.optimizer, "inner_optimizer", None)
                optimizer = optimizer or self.model.optimizer
                base = getattr(self, "_base", None)
                if base is None:
                    base = self._base = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
                plan.last_factor = lr_factor(schedule, plan.progress(), warmup)
                optimizer.learning_rate.assign(base * plan.last_factor)

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            base = getattr(self, "_base", None)
            if base is not None:  # the saved model keeps the config's rate, not the last one
                optimizer = getattr(self.model.optimizer, "inner_optimizer", None)
                (optimizer or self.model.optimizer).learning_rate.assign(base)

    return Schedule()


def swap_ema_weights(model: keras.Model) -> bool:
    """Swaps the model's trainable weights with the optimizer's moving averages (EMA).

    Called twice, it restores them. Returns False (and swaps nothing) when the optimizer
    keeps no averages (``use_ema`` off) or has not built them yet.
    """
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not averages:
        return False
    for var, avg in zip(model.trainable_variables, averages, strict=True):
        current = np.array(var.numpy())
        var.assign(avg.numpy())
        avg.assign(current)
    return True


def _translate(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Images shifted by (dy, dx) pixels, the uncovered border filled by reflection."""
    pad = max(abs(dy), abs(dx))
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    h, w = x.shape[1], x.shape[2]
    return padded[:, pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def tta_of(config: Mapping[str, Any] | None) -> str:
    """The test-time augmentation a config validates with (``none`` when it names none, as
    configs recorded before the recipe was searchable)."""
    return str((config or {}).get("tta", "none"))


def view_count(mode: str) -> int:
    """How many views :func:`tta_views` makes for ``mode``."""
    return {"none": 1, "flip": 2, "flip_translate": 6}[mode] if mode in TTA_MODES else 1


def tta_views(x: np.ndarray, mode: str) -> list[np.ndarray]:
    """The views of images ``x`` (N, H, W, C) that test-time augmentation averages over.

    ``none``: the images; ``flip``: they and their mirror images; ``flip_translate``: those
    two and each shifted by one pixel up-left and down-right (six views).

    Raises:
        ValueError: unknown mode.
    """
    if mode not in TTA_MODES:
        raise ValueError(f"unknown tta '{mode}'; use one of {', '.join(TTA_MODES)}.")
    views = [x]
    if mode in ("flip", "flip_translate"):
        views.append(x[:, :, ::-1])
    if mode == "flip_translate":
        for base in list(views):
            views += [_translate(base, 1, 1), _translate(base, -1, -1)]
    return views


def predict_views(
    model: keras.Model, x: np.ndarray, mode: str = "none", batch_size: int = 256
) -> np.ndarray:
    """Class probabilities of uint8 images ``x``: the mean over :func:`tta_views`."""
    from hpo32.search.data import predict_input

    total: np.ndarray | None = None
    views = tta_views(x, mode)
    for view in views:
        ds = predict_input(view, batch_size)  # tf.data on TensorFlow, else a PyDataset
        probs = np.asarray(model.predict(ds, verbose=0), dtype=np.float64)
        total = probs if total is None else total + probs
    assert total is not None
    return total / len(views)


def accuracies(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Top-1 and top-5 accuracy (top-5 is 1 with five classes or fewer) of ``probs``."""
    y = np.asarray(y).reshape(-1)
    top1 = float(np.mean(np.argmax(probs, axis=1) == y))
    k = min(5, probs.shape[1])
    top = np.argpartition(-probs, k - 1, axis=1)[:, :k]
    top5 = float(np.mean(np.any(top == y[:, None], axis=1)))
    return {"accuracy": top1, "top5": top5}
