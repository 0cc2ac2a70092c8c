"""This machine's ceiling for ``AIRBENCH94_CONFIG``: the matmul peak, a plain Keras ``fit``
and hpo32's training of the same network, measured in one run.

* peak: the best of 5 products of 2048x2048 matrices in TensorFlow, bfloat16 and float32;
* FLOPs per training image: the network's forward multiply-adds counted from its layers
  (2 per multiply-add), times 3 for the backward pass;
* plain Keras: ``model.fit`` on float32 arrays in [0, 1] under the mixed bfloat16 policy where
  the CPU has it, batch 512, ``--images`` images after one warm-up epoch;
* hpo32: ``train_config`` of the same config on the same images (its uint8 pipeline,
  alternating flips, translations, whitening, schedule), one epoch of ``--images``;
* with ``--widths``, hpo32's steady rate (a second epoch of ``--images``, after the one that
  traces) of the same network at other group widths, and the epochs of the ``cifar10-fast``
  training set (48,000 images) that its trial budget on this machine (13 minutes on a CPU)
  holds at that rate: how the preset's first config is sized for a machine.

``--precision float32`` measures the float32 path on a CPU with bfloat16, and
``ONEDNN_MAX_CPU_ISA=AVX2`` in the environment stands in for a CPU without AVX-512 (oneDNN,
which runs TensorFlow's convolutions and matrix products, then dispatches AVX2 kernels only).

    .venv/bin/python tests/benchmarks/bench_ceiling.py --data-dir /tmp/hpo32-data \
        [--images 10240] [--precision auto] [--widths 64,256,256 32,128,128]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def matmul_peak(dtype: str, n: int = 2048, repeats: int = 5) -> float:
    """TFLOP/s of the best of ``repeats`` n x n products."""
    import tensorflow as tf

    a = tf.random.normal((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)
    product = tf.function(lambda x: tf.matmul(x, x))
    product(a).numpy()  # trace and warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        product(a).numpy()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e12


def forward_flops(model) -> float:
    """Forward FLOPs per image: 2 per multiply-add of every convolution and dense layer."""
    import keras

    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, c_in, c_out = layer.kernel.shape
            _, h, w, _ = layer.output.shape
            total += 2.0 * kh * kw * c_in * c_out * h * w
        elif isinstance(layer, keras.layers.Dense):
            total += 2.0 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--images", type=int, default=10240)
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"))
    parser.add_argument("--widths", nargs="*", default=[], metavar="W1,W2,W3")
    args = parser.parse_args()

    import keras
    import numpy as np

    from hpo32.search.data import load_splits
    from hpo32.search.hardware import cpu_has_bf16
    from hpo32.search.models import build_model, compile_model
    from hpo32.search.space import AIRBENCH94_CONFIG
    from hpo32.search.training import resolve_precision, train_config

    config = dict(AIRBENCH94_CONFIG)
    policy = resolve_precision(args.precision)
    # bfloat16 products only where oneDNN has kernels for them (under an AVX2 cap it aborts)
    kinds = ("bfloat16", "float32") if cpu_has_bf16() else ("float32",)
    peaks = {d: matmul_peak(d) for d in kinds}
    splits = load_splits("cifar10", data_dir=args.data_dir, train_limit=args.images, seed=0)
    peak = peaks["bfloat16"] if policy == "mixed_bfloat16" else peaks["float32"]

    keras.mixed_precision.set_global_policy(policy)
    model = build_model(config, (32, 32, 3), 10)
    flops = 3 * forward_flops(model)
    compile_model(model, config)
    x = splits.x_train.astype("float32") / 255.0
    y = keras.utils.to_categorical(splits.y_train, 10)
    batch = int(config["batch_size"])
    model.fit(x[: 2 * batch], y[: 2 * batch], batch_size=batch, epochs=1, verbose=0)  # trace
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    plain = len(x) / (time.perf_counter() - t0)
    keras.mixed_precision.set_global_policy("float32")
    keras.backend.clear_session()

    result = train_config(config, splits, epochs=1, precision=args.precision)
    # the first step traces the graph: take the steps after it
    ours = result.images_per_second
    rows = [
        ("plain Keras fit", plain),
        ("hpo32 train_config (first epoch, tracing included)", ours),
    ]
    print(f"\n# {time.strftime('%Y-%m-%d')}; {os.cpu_count()} cores; policy {policy}")
    print(
        "matmul peak: "
        + ", ".join(f"{d} {tflops:.3f} TFLOP/s" for d, tflops in peaks.items())
        + f"; AIRBENCH94 {flops / 1e9:.3f} GFLOP a training image"
    )
    print("| run | images/s | TFLOP/s | share of the peak |")
    print("|---|---:|---:|---:|")
    for name, rate in rows:
        tflops = rate * flops / 1e12
        print(f"| {name} | {rate:.0f} | {tflops:.3f} | {tflops / peak:.0%} |")
    print(
        f"validation after that epoch: {result.val_accuracy}, {np.round(result.eval_seconds, 1)} s"
    )
    if args.widths:
        sizing(config, splits, args.widths, args.precision, peak)


def sizing(config: dict, splits, widths: list[str], precision: str, peak: float) -> None:
    """hpo32's steady images/s of ``config`` at each of ``widths``, and the epochs of
    ``cifar10-fast``'s training set that its trial budget on this machine holds at that rate."""
    import keras

    from hpo32.search.models import build_model
    from hpo32.search.training import train_config
    from hpo32.studies.spec import load_preset

    preset = load_preset("cifar10-fast")
    budget = round(preset.trial_seconds or 0)
    epoch_images = round(50_000 * (1 - preset.val_fraction))  # CIFAR-10's training images
    n = len(splits.y_train)
    print(
        f"\n| widths | GFLOP a training image | images/s | TFLOP/s | share | epochs in {budget} s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for text in widths:
        w1, w2, w3 = (int(w) for w in text.split(","))
        sized = {**config, "width_1": w1, "width_2": w2, "width_3": w3}
        flops = 3 * forward_flops(build_model(sized, (32, 32, 3), 10))
        keras.backend.clear_session()
        result = train_config(sized, splits, epochs=2, precision=precision, epoch_images=n)
        rate = n / result.epoch_seconds[1]
        print(
            f"| {text} | {flops / 1e9:.3f} | {rate:.0f} | {rate * flops / 1e12:.3f} | "
            f"{rate * flops / 1e12 / peak:.0%} | {budget * rate / epoch_images:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
