"""Progress while searching: one live line per trial on a terminal, plain lines otherwise."""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

from hpo32.studies.spec import format_duration

__all__ = ["Progress", "short_params"]

_ABBREV = {
    "conv_blocks": "blocks",
    "convs_per_block": "convs",
    "kernel_size": "k",
    "batch_norm": "bn",
    "fc_layers": "fc",
    "activation": "act",
    "optimizer": "opt",
    "learning_rate": "lr",
    "batch_size": "bs",
}


def short_params(config: dict[str, Any], limit: int = 8) -> str:
    """A compact ``blocks=3 f=64/256/128 act=relu opt=adamax lr=0.002`` rendering."""
    filters = [str(config[k]) for k in sorted(config) if k.startswith("filters_")]
    parts = []
    if filters:
        parts.append("f=" + "/".join(filters))
    for key, short in _ABBREV.items():
        if key in config:
            value = config[key]
            if isinstance(value, float):
                value = f"{value:.3g}"
            parts.append(f"{short}={value}")
    return " ".join(parts[:limit])


class Progress:
    """Prints search events.

    Args:
        budget: the session's total search budget in seconds, or None.
        used_before: budget already used before this session.
        stream: where to print (stdout by default).
        live: rewrite one line per trial in place; default: whether ``stream`` is a terminal.
    """

    def __init__(
        self,
        budget: float | None = None,
        used_before: float = 0.0,
        stream: IO[str] | None = None,
        live: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stdout
        self.label = os.environ.get("HPO32_WORKER_LABEL", "")
        if live is None:  # several workers share a terminal: plain lines, labelled
            live = self.stream.isatty() and not self.label
        self.live = live
        self.budget = budget
        self.used_before = used_before
        self.t0 = time.monotonic()
        self._line = ""

    def _clock(self) -> str:
        used = self.used_before + time.monotonic() - self.t0
        return f"{format_duration(used)}/{format_duration(self.budget)}"

    def _emit(self, text: str, final: bool) -> None:
        if self.live:
            pad = max(0, len(self._line) - len(text))
            self.stream.write("\r" + text + " " * pad + ("\n" if final else ""))
            self._line = "" if final else text
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        head = f"{self.label + ' ' if self.label else ''}trial {event['number']:>3}"
        if kind == "trial_start":
            self._params = short_params(event.get("config", {}))
            self._emit(f"{head} | {self._params} | starting | {self._clock()}", final=False)
        elif kind == "epoch":
            self._emit(
                f"{head} | {self._params} | epoch {event['epoch']}/{event['epochs']} "
                f"val_acc {event['val_accuracy']:.4f} | {self._clock()}",
                final=False,
            )
        elif kind == "trial_end":
            value = event.get("value")
            shown = f"val_acc {value:.4f}" if value is not None else "no result"
            why = f" ({event['stopped_by']})" if event.get("stopped_by") else ""
            self._emit(f"{head} | {self._params} | done {shown}{why} | {self._clock()}", final=True)
