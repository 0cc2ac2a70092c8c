"""The GPU check's Python part (``gpu_check.sh`` runs it): CIFAR-10 built from the JPEG
archive, then per Keras backend available (each in its own process: Keras fixes its backend
at import) the images/s of MaxNet and of the resnet family (``AIRBENCH94_CONFIG``), hpo32's
loop (``train_config``) against plain ``model.fit`` on the same float32 arrays, under the
same dtype policy (on PyTorch also plain ``fit`` under ``torch.compile``, which Keras leaves
off there), and a short timed search with its best model's test accuracy; one table. It
runs on a CPU as well (``--data`` a built CIFAR-10, ``--search-budget ''``).

    python tests/benchmarks/gpu_check.py all --archive cifar10-jpg.tar.gz --work /tmp/gc
    python tests/benchmarks/gpu_check.py all --archive ... --backends torch --train-images 2000 \
        --epochs 2 --search-budget 60s --search-spec tiny.yaml   # a quick run, to see it work

``all`` builds the data (unless ``--data`` names a built folder), runs ``measure`` for each
backend (a child process with ``KERAS_BACKEND`` set), and prints the table. The images/s
are those of the last epoch (the first compiles), on ``--train-images`` training images.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
BACKENDS = ("jax", "torch", "tensorflow")
LIBRARY = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}


# -- data --------------------------------------------------------------------------------


def build_cifar10(archive: Path, out: Path, per_class: int | None = None) -> Path:
    """The official CIFAR-10 python layout under ``out`` from the JPEG class-folder archive
    (``cifar10-jpg/{train,test}/<class>/*.jpg``); ``per_class`` keeps that many training
    images of each class (a quick run). Returns the folder to pass as ``--data-dir``."""
    import numpy as np
    from PIL import Image

    folder = out / "cifar-10-batches-py"
    if (folder / "test_batch").exists():
        return out
    rows: dict[str, list[tuple[int, np.ndarray]]] = {"train": [], "test": []}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 4 or parts[-2] not in CLASSES:
                continue
            split, label = parts[-3], CLASSES.index(parts[-2])
            if split not in rows:
                continue
            f = tar.extractfile(member)
            assert f is not None
            img = np.asarray(Image.open(io.BytesIO(f.read())).convert("RGB"), dtype=np.uint8)
            rows[split].append((label, img.transpose(2, 0, 1).reshape(-1)))  # channel-major
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    train = rows["train"]
    if per_class is not None:
        kept: dict[int, int] = {}
        chosen = []
        for label, row in train:
            if kept.get(label, 0) < per_class:
                chosen.append((label, row))
                kept[label] = kept.get(label, 0) + 1
        train = chosen
    order = rng.permutation(len(train))
    for k, chunk in enumerate(np.array_split(order, 5), start=1):
        _write(folder / f"data_batch_{k}", [train[i] for i in chunk])
    _write(folder / "test_batch", rows["test"])
    meta = {b"label_names": [c.encode() for c in CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return out


def _write(path: Path, rows: list) -> None:
    import numpy as np

    data = np.stack([r for _, r in rows]) if rows else np.zeros((0, 3072), np.uint8)
    batch = {b"data": data, b"labels": [int(label) for label, _ in rows]}
    path.write_bytes(pickle.dumps(batch, protocol=2))


# -- one backend (run in a process of its own) -----------------------------------------------


def device_name(backend: str) -> str:
    """The accelerator the backend trains on, in words (``cpu`` without one)."""
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    if backend == "jax":
        import jax

        d = jax.devices()[0]
        return str(getattr(d, "device_kind", d.platform))
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return gpus[0].name if gpus else "cpu"


def plain_fit_rate(
    config: dict, splits, epochs: int, policy: str, jit: bool | None = None
) -> float:
    """Images/s of the last epoch of plain ``model.fit`` on float32 arrays in memory; ``jit``
    sets the model's ``jit_compile`` (None: Keras' default, ``auto``; on PyTorch, True is
    ``torch.compile``)."""
    import keras
    import numpy as np

    from hpo32.search.models import build_model, compile_model

    x = splits.x_train.astype(np.float32) / np.float32(255.0)
    y = np.eye(splits.num_classes, dtype=np.float32)[splits.y_train]
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_model(config, splits.input_shape, splits.num_classes)
        compile_model(model, config)
        if jit is not None:
            model.jit_compile = jit
    finally:
        keras.mixed_precision.set_global_policy(previous)
    seconds: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.t0)

    model.fit(x, y, batch_size=int(config["batch_size"]), epochs=epochs, verbose=0,
              callbacks=[Clock()])  # fmt: skip
    keras.backend.clear_session()
    return len(x) / seconds[-1]


def measure(args: argparse.Namespace) -> None:
    """Prints one JSON line per row: throughput of each model, then the timed search."""
    import keras

    from hpo32.search.data import load_splits
    from hpo32.search.space import AIRBENCH94_CONFIG, MAXNET_CONFIG
    from hpo32.search.training import resolve_precision, train_config

    backend = keras.backend.backend()
    device = device_name(backend)
    splits = load_splits("cifar10", data_dir=args.data, train_limit=args.train_images,
                         val_limit=args.val_images, seed=0)  # fmt: skip
    policy = resolve_precision("auto")
    for name, config in (("maxnet", MAXNET_CONFIG), ("resnet (airbench94)", AIRBENCH94_CONFIG)):
        config = dict(config)
        result = train_config(config, splits, epochs=args.epochs, seed=0)
        hpo32_rate = len(splits.x_train) / result.epoch_seconds[-1]
        result.release()
        fit_rate = plain_fit_rate(config, splits, args.epochs, result.dtype_policy)
        _emit({"backend": backend, "device": device, "what": name, "policy": policy,
               "hpo32": hpo32_rate, "fit": fit_rate, "val": result.value})  # fmt: skip
        if backend == "torch":  # Keras runs PyTorch eagerly; does torch.compile win?
            row = {"backend": backend, "device": device, "what": f"{name}, torch.compile",
                   "policy": policy}  # fmt: skip
            try:
                row["fit"] = plain_fit_rate(
                    config, splits, args.epochs, result.dtype_policy, jit=True
                )
            except Exception as exc:  # a compiler missing or failing: say so in the table
                row["error"] = f"{type(exc).__name__}: {exc}"[:200]
            _emit(row)
    if args.search_budget:
        _emit(timed_search(args, backend, device))


def timed_search(args: argparse.Namespace, backend: str, device: str) -> dict:
    """A ``--preset cifar10-fast`` (or ``--search-spec``) search of ``--search-budget`` on
    this backend (the command line, in a child process), with its best model's test
    accuracy."""
    db = Path(args.work) / f"gpu-check-{backend}.db"
    db.unlink(missing_ok=True)
    source = ["--spec", args.search_spec] if args.search_spec else ["--preset", args.preset]
    cmd = [sys.executable, "-m", "hpo32.studies.cli", "search", *source,
           "--budget", args.search_budget, "--backend", backend, "--data-dir", str(args.data),
           "--study", f"gpu-{backend}", "--storage", f"sqlite:///{db}", "--json"]  # fmt: skip
    env = dict(os.environ, KERAS_BACKEND=backend)
    t0 = time.monotonic()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    row = {"backend": backend, "device": device, "what": f"search {args.search_budget}",
           "seconds": seconds}  # fmt: skip
    try:
        outcome = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        row["error"] = (res.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return row
    row.update(trials=outcome.get("trials_run"), val=outcome.get("best_value"),
               test=outcome.get("test_accuracy"))  # fmt: skip
    return row


def _emit(row: dict) -> None:
    print("GPU_CHECK " + json.dumps(row), flush=True)


# -- all ---------------------------------------------------------------------------------


def available(backends: list[str]) -> list[str]:
    return [b for b in backends if importlib.util.find_spec(LIBRARY[b]) is not None]


def run_all(args: argparse.Namespace) -> int:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.data is None:
        t0 = time.monotonic()
        args.data = build_cifar10(Path(args.archive), work / "data", args.per_class)
        print(f"gpu_check: CIFAR-10 built in {args.data} in {time.monotonic() - t0:.0f}s",
              flush=True)  # fmt: skip
    backends = available(args.backends.split(","))
    if not backends:
        print("gpu_check: none of the backends asked for is installed", file=sys.stderr)
        return 2
    rows: list[dict] = []
    for backend in backends:
        cmd = [sys.executable, __file__, "measure", "--data", str(args.data), "--work", args.work,
               "--train-images", str(args.train_images), "--val-images", str(args.val_images),
               "--epochs", str(args.epochs), "--search-budget", args.search_budget or "",
               "--preset", args.preset, "--search-spec", args.search_spec or ""]  # fmt: skip
        env = dict(os.environ, KERAS_BACKEND=backend)
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        got = [json.loads(line[10:]) for line in res.stdout.splitlines()
               if line.startswith("GPU_CHECK ")]  # fmt: skip
        if res.returncode != 0 and not got:
            tail = (res.stderr.strip().splitlines() or ["no output"])[-1][:200]
            got = [{"backend": backend, "what": "-", "error": tail}]
        rows += got
    print_table(rows)
    (work / "gpu_check.json").write_text(json.dumps(rows, indent=2))
    return 0


def print_table(rows: list[dict]) -> None:
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    head = ("backend", "device", "what", "policy", "hpo32 img/s", "fit img/s", "hpo32/fit",
            "trials", "best val", "test", "note")  # fmt: skip
    table = [head]
    for r in rows:
        ratio = r["hpo32"] / r["fit"] if r.get("hpo32") and r.get("fit") else None
        table.append((
            r.get("backend", "-"), r.get("device", "-"), r.get("what", "-"),
            r.get("policy", "-"), num(r.get("hpo32"), ",.0f"), num(r.get("fit"), ",.0f"),
            num(ratio, ".2f"), num(r.get("trials"), "d"), num(r.get("val"), ".4f"),
            num(r.get("test"), ".4f"),
            r.get("error") or (f"{r['seconds']:.0f}s wall" if "seconds" in r else ""),
        ))  # fmt: skip
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def main() -> int:
    sys.path.insert(0, str(ROOT))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("all", "measure", "data"))
    ap.add_argument("--archive", default=str(HERE / "cifar10-jpg.tar.gz"))
    ap.add_argument("--data", help="a built CIFAR-10 folder (skips the build)")
    ap.add_argument("--work", default="/tmp/hpo32-gpu-check")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--per-class", type=int, help="training images per class to build")
    ap.add_argument("--train-images", type=int, default=20_000)
    ap.add_argument("--val-images", type=int, default=2_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--search-budget", default="150s", help="per backend; '' for none")
    ap.add_argument("--preset", default="cifar10-fast")
    ap.add_argument("--search-spec", help="a spec file for the search instead of --preset")
    args = ap.parse_args()
    if args.mode == "data":
        print(build_cifar10(Path(args.archive), Path(args.work) / "data", args.per_class))
        return 0
    if args.mode == "measure":
        measure(args)
        return 0
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
