"""The ``hpo32`` argument parser: every subcommand, its options and the handler it runs.

``--storage`` is declared once, on a parent parser the subcommands that read or write the
database inherit (``dashboard`` and ``report`` declare theirs in :mod:`hpo32.dashboards.cli`).
Each subcommand names its handler with ``set_defaults(func=...)``.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from hpo32 import __version__
from hpo32.search.space import brief
from hpo32.studies.cli.check import cmd_check
from hpo32.studies.cli.common import EXIT_USER_ERROR
from hpo32.studies.cli.inspect import (
    cmd_compare,
    cmd_export,
    cmd_list,
    cmd_predict,
    cmd_presets,
    cmd_show,
    cmd_space,
)
from hpo32.studies.cli.manage import add_gc_parser
from hpo32.studies.cli.manage import add_parser as add_delete_parser
from hpo32.studies.cli.search import cmd_resume, cmd_search, cmd_worker
from hpo32.studies.spec import SpecError, parse_duration

STORAGE_HELP = "database URL (default: $HPO32_STORAGE or sqlite:///hpo32.db)"
STUDY_HELP = "the study's name (see 'hpo32 list')"
VERBOSE_HELP = "show TensorFlow's own log lines and warnings (hidden by default)"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default in ``--help`` when it has one worth naming (not None, not
    a flag's False) that its help does not name already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        named = action.help and "default" in action.help  # the help names it already
        if (
            named
            or action.default is None
            or action.default is False
            or action.default is argparse.SUPPRESS
        ):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # one sentence, exit 2, no usage dump
        if not message.isprintable():  # argparse quotes some arguments as they are
            message = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in message)
        if len(message) > 300:
            message = message[:297] + "..."
        self.exit(EXIT_USER_ERROR, f"hpo32: error: {message}; see '{self.prog} --help'.\n")


def _duration(what: str):
    def parse(text: str) -> float | None:
        try:
            return parse_duration(text, what)
        except SpecError as exc:
            raise argparse.ArgumentTypeError(str(exc).rstrip(".")) from None

    parse.__name__ = what
    return parse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{brief(text)} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _trial_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{brief(text)} is not a trial number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"trial numbers start at 0, got {value}")
    return value


def _gpu_list(text: str) -> list[str]:
    gpus = [g.strip() for g in text.split(",") if g.strip()]
    if not gpus or not all(g.isdigit() for g in gpus):
        raise argparse.ArgumentTypeError(f"{brief(text)} is not a list of GPU numbers like 0,1")
    return gpus


def _storage_parent() -> argparse.ArgumentParser:
    """The parent parser of the subcommands that take ``--storage``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--storage", help=STORAGE_HELP)
    return parent


def _storage_after(p: argparse.ArgumentParser, option: str) -> None:
    """Moves the inherited ``--storage`` right after ``option`` in ``p``'s usage and help.

    A parent's options come first; this puts ``--storage`` back where the subcommand has
    always listed it, so ``--help`` reads as before. Parsing does not depend on the order.
    """
    storage = p._option_string_actions["--storage"]
    after = p._option_string_actions[option]
    for actions in (p._actions, p._optionals._group_actions):
        actions.remove(storage)
        actions.insert(actions.index(after) + 1, storage)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hpo32",
        description="Hyperparameter search for Keras CNNs on "
        "32x32 images (CIFAR-10, ImageNet32), recorded in one database.",
    )
    parser.add_argument("--version", action="version", version=f"hpo32 {__version__}")
    sub: argparse._SubParsersAction = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )
    storage = [_storage_parent()]
    _add_search_commands(sub, storage)
    _add_inspect_commands(sub, storage)
    add_delete_parser(sub, storage)
    add_gc_parser(sub, storage)

    from hpo32.dashboards.cli import add_parsers as add_dashboard_parsers
    from hpo32.dashboards.cli import cmd_dashboard, cmd_report

    add_dashboard_parsers(sub, STORAGE_HELP)
    sub.choices["dashboard"].set_defaults(func=cmd_dashboard)
    sub.choices["report"].set_defaults(func=cmd_report)
    return parser


def _add_search_commands(sub: Any, storage: list[argparse.ArgumentParser]) -> None:
    """``search``, ``check``, ``worker`` and ``resume``, in this order (the order ``--help``
    lists)."""
    p = sub.add_parser("search", help="start a time-boxed search", parents=storage)
    p.set_defaults(func=cmd_search)
    p.add_argument("--study", required=True, help="study name (letters, digits, . _ -)")
    _add_spec_options(p)
    _add_output_options(p)

    p = sub.add_parser(
        "check",
        help="check a spec as search would, writing nothing and training nothing",
        parents=storage,
    )
    p.set_defaults(func=cmd_check)
    p.add_argument("--study", help="also check that this study name is free in the storage")
    _add_spec_options(p)
    p.add_argument(
        "--no-data", action="store_true", help="do not load the dataset (skip its checks)"
    )

    p = sub.add_parser("worker", help="join an existing study and run its trials", parents=storage)
    p.set_defaults(func=cmd_worker)
    p.add_argument("name", metavar="STUDY", help=STUDY_HELP)
    p.add_argument("--data-dir", help="where the data lies on this host")
    _storage_after(p, "--data-dir")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)

    p = sub.add_parser("resume", help="continue a study where it stopped", parents=storage)
    p.set_defaults(func=cmd_resume)
    p.add_argument("name", metavar="STUDY", help=STUDY_HELP)
    p.add_argument("--budget", type=_duration("budget"), help="extra budget to add")
    p.add_argument("--trial-budget", type=_duration("trial budget"), help="budget per trial")
    p.add_argument("--n-trials", type=_positive_int, help="finished trials to reach in total")
    p.add_argument("--max-failures", type=_positive_int, help=MAX_FAILURES_HELP)
    p.add_argument("--keep-top", type=_positive_int, metavar="K", help=KEEP_TOP_HELP)
    p.add_argument("--data-dir", help="where the data lies now")
    _storage_after(p, "--data-dir")
    _add_output_options(p)


MAX_FAILURES_HELP = "stop after N failed trials in a row (default 5)"
KEEP_TOP_HELP = (
    "keep the models of the best K complete trials on disk, delete the rest (default 1: "
    "the best only)"
)


def _add_output_options(p: argparse.ArgumentParser) -> None:
    """What ``search`` and ``resume`` print: the live display, the outcome line only, or
    the outcome as JSON; and whether TensorFlow's log lines show."""
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "--json", action="store_true", help="print only the outcome, as one JSON object"
    )
    out.add_argument("--quiet", action="store_true", help="print only the outcome line")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)


def _add_spec_options(p: argparse.ArgumentParser) -> None:
    """The spec's source and its command-line overrides, shared by ``search`` and ``check``."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help="a preset from 'hpo32 presets'")
    src.add_argument("--spec", help="a YAML or JSON study spec file")
    p.add_argument("--dataset", help="cifar10, imagenet32 or folder:PATH")
    p.add_argument("--classes", type=_positive_int, help="ImageNet32: use the first N classes")
    p.add_argument("--data-dir", help="where the data lies (else $HPO32_DATA_DIR, Keras cache)")
    p.add_argument(
        "--download",
        action="store_const",
        const=True,
        help="fetch CIFAR-10 into --data-dir when it is not there",
    )
    p.add_argument(
        "--engine",
        help="optuna, keras-tuner:random|bayesian|hyperband, "
        "autokeras:greedy|bayesian|hyperband|random",
    )
    p.add_argument("--sampler", help="tpe, random, cmaes, gp, grid")
    p.add_argument("--pruner", help="median, hyperband, asha, none")
    p.add_argument("--budget", type=_duration("budget"), help="search budget: 90s, 10m, 2h")
    p.add_argument("--trial-budget", type=_duration("trial budget"), help="budget per trial")
    p.add_argument("--n-trials", type=_positive_int, help="finished trials to reach")
    p.add_argument("--max-failures", type=_positive_int, help=MAX_FAILURES_HELP)
    p.add_argument("--keep-top", type=_positive_int, metavar="K", help=KEEP_TOP_HELP)
    p.add_argument("--epochs", type=_positive_int, help="epochs per trial")
    p.add_argument("--train-limit", type=_positive_int, help="at most N training images")
    p.add_argument("--val-limit", type=_positive_int, help="at most N validation images")
    p.add_argument(
        "--epoch-images",
        type=_positive_int,
        help="images per epoch (low-fidelity epochs for the pruner); default: all",
    )
    p.add_argument(
        "--precision", help="auto (mixed precision where native), float32, bfloat16, float16"
    )
    p.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        help="the Keras backend trials train on (default: $KERAS_BACKEND, else tensorflow)",
    )
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--weights", help="DenseNet121 ImageNet weights file (transfer, finetune)")
    _storage_after(p, "--weights")
    p.add_argument(
        "--workers", type=_positive_int, default=1, help="run N worker processes on this host"
    )
    p.add_argument("--gpus", type=_gpu_list, help="one worker per listed GPU: 0,1,...")


def _add_inspect_commands(sub: Any, storage: list[argparse.ArgumentParser]) -> None:
    """``list``, ``show``, ``export``, ``compare``, ``predict`` and ``presets``, in this order."""
    p = sub.add_parser("list", help="list studies", parents=storage)
    p.set_defaults(func=cmd_list)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("show", help="show a study's best trial and counts", parents=storage)
    p.set_defaults(func=cmd_show)
    p.add_argument("name", metavar="STUDY", help=STUDY_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--top", type=_positive_int, metavar="N", help="the best N trials with their configs"
    )
    which.add_argument(
        "--trial",
        type=_trial_number,
        metavar="N",
        help="one trial: config, per-epoch values, timings, stop reason, model",
    )
    p.add_argument(
        "--no-model",
        action="store_true",
        help="skip the best model's summary (no TensorFlow import)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="write the best trial's curves.png and curves.html into DIR (show writes nothing "
        "without it)",
    )
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)

    p = sub.add_parser("space", help="show a study's search space", parents=storage)
    p.set_defaults(func=cmd_space)
    p.add_argument("name", metavar="STUDY", help=STUDY_HELP)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("export", help="export a study's trials", parents=storage)
    p.set_defaults(func=cmd_export)
    p.add_argument("name", metavar="STUDY", help=STUDY_HELP)
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--out", help="file to write (default: stdout)")
    _storage_after(p, "--out")

    p = sub.add_parser("compare", help="compare studies (engines) side by side", parents=storage)
    p.set_defaults(func=cmd_compare)
    p.add_argument("names", nargs="+", metavar="STUDY", help="the studies to compare")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("predict", help="classify images with a study's best model", parents=storage)
    p.set_defaults(func=cmd_predict)
    p.add_argument("name", metavar="STUDY", help=STUDY_HELP)
    p.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...; any size)"
    )
    p.add_argument("--top", type=_positive_int, default=10, help="classes per image")
    _storage_after(p, "--top")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)

    p = sub.add_parser("presets", help="list the presets")
    p.set_defaults(func=cmd_presets)
