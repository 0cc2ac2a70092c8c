"""The commands that read stored studies: ``hpo32 list``, ``show``, ``predict``, ``export``,
``compare``, and ``presets`` (the ready specs)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from hpo32.studies.cli.common import UserError, _print_table, _records
from hpo32.studies.spec import format_duration


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


def _load_study(name: str, url: str):
    import optuna

    from hpo32.storage import optuna_storage
    from hpo32.studies.runner import StudyNotFound

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=optuna_storage(url))
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
    from hpo32.studies.best import ModelError, load_best, plot_curves

    try:
        best = load_best(records, name, artifact_root(url))
    except LookupError as exc:  # no model yet, or a damaged file: the rest is shown
        print(f"  ({exc})")
        return
    try:
        model = best.load()
    except ModelError as exc:
        print(f"  ({exc})")
        return
    print("  best model:")
    model.summary(print_fn=lambda line, **kw: print("    " + line))
    png, html = plot_curves(best, artifact_root(url) / name / f"trial-{best.trial_number}")
    print(f"  curves: {png}")
    print(f"          {html}")


def cmd_predict(args: argparse.Namespace) -> int:
    from hpo32.storage import artifact_root
    from hpo32.studies.best import ModelError, load_best, predict_images

    records, url = _records(args.storage)
    study_details(records, args.name)  # a clear error for a missing study
    try:
        best = load_best(records, args.name, artifact_root(url))
    except LookupError as exc:  # no model, or a damaged one (ModelError)
        raise UserError(str(exc)) from None
    try:
        results = predict_images(best, args.images, args.top)
    except ModelError as exc:  # the file passed its check but Keras cannot read it
        raise UserError(str(exc)) from None
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

    from hpo32.storage import check_output, write_output

    _, url = _records(args.storage)
    if args.out:
        check_output(args.out, url)  # before the study is read
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
    write_output(args.out or "-", text, url)
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
