"""``main``: parses, dispatches to the subcommand's handler, and turns user errors into one
sentence on stderr and exit code 2 (an interrupt into 130). Before any command runs,
TensorFlow's C++ and Python logging is silenced (``--verbose`` keeps it)."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
import time
from typing import Any, Iterator, Sequence

from hpo32.studies.cli.common import (
    EXIT_FAILED,
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_USER_ERROR,
    UserError,
)
from hpo32.studies.cli.parser import build_parser
from hpo32.studies.spec import SpecError


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
    if getattr(args, "verbose", False):
        os.environ["HPO32_VERBOSE"] = "1"  # the worker processes a search starts inherit it
    if os.environ.get("HPO32_VERBOSE") != "1":
        quiet_tensorflow()
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


def quiet_tensorflow() -> None:
    """Silences TensorFlow's logging before it is imported: its C++ log
    (``TF_CPP_MIN_LOG_LEVEL=3``), its Python logger (``tf.get_logger()``: the retracing
    warnings), absl's Python logger, the Python warnings of TensorFlow and Keras, and the
    lines its libraries write to standard error while they load (absl's "before
    InitializeLog" notice and oneDNN's, which no log level reaches: standard error's file
    descriptor points at the null device for the import alone). ``TF_ENABLE_ONEDNN_OPTS`` is
    left as it is (it changes numerics, not logging)."""
    import logging
    import warnings

    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    for name in ("tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(tensorflow|keras|absl|tf_keras)(\.|$)")
    if "tensorflow" not in sys.modules and not any(
        isinstance(f, _QuietImport) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as Python would and loads it with standard error silenced."""

    searching = False

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tensorflow" or self.searching:
            return None
        self.searching = True  # the search below must not find us again
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.searching = False
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)  # a mere availability check loads nothing
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # the real one, for later
        with _stderr_silenced():
            self.loader.exec_module(module)
        import logging

        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # tf.get_logger() now


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Points file descriptor 2 at the null device for the block (where there is one)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _environment_failure(exc: BaseException) -> int | None:
    """Prints one sentence for a failure of the run rather than of the input (too many
    failed trials, workers that died, a full disk) and returns its exit code; None for a
    bug, whose traceback is the useful report."""
    import errno

    from hpo32.search.engines.base import TooManyFailures
    from hpo32.studies.workers import WorkersFailed

    if isinstance(exc, TooManyFailures):
        print(f"hpo32: {exc}", file=sys.stderr)
        return EXIT_FAILURES
    if isinstance(exc, WorkersFailed):
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
    from hpo32.studies.launch import StudyNotFound

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
