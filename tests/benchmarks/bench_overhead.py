"""hpo32's own seconds per trial: everything a search does besides training and validating.

Runs ``hpo32 search`` in this process on real CIFAR-10 (the cifar10-cpu preset: all
45,000 training images, short 5,000-image epochs, so the trials are short and the overhead
weighs the most it can) for the Optuna engine and for KerasTuner's random search through
hpo32's mirror, with timers around the pieces:

* **train**: ``SearchContext.train`` - build, compile, fit, per-epoch validation (the
  trial's work; the per-epoch report to the pruner runs inside it and is shown apart);
* **own**: the engine's wall clock minus train - asking the sampler or oracle, writing the
  trial's params, attributes and state, mirroring, saving the best model, releasing it;
* for Optuna, the pieces of own by name.

    .venv/bin/python tests/benchmarks/bench_overhead.py --data-dir /tmp/hpo32-data [--trials 12]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SECONDS: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)


def timed(owner, name: str, label: str, patches: list) -> None:
    """Wraps ``owner.name`` so its wall clock adds to ``SECONDS[label]``."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            SECONDS[label] += time.perf_counter() - t0
            CALLS[label] += 1

    patches.append((owner, name, original))
    setattr(owner, name, wrapper)


@contextlib.contextmanager
def instrumented(engine: str):
    import optuna

    from hpo32.search.engines import base, record
    from hpo32.search.engines import keras_tuner as keras_tuner_engine
    from hpo32.search.engines import optuna as optuna_engine
    from hpo32.search.training import TrialResult

    patches: list = []
    timed(base.SearchContext, "train", "train", patches)
    timed(optuna_engine, "run_optuna", "engine", patches)
    timed(keras_tuner_engine, "run_keras_tuner", "engine", patches)
    timed(optuna.trial.Trial, "report", "report to pruner (in train)", patches)
    timed(optuna.trial.Trial, "should_prune", "ask pruner (in train)", patches)
    if engine == "optuna":
        timed(optuna_engine, "_next_trial", "ask (sampler, stale check, counts)", patches)
        timed(optuna_engine, "suggest_config", "suggest params", patches)
        timed(optuna.trial.Trial, "set_user_attr", "write user attrs", patches)
        timed(optuna.study.Study, "tell", "tell", patches)
        timed(record, "best_value", "best so far", patches)
        timed(record, "save_model", "save best model", patches)
        timed(TrialResult, "release", "release model", patches)
    try:
        yield
    finally:
        for owner, name, original in reversed(patches):
            setattr(owner, name, original)


def run(engine: str, data_dir: str, trials: int, folder: Path) -> None:
    from hpo32.studies.cli import main as hpo32

    SECONDS.clear()
    CALLS.clear()
    with instrumented(engine), contextlib.redirect_stdout(open(os.devnull, "w")):
        try:
            hpo32(
                [
                    "search",
                    "--study",
                    engine.replace(":", "-"),
                    "--preset",
                    "cifar10-cpu",
                    "--engine",
                    engine,
                    "--n-trials",
                    str(trials),
                    "--epochs",
                    "2",
                    "--epoch-images",
                    "5000",
                    "--pruner",
                    "none",
                    "--data-dir",
                    data_dir,
                    "--storage",
                    f"sqlite:///{folder / 'overhead.db'}",
                ]
            )
        except SystemExit as exc:
            if exc.code:
                raise
    train = SECONDS["train"]
    inside = SECONDS["report to pruner (in train)"] + SECONDS["ask pruner (in train)"]
    own = SECONDS["engine"] - train + inside
    n = CALLS["train"]
    print(
        f"\n{engine}: {n} trials, {train / n:.2f} s training a trial "
        f"(incl. validation, build and tracing)"
    )
    print("| part | calls | seconds | per trial s | % of training |")
    print("|---|---:|---:|---:|---:|")
    rows = [(k, CALLS[k], v) for k, v in SECONDS.items() if k not in ("train", "engine")]
    rows.append(("**own, all (engine wall - training)**", n, own))
    for label, calls, seconds in rows:
        print(
            f"| {label} | {calls} | {seconds:.3f} | {seconds / n:.3f} | "
            f"{100 * seconds / (train - inside):.2f}% |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--engines", nargs="+", default=["optuna", "keras-tuner:random"])
    args = parser.parse_args()
    for engine in args.engines:
        with tempfile.TemporaryDirectory() as tmp:
            run(engine, args.data_dir, args.trials, Path(tmp))


if __name__ == "__main__":
    main()
