"""Several ``hpo32 worker`` processes on this host for one study (``--workers``, ``--gpus``)."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING

from hpo32.search import signals
from hpo32.search.engines.base import TooManyFailures
from hpo32.storage import Records
from hpo32.studies.cli.common import EXIT_FAILURES
from hpo32.studies.session import Outcome

if TYPE_CHECKING:
    import optuna

__all__ = ["WORKER_BOOT", "WorkersFailed", "run_workers"]


class WorkersFailed(RuntimeError):
    """Worker processes of a study ended in errors (what they recorded is kept)."""


# ``python -c`` puts the current folder first on sys.path, where a user's own ``hpo32.py`` or
# ``search.py`` would shadow the package: drop it before anything of hpo32 is imported
# (``-P`` would do the same, but only from Python 3.11 on).
WORKER_BOOT = (
    "import sys; sys.path[:] = [p for p in sys.path if p]; "
    "from hpo32.studies.cli import main; sys.exit(main())"
)


def run_workers(
    records: Records, study: optuna.Study, url: str, workers: int, gpus: list[str] | None
) -> Outcome:
    """Runs ``hpo32 worker`` processes on this host until they all stop.

    Ctrl-C or SIGTERM reaches every worker, each of which records its running trial.
    """
    import subprocess
    import sys

    name = study.study_name
    slots = [{"CUDA_VISIBLE_DEVICES": g} for g in gpus] if gpus else [{}] * workers
    before = len(records.sessions(name))
    procs = []
    for k, extra in enumerate(slots, start=1):
        env = dict(os.environ, HPO32_WORKER_LABEL=f"w{k}", **extra)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER_BOOT, "worker", name, "--storage", url], env=env
            )
        )
    interrupted = False
    while any(proc.poll() is None for proc in procs):
        if signals.requested() is not None and not interrupted:
            interrupted = True  # each worker records its running trial and ends
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    sessions = records.sessions(name)[before:]
    if interrupted:
        raise KeyboardInterrupt
    for k, proc in enumerate(procs, start=1):
        if proc.returncode < 0:  # killed by a signal: its trial is retried by the others
            print(
                f"hpo32: worker w{k} was killed by signal {-proc.returncode}; its running "
                "trial becomes FAIL after the heartbeat grace period and runs again.",
                file=sys.stderr,
            )
    codes = [p.returncode for p in procs if p.returncode > 0]
    if codes and all(c == EXIT_FAILURES for c in codes):
        raise TooManyFailures(
            f"{len(codes)} of {len(procs)} workers stopped after too many failed trials in a "
            f"row; see their messages above, or hpo32 show {name}."
        )
    if codes:
        raise WorkersFailed(
            f"{len(codes)} of {len(procs)} workers failed (exit {codes[0]}); their messages "
            f"are above; what they recorded is kept: continue with hpo32 resume {name}."
        )
    result = records.result(name) or {}
    from hpo32.search.engines.base import best_value

    best = best_value(study)
    reasons = sorted({s.exit_reason or "?" for s in sessions})
    return Outcome(
        name,
        "/".join(reasons),
        sum(s.trials_run for s in sessions),
        best,
        result.get("test_accuracy"),
    )
