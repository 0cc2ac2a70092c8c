"""The tf.data pipeline: uint8 images gathered batch by batch from the caller's array, shuffled,
flipped and cropped vectorised, normalized to float32 in [0, 1]."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf


def normalize(x: Any) -> Any:
    """Scales uint8 pixels to float32 in [0, 1].

    Args:
        x: a numpy array or a TensorFlow tensor of pixels 0..255.

    Returns:
        The same kind of object, float32, divided by 255.
    """
    if isinstance(x, np.ndarray) or np.isscalar(x) or isinstance(x, (list, tuple)):
        return np.asarray(x).astype(np.float32) / np.float32(255.0)
    import tensorflow as tf

    return tf.cast(x, tf.float32) / 255.0


def _row_gatherer(x: np.ndarray) -> Callable[[Any], Any]:
    """Returns ``gather(idx)``: the uint8 rows ``x[idx]`` as a tensor, read from ``x`` itself.

    The images stay in the one NumPy array the splits hold: converting them to a TensorFlow
    constant would keep a second and, while converting, a third copy (measured: 600 MB of
    tensor memory for 300 MB of images), which for the full ImageNet32 (3.9 GB) is the
    difference between fitting in memory or not. Each batch is a NumPy fancy index (tens of
    microseconds for 256 images) run by ``tf.data``'s parallel map.
    """
    import tensorflow as tf

    row_shape = list(x.shape[1:])

    def gather(idx: Any) -> Any:
        rows = tf.numpy_function(lambda i: x[i], [idx], tf.uint8, stateful=False)
        rows.set_shape([None, *row_shape])
        return rows

    return gather


#: Batches the input pipeline prepares ahead of the training step.
PREFETCH_BATCHES = 4


def _map_parallelism() -> int:
    """Batches gathered and augmented at once: the CPUs this process may use, at most 8."""
    from hpo32.search.hardware import cpu_count

    return max(1, min(8, cpu_count()))


def _alternating_flips(n_images: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """Returns ``mirror(idx)``: whether each drawn image is flipped this time, at random on its
    first draw and the opposite of its last draw after that (one bool of state per image)."""
    rng = np.random.default_rng(seed)
    last = rng.random(n_images) < 0.5
    seen = np.zeros(n_images, dtype=bool)

    def mirror(idx: np.ndarray) -> np.ndarray:
        out = np.where(seen[idx], ~last[idx], last[idx])
        last[idx] = out
        seen[idx] = True
        return out

    return mirror


def _check_arrays(x: np.ndarray, y: np.ndarray, batch_size: int, num_classes: int | None) -> None:
    """Raises ValueError on what :func:`make_tf_dataset` refuses (``y`` already flat)."""
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W, C), got {x.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0]} images but {y.shape[0]} labels")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if num_classes is not None and y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")


def _augmenter(
    images: Callable[[Any], Any],
    labels: Any,
    *,
    flip: bool,
    crop: bool,
    pad: int,
    flip_mode: str,
    alternate: Callable[[np.ndarray], np.ndarray] | None,
    height: int,
    width: int,
) -> Callable[[Any, Any], tuple[Any, Any]]:
    """Returns ``transform(idx, rand_seed)``: one batch gathered, flipped and/or cropped (with the
    batch's two stateless seeds), normalized, and its labels."""
    import tensorflow as tf

    def transform(idx: tf.Tensor, rand_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = images(idx)
        count = tf.shape(idx)[0]
        if flip:
            if flip_mode == "alternating":
                mirror = tf.numpy_function(alternate, [idx], tf.bool, stateful=True)
                mirror.set_shape([None])
            else:
                mirror = tf.random.stateless_uniform([count], seed=rand_seed[0]) < 0.5
            batch = tf.where(mirror[:, None, None, None], tf.reverse(batch, axis=[2]), batch)
        if crop:
            padded = tf.pad(batch, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
            offsets = tf.random.stateless_uniform(
                [2, count], seed=rand_seed[1], minval=0, maxval=2 * pad + 1, dtype=tf.int32
            )
            rows = offsets[0][:, None] + tf.range(height)[None, :]
            cols = offsets[1][:, None] + tf.range(width)[None, :]
            batch = tf.gather(padded, rows, axis=1, batch_dims=1)
            batch = tf.gather(batch, cols, axis=2, batch_dims=1)
        return normalize(batch), tf.gather(labels, idx)

    return transform


def make_tf_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    training: bool,
    augment_flip: bool = False,
    augment_crop: bool = False,
    seed: int = 0,
    num_classes: int | None = None,
    flip_mode: str = "random",
    crop_pixels: int = 4,
) -> tf.data.Dataset:
    """Builds a batched ``tf.data`` pipeline of (float32 images in [0, 1], int32 labels).

    The images stay in the caller's uint8 array (no copy); the pipeline shuffles index
    batches (training only, reshuffled every epoch), gathers each batch at once and augments it
    vectorised: a left-right flip with probability 0.5 per image, and a random 32x32 crop of the
    image padded by ``crop_pixels`` (reflect) with per-image offsets. With ``flip_mode``
    ``alternating`` an image is flipped at random the first time it is drawn and the other way
    each time after (airbench's alternating flip: every two epochs show both sides).
    Augmentation applies only when ``training``. Shuffling and augmentation are deterministic
    given ``seed``.

    Args:
        x: uint8 images (N, H, W, C).
        y: integer labels (N,); emitted sparse as int32.
        batch_size: images per batch (the last batch may be smaller).
        training: shuffle and augment.
        augment_flip: random left-right flips.
        augment_crop: random pad-and-crop.
        seed: the random seed.
        flip_mode: ``random`` or ``alternating``.
        crop_pixels: the largest shift of the crop, in pixels.
        num_classes: if given, the labels are checked to lie in 0..num_classes-1.

    Returns:
        A ``tf.data.Dataset`` of ``(images (B, H, W, C) float32, labels (B,) int32)``.

    Raises:
        ValueError: on mismatched lengths, a bad batch size or labels out of range.
    """
    import tensorflow as tf

    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    y_np = np.asarray(y).reshape(-1)
    _check_arrays(x, y_np, batch_size, num_classes)

    n = int(x.shape[0])
    height, width = int(x.shape[1]), int(x.shape[2])
    images = _row_gatherer(x)
    with tf.device("/CPU:0"):
        labels = tf.constant(y_np.astype(np.int32))
    flip = bool(training and augment_flip)
    crop = bool(training and augment_crop)
    pad = int(crop_pixels)
    if flip_mode not in ("random", "alternating"):
        raise ValueError(f"unknown flip_mode '{flip_mode}'; use random or alternating.")
    alternate = _alternating_flips(int(x.shape[0]), seed) if flip_mode == "alternating" else None

    transform = _augmenter(
        images, labels, flip=flip, crop=crop, pad=pad, flip_mode=flip_mode, alternate=alternate,
        height=height, width=width,
    )  # fmt: skip

    ds = tf.data.Dataset.range(n)
    if training:
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size))
    if flip or crop:
        # One pair of stateless seeds per batch, different every epoch, fixed by ``seed``.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(4)
        seeds = seeds.map(lambda s: tf.reshape(s, [2, 2]))
        ds = tf.data.Dataset.zip((ds, seeds))
        ds = ds.map(transform, num_parallel_calls=_map_parallelism(), deterministic=True)
    else:
        ds = ds.map(
            lambda idx: (normalize(images(idx)), tf.gather(labels, idx)),
            num_parallel_calls=_map_parallelism(),
            deterministic=True,
        )
    # The pipeline is already batched and vectorised; tf.data's default graph rewrites gain it
    # nothing and cost time on every first iteration.
    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    # No autotuning either: its background thread sleeps with a back-off that grows to a
    # minute, and freeing the iterator at the end of ``fit`` waited for it to wake (measured:
    # 0-34 s per trial, 20% of a 10-minute search). A fixed parallelism and a prefetch of a
    # few batches keep the CPU as busy.
    options.autotune.enabled = False
    return ds.prefetch(PREFETCH_BATCHES).with_options(options)


# -- the backend-neutral path: a keras.utils.PyDataset over the same array ------------------


class _ArrayBatchLogic:
    """What :func:`make_array_batches`' ``PyDataset`` does (a mixin, so that Keras loads
    only when a batch stream is made): batch ``i`` of pass ``p`` is the ``i``-th slice of
    that pass's permutation (fixed by ``seed`` and ``p``), gathered from the caller's uint8
    array, flipped and cropped on its own small uint8 copy, scaled to float32 in [0, 1],
    with one-hot float32 labels when ``num_classes`` is given. Any thread may build any
    batch (Keras' enqueuer runs several), so nothing depends on the order batches are
    asked for but the alternating flips' per-image state, which a lock guards."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray | None,
        batch_size: int,
        *,
        training: bool,
        flip: bool,
        crop: bool,
        pad: int,
        alternate: Callable[[np.ndarray], np.ndarray] | None,
        seed: int,
        num_classes: int | None,
        repeat: bool,
        workers: int,
    ) -> None:
        import threading

        super().__init__(  # type: ignore[call-arg]  # keras.utils.PyDataset's
            workers=workers, use_multiprocessing=False, max_queue_size=PREFETCH_BATCHES
        )
        self._x, self._y = x, y
        self._batch_size = int(batch_size)
        self._training, self._flip, self._crop, self._pad = training, flip, crop, pad
        self._alternate = alternate
        self._seed = int(seed)
        self._eye = np.eye(num_classes, dtype=np.float32) if num_classes else None
        self._repeat = repeat
        self._per_pass = max(1, -(-len(x) // self._batch_size))
        self._epoch = 0
        self._orders: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def num_batches(self) -> int | None:
        return None if self._repeat else self._per_pass

    def __len__(self) -> int:
        return self._per_pass

    def on_epoch_end(self) -> None:
        self._epoch += 1

    def _order(self, n_pass: int) -> np.ndarray:
        with self._lock:
            order = self._orders.get(n_pass)
            if order is None:
                n = len(self._x)
                rng = np.random.default_rng([self._seed, n_pass])
                order = rng.permutation(n) if self._training else np.arange(n)
                self._orders = {k: v for k, v in self._orders.items() if k >= n_pass - 1}
                self._orders[n_pass] = order
        return order

    def __getitem__(self, i: int) -> tuple[np.ndarray, ...]:
        g = int(i) if self._repeat else self._epoch * self._per_pass + int(i)
        n_pass, pos = divmod(g, self._per_pass)
        idx = self._order(n_pass)[pos * self._batch_size : (pos + 1) * self._batch_size]
        batch = self._x[idx]  # the batch's own copy; the array is never copied whole
        rng = np.random.default_rng([self._seed, n_pass, pos, 1])
        if self._flip:
            if self._alternate is not None:
                with self._lock:
                    mirror = self._alternate(idx)
            else:
                mirror = rng.random(len(idx)) < 0.5
            batch[mirror] = batch[mirror, :, ::-1]
        if self._crop and self._pad:
            batch = _crop(batch, self._pad, rng)
        images = normalize(batch)
        if self._eye is None or self._y is None:
            return (images,)
        return images, self._eye[self._y[idx]]


def _crop(batch: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """Each image of ``batch`` padded by ``pad`` (reflect, as the tf.data path) and cut
    back to its size at a random offset of 0..2*pad rows and columns."""
    k, height, width = batch.shape[:3]
    padded = np.pad(batch, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    offsets = rng.integers(0, 2 * pad + 1, size=(2, k))
    rows = offsets[0][:, None] + np.arange(height)[None, :]
    cols = offsets[1][:, None] + np.arange(width)[None, :]
    return padded[np.arange(k)[:, None, None], rows[:, :, None], cols[:, None, :]]


def make_array_batches(
    x: np.ndarray,
    y: np.ndarray | None,
    batch_size: int,
    *,
    training: bool,
    augment_flip: bool = False,
    augment_crop: bool = False,
    seed: int = 0,
    num_classes: int | None = None,
    flip_mode: str = "random",
    crop_pixels: int = 4,
    repeat: bool = False,
    workers: int | None = None,
) -> Any:
    """The backend-neutral input of :func:`make_tf_dataset`: a ``keras.utils.PyDataset``
    that runs on TensorFlow, JAX and PyTorch alike and imports none of them itself.

    It takes the same arrays and augmentation as :func:`make_tf_dataset` (shuffled every
    pass when ``training``, flips random or alternating, reflect-padded crops, all fixed by
    ``seed``) and yields float32 images in [0, 1], the input every model takes, so a model
    trained on one backend predicts the same on another. The images stay in the caller's
    array: each batch is gathered from it by a fancy index into a batch-sized copy, and
    Keras' enqueuer builds the next :data:`PREFETCH_BATCHES` batches in ``workers`` threads
    (default: the CPUs this process may use, 2 to 8) while the step runs.

    Args:
        y: integer labels, or None for images only (prediction).
        num_classes: with labels, emit them one-hot (float32) over this many classes.
        repeat: endless (for epochs shorter than the training set: the stream continues
            across epochs, every image seen once before any repeats).

    Returns:
        A ``keras.utils.PyDataset`` of ``(images,)`` or ``(images, one-hot labels)``.

    Raises:
        ValueError: on mismatched lengths, a bad batch size or labels out of range.
    """
    import keras

    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    y_np = None if y is None else np.asarray(y).reshape(-1).astype(np.int64)
    _check_arrays(x, y_np if y_np is not None else np.zeros(len(x)), batch_size, num_classes)
    if flip_mode not in ("random", "alternating"):
        raise ValueError(f"unknown flip_mode '{flip_mode}'; use random or alternating.")
    flip = bool(training and augment_flip)
    alternate = _alternating_flips(len(x), seed) if flip and flip_mode == "alternating" else None

    class ArrayBatches(_ArrayBatchLogic, keras.utils.PyDataset):
        """uint8 rows gathered batch by batch, augmented, scaled (see the factory)."""

    return ArrayBatches(
        x, y_np, batch_size, training=training, flip=flip,
        crop=bool(training and augment_crop), pad=int(crop_pixels), alternate=alternate,
        seed=seed, num_classes=num_classes, repeat=repeat,
        workers=workers if workers is not None else max(2, _map_parallelism()),
    )  # fmt: skip


def predict_input(x: np.ndarray, batch_size: int = 256) -> Any:
    """What ``model.predict`` reads for uint8 images ``x``, as float32 in [0, 1], in order:
    the ``tf.data`` pipeline on the TensorFlow backend, :func:`make_array_batches`
    elsewhere (TensorFlow is never imported there)."""
    from hpo32.search.hardware import active_backend

    x = np.ascontiguousarray(x)
    if active_backend() == "tensorflow":
        labels = np.zeros(len(x), dtype=np.int64)
        return make_tf_dataset(x, labels, batch_size, training=False).map(lambda a, b: a)
    return make_array_batches(x, None, batch_size, training=False)
