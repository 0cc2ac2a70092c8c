"""Search efficiency on real CIFAR-10: hpo32 against KerasTuner ``RandomSearch``, same budget.

hpo32 runs as a user runs it: ``hpo32 search --preset cifar10-cpu --budget 10m --seed S``
(a conventional small CNN first, then TPE with successive halving over 10,000-image epochs,
9 at most, 90,000 images as a KerasTuner trial's 2 epochs; mixed precision where the CPU has
it).
KerasTuner runs the way its documentation shows: a ``HyperModel`` whose ``build`` asks the
same space (``hpo32.search.engines.tuner_space.hp_config``) and builds the same network,
whose ``fit`` takes the batch size from ``hp``; float32 NumPy arrays; flips and shifts as Keras
preprocessing layers; ``tuner.search(x, y, epochs=2, validation_data=...)``, then
``get_best_models``. Its only addition is a stop at the same wall-clock budget (no new trial
after it, the running fit stopped between batches).

Both sides get the same training images, the same 2,000 validation images (the preset's
stratified split for the seed) and the same 10,000 test images; each run is its own process,
and the two sides alternate which goes first from seed to seed.

    .venv/bin/python tests/benchmarks/bench_search.py --data-dir /tmp/hpo32-data \\
        [--budget 600] [--seeds 0 1 2] [--out /tmp/hpo32-bench-search]

Prints one row per run (trials, best validation accuracy, its test accuracy, when the best
was found), then the medians and the time each side needs to reach the KerasTuner median
final validation accuracy. Results are kept as JSON under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PRESET = "cifar10-cpu"
KT_EPOCHS = 2


def hpo32_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Runs ``hpo32 ARGS`` with this tree's code, as the installed CLI runs it."""
    return subprocess.run(
        [sys.executable, "-m", "hpo32.studies.cli", *args],
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **kwargs,
    )


def run_hpo32(data_dir: str, seed: int, budget: float, out: Path) -> dict:
    """Runs the CLI; reads the trials' completion times and values from its database."""
    db = out / f"hpo32-seed{seed}.db"
    db.unlink(missing_ok=True)
    hpo32_cli(
        "search",
        "--study",
        f"s{seed}",
        "--preset",
        PRESET,
        "--budget",
        f"{budget}s",
        "--seed",
        str(seed),
        "--data-dir",
        data_dir,
        "--storage",
        f"sqlite:///{db}",
        stdout=subprocess.DEVNULL,
    )
    return read_hpo32(db, seed)


def read_hpo32(db: Path, seed: int) -> dict:
    """One hpo32 run's result from its database: trials started, completion times and values
    of the complete ones, the test accuracy of the best."""
    shown = json.loads(
        hpo32_cli(
            "show",
            f"s{seed}",
            "--json",
            "--no-model",
            "--storage",
            f"sqlite:///{db}",
            capture_output=True,
            text=True,
        ).stdout
    )
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT t.state, t.datetime_start, t.datetime_complete, v.value FROM trials t "
            "LEFT JOIN trial_values v ON v.trial_id = t.trial_id "
            "WHERE t.datetime_start IS NOT NULL "  # not one queued for a later session
            "ORDER BY t.number"
        ).fetchall()
    parse = datetime.fromisoformat
    t0 = min(parse(r[1]) for r in rows)
    points = [
        ((parse(end) - t0).total_seconds(), value)
        for state, _start, end, value in rows
        if state == "COMPLETE" and value is not None
    ]
    return {
        "side": "hpo32",
        "seed": seed,
        "trials": len(rows),
        "complete": len(points),
        "points": sorted(points),
        "test_accuracy": shown["best_trial"].get("test_accuracy"),
        "best": shown["best_trial"],
    }


def peer_data(data_dir: str, seed: int, preset: str):
    """The preset's spec, and the training/validation splits and test set that hpo32's side
    of the same seed uses (the preset's stratified split), for a peer's side."""
    from hpo32.search.data import load_dataset
    from hpo32.studies.launch import _load_splits
    from hpo32.studies.spec import load_preset

    spec = load_preset(preset).with_overrides(data_dir=data_dir, seed=seed)
    return spec, _load_splits(spec), load_dataset("cifar10", data_dir=data_dir)


class BudgetClock:
    """A peer's search held to the wall-clock budget from its creation: no trial started
    after it (:meth:`stop_trials`, from the tuner's ``pre_create_trial``), the running fit
    stopped between batches (:meth:`callback`), and each trial's end in seconds from the
    start (:meth:`trial_ended`, read from ``ends``)."""

    def __init__(self, budget: float) -> None:
        self.t0 = time.monotonic()
        self.deadline = self.t0 + budget
        self.ends: dict[str, float] = {}

    def over(self) -> bool:
        return time.monotonic() >= self.deadline

    def stop_trials(self, oracle) -> None:  # noqa: ANN001  (a KerasTuner oracle)
        if self.over():
            oracle.max_trials = len(oracle.trials)

    def trial_ended(self, trial_id: str) -> None:
        self.ends[trial_id] = time.monotonic() - self.t0

    def callback(self):
        import keras

        clock = self

        class Deadline(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):  # noqa: ANN001
                if clock.over():
                    self.model.stop_training = True

        return Deadline()


def top1_accuracy(probs, labels) -> float:
    """Top-1 accuracy of predicted class probabilities, to 4 decimals."""
    import numpy as np

    return round(float(np.mean(np.argmax(probs, axis=1) == np.ravel(labels))), 4)


def run_keras_tuner(data_dir: str, seed: int, budget: float, out: Path) -> dict:
    """KerasTuner RandomSearch as documented, stopped at the budget."""
    import keras
    import keras_tuner as kt

    from hpo32.search.engines.tuner_space import hp_config
    from hpo32.search.models import build_model, compile_model

    spec, splits, test = peer_data(data_dir, seed, PRESET)
    space = spec.build_space()
    x, xv = (a.astype("float32") / 255.0 for a in (splits.x_train, splits.x_val))
    y, yv = (keras.utils.to_categorical(a, 10) for a in (splits.y_train, splits.y_val))
    clock: BudgetClock | None = None  # started just before the search

    class Model(kt.HyperModel):
        def build(self, hp):
            config = hp_config(hp, space)
            net = build_model(config, (32, 32, 3), 10)
            augment = []
            if config["augment_flip"]:
                augment.append(keras.layers.RandomFlip("horizontal"))
            if config["augment_crop"]:
                # hpo32's pad-4-and-crop: shifts of up to 4 pixels, reflected at the edges
                augment.append(keras.layers.RandomTranslation(0.125, 0.125, fill_mode="reflect"))
            if augment:
                net = keras.Sequential([keras.Input((32, 32, 3)), *augment, net])
            compile_model(net, config)
            return net

        def fit(self, hp, model, *args, **kwargs):
            return model.fit(*args, batch_size=hp.get("batch_size"), **kwargs)

    class Tuner(kt.RandomSearch):
        def pre_create_trial(self):
            clock.stop_trials(self.oracle)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            clock.trial_ended(trial.trial_id)

    folder = out / f"kt-seed{seed}"
    tuner = Tuner(
        Model(),
        objective="val_accuracy",
        max_trials=10_000,
        seed=seed,
        directory=str(folder),
        project_name="random",
        overwrite=True,
    )
    keras.utils.set_random_seed(seed)
    clock = BudgetClock(budget)
    tuner.search(
        x, y, epochs=KT_EPOCHS, validation_data=(xv, yv), callbacks=[clock.callback()], verbose=0
    )
    trials = tuner.oracle.trials
    points = sorted(
        (clock.ends[tid], t.score)
        for tid, t in trials.items()
        if t.score is not None and tid in clock.ends
    )
    best = tuner.get_best_models(1)[0]
    probs = best.predict(test.x_test.astype("float32") / 255.0, batch_size=256, verbose=0)
    return {
        "side": "keras-tuner",
        "seed": seed,
        "trials": len(trials),
        "complete": len(points),
        "points": points,
        "test_accuracy": top1_accuracy(probs, test.y_test),
    }


def best_so_far(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out, best = [], float("-inf")
    for t, v in sorted(points):
        if v > best:
            best = v
            out.append((t, v))
    return out


def time_to_reach(points, target: float) -> float | None:
    return next((t for t, v in best_so_far(points) if v >= target - 1e-9), None)


def summarize(runs: list[dict], budget: float) -> None:
    print(f"\n# budget {budget:.0f} s a run; {time.strftime('%Y-%m-%d')}; {os.cpu_count()} cores")
    print("| side | seed | trials (complete) | best val acc | test acc of best | best found at s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in runs:
        trace = best_so_far(r["points"])
        best_t, best_v = trace[-1] if trace else (None, None)
        print(
            f"| {r['side']} | {r['seed']} | {r['trials']} ({r['complete']}) | "
            f"{best_v if best_v is None else f'{best_v:.4f}'} | {r['test_accuracy']} | "
            f"{best_t if best_t is None else f'{best_t:.0f}'} |"
        )
    kt_final = [
        best_so_far(r["points"])[-1][1] for r in runs if r["side"] == "keras-tuner" and r["points"]
    ]
    if not kt_final:
        return
    target = statistics.median(kt_final)
    print(f"\nbaseline: KerasTuner median final best val acc = {target:.4f}")
    print(
        "| side | median best val | median test acc | time to reach baseline, per seed (s) "
        "| median time to reach (s) |"
    )
    print("|---|---:|---:|---|---:|")
    medians = {}
    for side in ("hpo32", "keras-tuner"):
        mine = [r for r in runs if r["side"] == side]
        if not mine:
            continue
        reach = [time_to_reach(r["points"], target) for r in mine]
        shown = ", ".join("never" if t is None else f"{t:.0f}" for t in reach)
        med = statistics.median([budget * 10 if t is None else t for t in reach])
        medians[side] = med
        vals = [best_so_far(r["points"])[-1][1] for r in mine if r["points"]]
        tests = [r["test_accuracy"] for r in mine if r["test_accuracy"] is not None]
        print(
            f"| {side} | {statistics.median(vals):.4f} | "
            f"{statistics.median(tests) if tests else '-'} | {shown} | "
            f"{'never' if med >= budget * 10 else f'{med:.0f}'} |"
        )
    if len(medians) == 2 and medians["keras-tuner"]:
        print(
            f"\nhpo32 / KerasTuner time to reach the baseline: "
            f"{medians['hpo32'] / medians['keras-tuner']:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--budget", type=float, default=600.0, help="seconds a run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="/tmp/hpo32-bench-search")
    parser.add_argument("--side", choices=("hpo32", "keras-tuner"), help=argparse.SUPPRESS)
    parser.add_argument("--summary", action="store_true", help="only summarize kept results")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.side:  # one run, in its own process
        run = (run_hpo32 if args.side == "hpo32" else run_keras_tuner)(
            args.data_dir, args.seeds[0], args.budget, out
        )
        (out / f"{args.side}-seed{args.seeds[0]}.json").write_text(json.dumps(run))
        return
    if not args.summary:
        for i, seed in enumerate(args.seeds):
            sides = ("hpo32", "keras-tuner") if i % 2 == 0 else ("keras-tuner", "hpo32")
            for side in sides:
                print(f"running {side} seed {seed} ...", flush=True)
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--side",
                        side,
                        "--seeds",
                        str(seed),
                        "--budget",
                        str(args.budget),
                        "--data-dir",
                        args.data_dir,
                        "--out",
                        str(out),
                    ],
                    check=True,
                )
    runs = [json.loads(p.read_text()) for p in sorted(out.glob("*-seed*.json"))]
    runs = [r for r in runs if r["seed"] in args.seeds]
    summarize(runs, args.budget)


if __name__ == "__main__":
    main()
