"""Stop requests from SIGTERM and SIGINT, honoured only where the code can stop cleanly.

A signal handler that raises lands wherever the interpreter happens to be, inside a
``__del__`` or a weakref callback too, where Python prints "Exception ignored in ..." and
carries on: the stop is lost and the search runs to its end. So the handler here only
records the request; the training loop (after every batch and validation), the engines
(between trials) and the runner (between its steps) call :func:`check`, which raises
``KeyboardInterrupt`` from ordinary code, where every ``except KeyboardInterrupt`` that
records the running trial sees it. A second signal while one is pending raises at once, so
a process stuck outside those points can still be stopped.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["check", "requested", "stop_on_signals"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_pending: int | None = None


def requested() -> int | None:
    """The signal number of a pending stop request, or None."""
    return _pending


def check() -> None:
    """Raises ``KeyboardInterrupt`` when a stop was requested (and leaves it pending, so
    every level of the call stack that checks sees it).

    Raises:
        KeyboardInterrupt: a SIGTERM or SIGINT arrived since :func:`stop_on_signals` began.
    """
    if _pending is not None:
        raise KeyboardInterrupt(f"signal {_pending}")


def _handler(signum: int, frame: object) -> None:
    global _pending
    if _pending is not None:  # asked twice: stop now, wherever this lands
        raise KeyboardInterrupt(f"signal {signum}")
    _pending = signum


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT request a stop instead of raising at once.

    Outside the main thread (where handlers cannot be set) it does nothing. The previous
    handlers come back at the end and a pending request is cleared.
    """
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _handler) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _pending = None
