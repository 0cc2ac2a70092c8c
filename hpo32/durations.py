"""Durations as people read them: the one formatter both ``hpo32.studies`` and
``hpo32.dashboards`` use. Imports nothing of hpo32, so either may import it."""

from __future__ import annotations

__all__ = ["format_duration"]


def format_duration(seconds: float | None) -> str:
    """``1h02m``, ``5m30s``, ``42s``; ``-`` for None."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m{s:02d}s"
    return f"{s}s"
