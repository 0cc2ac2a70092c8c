"""``main``: parses, dispatches to the subcommand's handler, and turns user errors into one
sentence on stderr and exit code 2 (an interrupt into 130)."""

from __future__ import annotations

import os
import sys
import time
from typing import Sequence

from hpo32.studies.cli.common import EXIT_INTERRUPTED, EXIT_USER_ERROR, UserError
from hpo32.studies.cli.parser import build_parser
from hpo32.studies.spec import SpecError

#: A failure of the run, not of its input (workers that died, a full disk).
EXIT_FAILED = 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hpo32`` console script."""
    started = time.monotonic()  # budgets count from here: loading and the test are inside
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args.started = started
    handler = args.func
    try:
        return handler(args) or 0
    except KeyboardInterrupt:
        print(
            "hpo32: interrupted; the running trial was recorded. Continue with "
            f"'hpo32 resume {getattr(args, 'study', None) or getattr(args, 'name', '')}'.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as exc:
        if _is_user_error(exc):
            print(f"hpo32: error: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
        code = _environment_failure(exc)
        if code is None:
            raise
        return code


def _environment_failure(exc: BaseException) -> int | None:
    """Prints one sentence for a failure of the run rather than of the input (too many
    failed trials, workers that died, a full disk) and returns its exit code; None for a
    bug, whose traceback is the useful report."""
    import errno

    runner = sys.modules.get("hpo32.studies.runner")
    if runner is not None and isinstance(exc, runner.TooManyFailures):
        print(f"hpo32: {exc}", file=sys.stderr)
        return runner.EXIT_FAILURES
    if runner is not None and isinstance(exc, runner.WorkersFailed):
        print(f"hpo32: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {exc.filename}" if exc.filename else ""
        print(
            f"hpo32: the disk is full{where}; free some space and continue with 'hpo32 "
            "resume' (what was recorded before is kept).",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return None


def _is_user_error(exc: BaseException) -> bool:
    from hpo32.search.space import SpaceError
    from hpo32.storage import StorageError
    from hpo32.studies.best import ImageError
    from hpo32.studies.runner import StudyNotFound

    errors: tuple[type[BaseException], ...] = (
        UserError,
        SpecError,
        SpaceError,
        StorageError,
        StudyNotFound,
        ImageError,
    )
    if "hpo32.search.data" in sys.modules:
        errors += (sys.modules["hpo32.search.data"].DataError,)
    return isinstance(exc, errors)
