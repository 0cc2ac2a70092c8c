"""Soak: W worker processes run one study of N short trials on PostgreSQL while workers are
SIGKILLed at random moments and restarted; the study must end with exactly N complete trials,
no two with the same params, nothing left RUNNING, and the other checks of
``tests/faults/checks.py::integrity``. Run by hand; its figures go in docs/RELIABILITY.md.

    nice -n 10 .venv/bin/python tests/faults/soak.py [--workers 8] [--trials 100]
        [--kill-every 20] [--seed 0] [--timeout 1800] [--url postgresql+psycopg://...]

The first process is ``hpo32 search --study soak --n-trials N`` (it makes the study and runs
trials like the others); the rest, and every restart, are ``hpo32 worker soak``. A kill comes
every ``--kill-every`` seconds on average (exponential gaps from ``random.Random(seed)``), to a
random live process, which is restarted 0-3 s later while trials are still owed. Without
``--url`` it makes a fresh database on the PostgreSQL server of ``tests/databases.py``
(127.0.0.1:5432) and drops it at the end. Heartbeats are 5 s (grace 20 s): on a small machine
eight TensorFlow processes can starve a 1 s heartbeat thread past its grace period.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.faults import checks  # noqa: E402
from tests.fixtures import write_cifar10  # noqa: E402
from tests.studies.conftest import TINY_SPEC, hpo32_env  # noqa: E402

NAME = "soak"
HEARTBEAT = 5


def _database(url: str | None, tmp: Path):
    if url:
        return contextlib.nullcontext(url)
    import pytest

    from tests.databases import fresh_database

    @contextlib.contextmanager
    def fresh():
        try:
            with fresh_database("postgresql", tmp) as made:
                yield made.replace("postgresql://", "postgresql+psycopg://", 1)
        except pytest.skip.Exception as exc:  # no server: say so
            raise SystemExit(f"soak: {exc}") from None

    return fresh()


def _counts(engine) -> Counter:
    import sqlalchemy as sa

    with engine.connect() as con:
        rows = con.execute(
            sa.text(
                "SELECT t.state, count(*) FROM trials t JOIN studies s "
                "ON s.study_id = t.study_id WHERE s.study_name = :n GROUP BY t.state"
            ),
            {"n": NAME},
        ).all()
    return Counter({str(state).split(".")[-1]: n for state, n in rows})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--kill-every", type=float, default=20.0, help="mean seconds")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--url", default=None, help="an empty PostgreSQL database")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="hpo32-soak-") as tmp_name:
        tmp = Path(tmp_name)
        cifar = tmp / "cifar"
        write_cifar10(cifar, n_per_batch=40, n_test=40)
        spec = tmp / "tiny.yaml"
        spec.write_text(TINY_SPEC.replace("epochs: 2", f"epochs: {args.epochs}"))
        with _database(args.url, tmp) as url:
            return _soak(args, rng, tmp, cifar, spec, url)


def _soak(args, rng: random.Random, tmp: Path, cifar: Path, spec: Path, url: str) -> int:
    from hpo32.storage import make_engine

    env = hpo32_env(HPO32_HEARTBEAT=str(HEARTBEAT))
    logs = tmp / "logs"
    logs.mkdir()
    procs: dict[int, subprocess.Popen] = {}  # slot -> process
    started: list[tuple[int, subprocess.Popen, Path]] = []
    kills = restarts = 0

    def start(slot: int, first: bool = False) -> None:
        log = logs / f"w{slot}-{len(started)}.log"
        cmd = (
            ["search", "--study", NAME, "--spec", str(spec), "--n-trials", str(args.trials)]
            if first
            else ["worker", NAME]
        )
        cmd += ["--data-dir", str(cifar), "--storage", url]
        proc = subprocess.Popen(
            [sys.executable, "-m", "hpo32.studies.cli", *cmd],
            cwd=tmp,
            env=dict(env, HPO32_WORKER_LABEL=f"w{slot}"),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        procs[slot] = proc
        started.append((slot, proc, log))

    t0 = time.monotonic()
    start(0, first=True)
    while not checks.has_hpo32_row(url, NAME):  # the study exists: the workers may join
        if procs[0].poll() is not None:
            print(f"soak: the search exited {procs[0].returncode} before making the study")
            print((logs / "w0-0.log").read_text()[-3000:])
            return 1
        time.sleep(0.5)
    for slot in range(1, args.workers):
        start(slot)
    engine = make_engine(url)
    pending: dict[int, float] = {}  # slot -> when to restart it
    next_kill = time.monotonic() + rng.expovariate(1.0 / args.kill_every)
    timed_out = False
    counts: Counter = Counter()
    while True:
        now = time.monotonic()
        counts = _counts(engine)
        owed = counts["COMPLETE"] + counts["PRUNED"] < args.trials
        if now - t0 > args.timeout:
            timed_out = True
            break
        if owed and now >= next_kill:
            live = [s for s, p in procs.items() if p.poll() is None]
            if live:
                slot = rng.choice(live)
                procs[slot].send_signal(signal.SIGKILL)
                procs[slot].wait()
                kills += 1
                pending[slot] = now + rng.uniform(0.0, 3.0)
                print(f"soak: {now - t0:6.0f}s killed w{slot}; trials {dict(counts)}", flush=True)
            next_kill = now + rng.expovariate(1.0 / args.kill_every)
        for slot, when in list(pending.items()):
            if now >= when:
                del pending[slot]
                if owed:
                    start(slot)
                    restarts += 1
        for slot, proc in list(procs.items()):  # a worker that failed is restarted too
            if proc.poll() not in (None, 0, -signal.SIGKILL) and slot not in pending and owed:
                print(f"soak: w{slot} exited {proc.returncode}; restarting it", flush=True)
                pending[slot] = now + 1.0
        if not pending and all(p.poll() is not None for p in procs.values()):
            break
        time.sleep(1.0)
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - t0
    counts = _counts(engine)

    exits = Counter(proc.returncode for _, proc, _ in started)
    tracebacks = [
        log.name for _, proc, log in started if "Traceback" in log.read_text(errors="replace")
    ]
    problems = checks.integrity(url, NAME, args.trials, tmp / "hpo32-artifacts", False)
    records = checks._records(url)
    sessions = records.sessions(NAME)
    trials = checks._trials(url, NAME)
    retries = sum(
        1
        for t in trials
        if t.system_attrs.get("failed_trial") is not None or "retry_of" in t.user_attrs
    )
    complete = counts["COMPLETE"]
    print()
    print(
        f"soak: {args.workers} workers x {args.trials} trials ({args.epochs} epoch each) on "
        f"PostgreSQL, kills every {args.kill_every:.0f} s on average, seed {args.seed}"
    )
    print(f"  wall time            {elapsed / 60:.1f} min{' (TIMED OUT)' if timed_out else ''}")
    print(f"  trials by state      {dict(counts)}")
    print(f"  complete             {complete} (wanted {args.trials})")
    print(f"  workers SIGKILLed    {kills}; restarted {restarts}")
    print(f"  processes started    {len(started)}; exits {dict(exits)}")
    print(f"  retried trials       {retries}")
    unended = sum(s.ended_at is None for s in sessions)
    print(f"  sessions             {len(sessions)} ({unended} killed, never ended)")
    print(f"  budget used          {records.used_seconds(NAME):.0f} s (union of sessions)")
    print(f"  outputs with a Traceback: {tracebacks or 'none'}")
    print(f"  integrity problems   {problems or 'none'}")
    for name in tracebacks[:3]:
        print(f"\n--- {name} ---\n" + (tmp / "logs" / name).read_text()[-3000:])
    engine.dispose()
    ok = not timed_out and complete == args.trials and not problems and not tracebacks
    print(f"soak: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
