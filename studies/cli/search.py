"""``hpo32 search``, ``hpo32 resume`` and ``hpo32 worker``: build the spec, delegate to the
runner, show its progress (:mod:`hpo32.studies.progress`), print the outcome: one line, or
with ``--json`` one JSON object and nothing else."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

from hpo32.studies.spec import SpecError, StudySpec

if TYPE_CHECKING:
    from hpo32.studies.progress import Header
    from hpo32.studies.session import Outcome


def spec_from_args(args: argparse.Namespace) -> StudySpec:
    """The spec ``search`` and ``check`` run: the preset or spec file (else the defaults),
    the command line's overrides over it, and a 10-minute budget when it gives neither a
    budget nor a trial count.

    Raises:
        SpecError: the spec or an override is invalid.
    """
    from hpo32.studies.spec import load_preset, load_spec_file

    if args.preset:
        spec = load_preset(args.preset)
    elif args.spec:
        spec = load_spec_file(args.spec)
    else:
        spec = StudySpec()
    spec = spec.with_overrides(
        dataset=args.dataset,
        classes=args.classes,
        data_dir=args.data_dir,
        download=args.download,
        engine=args.engine,
        sampler=args.sampler,
        pruner=args.pruner,
        budget=args.budget,
        trial_budget=args.trial_budget,
        n_trials=args.n_trials,
        max_failures=args.max_failures,
        keep_top=getattr(args, "keep_top", None),
        epochs=args.epochs,
        train_limit=args.train_limit,
        val_limit=args.val_limit,
        seed=args.seed,
        weights=args.weights,
        epoch_images=args.epoch_images,
        precision=args.precision,
        backend=getattr(args, "backend", None),
    )
    if spec.budget is None and spec.n_trials is None:
        spec = spec.with_overrides(budget=600.0)
    if spec.backend is None:
        spec = spec.with_overrides(backend=os.environ.get("KERAS_BACKEND") or "tensorflow")
    activate_backend(spec.backend or "tensorflow")
    return spec


def activate_backend(name: str) -> None:
    """Sets this process's Keras backend (``$KERAS_BACKEND``, which its workers inherit)
    before anything imports Keras; nothing is written before this check.

    Raises:
        SpecError: the backend's library is missing (one sentence naming the extra to
            install), or Keras is already loaded with another.
    """
    from hpo32.search.hardware import BackendError, use_backend

    try:
        use_backend(name)
    except (BackendError, ValueError) as exc:
        raise SpecError(str(exc)) from None


def cmd_search(args: argparse.Namespace) -> int:
    from hpo32.studies.launch import check_search, search
    from hpo32.studies.progress import Header, header_line

    spec = spec_from_args(args)
    started = args.started
    several = args.workers > 1 or bool(args.gpus)
    if several and _shows(args):  # the workers show the trials; the header comes first
        check_search(spec, args.study, args.storage, args.workers, args.gpus, load_data=False)
        print(header_line(Header.of(args.study, spec, used=time.monotonic() - started)))

    def header() -> Header:  # at the first event: after the checks, the data, the study
        return Header.of(args.study, spec, used=time.monotonic() - started)

    with _display(args, header) as on_event:
        outcome = search(
            spec,
            args.study,
            args.storage,
            on_event=on_event,
            workers=args.workers,
            gpus=args.gpus,
            started=started,
        )
    _print_outcome(args, outcome)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from hpo32.studies.launch import resume

    with _display(args, lambda: _stored_header(args.name, args.storage)) as on_event:
        outcome = resume(
            args.name,
            args.storage,
            extra_budget=args.budget,
            n_trials=args.n_trials,
            data_dir=args.data_dir,
            trial_budget=args.trial_budget,
            on_event=on_event,
            started=args.started,
            max_failures=args.max_failures,
            keep_top=args.keep_top,
        )
    if outcome.reason == "budget_spent" and not args.json:
        _say(
            f"hpo32: study '{args.name}' has spent its budget; add time with "
            f"'hpo32 resume {args.name} --budget 10m'."
        )
        return 0
    _print_outcome(args, outcome)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from hpo32.studies.launch import resume

    args.quiet = os.environ.get("HPO32_QUIET") == "1"  # a search run with --json or --quiet
    args.json = False
    with _display(args, lambda: _stored_header(args.name, args.storage)) as on_event:
        outcome = resume(
            args.name, args.storage, data_dir=args.data_dir, on_event=on_event,
            started=args.started,
        )  # fmt: skip
    if args.quiet:
        return 0
    if outcome.reason == "budget_spent":
        print(
            f"hpo32: study '{args.name}' has no budget left; nothing to do "
            f"(add time with 'hpo32 resume {args.name} --budget 10m')."
        )
        return 0
    _print_outcome(args, outcome)
    return 0


def _shows(args: argparse.Namespace) -> bool:
    """Whether the command shows its progress (not with ``--json`` or ``--quiet``)."""
    return not (getattr(args, "json", False) or getattr(args, "quiet", False))


@contextlib.contextmanager
def _display(args: argparse.Namespace, header: Callable[[], Header]) -> Iterator[Any]:
    """The session's progress display while the block runs (None with ``--json`` or
    ``--quiet``, whose worker processes then print nothing either); on a terminal the
    training loop's batch events feed it too."""
    from hpo32.search.training import batch_events
    from hpo32.studies.progress import Progress

    if not _shows(args):
        os.environ["HPO32_QUIET"] = "1"
        yield None
        return
    with Progress(header, started=args.started) as progress:
        with batch_events(progress if progress.live else None):
            yield progress


def _stored_header(name: str, storage: str | None) -> Header:
    """The header of a stored study as it continues: its spec (with this session's
    overrides, stored by then), its budget, what it used, its best trial and counts."""
    from hpo32.studies.cli.common import _records
    from hpo32.studies.progress import Header

    records, _ = _records(storage)
    row = records.study(name) or {}
    spec = StudySpec.from_dict(
        {"space_version": 1, **(row.get("spec") or {})}, source=f"study '{name}'"
    )
    best = records.best_trial(name)
    [summary] = records.summaries([name]) or [None]
    states = summary.states if summary is not None else {}
    header = Header.of(
        name,
        spec,
        used=records.used_seconds(name),
        best=(best["value"], best["number"]) if best else None,
        states={
            "done": states.get("complete", 0),
            "pruned": states.get("pruned", 0),
            "failed": states.get("fail", 0),
        },
    )
    return dataclasses.replace(header, budget=row.get("budget_seconds"))  # the stored one


def _print_outcome(args: argparse.Namespace, outcome: Outcome) -> None:
    from hpo32.studies.progress import plural

    if getattr(args, "json", False):
        print(json.dumps(dataclasses.asdict(outcome)))
        return
    best = f"{outcome.best_value:.4f}" if outcome.best_value is not None else "-"
    test = f"{outcome.test_accuracy:.4f}" if outcome.test_accuracy is not None else "-"
    top5 = f", test top-5 {outcome.test_top5:.4f}" if outcome.test_top5 is not None else ""
    _say(
        f"hpo32: study '{outcome.study}' stopped ({outcome.reason}) after "
        f"{plural(outcome.trials_run, 'trial')} this session; best val_acc {best}, "
        f"test_acc {test}{top5}"
    )


def _say(line: str) -> None:
    """Prints ``line``; on a terminal wrapped at its width between words (rich), so that
    no line runs past the edge."""
    import sys

    if not sys.stdout.isatty():
        print(line)
        return
    from rich.console import Console
    from rich.text import Text

    Console(highlight=False).print(Text(line))
