"""What a search session shows while it runs, fed by the engines' progress events.

On a terminal (:class:`Progress` with ``live``), a panel drawn with rich's ``Live`` that
fits the terminal's width: the study, the budget used and left, trials by state, the best so
far with its trial, the running trial's epoch and batch progress, images/s, the ETA; one
plain line per finished trial that stays in the scrollback; a "testing the best model"
step. Anywhere else (a pipe, a log file, ``nohup``): plain lines, no control characters.

The events (:data:`hpo32.search.engines.base.Event`) are ``trial_start``, ``epoch`` and
``trial_end`` from the engines, ``batch`` from the training loop
(:func:`hpo32.search.training.batch_events`) and ``test_start``/``test_end`` from
:func:`hpo32.studies.session.evaluate_best`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Callable

from hpo32.durations import format_duration

if TYPE_CHECKING:
    from hpo32.studies.spec import StudySpec

__all__ = ["Header", "Progress", "header_line", "plural", "short_params"]

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

#: Seconds a test evaluation needs beyond its predictions (loading the model), for the
#: test step's estimate.
_TEST_LOAD_S = 2.0


def plural(n: int, word: str) -> str:
    """``1 trial``, ``2 trials``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


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


@dataclass(frozen=True)
class Header:
    """What a session's header names: the study and what applies to its engine."""

    study: str
    dataset: str
    engine: str
    sampler: str | None  # None for the tuner engines, which bring their own
    pruner: str | None
    budget: float | None  # the study's whole budget, seconds
    used: float = 0.0  # of it, before this session's trials
    trial_budget: float | None = None
    n_trials: int | None = None
    epochs: int = 1
    best: tuple[float, int] | None = None  # (value, trial number) from earlier sessions
    states: dict[str, int] = field(default_factory=dict)  # earlier trials by state

    @classmethod
    def of(cls, study: str, spec: StudySpec, **kw: Any) -> Header:
        """The header of ``spec`` (a StudySpec); the sampler and pruner only for Optuna."""
        optuna = spec.engine.split(":", 1)[0] == "optuna"
        return cls(
            study=study,
            dataset=str(spec.dataset),
            engine=spec.engine,
            sampler=spec.sampler if optuna else None,
            pruner=spec.pruner if optuna else None,
            budget=spec.budget,
            trial_budget=spec.trial_seconds,
            n_trials=spec.n_trials,
            epochs=int(spec.epochs),
            **kw,
        )


def header_line(h: Header) -> str:
    """``hpo32: study 'demo': cifar10, optuna (tpe sampler, median pruner), budget 10m00s
    (2m10s used), trial budget -, 3 epochs a trial``."""
    engine = h.engine
    if h.sampler is not None:
        engine += f" ({h.sampler} sampler, {h.pruner} pruner)"
    parts = [h.dataset, engine]
    if h.budget is not None:
        used = f" ({format_duration(h.used)} used)" if h.used >= 0.5 else ""
        parts.append(f"budget {format_duration(h.budget)}{used}")
    if h.n_trials is not None:
        parts.append(f"up to {plural(h.n_trials, 'trial')}")
    if h.trial_budget is not None:
        parts.append(f"trial budget {format_duration(h.trial_budget)}")
    parts.append(f"{plural(h.epochs, 'epoch')} a trial")
    return f"hpo32: study '{h.study}': " + ", ".join(parts)


def sizing_line(event: dict[str, Any]) -> str:
    """``first config sized for this machine: widths 64/256/256 train 266 images/s here;
    widths 40/160/160 (x0.625) for about 8.7 epochs in its trial``."""
    given = "/".join(str(w) for w in event["from_widths"])
    sized = "/".join(str(w) for w in event["widths"])
    return (
        f"first config sized for this machine: widths {given} train "
        f"{event['images_per_second']:,.0f} images/s here; widths {sized} "
        f"(x{event['scale']:g}) for about {event['expected_epochs']:.1f} epochs in its trial"
    )


@dataclass
class _Running:
    """The trial being trained."""

    number: int
    params: str
    started: float
    epoch: int = 0  # the epoch being trained (from 1), 0 before the first batch
    epochs: int = 0
    step: int = 0
    steps: int = 0
    images_per_second: float | None = None
    validating: int = 0  # images being validated, 0 while training
    validate_started: float = 0.0
    last_val: float | None = None


@dataclass
class _Testing:
    number: int
    images: int
    started: float
    estimate: float | None


class Progress:
    """Shows a session's events: a live panel on a terminal, plain lines otherwise.

    Call it with each event; ``close()`` (or leaving the ``with`` block) ends the panel.

    Args:
        header: what the session runs, or a callable returning it, called at the first
            event (after the checks, once the study exists: a resume's budget and best so
            far are read then). None: no header, no budget clock.
        stream: where to print (stdout by default).
        live: draw the live panel; default: whether ``stream`` is a terminal (and no
            ``HPO32_WORKER_LABEL``: workers sharing a terminal print labelled lines).
        started: ``time.monotonic()`` of the command's start (the budget counts from it).
    """

    def __init__(
        self,
        header: Header | Callable[[], Header] | None = None,
        stream: IO[str] | None = None,
        live: bool | None = None,
        started: float | None = None,
    ) -> None:
        self.stream = stream or sys.stdout
        self.label = os.environ.get("HPO32_WORKER_LABEL", "")
        if live is None:
            live = _is_terminal(self.stream) and not self.label
        self.live = live
        self._header_source = header
        self.header: Header | None = None
        self.started = time.monotonic() if started is None else started
        self._used_at_start = 0.0
        self.states = {"done": 0, "pruned": 0, "failed": 0}
        self.best: tuple[float, int] | None = None
        self.running: _Running | None = None
        self.testing: _Testing | None = None
        self.trial_times: list[float] = []
        self.eval_per_image: float | None = None
        self._live: Any = None
        self._console: Any = None

    # -- the clock -----------------------------------------------------------------------
    def used(self) -> float:
        """Budget seconds used by the study so far."""
        return self._used_at_start + time.monotonic() - self.started

    def left(self) -> float | None:
        h = self.header
        if h is None or h.budget is None:
            return None
        return max(0.0, h.budget - self.used())

    def eta(self) -> float | None:
        """Seconds until the session ends: the budget left, or the trials left at the mean
        trial time when that is sooner (None while unknown)."""
        ends = []
        left = self.left()
        if left is not None:
            ends.append(left)
        h = self.header
        if h is not None and h.n_trials is not None and self.trial_times:
            finished = sum(self.states.values()) + sum((h.states or {}).values())
            mean = sum(self.trial_times) / len(self.trial_times)
            remaining = max(0, h.n_trials - finished) * mean
            if self.running is not None:
                remaining = max(0.0, remaining - (time.monotonic() - self.running.started))
            ends.append(remaining)
        return min(ends) if ends else None

    def clock(self) -> str:
        used = format_duration(self.used())
        h = self.header
        if h is None or h.budget is None:
            return f"{used} used"
        return f"{used}/{format_duration(h.budget)}"

    # -- events --------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if self.header is None and self._header_source is not None:
            self._begin()
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(event)

    def _begin(self) -> None:
        source = self._header_source
        self._header_source = None
        header = source() if callable(source) else source
        if header is None:
            return
        self.header = header
        self.best = header.best
        self._used_at_start = header.used
        self.started = time.monotonic()
        if self.live:
            self._start_live(header_line(header))
        else:
            self._print(header_line(header))

    def _start_live(self, header: str) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        self._console = Console(file=self.stream, highlight=False, soft_wrap=False)
        self._console.print(Text(header))  # wrapped by rich at the terminal's width
        self._live = Live(
            console=self._console,
            get_renderable=self._render,
            refresh_per_second=4,
            transient=True,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self._live.start()

    def close(self) -> None:
        """Ends the live panel (the finished trials' lines stay)."""
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()

    def _print(self, text: str) -> None:
        if self.label:
            text = f"{self.label} {text}"
        if self._live is not None:
            from rich.text import Text

            self._live.console.print(Text(text))  # above the panel, wrapped by rich
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _on_sizing(self, event: dict[str, Any]) -> None:
        self._print(sizing_line(event))

    def _on_trial_start(self, event: dict[str, Any]) -> None:
        self.running = _Running(
            number=int(event["number"]),
            params=short_params(event.get("config") or {}),
            started=time.monotonic(),
            epochs=self.header.epochs if self.header else 0,
        )
        if not self.live:
            self._print(f"trial {self.running.number:>3} | {self.running.params} | starting")

    def _on_batch(self, event: dict[str, Any]) -> None:
        r = self.running
        if r is None:
            return
        r.epoch = int(event.get("epoch") or r.epoch)
        if event.get("phase") == "validate":
            r.validating = int(event.get("images") or 1)
            r.validate_started = time.monotonic()
            r.step = r.steps
            return
        r.validating = 0
        r.step, r.steps = int(event.get("step", 0)), int(event.get("steps", 0))
        if event.get("images_per_second"):
            r.images_per_second = float(event["images_per_second"])

    def _on_epoch(self, event: dict[str, Any]) -> None:
        r = self.running
        if r is None:
            return
        if r.validating and r.validate_started:  # the speed the test step estimates from
            self.eval_per_image = (time.monotonic() - r.validate_started) / r.validating
        r.validating = 0
        r.epoch, r.epochs = int(event["epoch"]), int(event.get("epochs") or r.epochs)
        r.last_val = event.get("val_accuracy")
        if not self.live:
            self._print(
                f"trial {r.number:>3} | epoch {r.epoch}/{r.epochs} val_acc "
                f"{_num(r.last_val)} | {self.clock()}"
            )

    def _on_trial_end(self, event: dict[str, Any]) -> None:
        r = self.running
        number = int(event["number"])
        value = event.get("value")
        why = event.get("stopped_by")
        full = self.header.epochs if self.header else None
        if value is None:
            state = "failed"
        elif why == "pruned" or (r is not None and full and r.epochs < full):
            state = "pruned"  # Optuna's pruner, or a tuner's short (hyperband) trial
        else:
            state = "done"
        self.states[state] += 1
        seconds = time.monotonic() - r.started if r is not None else None
        if seconds is not None:
            self.trial_times.append(seconds)
        new_best = (
            value is not None and state == "done" and (self.best is None or value > self.best[0])
        )
        if new_best and value is not None:
            self.best = (float(value), number)
        self.running = None
        shown = f"val_acc {value:.4f}" if value is not None else "no result"
        if state == "pruned":
            shown += " pruned"
        elif why == "search_budget":  # Optuna queues its config again (see resume)
            shown = "no value: cut by the search budget"
        elif state == "failed":
            shown += f" ({why})" if why else ""
        elif why:
            shown += f" ({why.replace('_', ' ')})"
        best = (
            "new best"
            if new_best
            else (f"best {self.best[0]:.4f} (trial {self.best[1]})" if self.best else "best -")
        )
        took = f" in {format_duration(seconds)}" if seconds is not None else ""
        params = f" | {r.params}" if r is not None and r.params else ""
        self._print(f"trial {number:>3} {shown}{took} | {best} | {self.clock()}{params}")

    def _on_test_start(self, event: dict[str, Any]) -> None:
        images = int(event.get("images") or 0)
        estimate = images * self.eval_per_image + _TEST_LOAD_S if self.eval_per_image else None
        self.testing = _Testing(int(event["number"]), images, time.monotonic(), estimate)
        self.running = None
        if not self.live:
            self._print(
                f"testing the best model (trial {event['number']}) on {images:,} images"
                + (f", about {format_duration(estimate)}" if estimate else "")
            )

    def _on_test_end(self, event: dict[str, Any]) -> None:
        t = self.testing
        took = format_duration(time.monotonic() - t.started) if t else "-"
        self.testing = None
        top5 = event.get("top5")
        self._print(
            f"tested the best model (trial {event['number']}): test_acc "
            f"{_num(event.get('accuracy'))}"
            + (f", top-5 {top5:.4f}" if isinstance(top5, float) else "")
            + f" in {took}"
        )

    # -- the panel -----------------------------------------------------------------------
    def _render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        def line(text: str, style: str = "") -> Text:
            return Text(text, style=style, no_wrap=True, overflow="ellipsis")

        h = self.header
        bars = Table.grid(padding=(0, 1), expand=True)
        bars.add_column(no_wrap=True, min_width=7)
        bars.add_column(ratio=1, min_width=10)
        bars.add_column(no_wrap=True, overflow="ellipsis")
        used = self.used()
        left = self.left()
        if h is not None and h.budget:
            bars.add_row(
                "budget",
                ProgressBar(total=h.budget, completed=min(used, h.budget)),
                line(f"{format_duration(used)} used, {format_duration(left)} left"),
            )
        else:
            bars.add_row("time", "", line(f"{format_duration(used)} used"))
        r = self.running
        if r is not None:
            if r.validating:
                what, done, total = f"validating {r.validating:,} images", 1.0, 1.0
            elif r.epoch:
                rate = f", {r.images_per_second:,.0f} img/s" if r.images_per_second else ""
                what, done, total = f"batch {r.step}/{r.steps}{rate}", r.step, r.steps or 1
            else:
                what, done, total = "building the model", 0.0, 1.0
            epoch = f"epoch {max(r.epoch, 1)}/{r.epochs}" if r.epochs else "epoch -"
            bars.add_row(
                f"trial {r.number}",
                ProgressBar(total=total, completed=done, pulse=not r.epoch),
                line(f"{epoch}, {what}"),
            )
        t = self.testing
        if t is not None:
            elapsed = time.monotonic() - t.started
            done = min(elapsed / t.estimate, 0.99) if t.estimate else 0.0
            about = f" of ~{format_duration(t.estimate)}" if t.estimate else ""
            bars.add_row(
                "test",
                ProgressBar(total=1.0, completed=done, pulse=not t.estimate),
                line(
                    f"best model (trial {t.number}), {t.images:,} images, "
                    f"{format_duration(elapsed)}{about}"
                ),  # fmt: skip
            )
        earlier = (h.states if h else {}) or {}
        counts = (
            f"trials {self.states['done'] + earlier.get('done', 0)} done, "
            f"{self.states['pruned'] + earlier.get('pruned', 0)} pruned, "
            f"{self.states['failed'] + earlier.get('failed', 0)} failed"
        )
        if h is not None and h.n_trials is not None:
            counts += f" (of {h.n_trials})"
        best = f"best val_acc {self.best[0]:.4f} (trial {self.best[1]})" if self.best else "best -"
        eta = self.eta()
        rows: list[Any] = [
            line(f"{best} | ETA {format_duration(eta)}", style="bold"),
            bars,
            line(counts),
        ]
        if r is not None and r.params:
            last = f"last val_acc {r.last_val:.4f} | " if r.last_val is not None else ""
            rows.append(line(f"{last}{r.params}", style="dim"))
        title = f"hpo32 · {h.study} · {h.engine}" if h else "hpo32"
        return Panel(Group(*rows), title=title, title_align="left", expand=True)


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False
