"""The ``hpo32`` command: parses, resolves settings once, delegates.

User errors end in one sentence on stderr and exit code 2; no traceback. Heavy frameworks
load only in the commands that train.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Sequence

from hpo32 import __version__
from hpo32.studies.spec import SpecError, StudySpec, format_duration, parse_duration

__all__ = ["main"]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Bad input: printed as one sentence, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one sentence, exit 2, no usage dump
        self.exit(EXIT_USER_ERROR, f"hpo32: error: {message}; see '{self.prog} --help'.\n")


def _duration(what: str):
    def parse(text: str) -> float:
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
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _gpu_list(text: str) -> list[str]:
    gpus = [g.strip() for g in text.split(",") if g.strip()]
    if not gpus or not all(g.isdigit() for g in gpus):
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of GPU numbers like 0,1")
    return gpus


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hpo32",
        description="Hyperparameter search for Keras CNNs on "
        "32x32 images (CIFAR-10, ImageNet32), recorded in one database.",
    )
    parser.add_argument("--version", action="version", version=f"hpo32 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    storage_help = "database URL (default: $HPO32_STORAGE or sqlite:///hpo32.db)"

    p = sub.add_parser("search", help="start a time-boxed search")
    p.add_argument("--study", required=True, help="study name (letters, digits, . _ -)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help="a preset from 'hpo32 presets'")
    src.add_argument("--spec", help="a YAML or JSON study spec file")
    p.add_argument("--dataset", help="cifar10, imagenet32 or folder:PATH")
    p.add_argument("--classes", type=_positive_int, help="ImageNet32: use the first N classes")
    p.add_argument("--data-dir", help="where the data lies (else $HPO32_DATA_DIR, Keras cache)")
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
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--weights", help="DenseNet121 ImageNet weights file (transfer, finetune)")
    p.add_argument("--storage", help=storage_help)
    p.add_argument(
        "--workers", type=_positive_int, default=1, help="run N worker processes on this host"
    )
    p.add_argument("--gpus", type=_gpu_list, help="one worker per listed GPU: 0,1,...")

    p = sub.add_parser("worker", help="join an existing study and run its trials")
    p.add_argument("name")
    p.add_argument("--data-dir", help="where the data lies on this host")
    p.add_argument("--storage", help=storage_help)

    p = sub.add_parser("resume", help="continue a study where it stopped")
    p.add_argument("name")
    p.add_argument("--budget", type=_duration("budget"), help="extra budget to add")
    p.add_argument("--trial-budget", type=_duration("trial budget"), help="budget per trial")
    p.add_argument("--n-trials", type=_positive_int, help="finished trials to reach in total")
    p.add_argument("--data-dir", help="where the data lies now")
    p.add_argument("--storage", help=storage_help)

    p = sub.add_parser("list", help="list studies")
    p.add_argument("--storage", help=storage_help)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("show", help="show a study's best trial and counts")
    p.add_argument("name")
    p.add_argument("--storage", help=storage_help)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--no-model",
        action="store_true",
        help="skip the best model's summary and curves (no TensorFlow import)",
    )

    p = sub.add_parser("export", help="export a study's trials")
    p.add_argument("name")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--out", help="file to write (default: stdout)")
    p.add_argument("--storage", help=storage_help)

    p = sub.add_parser("compare", help="compare studies (engines) side by side")
    p.add_argument("names", nargs="+", metavar="STUDY")
    p.add_argument("--storage", help=storage_help)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("predict", help="classify images with a study's best model")
    p.add_argument("name")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=_positive_int, default=10, help="classes per image")
    p.add_argument("--storage", help=storage_help)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    sub.add_parser("presets", help="list the presets")

    from hpo32.dashboards.cli import add_parsers as add_dashboard_parsers

    add_dashboard_parsers(sub, storage_help)
    return parser


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
    handler = globals()[f"cmd_{args.command}"]
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
        raise


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


# -- commands -------------------------------------------------------------------------------
def cmd_search(args: argparse.Namespace) -> int:
    from hpo32.studies.progress import Progress
    from hpo32.studies.runner import search
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
        engine=args.engine,
        sampler=args.sampler,
        pruner=args.pruner,
        budget=args.budget,
        trial_budget=args.trial_budget,
        n_trials=args.n_trials,
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


def _records(url_arg: str | None, must_exist: bool = True):
    from hpo32.storage import Records, make_engine, resolve_url, sqlite_path

    url = resolve_url(url_arg)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise UserError(f"no database at '{path}'; run 'hpo32 search' first or pass --storage.")
    return Records(make_engine(url, read_only=path is not None), create=False), url


def cmd_list(args: argparse.Namespace) -> int:
    records, _ = _records(args.storage)
    rows = records.summaries()
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return 0
    header = ("NAME", "DATASET", "ENGINE", "TRIALS (C/P/F/R)", "BEST", "BUDGET", "LAST")
    table = [header]
    for r in rows:
        s = r.states
        table.append(
            (
                r.name,
                r.dataset or "-",
                r.engine or "-",
                f"{s.get('complete', 0)}/{s.get('pruned', 0)}/{s.get('fail', 0)}/"
                f"{s.get('running', 0)}",
                f"{r.best_value:.4f}" if r.best_value is not None else "-",
                f"{format_duration(r.used_seconds)}/{format_duration(r.budget_seconds)}",
                (
                    time.strftime("%Y-%m-%d %H:%M", time.localtime(r.last_activity))
                    if r.last_activity
                    else "-"
                )
                + (" running" if r.running else ""),
            )
        )
    _print_table(table)
    return 0


def _print_table(rows: list[tuple[Any, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _load_study(name: str, url: str):
    import optuna

    from hpo32.studies.runner import StudyNotFound

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise StudyNotFound(f"no study named '{name}' in {url}; see hpo32 list.") from None


def study_details(records, name: str) -> dict[str, Any]:
    """What ``hpo32 show`` prints: counts, budget, best trial and its test accuracy."""
    from hpo32.studies.runner import StudyNotFound

    summaries = records.summaries([name])
    if not summaries:
        raise StudyNotFound(f"no study named '{name}'; see hpo32 list.")
    summary = summaries[0]
    out: dict[str, Any] = summary.to_dict()
    best = records.best_trial(name)
    result = records.result(name)
    if best is not None:
        out["best_trial"] = best
        if result and result["trial_number"] == best["number"]:
            out["best_trial"]["test_accuracy"] = result["test_accuracy"]
        if str(out.get("dataset")).startswith("imagenet32"):  # top-5 is the ImageNet measure
            from hpo32.storage import queries

            history = queries.trial_user_attr(records.engine, name, best["number"], "history")
            top5 = (history or {}).get("val_top5") or [None]
            out["best_trial"]["val_top5"] = top5[-1]
            test = queries.study_attrs(records.engine, name).get("test_top5") or {}
            if test.get("trial") == best["number"]:
                out["best_trial"]["test_top5"] = test.get("top5")
    return out


def cmd_show(args: argparse.Namespace) -> int:
    records, url = _records(args.storage)
    info = study_details(records, args.name)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    s = info["states"]
    print(f"study {info['name']}: {info['dataset'] or '-'} / {info['engine'] or '-'}")
    print(
        f"  trials: {s.get('complete', 0)} complete, {s.get('pruned', 0)} pruned, "
        f"{s.get('fail', 0)} failed, {s.get('running', 0)} running, "
        f"{s.get('waiting', 0)} waiting"
    )
    print(
        f"  budget: {format_duration(info['used_seconds'])} used of "
        f"{format_duration(info['budget_seconds'])}"
    )
    best = info.get("best_trial")
    if best is None:
        print("  no completed trial yet")
        return 0
    test = best.get("test_accuracy")
    print(
        f"  best trial {best['number']}: val_acc {best['value']:.4f}, test_acc "
        f"{f'{test:.4f}' if test is not None else '-'}, "
        f"{format_duration(best.get('duration_seconds'))}"
    )
    if "val_top5" in best:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        print(f"  top-5: val {fmt(best['val_top5'])}, test {fmt(best.get('test_top5'))}")
    for key, value in (best.get("config") or best.get("params") or {}).items():
        print(f"    {key}: {value}")
    if not args.no_model and best["user_attrs"].get("model_path"):
        _show_model(records, args.name, url)
    return 0


def _show_model(records, name: str, url: str) -> None:
    from hpo32.storage import artifact_root
    from hpo32.studies.best import load_best, plot_curves

    try:
        best = load_best(records, name, artifact_root(url))
    except LookupError as exc:
        print(f"  ({exc})")
        return
    model = best.load()
    print("  best model:")
    model.summary(print_fn=lambda line, **kw: print("    " + line))
    png, html = plot_curves(best, artifact_root(url) / name / f"trial-{best.trial_number}")
    print(f"  curves: {png}")
    print(f"          {html}")


def cmd_predict(args: argparse.Namespace) -> int:
    from hpo32.storage import artifact_root
    from hpo32.studies.best import load_best, predict_images

    records, url = _records(args.storage)
    study_details(records, args.name)  # a clear error for a missing study
    try:
        best = load_best(records, args.name, artifact_root(url))
    except LookupError as exc:
        raise UserError(str(exc)) from None
    results = predict_images(best, args.images, args.top)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for result in results:
        print(result["image"])
        rows = [("RANK", "CLASS", "NAME", "PROBABILITY")]
        for rank, p in enumerate(result["predictions"], start=1):
            rows.append((rank, p["class_id"], p["class_name"], f"{p['probability']:.3f}"))
        _print_table(rows)
        print()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import csv
    import io

    _, url = _records(args.storage)
    study = _load_study(args.name, url)
    rows = []
    for t in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "datetime_start": t.datetime_start.isoformat() if t.datetime_start else None,
            "datetime_complete": t.datetime_complete.isoformat() if t.datetime_complete else None,
            "duration_seconds": t.duration.total_seconds() if t.duration else None,
        }
        config = t.user_attrs.get("config") or t.params
        row.update({f"params_{k}": v for k, v in config.items()})
        row.update(
            {
                f"user_attrs_{k}": v
                for k, v in t.user_attrs.items()
                if k not in ("config", "history")
            }
        )
        row["intermediate_values"] = {str(k): v for k, v in t.intermediate_values.items()}
        rows.append(row)
    if args.format == "json":
        text = json.dumps(rows, indent=2, default=str)
    else:
        columns: list[str] = []
        for row in rows:
            columns += [c for c in row if c not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in row.items()}
            )
        text = buf.getvalue()
    if args.out:
        try:
            with open(args.out, "w") as f:
                f.write(text)
        except OSError as exc:
            raise UserError(f"cannot write '{args.out}': {exc.strerror}.") from None
    else:
        sys.stdout.write(text)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from hpo32.studies.compare import compare_studies

    records, _ = _records(args.storage)
    try:
        rows = compare_studies(records, args.names)
    except LookupError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if len({r["dataset"] for r in rows}) > 1:
        print(
            "hpo32: note: these studies use different datasets: "
            + ", ".join(sorted(str(r["dataset"]) for r in rows))
        )

    def num(value, fmt):
        return format(value, fmt) if value is not None else "-"

    table = [
        (
            "STUDY",
            "ENGINE",
            "DATASET",
            "TRIALS (C/P/F)",
            "BEST VAL",
            "TEST",
            "TO 95% OF BEST",
            "PER TRIAL",
        )
    ]
    for r in rows:
        s = r["states"]
        table.append(
            (
                r["study"],
                r["engine"] or "-",
                r["dataset"] or "-",
                f"{s.get('complete', 0)}/{s.get('pruned', 0)}/{s.get('fail', 0)}",
                num(r["best_val_accuracy"], ".4f"),
                num(r["test_accuracy"], ".4f"),
                format_duration(r["seconds_to_95pct_of_best"]),
                format_duration(r["median_seconds_per_trial"]),
            )
        )
    _print_table(table)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from hpo32.dashboards.cli import cmd_dashboard as serve

    return serve(args)


def cmd_report(args: argparse.Namespace) -> int:
    from hpo32.dashboards.cli import cmd_report as write

    return write(args)


def cmd_presets(args: argparse.Namespace) -> int:
    from hpo32.search.hardware import describe
    from hpo32.studies.spec import preset_fits

    presets = preset_fits()
    width = max(map(len, presets))
    print(f"this {describe()}; * sized for it, - sized for other machines only")
    for name, (description, fits) in presets.items():
        mark = {True: "*", False: "-", None: " "}[fits]
        print(f"{mark} {name.ljust(width)}  {description}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
