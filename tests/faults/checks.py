"""The runs and checks of the fault-injection suite, shared by ``tests/studies/test_faults.py``
(CI: each kill point once, five seeded signals of each kind) and ``run_faults.py`` (N of each).

A case runs the real ``hpo32`` command line in fresh processes on a tiny study, stops it the
way the case says (a SIGKILL at one of :data:`hpo32.search.faults.POINTS`, or SIGTERM/SIGINT
at a seeded moment), then resumes it to the end and checks the database: :func:`integrity`.
Every case returns a :class:`Case` whose fields are what the tests assert and the script
counts; nothing here asserts.
"""

from __future__ import annotations

import json
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.studies import conftest
from tests.studies.conftest import TINY_SPEC, popen_hpo32, run_hpo32

#: Seconds between heartbeats in every run here (a killed trial is stale after 4 of them).
HEARTBEAT = 1
#: Missed heartbeats after which Optuna fails a running trial and hpo32 stops billing a
#: session (``storage.records.STALE_AFTER_BEATS``, Optuna's grace period in ``db.py``).
STALE_BEATS = 4
#: Trials a kill-point study and a signal study run.
KILL_TRIALS = 3
SIGNAL_TRIALS = 2
#: The most seconds from a stop signal to the process's exit that counts as stopped.
STOP_WITHIN_S = 30.0
#: Where each point kills (``HPO32_FAULT=NAME@K``): mid-study where the point repeats.
#: ``resume`` kills a resume of a study whose search was killed mid-epoch.
KILL_AT = {
    "after_create_study": 1,  # before hpo32's row: the name must be free again
    "mid_epoch": 7,  # a few batches into the study (trial 0's second epoch or trial 1)
    "validation": 3,  # trial 1's first validation
    "model_save": 1,  # trial 0's model written, its path not recorded
    "before_tell": 2,  # trial 1 trained, its outcome not recorded
    "test_evaluation": 1,  # every trial done, the test result not recorded
    "resume": 1,
}
#: Where a signal lands, by seed (``seed % 4``): a delay after the first recorded epoch, right
#: after a trial ended (between trials), right after the last trial ended (the test
#: evaluation), or just after the command started (data loading and the study's creation).
PHASES = ("epoch", "between", "test", "loading")
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}

# the display's plain line for a finished trial ("trial   0 val_acc 0.1000 in 8s | ..." or
# "trial   2 pruned ..." / "failed"), and the older "trial 0 | ... | done ..." form
_TRIAL_END = re.compile(r"^(?:\S+ )?trial\s+\d+ (?:\|.*\| done |(?!\|)\S)")
_EPOCH = re.compile(r"^(?:\S+ )?trial\s+\d+ \|(?:.*\|)? epoch \d+/")


@dataclass
class Workdir:
    """One case's folder: its SQLite database and the models beside it."""

    path: Path
    cifar_dir: Path
    spec: Path
    name: str = "f"

    @property
    def db(self) -> Path:
        return self.path / "hpo32.db"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    @property
    def artifacts(self) -> Path:  # beside the database (HPO32_ARTIFACTS is empty in runs)
        return self.path / "hpo32-artifacts"


def make_workdir(path: Path, cifar_dir: Path, name: str = "f") -> Workdir:
    path.mkdir(parents=True, exist_ok=True)
    spec = path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    return Workdir(path, Path(cifar_dir), spec, name)


@dataclass
class Case:
    """What one case saw: how the process stopped, and the study after resuming it."""

    kind: str  # a kill point, or SIGTERM / SIGINT
    seed: int | None = None
    phase: str | None = None
    stopped: bool = False  # stopped the way the case expects
    stop_detail: str = ""
    latency: float | None = None  # signal to exit, seconds
    clean_output: bool = True  # no Traceback, no "Exception ignored"
    resumed: bool = False  # the resumes ended with exactly n_trials finished
    resumes: int = 0
    problems: list[str] = field(default_factory=list)  # integrity findings
    seconds: float = 0.0
    output: str = ""  # the stopped process's output, for a failure's message

    @property
    def integrity_ok(self) -> bool:
        return not self.problems

    @property
    def ok(self) -> bool:
        return self.stopped and self.clean_output and self.resumed and self.integrity_ok

    def report(self) -> str:
        """Everything a failed test should say."""
        return (
            f"{self.kind} seed={self.seed} phase={self.phase}: stopped={self.stopped} "
            f"({self.stop_detail}) latency={self.latency} clean={self.clean_output} "
            f"resumed={self.resumed} after {self.resumes} resume(s); problems={self.problems}"
            f"\n--- output of the stopped process ---\n{self.output[-4000:]}"
        )


# -- processes ---------------------------------------------------------------------------------
class Watched:
    """A running ``hpo32`` process whose merged output is read line by line as it comes."""

    def __init__(self, *args: object, cwd: Path, **env: str) -> None:
        env = {"HPO32_HEARTBEAT": str(HEARTBEAT), "PYTHONUNBUFFERED": "1", **env}
        self.proc = popen_hpo32(*map(str, args), cwd=cwd, **env)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_for(self, pattern: re.Pattern[str], count: int = 1, timeout: float = 180) -> bool:
        """Waits until ``count`` output lines match ``pattern``; False at the output's end
        (the process ended first) or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(1 for line in self.lines if pattern.search(line)) < count:
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def finish(self, timeout: float = 300) -> int:
        """Waits for the exit (killing the process past ``timeout``); the exit status."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=10)
        return self.proc.returncode

    @property
    def output(self) -> str:
        with self._cond:
            return "".join(self.lines)


def search_args(wd: Workdir, n_trials: int) -> tuple[object, ...]:
    return conftest.search_args(wd.name, wd.spec, wd.cifar_dir, wd.url, n_trials=n_trials)


def run_cli(wd: Workdir, *args: object, timeout: float = 300, **env: str):
    """One ``hpo32`` command to its end (heartbeat as in every run here)."""
    return run_hpo32(*args, cwd=wd.path, timeout=timeout, HPO32_HEARTBEAT=str(HEARTBEAT), **env)


def clean(text: str) -> bool:
    return "Traceback" not in text and "Exception ignored" not in text


# -- reading the study -------------------------------------------------------------------------
def _records(url: str):
    from hpo32.storage import Records, make_engine

    return Records(make_engine(url), create=False)


def _trials(url: str, name: str):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def finished_count(url: str, name: str) -> int:
    return sum(t.state.name in ("COMPLETE", "PRUNED") for t in _trials(url, name))


def has_hpo32_row(url: str, name: str) -> bool:
    """Whether hpo32's row of study ``name`` exists (False without a database or tables)."""
    import sqlalchemy as sa

    from hpo32.storage import schema

    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        return False
    records = _records(url)
    if not sa.inspect(records.engine).has_table(schema.hpo32_studies.name):
        return False
    return records.study(name) is not None


def integrity(
    url: str, name: str, n_trials: int, artifacts: Path, every_fail_retried: bool = True
) -> list[str]:
    """What is wrong with a study that was stopped, resumed and ran to its end (empty: all
    holds):

    * SQLite's ``PRAGMA integrity_check`` is ``ok``;
    * exactly ``n_trials`` finished (COMPLETE + PRUNED) trials, none RUNNING or WAITING;
    * no two COMPLETE trials with the same params (a retry runs the params of a FAIL trial,
      named by ``system_attrs['failed_trial']`` or user attr ``retry_of``), every retry has
      its origin's params, and (``every_fail_retried``) every FAIL trial was retried (a
      stale trial is retried once: a soak whose retry is killed again passes False);
    * no session still alive; the budget used (``Records.used_seconds``) is the union of the
      sessions' stretches, an unfinished (killed) one ending at its last heartbeat, and the
      last session that ended ended by its trial count;
    * the test result names a best COMPLETE trial, with that trial's ``model_path``, whose
      model file exists under ``artifacts``.
    """
    from hpo32.storage.records import consumed_seconds

    problems: list[str] = []
    if url.startswith("sqlite:///"):
        con = sqlite3.connect(url[len("sqlite:///") :])
        try:
            check = [row[0] for row in con.execute("PRAGMA integrity_check")]
        finally:
            con.close()
        if check != ["ok"]:
            problems.append(f"integrity_check: {check[:3]}")
    trials = _trials(url, name)
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    finished = states.get("COMPLETE", 0) + states.get("PRUNED", 0)
    if finished != n_trials:
        problems.append(f"{finished} finished trials, not {n_trials} ({states})")
    for state in ("RUNNING", "WAITING"):
        if states.get(state):
            problems.append(f"{states[state]} trial(s) left {state} ({states})")

    by_number = {t.number: t for t in trials}
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    seen: dict[str, int] = {}
    for t in complete:
        key = json.dumps(t.params, sort_keys=True)
        if key in seen:
            problems.append(f"trials {seen[key]} and {t.number} both completed the same params")
        seen.setdefault(key, t.number)
    retried: set[int] = set()
    for t in trials:
        origin = t.system_attrs.get("failed_trial", t.user_attrs.get("retry_of"))
        if origin is None:
            continue
        retried.add(origin)
        first = by_number.get(origin)
        if first is None or first.state.name != "FAIL":
            problems.append(f"trial {t.number} retries trial {origin}, which is not FAIL")
        elif t.state.name != "WAITING" and t.params != first.params:
            problems.append(f"trial {t.number} retries trial {origin} with other params")
    for t in trials if every_fail_retried else ():
        if t.state.name == "FAIL" and t.number not in retried:
            problems.append(f"FAIL trial {t.number} was not retried ({t.user_attrs})")

    records = _records(url)
    sessions = records.sessions(name)
    now = time.time()
    for s in sessions:
        if s.ended_at is None and s.alive(now):
            problems.append(f"session {s.id} (pid {s.pid}) is still counted alive")
    stretches = [
        (s.started_at, s.ended_at if s.ended_at is not None else s.last_seen) for s in sessions
    ]
    expected = consumed_seconds(stretches)
    used = records.used_seconds(name, now)
    if abs(used - expected) > 1e-6:
        problems.append(f"used_seconds {used:.3f} is not the sessions' union {expected:.3f}")
    ended = [s for s in sessions if s.ended_at is not None]
    if not ended or max(ended, key=lambda s: s.ended_at).exit_reason != "n_trials":
        last = max(ended, key=lambda s: s.ended_at).exit_reason if ended else None
        problems.append(f"the last session ended with {last!r}, not 'n_trials'")

    result = records.result(name)
    if result is None:
        problems.append("no test result recorded")
    elif complete:
        best = max(t.value for t in complete)
        chosen = by_number.get(result["trial_number"])
        if chosen is None or chosen.state.name != "COMPLETE" or chosen.value != best:
            problems.append(f"the test result names trial {result['trial_number']}, not a best")
        elif result["model_path"] != chosen.user_attrs.get("model_path"):
            problems.append("the result's model_path is not its trial's")
        if not result["model_path"] or not (artifacts / result["model_path"]).is_file():
            problems.append(f"the best model file {result['model_path']} is missing")
        acc = result["test_accuracy"]
        if acc is None or not 0.0 <= acc <= 1.0:
            problems.append(f"test accuracy {acc!r}")
    return problems


def killed_session_billing(url: str, name: str, died_at: float, known: int) -> str | None:
    """The sessions a killed process left after the ``known`` ones: at most one, unfinished,
    its last heartbeat within two beats of the death (so its budget ends there). None when
    that holds, else what does not."""
    sessions = _records(url).sessions(name)[known:]
    if not sessions:
        return None
    if len(sessions) > 1:
        return f"{len(sessions)} sessions from one process"
    [s] = sessions
    if s.ended_at is not None:
        return f"the killed session has an end ({s.exit_reason})"
    if not s.started_at <= s.last_seen <= died_at + 0.5:
        return "its last heartbeat is outside its life"
    if died_at - s.last_seen > 2 * HEARTBEAT + 2.0:
        return f"its last heartbeat is {died_at - s.last_seen:.1f}s before the death"
    return None


def resume_to_end(wd: Workdir, n_trials: int, case: Case, tries: int = 3) -> None:
    """Resumes (or, when the stop left no hpo32 study, searches again) until the study holds
    ``n_trials`` finished trials and a test result; sets ``case.resumed``/``resumes``."""
    for _ in range(tries):
        if has_hpo32_row(wd.url, wd.name):
            res = run_cli(wd, "resume", wd.name, "--storage", wd.url)
        else:
            res = run_cli(wd, *search_args(wd, n_trials))
        case.resumes += 1
        if not clean(res.stdout + res.stderr):
            case.clean_output = False
            case.output += "\n--- resume ---\n" + res.stderr[-3000:]
        if res.returncode == 0 and has_hpo32_row(wd.url, wd.name):
            if finished_count(wd.url, wd.name) == n_trials and _records(wd.url).result(wd.name):
                case.resumed = True
                return
        case.output += f"\n--- resume exit {res.returncode} ---\n{res.stderr[-2000:]}"


def _grace() -> None:
    time.sleep(STALE_BEATS * HEARTBEAT + 1.0)


# -- the cases ---------------------------------------------------------------------------------
def kill_point_case(point: str, wd: Workdir, n_trials: int = KILL_TRIALS) -> Case:
    """SIGKILL at ``point`` (``HPO32_FAULT``), then resume to the end and check."""
    t0 = time.monotonic()
    case = Case(kind=point)
    # ``resume`` kills the second command: the search before it dies mid-epoch
    fault = (
        f"mid_epoch@{KILL_AT['mid_epoch']}" if point == "resume" else f"{point}@{KILL_AT[point]}"
    )
    proc = Watched(*search_args(wd, n_trials), cwd=wd.path, HPO32_FAULT=fault)
    rc = proc.finish()
    died_at = time.time()
    case.output = proc.output
    case.clean_output = clean(case.output)
    if rc != -signal.SIGKILL:
        case.stop_detail = f"search exit {rc}, not SIGKILL"
        case.seconds = time.monotonic() - t0
        return case
    details = [f"search killed at {fault}"]
    if point == "after_create_study":  # Optuna's half only: resume refuses, search may
        res = run_cli(wd, "resume", wd.name, "--storage", wd.url)
        if res.returncode != 2 or f"no study named '{wd.name}'" not in res.stderr:
            case.stop_detail = f"resume of the half-made study: exit {res.returncode}"
            case.output += res.stderr
            return case
        details.append("resume refused the half-made study")
    else:
        billing = killed_session_billing(wd.url, wd.name, died_at, known=0)
        if billing is not None:
            case.stop_detail = f"killed session: {billing}"
            return case
        details.append("its session billed to its last heartbeat")
        _grace()
    if point == "resume":
        before = len(_records(wd.url).sessions(wd.name))
        res = run_cli(wd, "resume", wd.name, "--storage", wd.url, HPO32_FAULT="resume@1")
        if res.returncode != -signal.SIGKILL:
            case.stop_detail = f"resume exit {res.returncode}, not SIGKILL"
            case.output += res.stderr
            return case
        if len(_records(wd.url).sessions(wd.name)) != before:
            case.stop_detail = "the killed resume left a session"
            return case
        details.append("resume killed before its session")
    case.stopped = True
    case.stop_detail = "; ".join(details)
    resume_to_end(wd, n_trials, case)
    if case.resumed:
        case.problems = integrity(wd.url, wd.name, n_trials, wd.artifacts)
    case.seconds = time.monotonic() - t0
    return case


def signal_plan(seed: int, n_trials: int = SIGNAL_TRIALS) -> tuple[str, int, float]:
    """``(phase, lines to wait for, delay)`` for seed ``seed``: the phase by ``seed % 4``,
    the moment within it from ``random.Random(seed)``."""
    rng = random.Random(seed)
    phase = PHASES[seed % len(PHASES)]
    if phase == "epoch":
        return phase, 1, rng.uniform(0.0, 2.0)
    if phase == "between":
        return phase, rng.randint(1, n_trials - 1), rng.uniform(0.0, 0.2)
    if phase == "test":
        return phase, n_trials, rng.uniform(0.0, 0.3)
    return phase, 1, rng.uniform(0.0, 1.5)


def signal_case(kind: str, seed: int, wd: Workdir, n_trials: int = SIGNAL_TRIALS) -> Case:
    """SIGTERM or SIGINT at the seeded moment, then resume to the end and check."""
    t0 = time.monotonic()
    phase, count, delay = signal_plan(seed, n_trials)
    case = Case(kind=kind, seed=seed, phase=phase)
    proc = Watched(*search_args(wd, n_trials), cwd=wd.path)
    pattern = {"epoch": _EPOCH, "between": _TRIAL_END, "test": _TRIAL_END}.get(
        phase, re.compile(r"^hpo32: study '")
    )
    reached = proc.wait_for(pattern, count)
    time.sleep(delay)
    alive = reached and proc.proc.poll() is None
    if alive:
        proc.proc.send_signal(SIGNALS[kind])
    sent = time.monotonic()
    rc = proc.finish(timeout=STOP_WITHIN_S + 30)
    case.latency = time.monotonic() - sent
    case.output = proc.output
    case.clean_output = clean(case.output)
    if not alive:
        case.stop_detail = f"the process ended (exit {rc}) before the signal was sent"
    elif rc != 130:
        case.stop_detail = f"exit {rc} after the signal, not 130"
    elif case.latency > STOP_WITHIN_S:
        case.stop_detail = f"exit 130 only {case.latency:.1f}s after the signal"
    else:
        case.stopped = True
        case.stop_detail = f"exit 130 {case.latency:.1f}s after the signal"
        if has_hpo32_row(wd.url, wd.name):
            last = _records(wd.url).sessions(wd.name)[-1]
            if last.exit_reason != "interrupted" or last.ended_at is None:
                case.stopped = False
                case.stop_detail += f"; its session ended {last.exit_reason!r}"
            elif any(t.state.name == "RUNNING" for t in _trials(wd.url, wd.name)):
                case.stopped = False
                case.stop_detail += "; a trial was left RUNNING"
    if case.stopped:
        resume_to_end(wd, n_trials, case)
        if case.resumed:
            case.problems = integrity(wd.url, wd.name, n_trials, wd.artifacts)
    case.seconds = time.monotonic() - t0
    return case
