"""Named points where the fault-injection tests kill a process (``$HPO32_FAULT``).

``HPO32_FAULT=NAME`` kills this process with SIGKILL the first time it reaches
:func:`point` ``(NAME)``; ``NAME@K`` at the K-th time. Without the variable a point costs one
dictionary lookup. The points, in the order a study meets them:

``after_create_study``  Optuna's study exists, hpo32's row not yet
``mid_epoch``           after a training batch
``validation``          inside an epoch-end validation
``model_save``          a best model's file written, its path not yet recorded
``before_tell``         a trial trained, its outcome not yet recorded
``test_evaluation``     the best model evaluated on the test split, not yet recorded
``resume``              a resumed study loaded, its session not yet begun
"""

from __future__ import annotations

import os
import signal

__all__ = ["POINTS", "point"]

POINTS = (
    "after_create_study",
    "mid_epoch",
    "validation",
    "model_save",
    "before_tell",
    "test_evaluation",
    "resume",
)
_hits: dict[str, int] = {}


def point(name: str) -> None:
    """Kills this process here when ``$HPO32_FAULT`` names this point (see the module)."""
    wanted = os.environ.get("HPO32_FAULT")
    if not wanted:
        return
    target, _, nth = wanted.partition("@")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
