"""Fault injection: kills at named points, stop signals at seeded moments, a multi-worker
soak. ``checks.py`` holds the runs and the integrity checks that the CI tests
(``tests/studies/test_faults.py``) and the scripts here (``run_faults.py``, ``soak.py``)
share; no file here is collected by pytest."""
