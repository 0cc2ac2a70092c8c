"""Training throughput: hpo32's trial loop against plain ``model.fit`` on float32 arrays.

Same model (MaxNet, and the default space's midpoint config), same images, same batch size,
one process; the two sides alternate so that a noisy machine hurts both alike. Each side
trains two epochs; images per second count training time only (graph tracing in the first
epoch included on both sides, validation excluded).

    .venv/bin/python tests/benchmarks/bench_throughput.py [--images 2000] [--rounds 2]

Data: real CIFAR-10 from $HPO32_REAL_DATA or ~/.cache/hpo32/real-data (see
tests/search/test_real_data.py), else generated images of the same shape.
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


def load(images: int):
    from search.data import load_dataset, make_splits

    for folder in (os.environ.get("HPO32_REAL_DATA"),
                   str(Path.home() / ".cache" / "hpo32" / "real-data")):
        if folder and (Path(folder) / "cifar-10-batches-py").is_dir():
            ds = load_dataset("cifar10", data_dir=folder, download=False)
            return make_splits(ds, train_limit=images, val_limit=500, seed=0), "CIFAR-10"
    from tests.fixtures import write_cifar10

    tmp = Path("/tmp/hpo32-bench-cifar")
    write_cifar10(tmp, n_per_batch=images // 5 + 1, n_test=100)
    ds = load_dataset("cifar10", data_dir=str(tmp), download=False)
    return make_splits(ds, train_limit=images, val_limit=100, seed=0), "generated"


def plain_fit(config, splits) -> float:
    """Plain Keras: float32 numpy arrays in memory, model.fit; images/s over both epochs."""
    import keras

    from search.models import build_model, compile_model

    x = splits.x_train.astype("float32") / 255.0
    y = keras.utils.to_categorical(splits.y_train, splits.num_classes)
    model = build_model(config, splits.input_shape, splits.num_classes)
    compile_model(model, config)
    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    model.fit(x, y, batch_size=int(config["batch_size"]), epochs=2, verbose=0,
              callbacks=[Clock()])
    keras.backend.clear_session()
    return 2 * len(x) / sum(times)


def hpo32_fit(config, splits) -> float:
    """hpo32's trial loop (uint8 tf.data pipeline, budget callback); images/s over both
    epochs (the ``images_per_second`` every trial records; validation excluded)."""
    from search.training import train_config

    result = train_config(config, splits, epochs=2, report=lambda e, a: False)
    ips = result.images_per_second
    result.release()
    return ips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from search.space import MAXNET_CONFIG, default_space

    splits, source = load(args.images)
    median = default_space().defaults()
    median["batch_size"] = 128
    configs = {"maxnet": dict(MAXNET_CONFIG), "default-midpoint": median}
    rows = []
    for name, config in configs.items():
        for r in range(args.rounds):
            plain = plain_fit(config, splits)
            ours = hpo32_fit(config, splits)
            rows.append((name, r + 1, plain, ours, ours / plain))
    print(f"# {source}, {len(splits.x_train)} training images, {platform.processor() or ''} "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}")
    print("| config | round | plain fit img/s | hpo32 img/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name, r, plain, ours, ratio in rows:
        print(f"| {name} | {r} | {plain:.0f} | {ours:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
