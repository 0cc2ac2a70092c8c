"""Anytime performance on real data: the best validation accuracy so far against wall-clock,
and the test accuracy of the final best, for hpo32's ``*-fast`` presets and its peers.

Each run is its own process, timed from the command's start to its return (the budget
includes loading, every trial and the final test evaluation). Sides:

* ``hpo32``: ``hpo32 search --preset cifar10-fast --budget B --seed S`` (or
  ``imagenet32-fast`` with ``--dataset imagenet32``), as a user runs it;
* ``keras-tuner``: KerasTuner ``RandomSearch`` over the same space, as documented (see
  ``bench_search.py``: its HyperModel, float32 arrays, Keras preprocessing layers, 2 epochs
  a trial, stopped at the budget);
* ``autokeras``: AutoKeras ``ImageClassifier`` with its default (task-specific) search on
  uint8 arrays, 2 epochs a trial as the KerasTuner side, stopped at the budget. Pretrained
  blocks are off: ``ResNetBlock`` and ``EfficientNetBlock`` are built with
  ``pretrained=False``, so no weights are downloaded and the ``pretrained`` choice (and its
  initial config's ``True``) is not in the space. An ``EarlyStopping`` of patience 2 is
  passed so that AutoKeras keeps its best trial's model instead of training it again after
  the budget (its refit happens only when it inserted the early stop itself).

The first trial's result is printed beside the search's best, so the search's own gain
shows. Writes ``anytime-<dataset>-<budget>.png`` (best so far against minutes, one line per
run) into ``--plots`` and the runs as JSON into ``--out``.

    .venv/bin/python tests/benchmarks/bench_anytime.py --data-dir /tmp/hpo32-data \\
        --budget 900 --seeds 0 1 --sides hpo32 keras-tuner autokeras
    .venv/bin/python tests/benchmarks/bench_anytime.py --data-dir /tmp/hpo32-data \\
        --dataset imagenet32 --budget 3600 --seeds 0 --sides hpo32
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_search  # noqa: E402  (this folder's sibling script)

ROOT = bench_search.ROOT
KT_EPOCHS = bench_search.KT_EPOCHS


def run_hpo32(dataset: str, data_dir: str, seed: int, budget: float, out: Path) -> dict:
    """Runs the CLI as a user would and reads its trials back from the database."""
    db = out / f"hpo32-{dataset}-seed{seed}.db"
    db.unlink(missing_ok=True)
    extra = ["--dataset", "imagenet32", "--classes", "200"] if dataset == "imagenet32" else []
    data = data_dir if dataset == "cifar10" else str(Path(data_dir) / "imagenet32-tiny200")
    preset = "cifar10-fast" if dataset == "cifar10" else "imagenet32-fast"
    t0 = time.monotonic()
    bench_search.hpo32_cli(
        "search", "--study", f"s{seed}", "--preset", preset, "--budget", f"{budget}s",
        "--seed", str(seed), "--data-dir", data, "--storage", f"sqlite:///{db}", *extra,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wall = time.monotonic() - t0
    run = bench_search.read_hpo32(db, seed)
    run["epochs"] = epoch_points(db)
    run.update(wall_seconds=round(wall, 1), dataset=dataset)
    return run


def epoch_points(db: Path) -> list[tuple[float, float]]:
    """(seconds from the first trial's start, validation accuracy) after each epoch of every
    trial: each trial's start plus its recorded epoch times (validation shared evenly)."""
    import sqlite3
    from datetime import datetime

    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT t.trial_id, t.datetime_start, a.value_json FROM trials t JOIN "
            "trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'epoch_seconds' "
            "WHERE t.datetime_start IS NOT NULL"
        ).fetchall()
        evals = dict(con.execute(
            "SELECT trial_id, value_json FROM trial_user_attributes WHERE key = 'eval_seconds'"
        ).fetchall())  # fmt: skip
        values = con.execute(
            "SELECT trial_id, step, intermediate_value FROM trial_intermediate_values"
        ).fetchall()
    if not rows:
        return []
    t0 = min(datetime.fromisoformat(r[1]) for r in rows)
    by_trial: dict[int, dict[int, float]] = {}
    for tid, step, value in values:
        by_trial.setdefault(tid, {})[step] = value
    points = []
    for tid, start, epochs_json in rows:
        epochs = json.loads(epochs_json)
        per_eval = float(json.loads(evals.get(tid, "0"))) / max(1, len(epochs))
        t = (datetime.fromisoformat(start) - t0).total_seconds()
        for step, seconds in enumerate(epochs, start=1):
            t += seconds + per_eval
            if step in by_trial.get(tid, {}):
                points.append((t, by_trial[tid][step]))
    return sorted(points)


def run_keras_tuner(data_dir: str, seed: int, budget: float, out: Path) -> dict:
    bench_search.PRESET = "cifar10-fast"  # the same space as hpo32's side
    t0 = time.monotonic()
    run = bench_search.run_keras_tuner(data_dir, seed, budget, out)
    run.update(wall_seconds=round(time.monotonic() - t0, 1), dataset="cifar10")
    return run


def run_autokeras(data_dir: str, seed: int, budget: float, out: Path) -> dict:
    """AutoKeras's ImageClassifier, default search without pretrained weights, stopped at the
    budget (no trial started after it, the running fit stopped between batches)."""
    import functools

    import autokeras as ak
    import keras
    from autokeras.blocks import basic

    for name in ("ResNetBlock", "EfficientNetBlock"):  # no downloaded weights
        setattr(basic, name, functools.partial(getattr(basic, name), pretrained=False))
    _, splits, test = bench_search.peer_data(data_dir, seed, "cifar10-fast")
    keras.utils.set_random_seed(seed)
    clf = ak.ImageClassifier(
        max_trials=10_000, seed=seed, directory=str(out / f"ak-seed{seed}"), overwrite=True
    )
    tuner = clf.tuner
    clock = bench_search.BudgetClock(budget)

    def on_trial_end(trial, _end=tuner.on_trial_end) -> None:  # noqa: ANN001
        _end(trial)
        clock.trial_ended(trial.trial_id)

    tuner.pre_create_trial = lambda: clock.stop_trials(tuner.oracle)
    tuner.on_trial_end = on_trial_end
    clf.fit(
        splits.x_train, splits.y_train, epochs=KT_EPOCHS, verbose=0,
        validation_data=(splits.x_val, splits.y_val),
        callbacks=[clock.callback(), keras.callbacks.EarlyStopping(patience=KT_EPOCHS)],
    )  # fmt: skip
    trials = tuner.oracle.trials
    points = sorted(
        (clock.ends[tid], t.metrics.get_best_value("val_accuracy"))
        for tid, t in trials.items()
        if tid in clock.ends and t.metrics.exists("val_accuracy")
    )
    probs = clf.export_model().predict(test.x_test, batch_size=256, verbose=0)
    return {
        "side": "autokeras", "seed": seed, "dataset": "cifar10", "trials": len(trials),
        "complete": len(points), "points": points,
        "test_accuracy": bench_search.top1_accuracy(probs, test.y_test),
        "wall_seconds": round(time.monotonic() - clock.t0, 1),
    }  # fmt: skip


def area(points: list[tuple[float, float]], budget: float) -> float:
    """Area under the best-so-far curve over the budget, divided by the budget (0 until the
    first result): one number for how early a side is good."""
    trace = bench_search.best_so_far(points)
    total = 0.0
    for (t, v), nxt in zip(trace, [*trace[1:], (budget, None)], strict=True):
        total += max(0.0, min(nxt[0], budget) - t) * v
    return total / budget


def report(runs: list[dict], budget: float, plots: Path) -> None:
    print(f"\n# budget {budget:.0f} s a run; {time.strftime('%Y-%m-%d')}; {os.cpu_count()} cores")
    print(
        "| side | dataset | seed | wall s | trials | first trial val | best val | best at s "
        "| test of best | area |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        trace = bench_search.best_so_far(r["points"])
        first = min(r["points"])[1] if r["points"] else None
        best_t, best_v = trace[-1] if trace else (None, None)
        fmt = lambda v, f=".4f": "-" if v is None else format(v, f)  # noqa: E731
        print(
            f"| {r['side']} | {r['dataset']} | {r['seed']} | {r['wall_seconds']:.0f} | "
            f"{r['trials']} | {fmt(first)} | {fmt(best_v)} | {fmt(best_t, '.0f')} | "
            f"{fmt(r['test_accuracy'])} | {area(r['points'], budget):.4f} |"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in runs:
        trace = bench_search.best_so_far(r["points"])
        label = f"{r['side']} seed {r['seed']}"
        if trace:
            xs = [t / 60 for t, _ in trace] + [budget / 60]
            ys = [v for _, v in trace] + [trace[-1][1]]
            (line,) = ax.step(xs, ys, where="post", label=f"{label}: best finished trial")
            color = line.get_color()
        else:
            color = None
        if r.get("epochs"):
            ax.plot([t / 60 for t, _ in r["epochs"]], [v for _, v in r["epochs"]], ".",
                    color=color, alpha=0.6, label=f"{label}: after each epoch")  # fmt: skip
    ax.set_xlim(0, budget / 60)
    ax.set_xlabel("minutes")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(f"{runs[0]['dataset']}, {budget / 60:.0f}-minute budget")
    ax.legend()
    plots.mkdir(parents=True, exist_ok=True)
    path = plots / f"anytime-{runs[0]['dataset']}-{budget:.0f}.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"\nplot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", choices=("cifar10", "imagenet32"), default="cifar10")
    parser.add_argument("--budget", type=float, default=900)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--sides", nargs="+", choices=("hpo32", "keras-tuner", "autokeras"),
        default=["hpo32", "keras-tuner", "autokeras"],
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("/tmp/hpo32-bench-anytime"))
    parser.add_argument("--plots", type=Path, default=ROOT / "docs")
    parser.add_argument("--replot", action="store_true", help="report the runs kept in --out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        runs = [
            json.loads((args.out / f"{side}-{args.dataset}-seed{seed}.json").read_text())
            for seed in args.seeds
            for side in args.sides
        ]
        for r in runs:
            db = args.out / f"hpo32-{r['dataset']}-seed{r['seed']}.db"
            if r["side"] == "hpo32" and db.exists():
                r["epochs"] = epoch_points(db)
        report(runs, args.budget, args.plots)
        return
    runs = []
    for seed in args.seeds:
        sides = args.sides if seed % 2 == 0 else list(reversed(args.sides))  # alternate
        for side in sides:
            if side == "hpo32":
                run = run_hpo32(args.dataset, args.data_dir, seed, args.budget, args.out)
            elif side == "autokeras":
                run = run_autokeras(args.data_dir, seed, args.budget, args.out)
            else:
                run = run_keras_tuner(args.data_dir, seed, args.budget, args.out)
            (args.out / f"{side}-{args.dataset}-seed{seed}.json").write_text(json.dumps(run))
            runs.append(run)
            print(json.dumps({k: v for k, v in run.items() if k not in ("points", "best")}))
    report(runs, args.budget, args.plots)


if __name__ == "__main__":
    main()
