"""Memory: a worker's resident memory over consecutive trials, and what the data costs.

Part 1 runs ``hpo32 search`` for 30 trials in one worker on the full CIFAR-10 training set
(45,000 images after the hold-out), each trial one 2,000-image epoch, and reads every trial's
peak resident memory (``peak_rss_mb``, which each trial records) from the database. Two
runs: one config repeated 30 times (a leak shows as growth), and the cifar10-cpu space
sampled at random (what a search does).

Part 2 loads ImageNet32 (the 200-class Tiny-ImageNet copy in ``--data-dir``) in a fresh
process with and without ``--train-limit``, once as ``hpo32 search`` does
(``search.data.load_splits``: only the chosen images are read) and once by loading all and
splitting after, and prints the images' dtype and bytes, the resident memory once the splits
are made, and the process's peak.

    .venv/bin/python tests/benchmarks/bench_memory.py --data-dir /tmp/hpo32-data [--trials 30] \
        [--backends tensorflow,torch,jax] [--runs fixed,space] [--heap-trim on,off] \
        [--skip-trials]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


#: ``hpo32`` with the heap trim after each trial turned off (``--heap-trim off``): the same
#: command, its ``trim_native_heap`` replaced by a no-op before it runs.
NO_TRIM_CLI = (
    "import sys; from hpo32.search import training; "
    "training.trim_native_heap = lambda: False; "
    "from hpo32.studies.cli import main; sys.exit(main())"
)


def trial_memory(
    data_dir: str,
    trials: int,
    fixed: bool,
    folder: Path,
    backend: str = "tensorflow",
    trim: bool = True,
) -> list[float]:
    """Runs the CLI on Keras backend ``backend`` (with or without the heap trim between
    trials); returns each finished trial's peak RSS in MiB, in trial order."""
    from hpo32.studies.spec import load_preset

    spec = load_preset("cifar10-cpu")
    space = dict(spec.space)
    extra: dict = {"budget": None, "trial_budget": None}
    if fixed:  # one config: the space's defaults, fixed (the preset's warm starts differ)
        config = spec.build_space().defaults()
        space = {"base": "default", "params": {**space["params"], **config}}
        extra["warm_start"] = []
    spec_file = folder / f"spec-{'fixed' if fixed else 'space'}.json"
    spec_file.write_text(json.dumps({**spec.to_dict(), "space": space, **extra}))
    db = folder / f"mem-{backend}-{'fixed' if fixed else 'space'}-{trim}.db"
    cli = ["-m", "hpo32.studies.cli"] if trim else ["-c", NO_TRIM_CLI]
    subprocess.run(
        [
            sys.executable,
            *cli,
            "search",
            "--study",
            "mem",
            "--spec",
            str(spec_file),
            "--n-trials",
            str(trials),
            "--epochs",
            "1",
            "--epoch-images",
            "2000",
            "--sampler",
            "random",
            "--pruner",
            "none",
            "--data-dir",
            data_dir,
            "--backend",
            backend,
            "--storage",
            f"sqlite:///{db}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        env=ENV,
    )
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT t.number, a.value_json FROM trials t JOIN trial_user_attributes a "
            "ON a.trial_id = t.trial_id AND a.key = 'peak_rss_mb' ORDER BY t.number"
        ).fetchall()
    return [float(v) for _, v in rows]


LOAD = """
import json, resource, sys
from hpo32.search.data import load_dataset, load_splits, make_splits
from hpo32.search.training import current_rss_mb
folder, limit, how = sys.argv[1], sys.argv[2], sys.argv[3]
limit = int(limit) if limit != "none" else None
if how == "load_splits":  # what hpo32 search does
    splits = load_splits("imagenet32", data_dir=folder, train_limit=limit, val_limit=2000)
else:  # load everything, then split
    splits = make_splits(load_dataset("imagenet32", data_dir=folder), train_limit=limit,
                         val_limit=2000)
print(json.dumps({"dtype": str(splits.x_train.dtype), "images": len(splits.x_train),
                  "train_mb": splits.x_train.nbytes / 2**20, "rss_mb": current_rss_mb(),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def data_memory(data_dir: str, limit: int | None, how: str) -> dict:
    folder = str(Path(data_dir) / "imagenet32-tiny200")
    out = subprocess.run(
        [sys.executable, "-c", LOAD, folder, str(limit or "none"), how],
        check=True,
        capture_output=True,
        text=True,
        env=ENV,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--skip-trials", action="store_true")
    parser.add_argument(
        "--backends", default="tensorflow", help="comma-separated Keras backends, each in turn"
    )
    parser.add_argument(
        "--runs", default="fixed,space", help="fixed (one config repeated), space, or both"
    )
    parser.add_argument(
        "--heap-trim", default="on", help="on (as hpo32 runs), off (no malloc_trim), or on,off"
    )
    args = parser.parse_args()

    if not args.skip_trials:
        print(
            "| backend | run | heap trim | trials | peak RSS trial 3 MiB | "
            "peak RSS last trial MiB | highest MiB | growth 3 -> last |"
        )
        print("|---|---|---|---:|---:|---:|---:|---:|")
        runs = args.runs.split(",")
        with tempfile.TemporaryDirectory() as tmp:
            for backend in args.backends.split(","):
                for fixed in [r == "fixed" for r in ("fixed", "space") if r in runs]:
                    for trim in args.heap_trim.split(","):
                        rss = trial_memory(
                            args.data_dir, args.trials, fixed, Path(tmp), backend, trim == "on"
                        )
                        third, last = rss[2], rss[-1]
                        print(
                            f"| {backend} | {'one config' if fixed else 'cifar10-cpu space'} | "
                            f"{trim} | {len(rss)} | {third:.0f} | {last:.0f} | {max(rss):.0f} | "
                            f"{100 * (last - third) / third:+.1f}% |",
                            flush=True,
                        )

    print(
        "\n| ImageNet32 (200 classes), val-limit 2000 | loaded by | train images | dtype | "
        "train array MiB | RSS after splits MiB | peak RSS MiB |"
    )
    print("|---|---|---:|---|---:|---:|---:|")
    for limit in (None, 10_000):
        for how in ("load_dataset + make_splits", "load_splits"):
            m = data_memory(args.data_dir, limit, how)
            print(
                f"| train-limit {limit or 'none'} | {how} | {m['images']} | {m['dtype']} | "
                f"{m['train_mb']:.0f} | {m['rss_mb']:.0f} | {m['peak_mb']:.0f} |"
            )


if __name__ == "__main__":
    main()
