"""Fault injection end to end: a real ``hpo32 search`` killed with SIGKILL at each named point
(``HPO32_FAULT``), or stopped with SIGTERM/SIGINT at seeded moments, then resumed to the end;
the database must hold exactly the trials asked for, nothing duplicated or left RUNNING, the
budget billed to each session's last sign of life and the best model where the result says.

The runs and checks live in ``tests/faults/checks.py`` (``tests/faults/run_faults.py`` runs
N of each; docs/RELIABILITY.md has its figures)."""

from __future__ import annotations

import pytest

from hpo32.search import faults
from tests.faults import checks

pytestmark = pytest.mark.slow

#: Seeds of the signal runs in CI: ``seed % 4`` picks the phase, so four meet each phase once.
SEEDS = range(4)


def test_every_kill_point_is_covered():
    assert set(checks.KILL_AT) == set(faults.POINTS)


@pytest.mark.parametrize("point", faults.POINTS)
def test_a_kill_at_each_point_then_resume_loses_nothing(tmp_path, cifar_dir, point):
    wd = checks.make_workdir(tmp_path, cifar_dir)
    case = checks.kill_point_case(point, wd)
    assert case.stopped, case.report()
    assert case.resumed, case.report()
    assert case.problems == [], case.report()
    assert case.clean_output, case.report()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", sorted(checks.SIGNALS))
def test_a_stop_signal_at_a_seeded_moment_then_resume_loses_nothing(
    tmp_path, cifar_dir, kind, seed
):
    wd = checks.make_workdir(tmp_path, cifar_dir)
    case = checks.signal_case(kind, seed, wd)
    assert case.stopped, case.report()  # exit 130 within STOP_WITHIN_S, session interrupted
    assert case.clean_output, case.report()  # no Traceback, no "Exception ignored"
    assert case.resumed, case.report()
    assert case.problems == [], case.report()
