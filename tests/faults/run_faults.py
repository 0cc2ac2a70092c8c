"""N runs of every kill point and of each stop signal, with the figures docs/RELIABILITY.md
records (the CI tests, ``tests/studies/test_faults.py``, run each kill point once and five
seeds of each signal; this runs the same cases, ``tests/faults/checks.py``, N times each).

    nice -n 10 .venv/bin/python tests/faults/run_faults.py [--runs 20] [--kill-runs 5]
        [--only mid_epoch,SIGTERM] [--out faults.md]

A kill-point run uses ``HPO32_FAULT=POINT@K`` (``checks.KILL_AT``; a repeated run of one point
kills at the same place, its trials' params differ by run); a signal run's moment comes from
``random.Random(seed)`` with seeds ``0..N-1`` (``checks.signal_plan``). It prints one line per
run and then the table, and writes the table as markdown to ``--out`` (default standard
output only). Nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hpo32.search import faults  # noqa: E402
from tests.faults import checks  # noqa: E402
from tests.fixtures import write_cifar10  # noqa: E402

HEADER = (
    "| point / signal | runs | stopped as expected | integrity ok | exactly n_trials "
    "| median stop latency | median run |"
)


def _row(kind: str, cases: list[checks.Case]) -> str:
    latencies = [c.latency for c in cases if c.stopped and c.latency is not None]
    latency = f"{statistics.median(latencies):.1f} s" if latencies else "-"
    runs = len(cases)
    return (
        f"| {kind} | {runs} | {sum(c.stopped for c in cases)}/{runs} "
        f"| {sum(c.resumed and c.integrity_ok for c in cases)}/{runs} "
        f"| {sum(c.resumed for c in cases)}/{runs} | {latency} "
        f"| {statistics.median(c.seconds for c in cases):.0f} s |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each signal (seeds)")
    parser.add_argument(
        "--kill-runs", type=int, default=None, help="runs of each kill point (default --runs)"
    )
    parser.add_argument("--only", default="", help="comma-separated kill points / signals")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    args = parser.parse_args(argv)
    kill_runs = args.runs if args.kill_runs is None else args.kill_runs
    kinds = [*faults.POINTS, *sorted(checks.SIGNALS)]
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - set(kinds)
        if unknown:
            parser.error(f"unknown kinds {sorted(unknown)}; use {', '.join(kinds)}")
        kinds = [k for k in kinds if k in wanted]

    results: dict[str, list[checks.Case]] = {}
    failures: list[checks.Case] = []
    t0 = time.monotonic()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()

    def table() -> str:
        done = sum(len(cases) for cases in results.values())
        lines = [
            f"Measured {time.strftime('%Y-%m-%d')} on {platform.node()} ({os.cpu_count()} "
            f"CPUs), commit {commit or '?'}, {done} runs in "
            f"{(time.monotonic() - t0) / 60:.0f} min; kill runs {kill_runs} per point, signal "
            f"runs {args.runs} per signal (seeds 0-{args.runs - 1}).",
            "",
            HEADER,
            "|" + "---|" * 7,
            *(_row(kind, cases) for kind, cases in results.items()),
        ]
        return "\n".join(lines)

    with tempfile.TemporaryDirectory(prefix="hpo32-faults-") as tmp:
        cifar = Path(tmp) / "cifar"
        write_cifar10(cifar, n_per_batch=40, n_test=40)  # as tests/studies/conftest.py
        counts = {kind: kill_runs if kind in faults.POINTS else args.runs for kind in kinds}
        # run by run across the kinds, so a run cut short has met every kind
        for run, kind in [(r, k) for r in range(max(counts.values())) for k in kinds]:
            if run < counts[kind]:
                wd = checks.make_workdir(Path(tmp) / f"{kind}-{run}", cifar)
                started = time.monotonic()
                try:
                    if kind in faults.POINTS:
                        case = checks.kill_point_case(kind, wd)
                    else:
                        case = checks.signal_case(kind, run, wd)
                except subprocess.TimeoutExpired as exc:  # a command that hung: a failed run
                    case = checks.Case(kind, seed=run, stop_detail="a command hung")
                    case.problems.append(f"{exc.cmd[3:5]} ran past {exc.timeout:.0f} s")
                    case.seconds = time.monotonic() - started
                results.setdefault(kind, []).append(case)
                if not case.ok:
                    failures.append(case)
                print(
                    f"{kind:>18} run {run:>2}: {'ok' if case.ok else 'FAILED'} "
                    f"{case.phase or ''} {case.stop_detail}; {case.seconds:.0f} s"
                    + ("" if case.ok else f"; problems {case.problems}"),
                    flush=True,
                )
                if args.out is not None:  # kept current, so a run cut short has its table
                    args.out.write_text(table() + "\n")
    print()
    print(table())
    for case in failures:
        print("\n" + case.report(), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
