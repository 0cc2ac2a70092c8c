"""Which config should a CIFAR-10 search try first? Candidate first configs at full fidelity.

Trains each candidate as the ``cifar10-cpu`` preset trains a trial that is never pruned
(its epochs of ``epoch_images`` images, its validation split, ``precision="auto"``) on real
CIFAR-10, one split seed after another, and prints the validation accuracy after every epoch
and the wall time. Each candidate is a partial config: the rest comes from the preset's space
(``SearchSpace.complete``: the midpoints), as ``warm_start`` fills it in.

Split seeds 3 and up by default: ``bench_search.py`` runs seeds 0-2, and a first config
chosen on their validation images would be fitted to the benchmark.

    .venv/bin/python tests/benchmarks/bench_first_config.py --data-dir /tmp/hpo32-data \\
        [--seeds 3 4] [--only midpoint conventional]
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
PRESET = "cifar10-cpu"

CANDIDATES: dict[str, dict] = {
    # the space's midpoints: Adamax at 0.0032, 32 and 39 filters
    "midpoint": {},
    # the midpoints with Keras's default optimizer
    "midpoint-adam": {"optimizer": "adam", "learning_rate": 0.001},
    # a conventional small CNN: 32 then 64 filters, Adam at 1e-3 (the preset's warm start)
    "conventional": {"filters_1": 32, "filters_2": 64, "optimizer": "adam", "learning_rate": 0.001},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4])
    parser.add_argument("--only", nargs="+", choices=sorted(CANDIDATES))
    args = parser.parse_args()

    from hpo32.search.training import train_config
    from hpo32.studies.launch import _load_splits
    from hpo32.studies.spec import load_preset

    names = args.only or list(CANDIDATES)
    print("| candidate | split seed | val acc per epoch | final val acc | wall s |")
    print("|---|---:|---|---:|---:|")
    for seed in args.seeds:
        spec = load_preset(PRESET).with_overrides(data_dir=args.data_dir, seed=seed)
        space = spec.build_space()
        splits = _load_splits(spec)
        for name in names:
            config = space.complete(CANDIDATES[name])
            start = time.monotonic()
            result = train_config(
                config, splits, epochs=spec.epochs, epoch_images=spec.epoch_images, seed=seed
            )
            wall = time.monotonic() - start
            vals = result.history["val_accuracy"]
            print(
                f"| {name} | {seed} | {', '.join(f'{v:.3f}' for v in vals)} | "
                f"{vals[-1]:.4f} | {wall:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
