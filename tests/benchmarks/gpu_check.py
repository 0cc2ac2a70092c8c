"""The GPU check's Python part (``gpu_check.sh`` runs it). CIFAR-10 built from the JPEG
archive; then, each in a process of its own per Keras backend (Keras fixes its backend at
import), the images/s of MaxNet and of the resnet family (``AIRBENCH94_CONFIG``) under
hpo32's loop (``train_config``) and under plain ``model.fit`` on the same arrays and dtype
policy; one timed search (``--preset cifar10-fast``) on the backend whose loop trained the
resnet fastest, with its best model's test accuracy; then, while ``--deadline`` leaves
time, the host and device memory after each of repeated trials per backend, and plain
``fit`` under ``torch.compile`` (which Keras leaves off on PyTorch). One table at the end;
rows also in ``WORK/gpu_check.json``. Each step gets what is left of the deadline and is
stopped when it runs past it, so the table is printed in time whatever happens. It runs on
a CPU as well (``--data`` a built CIFAR-10).

    python tests/benchmarks/gpu_check.py all --archive cifar10-jpg.tar.gz --work /tmp/gc
    python tests/benchmarks/gpu_check.py all --data /tmp/hpo32-data --backends torch \
        --train-images 2000 --epochs 2 --search-budget 60s --deadline 300   # a quick run

The images/s are those of the last epoch (the first compiles), on ``--train-images``
training images.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import json
import os
import pickle
import re
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
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
    config: dict,
    splits,
    epochs: int,
    policy: str,
    jit: bool | None = None,
    batch_hook: bool = False,
) -> float:
    """Images/s of the last epoch of plain ``model.fit`` on float32 arrays in memory; ``jit``
    sets the model's ``jit_compile`` (None: Keras' default, ``auto``; on PyTorch, True is
    ``torch.compile``). ``batch_hook`` adds a callback whose ``on_train_batch_end`` does
    nothing: as hpo32's budget callback does, it makes Keras run the batch-end callbacks in
    step with training (each step's logs read back, the device waited for), where without
    one it runs them on a thread and the host may dispatch ahead."""
    import keras
    import numpy as np

    from hpo32.search.models import build_model, compile_model

    batch = int(config["batch_size"])
    whole = len(splits.x_train) - len(splits.x_train) % batch  # no ragged last batch
    x = splits.x_train[:whole].astype(np.float32) / np.float32(255.0)
    y = np.eye(splits.num_classes, dtype=np.float32)[splits.y_train[:whole]]
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

    class Hook(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    callbacks = [Clock(), Hook()] if batch_hook else [Clock()]
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, callbacks=callbacks)
    keras.backend.clear_session()
    return len(x) / seconds[-1]


def device_memory_mb(backend: str) -> float | None:
    """Accelerator memory that live buffers hold now, in MiB; None on a CPU. PyTorch's
    counts tensors (its cache of freed blocks aside); JAX's, the buffers XLA keeps."""
    if backend == "torch":
        import torch

        return torch.cuda.memory_allocated() / 2**20 if torch.cuda.is_available() else None
    if backend == "jax":
        import jax

        d = jax.devices()[0]
        stats = d.memory_stats() if d.platform == "gpu" else None
        return stats["bytes_in_use"] / 2**20 if stats else None
    return None


def _splits(args: argparse.Namespace, train_images: int):
    from hpo32.search.data import load_splits

    return load_splits("cifar10", data_dir=args.data, train_limit=train_images,
                       val_limit=args.val_images, seed=0)  # fmt: skip


def _models() -> tuple[tuple[str, dict], ...]:
    """The networks measured, by name: MaxNet and the resnet family's airbench94."""
    from hpo32.search.space import AIRBENCH94_CONFIG, MAXNET_CONFIG

    return ("maxnet", dict(MAXNET_CONFIG)), ("resnet (airbench94)", dict(AIRBENCH94_CONFIG))


def measure(args: argparse.Namespace) -> None:
    """One JSON row per model: hpo32's loop and plain ``fit``, images/s of the last epoch."""
    import keras

    from hpo32.search.training import resolve_precision, train_config

    backend = keras.backend.backend()
    device = device_name(backend)
    splits = _splits(args, args.train_images)
    policy = resolve_precision("auto")
    for name, config in _models():
        result = train_config(config, splits, epochs=args.epochs, seed=0)
        hpo32_rate = len(splits.x_train) / result.epoch_seconds[-1]
        result.release()
        fit_rate = plain_fit_rate(config, splits, args.epochs, result.dtype_policy)
        row = {"backend": backend, "device": device, "what": name, "policy": policy,
               "hpo32": hpo32_rate, "fit": fit_rate, "val": result.value}  # fmt: skip
        if config["family"] == "resnet":  # what waiting on every step costs plain fit
            row["fit_hook"] = plain_fit_rate(
                config, splits, args.epochs, result.dtype_policy, batch_hook=True
            )
        _emit(row)


def memory(args: argparse.Namespace) -> None:
    """Repeated trials of ``AIRBENCH94_CONFIG`` (one epoch of ``--memory-images``) in one
    process, as a search worker runs them: after each trial's release, the host's resident
    memory, the device memory still in use, the Python objects the garbage collector tracks
    (those frozen after each trial included) and, on JAX, the arrays and compiled programs
    still alive; rows as they come, so a run stopped at its deadline keeps what it
    measured."""
    import keras

    from hpo32.search.space import AIRBENCH94_CONFIG
    from hpo32.search.training import current_rss_mb, train_config

    backend = keras.backend.backend()
    device = device_name(backend)
    if args.no_heap_trim:  # the same trials without the C heap's trim after each release
        from hpo32.search import training

        training.trim_native_heap = lambda: False
    splits = _splits(args, args.memory_images)
    config = dict(AIRBENCH94_CONFIG)
    for k in range(args.memory_trials):
        result = train_config(config, splits, epochs=1, seed=k)
        result.release()
        row = {"backend": backend, "device": device, "what": "memory", "trial": k,
               "rss_mb": current_rss_mb(), "device_mb": device_memory_mb(backend),
               "python_objects": len(gc.get_objects()) + gc.get_freeze_count()}  # fmt: skip
        if backend == "jax":  # arrays and compiled programs something still holds
            import jax
            from jax.extend.backend import get_backend

            row["live_arrays"] = len(jax.live_arrays())
            row["live_executables"] = len(get_backend().live_executables())
        _emit(row)


def compiled(args: argparse.Namespace) -> None:
    """Plain ``fit`` under ``torch.compile`` (``jit_compile=True`` on PyTorch), each model."""
    import keras

    from hpo32.search.training import resolve_precision

    backend = keras.backend.backend()
    if backend == "torch":  # static shapes: dynamic ones failed in Conv2D on the CPU
        import torch

        torch._dynamo.config.automatic_dynamic_shapes = False
    device = device_name(backend)
    splits = _splits(args, args.train_images)
    policy = resolve_precision("auto")
    for name, config in _models():
        row = {"backend": backend, "device": device, "what": f"{name}, torch.compile",
               "policy": policy}  # fmt: skip
        try:
            row["fit"] = plain_fit_rate(config, splits, args.epochs, policy, jit=True)
        except Exception as exc:  # a compiler missing or failing: say so in the table
            row["error"] = one_line(f"{type(exc).__name__}: {exc}")
        _emit(row)


def one_line(text: str) -> str:
    """``text`` without terminal colours, its whitespace runs as single spaces, cut at 200."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", text).split())[:200]


def _emit(row: dict) -> None:
    print("GPU_CHECK " + json.dumps(row), flush=True)


# -- all ---------------------------------------------------------------------------------


def available(backends: list[str]) -> list[str]:
    return [b for b in backends if importlib.util.find_spec(LIBRARY[b]) is not None]


def child(cmd: list[str], backend: str, seconds: float, log: Path, cwd: str) -> list[dict]:
    """Runs ``cmd`` with ``KERAS_BACKEND=backend`` in ``cwd`` for at most ``seconds``; echoes
    and returns its rows; a row with the error when it fails or runs out of time. (``cwd``
    is not the repository root: its ``hpo32/`` folder would hide the package's map.)"""
    env = dict(os.environ, KERAS_BACKEND=backend)
    rows: list[dict] = []
    with log.open("a") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                cwd=cwd)  # fmt: skip
        timer = threading.Timer(max(seconds, 1.0), proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                print(line.rstrip(), flush=True)
                if line.startswith("GPU_CHECK "):
                    rows.append(json.loads(line[10:]))
            proc.wait()
        finally:
            timed_out = not timer.is_alive() and proc.returncode != 0
            timer.cancel()
    if proc.returncode != 0:
        if timed_out:
            why = f"stopped at its {seconds:.0f}s share of the deadline"
        else:
            lines = log.read_text().strip().splitlines() or ["no output"]
            why = one_line(lines[-1])
        rows.append({"backend": backend, "what": cmd[2], "error": why})
    return rows


def timed_search(args: argparse.Namespace, backend: str, budget_s: int, log: Path) -> dict:
    """A ``--preset`` (or ``--search-spec``) search of ``budget_s`` seconds on ``backend``
    (the command line, in a child process), with its best model's test accuracy."""
    db = Path(args.work) / f"gpu-check-{backend}.db"
    db.unlink(missing_ok=True)
    source = ["--spec", args.search_spec] if args.search_spec else ["--preset", args.preset]
    cmd = [sys.executable, "-m", "hpo32.studies.cli", "search", *source,
           "--budget", f"{budget_s}s", "--backend", backend, "--data-dir", str(args.data),
           "--study", f"gpu-{backend}", "--storage", f"sqlite:///{db}", "--json"]  # fmt: skip
    env = dict(os.environ, KERAS_BACKEND=backend)
    t0 = time.monotonic()
    with log.open("a") as err:
        try:
            res = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                 timeout=budget_s + 60, cwd=args.work)  # fmt: skip
            out = res.stdout
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
    row = {"backend": backend, "device": "", "what": f"search {budget_s}s ({args.preset})",
           "seconds": time.monotonic() - t0}  # fmt: skip
    try:
        outcome = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        row["error"] = one_line((log.read_text().strip().splitlines() or ["no output"])[-1])
        return row
    row.update(trials=outcome.get("trials_run"), val=outcome.get("best_value"),
               test=outcome.get("test_accuracy"))  # fmt: skip
    row["trials_table"] = search_trials(db)
    return row


def search_trials(db: Path) -> list[dict]:
    """Each trial of the search: state, value, its layout, epochs, images, images/s, RSS."""
    import sqlite3

    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT t.number, t.state, v.value FROM trials t "
            "LEFT JOIN trial_values v ON v.trial_id = t.trial_id ORDER BY t.number"
        ).fetchall()
        attrs: dict[int, dict] = {}
        for number, key, value in con.execute(
            "SELECT t.number, a.key, a.value_json FROM trial_user_attributes a "
            "JOIN trials t ON t.trial_id = a.trial_id"
        ):
            attrs.setdefault(number, {})[key] = json.loads(value)
        widths: dict[int, list] = {}
        for number, _name, value in con.execute(
            "SELECT t.number, p.param_name, p.param_value FROM trial_params p "
            "JOIN trials t ON t.trial_id = p.trial_id "
            "WHERE p.param_name IN ('width_1', 'width_2', 'width_3', 'group_convs') "
            "ORDER BY t.number, p.param_name"
        ):
            widths.setdefault(number, []).append(int(value))
    finally:
        con.close()
    keep = ("epochs_completed", "images_trained", "planned_images", "schedule_refit",
            "images_per_second", "peak_rss_mb", "stopped_by", "dtype_policy")  # fmt: skip
    return [{"number": n, "state": s, "value": v, "group_convs,widths": widths.get(n),
             **{k: attrs.get(n, {}).get(k) for k in keep}} for n, s, v in rows]  # fmt: skip


def run_all(args: argparse.Namespace) -> int:
    ends = time.monotonic() + args.deadline
    args.work = str(Path(args.work).resolve())
    if args.data is not None:
        args.data = Path(args.data).resolve()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "children.log"
    if args.data is None:
        t0 = time.monotonic()
        args.data = build_cifar10(Path(args.archive).resolve(), work / "data", args.per_class)
        print(f"gpu_check: CIFAR-10 built in {args.data} in {time.monotonic() - t0:.0f}s",
              flush=True)  # fmt: skip
    backends = available(args.backends.split(","))
    if not backends:
        print("gpu_check: none of the backends asked for is installed", file=sys.stderr)
        return 2
    from hpo32.studies.spec import parse_duration  # the CLI's own reading of 90s, 5m, 1h

    search_s = int(parse_duration(args.search_budget or None, "--search-budget") or 0)
    rows: list[dict] = []

    def left() -> float:
        return ends - time.monotonic()

    def run(mode: str, backend: str, seconds: float) -> None:
        cmd = [sys.executable, __file__, mode, "--data", str(args.data), "--work", args.work,
               "--train-images", str(args.train_images), "--val-images", str(args.val_images),
               "--epochs", str(args.epochs), "--memory-trials", str(args.memory_trials),
               "--memory-images", str(args.memory_images)]  # fmt: skip
        print(f"gpu_check: {mode} on {backend}, {seconds:.0f}s at most", flush=True)
        rows.extend(child(cmd, backend, seconds, log, args.work))

    # 1. Throughput per backend, then memory over repeated trials (``--memory-seconds``
    # each), leaving the search its budget and 30 s to start and end.
    memory_s = args.memory_seconds if args.memory_trials else 0
    for k, backend in enumerate(backends):
        share = (left() - search_s - 30 - memory_s * len(backends)) / (len(backends) - k)
        run("measure", backend, share)
    for k, backend in enumerate(backends if memory_s else []):
        share = min(memory_s, (left() - search_s - 30) / (len(backends) - k))
        if share >= 20:
            run("memory", backend, share)
    # 2. The search, on the backend whose loop trained the resnet fastest (the first when
    # none did), shortened if the steps before ran long.
    rates = {r["backend"]: r["hpo32"] for r in rows if r.get("what", "").startswith("resnet")
             and r.get("hpo32")}  # fmt: skip
    fastest = max(rates, key=rates.__getitem__) if rates else backends[0]
    if search_s:
        budget = int(min(search_s, left() - 30))
        if budget >= 60:
            print(f"gpu_check: search {budget}s on {fastest}", flush=True)
            row = timed_search(args, fastest, budget, log)
            print("GPU_CHECK " + json.dumps(row), flush=True)
            rows.append(row)
    # 3. With what is left: plain fit under torch.compile.
    if "torch" in backends and left() >= 45:
        run("compiled", "torch", left() - 10)
    print_table(rows)
    (work / "gpu_check.json").write_text(json.dumps(rows, indent=2))
    return 0


def print_table(rows: list[dict]) -> None:
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    memory_rows = [r for r in rows if "rss_mb" in r]
    head = ("backend", "device", "what", "policy", "hpo32 img/s", "fit img/s", "hpo32/fit",
            "fit+hook img/s", "trials", "best val", "test", "note")  # fmt: skip
    table = [head]
    for r in rows:
        if r in memory_rows:
            continue
        ratio = r["hpo32"] / r["fit"] if r.get("hpo32") and r.get("fit") else None
        table.append((
            r.get("backend", "-"), r.get("device", "-"), r.get("what", "-"),
            r.get("policy", "-"), num(r.get("hpo32"), ",.0f"), num(r.get("fit"), ",.0f"),
            num(ratio, ".2f"), num(r.get("fit_hook"), ",.0f"), num(r.get("trials"), "d"),
            num(r.get("val"), ".4f"), num(r.get("test"), ".4f"),
            r.get("error") or (f"{r['seconds']:.0f}s wall" if "seconds" in r else ""),
        ))  # fmt: skip
    _print_columns(table)
    for r in rows:
        for t in r.get("trials_table", []):
            print("  trial", json.dumps(t))
    by_backend: dict[str, list[dict]] = {}
    for r in memory_rows:
        by_backend.setdefault(r["backend"], []).append(r)
    if by_backend:
        print("\nmemory after each trial's release (MiB): host RSS / device in use")
        for backend, got in by_backend.items():
            cells = [f"{r['rss_mb']:.0f}/{num(r.get('device_mb'), '.0f')}" for r in got]
            print(f"  {backend}: " + " ".join(cells))


def _print_columns(table: list[tuple]) -> None:
    widths = [max(len(str(row[i])) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("all", "measure", "memory", "compiled", "data"))
    ap.add_argument("--archive", default=str(HERE / "cifar10-jpg.tar.gz"))
    ap.add_argument("--data", help="a built CIFAR-10 folder (skips the build)")
    ap.add_argument("--work", default="/tmp/hpo32-gpu-check")
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--per-class", type=int, help="training images per class to build")
    ap.add_argument("--train-images", type=int, default=20_000)
    ap.add_argument("--val-images", type=int, default=2_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--search-budget", default="5m", help="'' for none")
    ap.add_argument("--preset", default="cifar10-fast")
    ap.add_argument("--search-spec", help="a spec file for the search instead of --preset")
    ap.add_argument("--memory-trials", type=int, default=30, help="0 for none")
    ap.add_argument("--memory-seconds", type=float, default=40.0, help="per backend, at most")
    ap.add_argument("--memory-images", type=int, default=2_000, help="each memory trial's")
    ap.add_argument("--no-heap-trim", action="store_true", help="memory: skip the heap trim")
    ap.add_argument("--deadline", type=float, default=540.0, help="seconds for 'all'")
    args = ap.parse_args()
    if args.mode == "data":
        print(build_cifar10(Path(args.archive), Path(args.work) / "data", args.per_class))
        return 0
    if args.mode != "all":
        {"measure": measure, "memory": memory, "compiled": compiled}[args.mode](args)
        return 0
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
