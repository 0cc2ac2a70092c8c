"""Input paths on one backend: the uint8 ``tf.data`` pipeline against the backend-neutral
``keras.utils.PyDataset`` (:func:`hpo32.search.data.make_array_batches`), same images, same
augmentation (alternating flips and 4-pixel reflect-padded crops), same batch size.

Two measures, the sides alternating within each round so that a noisy machine hurts both:

* **input alone**: images per second of iterating ``--batches`` batches (the first batch,
  which starts the threads, left out);
* **in training**: images per second of ``model.fit`` on MaxNet (float32) over
  ``--steps`` steps, after one warm-up epoch of the same steps (tracing).

On a backend other than TensorFlow only the PyDataset runs (``tf.data`` is TensorFlow's).

    KERAS_BACKEND=tensorflow .venv/bin/python tests/benchmarks/bench_input.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

AUGMENT = {"augment_flip": True, "augment_crop": True, "flip_mode": "alternating"}


def stream(kind: str, x, y, batch_size: int, *, repeat: bool):
    """The training stream of ``kind`` (``tf.data`` or ``pydataset``), one-hot labels."""
    from hpo32.search.data import make_array_batches, make_tf_dataset

    if kind == "pydataset":
        return make_array_batches(
            x, y, batch_size, training=True, num_classes=10, repeat=repeat, **AUGMENT
        )
    import tensorflow as tf

    ds = make_tf_dataset(x, y, batch_size, training=True, **AUGMENT)
    ds = ds.map(lambda a, b: (a, tf.one_hot(b, 10)))
    return ds.repeat() if repeat else ds


def input_rate(kind: str, x, y, batch_size: int, batches: int) -> float:
    """Images per second of iterating ``batches`` batches (after the first)."""
    ds = stream(kind, x, y, batch_size, repeat=True)
    if kind == "pydataset":
        from keras.src.trainers.data_adapters import get_data_adapter

        it = iter(get_data_adapter(ds).get_numpy_iterator())
    else:
        it = iter(ds.as_numpy_iterator())
    next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - t0)


def fit_rate(kind: str, x, y, batch_size: int, steps: int) -> float:
    """Images per second of MaxNet's ``fit`` over ``steps`` steps, after a warm-up epoch."""
    import keras

    from hpo32.search.models import build_model, compile_model
    from hpo32.search.space import MAXNET_CONFIG

    config = {**MAXNET_CONFIG, "batch_size": batch_size}
    model = build_model(config, (32, 32, 3), 10)
    compile_model(model, config)
    times: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    ds = stream(kind, x, y, batch_size, repeat=True)
    model.fit(ds, epochs=2, steps_per_epoch=steps, verbose=0, callbacks=[Clock()])
    keras.backend.clear_session()
    return steps * batch_size / times[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--batches", type=int, default=150, help="batches per input measure")
    ap.add_argument("--steps", type=int, default=15, help="fit steps per measure")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    import keras
    import numpy as np

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, args.images)
    kinds = ["tf.data", "pydataset"] if backend == "tensorflow" else ["pydataset"]
    rates: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for kind in kinds if r % 2 == 0 else kinds[::-1]:
            rates.setdefault((kind, "input"), []).append(
                input_rate(kind, x, y, args.batch_size, args.batches)
            )
            rates.setdefault((kind, "fit"), []).append(
                fit_rate(kind, x, y, args.batch_size, args.steps)
            )
    print(
        f"backend {backend}, keras {keras.__version__}, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), {args.images:,} images, batch "
        f"{args.batch_size}, best of {args.rounds} rounds"
    )
    print(f"{'input path':<12} {'input alone (img/s)':>20} {'MaxNet fit (img/s)':>20}")
    for kind in kinds:
        print(
            f"{kind:<12} {max(rates[(kind, 'input')]):>20,.0f} {max(rates[(kind, 'fit')]):>20,.0f}"
        )


if __name__ == "__main__":
    main()
