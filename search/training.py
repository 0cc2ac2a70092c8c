"""Train one config under a time budget, reporting validation accuracy after every epoch."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import resource
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from hpo32.search import faults, signals
from hpo32.search.hardware import active_backend, cpu_has_bf16

if TYPE_CHECKING:
    import keras
    import numpy as np

    from hpo32.search.data import Splits
    from hpo32.search.recipe import Plan

__all__ = [
    "PRECISIONS",
    "TrialResult",
    "batch_events",
    "current_rss_mb",
    "first_epoch_seconds",
    "forget_custom_gradients",
    "probe_rate",
    "release_memory",
    "resolve_precision",
    "train_config",
]

#: What ``precision`` may be set to (spec key, ``--precision``).
PRECISIONS = ("auto", "float32", "bfloat16", "float16")

#: Called after each epoch with (epoch index from 0, validation accuracy); returns True to
#: prune (stop) the trial.
EpochReport = Callable[[int, float], bool]

#: Seconds between two batch events (``{"kind": "batch", ...}``) of a training model.
BATCH_EVENT_SECONDS = 0.5

_batch_listener: Callable[[dict[str, Any]], None] | None = None


@contextlib.contextmanager
def batch_events(listener: Callable[[dict[str, Any]], None] | None) -> Iterator[None]:
    """Sends ``listener`` the training loop's batch events while the block runs (a live
    display's batch progress): ``{"kind": "batch", "phase": "train", "epoch", "step",
    "steps", "images_per_second"}`` at most every :data:`BATCH_EVENT_SECONDS`, and
    ``{"kind": "batch", "phase": "validate", "epoch", "images"}`` as an epoch's validation
    starts. Without a listener the loop sends nothing and pays one comparison a batch."""
    global _batch_listener
    previous, _batch_listener = _batch_listener, listener
    try:
        yield
    finally:
        _batch_listener = previous


@dataclass
class TrialResult:
    """What one training run produced.

    Attributes:
        value: validation accuracy after the last epoch that ran (None when none ran).
        val_accuracy: validation accuracy per epoch, in order.
        history: every Keras metric per epoch (loss, accuracy, val_loss, val_accuracy).
        epochs_completed: full epochs trained.
        stopped_by: None when all epochs ran, else ``"pruned"``, ``"trial_budget"`` or
            ``"search_budget"``. A budget stop cuts the epoch in flight early enough for the
            validation that follows to end about at the deadline; should the search budget
            be over all the same, that validation is skipped (the search must end on time).
        train_seconds: seconds inside training steps (validation excluded).
        images_per_second: training images processed per training second.
        eval_seconds: seconds spent on validation.
        eval_images: images predicted in validation (validation images x views x epochs).
        peak_rss_mb: the process's peak resident memory while this trial ran.
        images_trained: training images processed (the fidelity this trial spent).
        epoch_seconds: training seconds of each epoch (the first includes tracing).
        planned_images: the images its schedule planned (epochs x epoch images).
        schedule_refit: whether a deadline was going to cut the training, so the schedule
            was re-fit to end at the cut (see :class:`hpo32.search.recipe.Plan`).
        lr_final_factor: the learning rate's share of its peak at the last step (0 for a
            decaying schedule that ended where the training ended).
        dtype_policy: the Keras dtype policy it trained under (``float32``,
            ``mixed_bfloat16``, ``mixed_float16``).
        backend: the Keras backend it trained on (``tensorflow``, ``jax``, ``torch``).
        model: the trained ``keras.Model`` (or None after :meth:`release`).
    """

    value: float | None
    val_accuracy: list[float]
    history: dict[str, list[float]]
    epochs_completed: int
    stopped_by: str | None
    train_seconds: float
    images_per_second: float
    eval_seconds: float
    peak_rss_mb: float
    images_trained: int = 0
    epoch_seconds: list[float] = field(default_factory=list)
    dtype_policy: str = "float32"
    planned_images: int = 0
    schedule_refit: bool = False
    lr_final_factor: float = 1.0
    eval_images: int = 0
    backend: str = "tensorflow"
    model: Any = field(default=None, repr=False)

    def attrs(self) -> dict[str, Any]:
        """The user attributes every engine records for a trial."""
        return {
            "train_seconds": round(self.train_seconds, 3),
            "images_per_second": round(self.images_per_second, 1),
            "eval_seconds": round(self.eval_seconds, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "images_trained": self.images_trained,
            "planned_images": self.planned_images,
            "schedule_refit": self.schedule_refit,
            "lr_final_factor": round(self.lr_final_factor, 5),
            "epoch_seconds": [round(t, 3) for t in self.epoch_seconds],
            "dtype_policy": self.dtype_policy,
            "backend": self.backend,
            "epochs_completed": self.epochs_completed,
            "stopped_by": self.stopped_by,
            "history": {k: [round(float(v), 5) for v in vs] for k, vs in self.history.items()},
        }

    def first_epoch_seconds(self) -> float | None:
        """See :func:`first_epoch_seconds`."""
        return first_epoch_seconds(
            {
                "epoch_seconds": self.epoch_seconds,
                "eval_seconds": self.eval_seconds,
                "stopped_by": self.stopped_by,
            }
        )

    def release(self) -> None:
        """Drops the model and frees what training it left (:func:`release_memory`)."""
        self.model = None
        release_memory()


def release_memory() -> None:
    """Clears the Keras session so memory stays flat across trials, with the active
    backend's own clean-up (:func:`release_backend_memory`), after a trial or a probe has
    dropped its model."""
    import keras

    backend = active_backend()
    if backend == "tensorflow":
        forget_custom_gradients()
    keras.backend.clear_session()  # runs a full garbage collection too
    release_backend_memory(backend)
    trim_native_heap()
    _freeze_survivors()


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed`` without TensorFlow on the other backends: it seeds
    TensorFlow whenever TensorFlow is installed, importing it (seconds, and memory) into a
    JAX or PyTorch process. Elsewhere this sets what it sets but that: Keras' global seed,
    Python's, NumPy's and PyTorch's."""
    import keras

    backend = active_backend()
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # a Keras laid out otherwise: its own, whatever it imports
        global_state = None
    if backend == "tensorflow" or global_state is None:
        keras.utils.set_random_seed(seed)
        return
    import random

    import numpy as np

    _hide_tensorflow_from_keras()
    global_state.set_global_attribute("global_random_seed", seed)
    random.seed(seed)
    np.random.seed(seed)
    if backend == "torch":
        import torch

        torch.manual_seed(seed)


def _hide_tensorflow_from_keras() -> None:
    """On JAX and PyTorch, tells Keras that TensorFlow is absent, as it is on a machine
    without it: Keras probes for it (``tf.available``) when it seeds and when it saves a
    model, and the probe imports all of TensorFlow into the process when it is installed.
    Only before anything loaded TensorFlow; a Keras without that probe is left as it is."""
    try:
        from keras.src.utils import module_utils
    except ImportError:
        return
    lazy = getattr(module_utils, "tensorflow", None)
    if lazy is not None and getattr(lazy, "module", None) is None and hasattr(lazy, "_available"):
        lazy._available = False


def release_backend_memory(backend: str) -> None:
    """What ``backend`` keeps between trials that Keras' ``clear_session`` does not free:
    JAX's compiled functions (``jax.clear_caches``) and PyTorch's cached CUDA blocks
    (``torch.cuda.empty_cache``, with CUDA only); TensorFlow's is
    :func:`forget_custom_gradients`. Imports only the active backend's library (loaded by
    Keras already)."""
    if backend == "jax":
        import jax

        jax.clear_caches()
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def trim_native_heap() -> bool:
    """Returns the C heap's free pages to the system (glibc's ``malloc_trim``); False where
    the C library has none (musl, macOS, Windows), which changes nothing.

    A trial frees its compiled programs and buffers, but glibc keeps freed heap pages that
    lie between live allocations, and compilers make many small ones (XLA's, as
    openxla/xla#2265 describes). A trim hands those back; it lowered PyTorch's level
    between trials, and did not clearly change JAX's growth (docs/BENCHMARKS.md, "The heap
    trim between trials").
    """
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):  # TypeError: Windows has no CDLL(None)
        return False
    malloc_trim(0)
    return True


def first_epoch_seconds(attrs: Mapping[str, Any]) -> float | None:
    """The seconds a trial needed to measure anything: its first epoch and one validation.

    Args:
        attrs: a trial's recorded user attributes (:meth:`TrialResult.attrs`, as every
            engine stores them); ``epoch_seconds``, ``eval_seconds`` and ``stopped_by`` are
            read (validation time is shared evenly among the epochs).

    Returns:
        The seconds, or None when the trial gives no such measure: it has no timings, or a
        budget cut its first epoch short (that epoch says nothing about a whole one).
    """
    epochs = attrs.get("epoch_seconds") or []
    if not epochs:
        return None
    if len(epochs) == 1 and attrs.get("stopped_by") in ("trial_budget", "search_budget"):
        return None
    return float(epochs[0]) + float(attrs.get("eval_seconds") or 0.0) / len(epochs)


_FROZEN = False


def _freeze_survivors() -> None:
    """Once per process, after the first trial's clean-up: moves every object still alive
    (TensorFlow, Keras, Optuna, the data) into the garbage collector's permanent generation.

    Each trial ends with a full collection; it scanned those ~470,000 long-lived objects every
    time (0.2-0.3 s a trial on two CPU cores, more on a loaded machine). Frozen, they are
    skipped and the collection scans only what later trials create. Reference counting still
    frees frozen objects; only cycles among them would stay, and these objects live for the
    whole process anyway.
    """
    global _FROZEN
    if not _FROZEN:
        gc.freeze()
        _FROZEN = True


def forget_custom_gradients() -> None:
    """Drops TensorFlow's registered gradients of ``tf.custom_gradient`` calls in traced graphs.

    In graph mode every trace of a ``tf.custom_gradient`` function registers a
    ``CustomGradient-N`` entry in TensorFlow's global gradient registry and never removes it;
    Keras' optimizer step uses one (its gradient all-reduce), so every trial's training graph
    stayed in memory (about 5 MB a trial on the tiny test network, more on real ones). The
    entries are only read while the graph that registered them is traced, so dropping them
    once a trial has finished training is safe. Call it before releasing the trial's model.
    A TensorFlow without that registry makes this a no-op.
    """
    try:
        from tensorflow.python.framework import ops

        registry = ops.gradient_registry._registry
    except (ImportError, AttributeError):
        return
    for name in [n for n in registry if str(n).startswith("CustomGradient-")]:
        registry.pop(name, None)


def resolve_precision(precision: str = "auto") -> str:
    """The Keras dtype policy for ``precision`` on this machine.

    ``auto`` picks mixed precision where the hardware runs it natively: ``mixed_float16`` on a
    GPU (compute capability 7.0 or newer; on JAX and PyTorch ``mixed_bfloat16`` from 8.0,
    Ampere, on), ``mixed_bfloat16`` on a CPU with AVX512-BF16 or
    AMX, ``float32`` elsewhere. ``bfloat16`` and ``float16`` force the mixed policy;
    ``float32`` turns it off. Weights, the softmax output and the loss stay float32 in every
    mixed policy; only the layers' computations run in 16 bits.

    Raises:
        ValueError: unknown ``precision``.
    """
    if precision == "float32":
        return "float32"
    if precision == "bfloat16":
        return "mixed_bfloat16"
    if precision == "float16":
        return "mixed_float16"
    if precision != "auto":
        raise ValueError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}.")
    capability = _gpu_capability(active_backend())
    if capability is not None:
        if capability >= (8, 0) and active_backend() != "tensorflow":
            return "mixed_bfloat16"  # Ampere and newer: bfloat16 needs no loss scaling
        return "mixed_float16" if capability >= (7, 0) else "float32"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"


def _gpu_capability(backend: str) -> tuple[int, int] | None:
    """The compute capability of the first GPU ``backend`` trains on, None without one;
    asked of the active backend's library only (TensorFlow is never imported for JAX or
    PyTorch)."""
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return None
        found = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        return tuple(found) if found else (0, 0)  # type: ignore[return-value]
    if backend == "torch":
        import torch

        if not torch.cuda.is_available():
            return None
        return tuple(torch.cuda.get_device_capability(0))  # type: ignore[return-value]
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if not gpus:
            return None
        major, _, minor = str(getattr(gpus[0], "compute_capability", "0.0")).partition(".")
        return (int(major or 0), int(minor or 0))
    return None


def current_rss_mb() -> float:
    """The process's resident memory now, in MiB (Linux /proc; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


#: Seconds the final test evaluation needs beyond its predictions (loading the saved model).
TEST_OVERHEAD_S = 3.0
#: Timed steps before a deadline may re-fit the schedule (fewer give a noisy step time).
MIN_TIMED_STEPS = 5
#: A re-fit schedule ends this share of the steps left, and these steps, before the cut.
REFIT_SLACK = 0.01
REFIT_SLACK_STEPS = 2


@dataclass
class _Validation:
    """What the budget callback validates on: uint8 images, labels, test-time augmentation."""

    x: Any
    y: Any
    tta: str = "none"

    @property
    def views(self) -> int:
        from hpo32.search.recipe import view_count

        return view_count(self.tta)


class _BudgetLogic:
    """What :func:`_budget_callback`'s Keras callback does (a mixin, so that Keras loads only
    when a trial trains): stops between batches at the earliest deadline, validates after
    each epoch (except after a search-budget cut, which must not overrun the search),
    prunes, re-fits the schedule's end to a deadline that will cut the training, and
    measures."""

    model: Any  # keras.callbacks.Callback's

    def __init__(
        self,
        deadlines: list[tuple[float, str]],
        report: EpochReport | None,
        n_train: int,
        batch_size: int,
        val: _Validation,
        plan: Plan,
        reserve_images: int = 0,
    ) -> None:
        super().__init__()
        self._deadlines = deadlines
        self._report = report
        self._n_train = n_train
        self._batch_size = batch_size
        self._val = val
        self._plan = plan
        self._reserve_images = reserve_images
        self._n_val = len(val.x) * val.views
        self._steps_per_epoch = max(1, -(-n_train // batch_size))
        self.stopped_by: str | None = None
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        self.eval_images = 0
        self.images = 0
        self.peak_rss = current_rss_mb()
        self.val_accuracy: list[float] = []
        self.epoch_seconds: list[float] = []
        self._steps = 0
        self._timed = 0.0
        self._timed_steps = 0
        self._refit_by: str | None = None
        self._epoch = 0
        self._next_event = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._t0 = self._last = time.perf_counter()
        self._steps = 0
        self._epoch = epoch

    def eval_per_image(self, train_per_image: float) -> float:
        """Seconds per validation image: measured once a validation ran, else about a
        third of a training step's (forward only)."""
        if self.eval_images:
            return self.eval_seconds / self.eval_images
        return train_per_image / 3

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        signals.check()  # SIGTERM/SIGINT stop the trial here (recorded as interrupted)
        faults.point("mid_epoch")
        batch_size, plan = self._batch_size, self._plan
        t = time.perf_counter()
        self._steps += 1
        plan.steps_done += 1
        # Step time from every step but the trial's first, which traces the graph and
        # takes seconds (it once stopped every trial after one step when 30 s or less
        # were left).
        if plan.steps_done > 1:
            self._timed += t - self._last
            self._timed_steps += 1
        self._last = t
        if _batch_listener is not None and t >= self._next_event:
            self._next_event = t + BATCH_EVENT_SECONDS
            rate = self._timed_steps * batch_size / self._timed if self._timed else None
            _batch_listener({"kind": "batch", "phase": "train", "epoch": self._epoch + 1,
                             "step": self._steps, "steps": self._steps_per_epoch,
                             "images_per_second": rate})  # fmt: skip
        if self._steps % 20 == 0:
            self.peak_rss = max(self.peak_rss, current_rss_mb())
        if self._timed_steps < 1:
            return
        now = time.monotonic()
        step = self._timed / self._timed_steps
        per_image = self.eval_per_image(step / batch_size)
        per_eval = self._n_val * per_image
        reserve = self._reserve_images * per_image + TEST_OVERHEAD_S
        fit: tuple[float, str] | None = None
        for deadline, reason in self._deadlines:
            # the search budget also holds the final test evaluation (README: budgets)
            held = reserve if reason == "search_budget" and self._reserve_images else 0
            end = deadline - held
            if now + per_eval >= end:  # stop early enough for the validation to fit
                self.stopped_by = reason
                self.model.stop_training = True
                return
            # the steps that fit before this cut, each epoch end paying a validation
            left = (end - now - per_eval) / (step + per_eval / self._steps_per_epoch)
            if fit is None or left < fit[0]:
                fit = (left, reason)
        if fit is not None and self._timed_steps >= MIN_TIMED_STEPS:
            # end a little before the estimated cut, so that a slower step near the
            # end still finds the schedule finished rather than cut a few steps short
            plan.fit_to(fit[0] * (1 - REFIT_SLACK) - REFIT_SLACK_STEPS)
            self._refit_by = fit[1] if plan.refit else None
        if self._refit_by and plan.steps_done >= plan.total_steps:
            self.stopped_by = self._refit_by  # the re-fit schedule has ended: the cut
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        from hpo32.search.recipe import accuracies, predict_views, swap_ema_weights

        val, n_val = self._val, self._n_val
        self.epoch_seconds.append(time.perf_counter() - self._t0)
        self.train_seconds += self.epoch_seconds[-1]
        self.images += min(self._steps * self._batch_size, self._n_train)
        self.peak_rss = max(self.peak_rss, current_rss_mb())
        search_over = any(
            r == "search_budget" and time.monotonic() >= d for d, r in self._deadlines
        )
        if search_over:
            return  # no validation past the search budget: the epoch stays unmeasured
        if _batch_listener is not None:
            _batch_listener({"kind": "batch", "phase": "validate", "epoch": epoch + 1,
                             "images": n_val})  # fmt: skip
        t_eval = time.perf_counter()
        swapped = swap_ema_weights(self.model)  # validate the averaged weights
        try:
            probs = predict_views(self.model, val.x, val.tta)
            faults.point("validation")
        finally:
            if swapped:
                swap_ema_weights(self.model)
        signals.check()
        self.eval_seconds += time.perf_counter() - t_eval
        self.eval_images += n_val
        scores = accuracies(probs, val.y)
        loss = _cross_entropy(probs, val.y)
        if logs is not None:  # History (after us in the list) records these too
            logs.update(val_loss=loss, val_accuracy=scores["accuracy"],
                        val_top5=scores["top5"])  # fmt: skip
        acc = scores["accuracy"]
        self.val_accuracy.append(acc)
        if self._report is not None and self._report(epoch, acc) and self.stopped_by is None:
            self.stopped_by = "pruned"
            self.model.stop_training = True


def _budget_callback(
    deadlines: list[tuple[float, str]],
    report: EpochReport | None,
    n_train: int,
    batch_size: int,
    val: _Validation,
    plan: Plan,
    reserve_images: int = 0,
) -> _BudgetLogic:
    """The Keras callback that enforces the budgets (see :class:`_BudgetLogic`)."""
    import keras

    class Budget(_BudgetLogic, keras.callbacks.Callback):
        """Stops between batches at the earliest deadline, validates after each epoch
        (except after a search-budget cut, which must not overrun the search), prunes,
        re-fits the schedule's end to a deadline that will cut the training, and measures."""

    return Budget(deadlines, report, n_train, batch_size, val, plan, reserve_images)


def _cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-probability of the true classes."""
    import numpy as np

    picked = probs[np.arange(len(y)), np.asarray(y).reshape(-1)]
    return float(np.mean(-np.log(np.clip(picked, 1e-12, 1.0))))


def _train_dataset(
    config: Mapping[str, Any], splits: Splits, batch_size: int, seed: int, *, repeat: bool
) -> Any:
    """The training stream of ``splits`` for ``config`` (augmentation, one-hot labels), a
    ``tf.data.Dataset`` on the TensorFlow backend, else the backend-neutral
    ``keras.utils.PyDataset`` (:func:`hpo32.search.data.make_array_batches`: one-hot labels
    without TensorFlow); repeated when epochs are shorter than the training set."""
    from hpo32.search.data import make_array_batches, make_tf_dataset

    num_classes = splits.num_classes
    if active_backend() != "tensorflow":
        return make_array_batches(
            splits.x_train,
            splits.y_train,
            batch_size,
            training=True,
            seed=seed,
            num_classes=num_classes,
            augment_flip=bool(config.get("augment_flip")),
            augment_crop=bool(config.get("augment_crop")),
            flip_mode=str(config.get("flip_mode", "random")),
            crop_pixels=int(config.get("crop_pixels", 4)),
            repeat=repeat,
        )
    import tensorflow as tf

    def one_hot(x: Any, y: Any) -> tuple[Any, Any]:
        return x, tf.one_hot(y, num_classes)

    train_ds = make_tf_dataset(
        splits.x_train,
        splits.y_train,
        batch_size,
        training=True,
        seed=seed,
        augment_flip=bool(config.get("augment_flip")),
        augment_crop=bool(config.get("augment_crop")),
        flip_mode=str(config.get("flip_mode", "random")),
        crop_pixels=int(config.get("crop_pixels", 4)),
    ).map(one_hot)
    return train_ds.repeat() if repeat else train_ds


def _built_model(
    config: Mapping[str, Any], splits: Splits, policy: str, weights: str | None
) -> Any:
    """``config``'s Keras model, built and compiled under the dtype ``policy`` (which applies
    to this model only: the global policy is restored)."""
    import keras

    from hpo32.search.models import build_model, compile_model, init_whitening

    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_model(config, splits.input_shape, splits.num_classes, weights=weights)
        if config.get("stem_whiten"):
            init_whitening(model, splits.x_train)
        compile_model(model, config)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    return model


def _trial_result(
    budget: _BudgetLogic,
    hist: Mapping[str, list[float]],
    plan: Plan,
    batch_size: int,
    policy: str,
    model: Any,
) -> TrialResult:
    """The :class:`TrialResult` of a trained model from what its budget callback measured."""
    epochs_run = len(budget.val_accuracy)
    partial = budget.stopped_by == "trial_budget"  # its last validated epoch was cut short
    # the search ended inside the first epoch: a few batches measure nothing of the config
    # (chance-level values that would mislead the sampler), so the trial has no value
    cut_first = budget.stopped_by == "search_budget" and len(budget.epoch_seconds) <= 1
    return TrialResult(
        value=budget.val_accuracy[-1] if epochs_run and not cut_first else None,
        val_accuracy=budget.val_accuracy,
        history={k: [float(v) for v in vs] for k, vs in hist.items()},
        epochs_completed=epochs_run - 1 if partial and epochs_run else epochs_run,
        stopped_by=budget.stopped_by,
        train_seconds=budget.train_seconds,
        images_per_second=budget.images / budget.train_seconds if budget.train_seconds else 0.0,
        eval_seconds=budget.eval_seconds,
        peak_rss_mb=budget.peak_rss,
        images_trained=budget.images,
        epoch_seconds=budget.epoch_seconds,
        dtype_policy=policy,
        backend=active_backend(),
        planned_images=plan.planned_steps * batch_size,
        eval_images=budget.eval_images,
        schedule_refit=plan.refit,
        lr_final_factor=plan.last_factor,
        model=model,
    )


def train_config(
    config: Mapping[str, Any],
    splits: Splits,
    *,
    epochs: int,
    trial_deadline: float | None = None,
    search_deadline: float | None = None,
    report: EpochReport | None = None,
    seed: int = 0,
    verbose: int = 0,
    weights: str | None = None,
    precision: str = "auto",
    epoch_images: int | None = None,
    reserve_images: int = 0,
) -> TrialResult:
    """Builds, compiles and trains one config; validates after every epoch.

    The learning rate follows the config's schedule (:mod:`hpo32.search.recipe`) over the
    planned steps, re-fit to end at a deadline that will cut the training sooner. Validation
    averages the config's test-time augmentation views and uses the EMA weights when the
    config trains with them; it records top-1 (``val_accuracy``) and top-5 (``val_top5``).

    Args:
        config: plain values of the space's parameters.
        splits: a :class:`hpo32.search.data.Splits` (uint8 images, int labels).
        epochs: maximum epochs.
        trial_deadline: ``time.monotonic()`` value at which this trial must stop.
        search_deadline: ``time.monotonic()`` value at which the whole search must stop.
        report: called after each epoch with the validation accuracy; True prunes.
        seed: seeds Keras and the input pipeline.
        verbose: Keras ``fit`` verbosity.
        weights: pretrained weights file (DenseNet121 transfer and fine-tuning).
        precision: see :func:`resolve_precision`; the policy applies to this model only.
        epoch_images: images per epoch when fewer than the training set: the data stream
            continues across epochs (every image is seen before any repeats), so each epoch
            is a cheaper, lower-fidelity step for pruners.
        reserve_images: images the final test evaluation will predict (test images x
            views); their estimated time, plus :data:`TEST_OVERHEAD_S`, is held back from
            the search deadline.

    Returns:
        A :class:`TrialResult` holding the trained model.

    Raises:
        hpo32.search.models.InvalidConfig: the config cannot be built.
    """
    from hpo32.search.recipe import Plan, schedule_callback, tta_of

    set_random_seed(seed)
    batch_size = int(config["batch_size"])
    n_train = len(splits.x_train)
    steps_per_epoch = None
    if epoch_images is not None and epoch_images < n_train:
        steps_per_epoch = max(1, -(-int(epoch_images) // batch_size))

    train_ds = _train_dataset(config, splits, batch_size, seed, repeat=bool(steps_per_epoch))
    val = _Validation(splits.x_val, splits.y_val, tta_of(config))
    policy = resolve_precision(precision)
    model = _built_model(config, splits, policy, weights)
    epoch_size = steps_per_epoch * batch_size if steps_per_epoch else n_train
    plan = Plan(epochs * (steps_per_epoch or -(-n_train // batch_size)))
    deadlines = [
        (d, r)
        for d, r in ((search_deadline, "search_budget"), (trial_deadline, "trial_budget"))
        if d is not None
    ]
    deadlines.sort()
    budget = _budget_callback(deadlines, report, epoch_size, batch_size, val, plan, reserve_images)
    if deadlines and time.monotonic() >= deadlines[0][0]:
        budget.stopped_by = deadlines[0][1]
        hist: dict[str, list[float]] = {}
    else:
        hist = model.fit(
            train_ds,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            verbose=verbose,
            callbacks=[schedule_callback(config, plan), budget],
        ).history
    return _trial_result(budget, hist, plan, batch_size, policy, model)


def probe_rate(
    config: Mapping[str, Any],
    splits: Splits,
    *,
    seconds: float = 6.0,
    max_steps: int = 12,
    precision: str = "auto",
    seed: int = 0,
) -> float:
    """Training images per second of ``config`` on this machine, from a few steps of the
    trial's own model, input stream and dtype policy: the steps after the first (which
    traces) until ``seconds`` of them or ``max_steps`` ran, at least two. Nothing is kept:
    the model is released as a trial's is."""
    import keras

    set_random_seed(seed)
    batch_size = int(config["batch_size"])
    policy = resolve_precision(precision)
    model = _built_model(config, splits, policy, None)
    ends: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            ends.append(time.perf_counter())
            timed = len(ends) - 1
            if timed >= max_steps or (timed >= 2 and ends[-1] - ends[0] >= seconds):
                self.model.stop_training = True

    data = _train_dataset(config, splits, batch_size, seed, repeat=True)
    steps = max_steps + 1
    try:
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[Timer()])
    finally:
        del model, data
        release_memory()
    if len(ends) < 2:
        raise RuntimeError("the probe ran fewer than two training steps")
    return (len(ends) - 1) * batch_size / (ends[-1] - ends[0])


def evaluate(
    model: keras.Model, x: np.ndarray, y: np.ndarray, tta: str = "none"
) -> dict[str, float]:
    """Top-1 (``accuracy``) and top-5 (``top5``) accuracy of ``model`` on uint8 images ``x``
    with integer labels ``y``, averaging the views of test-time augmentation ``tta``."""
    from hpo32.search.recipe import accuracies, predict_views

    return accuracies(predict_views(model, x, tta), y)
