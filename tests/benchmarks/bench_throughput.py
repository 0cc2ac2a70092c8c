"""Training throughput: hpo32's trial loop against plain ``model.fit`` on float32 arrays.

Same model (MaxNet, and the default space's midpoint config), same images, same batch size,
one process; the sides alternate within each round so that a noisy machine hurts all alike:

* **plain fit**: float32 NumPy arrays in memory (images / 255), ``model.fit``, float32;
* **hpo32 float32**: ``train_config`` (the uint8 ``tf.data`` pipeline, the budget callback)
  with ``precision="float32"``;
* **hpo32 auto**: ``train_config`` as a search runs it (``precision="auto"``: bfloat16 mixed
  precision on a CPU with AVX512-BF16 or AMX, float16 on a GPU).

Each side trains ``--epochs`` epochs; images per second are those of the epochs after the
first (graph tracing is in the first epoch on every side, and reported apart).

``--parity`` instead trains one config to the end twice on real CIFAR-10, float32 then
``auto``, same seed, and prints the validation accuracy after every epoch and the test
accuracy of each (mixed precision must not cost accuracy).

    .venv/bin/python tests/benchmarks/bench_throughput.py [--images 4000] [--rounds 2]
    .venv/bin/python tests/benchmarks/bench_throughput.py --parity [--images 10000] [--epochs 5]

Data: real CIFAR-10 from --data-dir, $HPO32_REAL_DATA or ~/.cache/hpo32/real-data (the
official layout, see ../shared/data/README.md), else generated images of the same shape.
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


def load(images: int, data_dir: str | None, val: int = 1000):
    from hpo32.search.data import load_dataset, make_splits

    for folder in (
        data_dir,
        os.environ.get("HPO32_REAL_DATA"),
        str(Path.home() / ".cache" / "hpo32" / "real-data"),
    ):
        if folder and (Path(folder) / "cifar-10-batches-py").is_dir():
            ds = load_dataset("cifar10", data_dir=folder, download=False)
            return make_splits(ds, train_limit=images, val_limit=val, seed=0), "CIFAR-10"
    from tests.fixtures import write_cifar10

    tmp = Path("/tmp/hpo32-bench-cifar")
    write_cifar10(tmp, n_per_batch=images // 5 + 1, n_test=100)
    ds = load_dataset("cifar10", data_dir=str(tmp), download=False)
    return make_splits(ds, train_limit=images, val_limit=100, seed=0), "generated"


def plain_fit(config, splits, epochs: int) -> tuple[float, float]:
    """Plain Keras: float32 arrays, model.fit. Returns (first epoch s, later epochs img/s)."""
    import keras

    from hpo32.search.models import build_model, compile_model

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

    model.fit(
        x, y, batch_size=int(config["batch_size"]), epochs=epochs, verbose=0, callbacks=[Clock()]
    )
    keras.backend.clear_session()
    return times[0], (epochs - 1) * len(x) / sum(times[1:])


def hpo32_fit(config, splits, epochs: int, precision: str) -> tuple[float, float]:
    """hpo32's trial loop; (first epoch s, later epochs img/s) from the trial's own timings."""
    from hpo32.search.training import train_config

    result = train_config(
        config, splits, epochs=epochs, precision=precision, report=lambda e, a: False
    )
    first, rest = result.epoch_seconds[0], result.epoch_seconds[1:]
    result.release()
    return first, len(rest) * len(splits.x_train) / sum(rest)


def throughput(args) -> None:
    from hpo32.search.space import MAXNET_CONFIG, default_space
    from hpo32.search.training import resolve_precision

    splits, source = load(args.images, args.data_dir)
    median = default_space().defaults()
    median["batch_size"] = 128
    configs = {"maxnet": dict(MAXNET_CONFIG), "default-midpoint": median}
    sides = {
        "plain fit": lambda c: plain_fit(c, splits, args.epochs),
        "hpo32 float32": lambda c: hpo32_fit(c, splits, args.epochs, "float32"),
        "hpo32 auto": lambda c: hpo32_fit(c, splits, args.epochs, "auto"),
    }
    print(
        f"# {source}, {len(splits.x_train)} training images, batch 128, {args.epochs} epochs "
        f"a side; {platform.machine()} {os.cpu_count()} cores; auto = "
        f"{resolve_precision('auto')}; {time.strftime('%Y-%m-%d')}"
    )
    print(
        "| config | round | "
        + " | ".join(f"{s} img/s" for s in sides)
        + " | hpo32 float32 / plain | hpo32 auto / plain | first epoch s (plain, f32, auto) |"
    )
    print("|---|---:|" + "---:|" * (len(sides) + 3))
    for name, config in configs.items():
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            got = {side: sides[side](config) for side in order}
            ips = {side: got[side][1] for side in sides}
            firsts = ", ".join(f"{got[s][0]:.1f}" for s in sides)
            print(
                f"| {name} | {r + 1} | "
                + " | ".join(f"{ips[s]:.0f}" for s in sides)
                + f" | {ips['hpo32 float32'] / ips['plain fit']:.2f}"
                + f" | {ips['hpo32 auto'] / ips['plain fit']:.2f} | {firsts} |",
                flush=True,
            )


def parity(args) -> None:
    from hpo32.search.space import MAXNET_CONFIG
    from hpo32.search.training import evaluate, resolve_precision, train_config

    splits, source = load(args.images, args.data_dir, val=5000)
    print(
        f"# {source}, MaxNet, {len(splits.x_train)} training images, "
        f"{len(splits.x_val)} validation, {len(splits.x_test)} test, seed 0, "
        f"{args.epochs} epochs; {time.strftime('%Y-%m-%d')}"
    )
    print("| precision | val acc per epoch | final val acc | test acc | train s |")
    print("|---|---|---:|---:|---:|")
    for precision in ("float32", "auto"):
        result = train_config(
            dict(MAXNET_CONFIG), splits, epochs=args.epochs, precision=precision, seed=0
        )
        test = evaluate(result.model, splits.x_test, splits.y_test)["accuracy"]
        label = f"{precision} ({resolve_precision(precision)})"
        print(
            f"| {label} | {', '.join(f'{a:.3f}' for a in result.val_accuracy)} | "
            f"{result.value:.4f} | {test:.4f} | {result.train_seconds:.0f} |",
            flush=True,
        )
        result.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--parity", action="store_true")
    args = parser.parse_args()
    if args.parity:
        args.images, args.epochs = args.images or 10000, args.epochs or 5
        parity(args)
    else:
        args.images, args.epochs = args.images or 4000, args.epochs or 3
        throughput(args)


if __name__ == "__main__":
    main()
