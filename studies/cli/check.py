"""``hpo32 check``: everything ``hpo32 search`` checks before it writes, and nothing else (no
database written, nothing trained)."""

from __future__ import annotations

import argparse

from hpo32.studies.spec import format_duration


def cmd_check(args: argparse.Namespace) -> int:
    """Validates the spec ``search`` would run with these arguments, as search does (the
    space, the engine and its settings, the study name when given, the storage, the warm
    start, the dataset's splits unless ``--no-data``), and prints one line.

    Raises:
        SpecError, StorageError, hpo32.search.data.DataError: what search would refuse.
    """
    from hpo32.studies.cli.search import spec_from_args
    from hpo32.studies.launch import check_search

    spec = spec_from_args(args)
    check_search(
        spec,
        name=args.study,
        storage_url=args.storage,
        workers=args.workers,
        gpus=args.gpus,
        load_data=not args.no_data,
    )
    space = spec.build_space()
    limits = [f"budget {format_duration(spec.budget)}"] if spec.budget is not None else []
    if spec.n_trials is not None:
        limits.append(f"{spec.n_trials} trials")
    print(
        f"hpo32: spec OK ({spec.dataset}, {spec.engine}, {len(space)} parameters, "
        f"{', '.join(limits)})"
    )
    return 0
