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
