"""Workers started together see the same session count; their seeds must still differ."""

from __future__ import annotations

from hpo32.studies.session import session_seed


def test_workers_of_one_session_count_get_different_seeds(monkeypatch):
    monkeypatch.delenv("HPO32_WORKER_LABEL", raising=False)
    alone = session_seed(7, 2)
    assert alone == session_seed(7, 2)  # a single process: reproducible
    seeds = set()
    for k in range(1, 9):
        monkeypatch.setenv("HPO32_WORKER_LABEL", f"w{k}")
        seeds.add(session_seed(7, 2))
    assert len(seeds) == 8 and alone not in seeds
    assert session_seed(7, 3) != session_seed(7, 2)
