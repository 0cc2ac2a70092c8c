"""``hpo32 search``, ``hpo32 resume`` and ``hpo32 worker``: build the spec, delegate to the
runner, print the outcome."""

from __future__ import annotations

import argparse

from hpo32.studies.spec import StudySpec, format_duration


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
        epochs=args.epochs,
        train_limit=args.train_limit,
        val_limit=args.val_limit,
        seed=args.seed,
        weights=args.weights,
        epoch_images=args.epoch_images,
        precision=args.precision,
    )
    if spec.budget is None and spec.n_trials is None:
        spec = spec.with_overrides(budget=600.0)
    return spec


def cmd_search(args: argparse.Namespace) -> int:
    from hpo32.studies.progress import Progress
    from hpo32.studies.runner import search

    spec = spec_from_args(args)
    print(
        f"hpo32: study '{args.study}': {spec.dataset}, {spec.engine}/{spec.sampler}/"
        f"{spec.pruner}, budget {format_duration(spec.budget)}, "
        f"trial budget {format_duration(spec.trial_budget)}, {spec.epochs} epochs a trial"
    )
    outcome = search(
        spec,
        args.study,
        args.storage,
        on_event=Progress(budget=spec.budget),
        workers=args.workers,
        gpus=args.gpus,
        started=args.started,
    )
    _print_outcome(outcome)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from hpo32.studies.progress import Progress
    from hpo32.studies.runner import resume

    progress = Progress()
    outcome = resume(
        args.name,
        args.storage,
        extra_budget=args.budget,
        n_trials=args.n_trials,
        data_dir=args.data_dir,
        trial_budget=args.trial_budget,
        on_event=progress,
        started=args.started,
        max_failures=args.max_failures,
    )
    if outcome.reason == "budget_spent":
        print(
            f"hpo32: study '{args.name}' has spent its budget; add time with "
            f"'hpo32 resume {args.name} --budget 10m'."
        )
        return 0
    _print_outcome(outcome)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from hpo32.studies.progress import Progress
    from hpo32.studies.runner import resume

    outcome = resume(
        args.name, args.storage, data_dir=args.data_dir, on_event=Progress(), started=args.started
    )
    if outcome.reason == "budget_spent":
        print(
            f"hpo32: study '{args.name}' has no budget left; nothing to do "
            f"(add time with 'hpo32 resume {args.name} --budget 10m')."
        )
        return 0
    _print_outcome(outcome)
    return 0


def _print_outcome(outcome) -> None:
    best = f"{outcome.best_value:.4f}" if outcome.best_value is not None else "-"
    test = f"{outcome.test_accuracy:.4f}" if outcome.test_accuracy is not None else "-"
    top5 = f", test top-5 {outcome.test_top5:.4f}" if outcome.test_top5 is not None else ""
    print(
        f"hpo32: study '{outcome.study}' stopped ({outcome.reason}) after "
        f"{outcome.trials_run} trials this session; best val_acc {best}, test_acc {test}{top5}"
    )
