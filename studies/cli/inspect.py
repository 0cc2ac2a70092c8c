"""The commands that read stored studies: ``hpo32 list``, ``show`` (``--top``, ``--trial``),
``space``, ``predict``, ``export``, ``compare``, and ``presets`` (the ready specs). Tables
are rich tables on a terminal, plain text otherwise."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

from hpo32.studies.best import study_backend
from hpo32.studies.cli.common import UserError, _print_table, _records
from hpo32.studies.spec import format_duration

if TYPE_CHECKING:
    from pathlib import Path

    import sqlalchemy as sa

    from hpo32.search.space import Param
    from hpo32.storage import Records
    from hpo32.storage.queries import TrialDetail

_T = TypeVar("_T")


def cmd_list(args: argparse.Namespace) -> int:
    from hpo32.storage import artifact_root, queries
    from hpo32.studies.artifacts import disk_bytes, human_bytes

    records, url = _records(args.storage)
    rows = records.summaries()
    root = artifact_root(url)
    disk = {r.name: disk_bytes(root / r.name) for r in rows}
    fidelity = {
        n: f.label()
        for n, f in queries.study_fidelities(records.engine, [r.name for r in rows]).items()
    }
    if args.json:
        extra = {r.name: {"disk_bytes": disk[r.name], "fidelity": fidelity[r.name]} for r in rows}
        print(json.dumps([{**r.to_dict(), **extra[r.name]} for r in rows], indent=2))
        return 0
    header = ("NAME", "DATASET", "ENGINE", "FIDELITY", "TRIALS (C/P/F/R)", "BEST", "BUDGET", "DISK",
              "LAST")  # fmt: skip
    table = [header]
    for r in rows:
        s = r.states
        table.append(
            (
                r.name,
                r.dataset or "-",
                r.engine or "-",
                fidelity[r.name],
                f"{s.get('complete', 0)}/{s.get('pruned', 0)}/{s.get('fail', 0)}/"
                f"{s.get('running', 0)}",
                f"{r.best_value:.4f}" if r.best_value is not None else "-",
                f"{format_duration(r.used_seconds)}/{format_duration(r.budget_seconds)}",
                human_bytes(disk[r.name]),
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
    from hpo32.studies.launch import StudyNotFound

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=optuna_storage(url))
    except KeyError:
        raise StudyNotFound(f"no study named '{name}' in {url}; see hpo32 list.") from None


def study_details(records: Records, name: str) -> dict[str, Any]:
    """What ``hpo32 show`` prints: counts, budget, best trial and its test accuracy."""
    from hpo32.studies.launch import StudyNotFound

    summaries = records.summaries([name])
    if not summaries:
        raise StudyNotFound(f"no study named '{name}'; see hpo32 list.")
    summary = summaries[0]
    out: dict[str, Any] = summary.to_dict()
    out["backend"] = study_backend(records, name)
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


def show_value(value: Any) -> str:
    """A stored value as ``show`` prints it: floats to 4 significant digits, None as ``-``,
    the rest as it is."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
    """A rich table on a terminal, the plain aligned table otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*header, title=title, title_justify="left", highlight=False)
        for row in rows:
            table.add_row(*(str(c) for c in row))
        Console(highlight=False).print(table)
        return
    if title:
        print(title)
    _print_table([tuple(header), *(tuple(r) for r in rows)])


def cmd_show(args: argparse.Namespace) -> int:
    from hpo32.storage import artifact_root
    from hpo32.studies.artifacts import disk_bytes, human_bytes

    records, url = _records(args.storage)
    out_dir = _out_dir(getattr(args, "out", None), url)
    if args.top is not None:
        return _show_top(records, args.name, args.top, args.json)
    if args.trial is not None:
        return _show_trial(records, args.name, args.trial, url, args.json)
    info = study_details(records, args.name)
    folder = artifact_root(url) / args.name
    info["disk_bytes"] = disk_bytes(folder)
    if args.json:
        if out_dir is not None:
            info["curves"] = [str(p) for p in _write_curves(records, args.name, url, out_dir)]
        print(json.dumps(info, indent=2, default=str))
        return 0
    s = info["states"]
    print(f"study {info['name']}: {info['dataset'] or '-'} / {info['engine'] or '-'}")
    print(f"  backend: {info['backend']}")
    print(
        f"  trials: {s.get('complete', 0)} complete, {s.get('pruned', 0)} pruned, "
        f"{s.get('fail', 0)} failed, {s.get('running', 0)} running, "
        f"{s.get('waiting', 0)} waiting"
    )
    print(
        f"  budget: {format_duration(info['used_seconds'])} used of "
        f"{format_duration(info['budget_seconds'])}"
    )
    print(f"  disk: {human_bytes(info['disk_bytes'])} in {folder}")
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
        print(f"    {key}: {show_value(value)}")
    if not args.no_model and best["user_attrs"].get("model_path"):
        _show_model(records, args.name, url)
    if out_dir is not None:
        paths = _write_curves(records, args.name, url, out_dir)
        if paths:
            print(f"  curves: {paths[0]}")
            print(f"          {paths[1]}")
    return 0


def _out_dir(out: str | None, url: str) -> Path | None:
    """The folder ``show --out`` writes the best trial's curves to (None without one).

    Raises:
        UserError: the path is a file (the database's among them).
    """
    from pathlib import Path

    if out is None:
        return None
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"--out '{out}' is a file; give a folder for curves.png and curves.html.")
    return path


def _write_curves(records: Records, name: str, url: str, out_dir: Path) -> list[Path]:
    """Writes the best trial's curves.png and curves.html into ``out_dir`` (created), the
    only files ``show`` writes; nothing without a best trial."""
    from hpo32.storage import artifact_root
    from hpo32.studies.best import load_best, plot_curves

    try:
        best = load_best(records, name, artifact_root(url))
    except LookupError as exc:  # no model yet, or a damaged file
        print(f"  (no curves written: {exc})")
        return []
    return list(plot_curves(best, out_dir))


def _study_trials(records: Records, name: str, read: Callable[[sa.Engine, str], _T]) -> _T:
    """``read(engine, name)`` from storage.queries, a missing study as StudyNotFound."""
    from hpo32.storage import queries
    from hpo32.studies.launch import StudyNotFound

    try:
        return read(records.engine, name)
    except queries.UnknownStudy:
        raise StudyNotFound(f"no study named '{name}'; see hpo32 list.") from None


def _detail_dict(d: TrialDetail) -> dict[str, Any]:
    """A :class:`hpo32.storage.queries.TrialDetail` as ``show --json`` prints it."""
    t = d.trial
    attrs = dict(d.user_attrs)
    config = attrs.pop("config", None) or {k: p.value for k, p in d.params.items()}
    return {
        "number": t.number,
        "state": t.state,
        "value": t.value,
        "started": t.started,
        "completed": t.completed,
        "duration_seconds": (t.completed - t.started) if t.started and t.completed else None,
        "config": config,
        "intermediate_values": [[step, value] for step, value in d.intermediate],
        "user_attrs": attrs,
    }


def _show_top(records: Records, name: str, n: int, as_json: bool) -> int:
    """``show --top N``: the best N complete trials side by side, KerasTuner's
    results_summary as one table (a column per trial, a row per value and parameter)."""
    from hpo32.storage import queries

    details = _study_trials(records, name, lambda e, s: queries.top_trials(e, s, n))
    trials = [_detail_dict(d) for d in details]
    if as_json:
        print(json.dumps(trials, indent=2, default=str))
        return 0
    if not trials:
        print(f"study {name}: no completed trial yet")
        return 0
    result = records.result(name) or {}
    keys: list[str] = []
    for t in trials:
        keys += [k for k in t["config"] if k not in keys]

    def test_of(t: dict[str, Any]) -> str:
        if result.get("trial_number") == t["number"]:
            return f"{result['test_accuracy']:.4f}" if result.get("test_accuracy") else "-"
        return "-"

    rows: list[list[Any]] = [
        ["val_acc", *(f"{t['value']:.4f}" for t in trials)],
        ["test_acc", *(test_of(t) for t in trials)],
        ["epochs", *(t["user_attrs"].get("epochs_completed", "-") for t in trials)],
        ["time", *(format_duration(t["duration_seconds"]) for t in trials)],
        ["stopped by", *(t["user_attrs"].get("stopped_by") or "-" for t in trials)],
    ]
    rows += [[k, *(show_value(t["config"].get(k)) for t in trials)] for k in keys]
    header = ["", *(f"#{i} trial {t['number']}" for i, t in enumerate(trials, start=1))]
    shown = "the best trial" if len(trials) == 1 else f"the best {len(trials)} trials"
    _table(header, rows, title=f"study {name}: {shown} by val_acc")
    return 0


def _show_trial(records: Records, name: str, number: int, url: str, as_json: bool) -> int:
    """``show --trial N``: one trial's config, per-epoch values, timings, stop reason and
    model path."""
    from hpo32.storage import artifact_root, queries

    detail = _study_trials(records, name, lambda e, s: queries.trial_detail(e, s, number))
    if detail is None:
        raise UserError(f"study '{name}' has no trial {number}; see hpo32 show {name} --top 10.")
    t = _detail_dict(detail)
    if as_json:
        print(json.dumps(t, indent=2, default=str))
        return 0
    attrs = t["user_attrs"]
    value = f", val_acc {t['value']:.4f}" if t["value"] is not None else ""
    print(f"study {name}, trial {number}: {t['state'].lower()}{value}")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t["started"])) if t["started"] else "-"
    print(f"  started {when}, took {format_duration(t['duration_seconds'])}")
    why = attrs.get("stopped_by")
    reason = attrs.get("fail_reason") or attrs.get("error")
    stop = {None: "ran all its epochs", "pruned": "pruned"}.get(why, str(why).replace("_", " "))
    print(f"  stopped: {stop}" + (f" ({reason})" if reason else ""))
    timings = [
        ("train", attrs.get("train_seconds")),
        ("validation", attrs.get("eval_seconds")),
        ("save", attrs.get("save_seconds")),
    ]
    parts = [f"{k} {v:.1f}s" for k, v in timings if isinstance(v, (int, float))]
    if attrs.get("images_per_second"):
        parts.append(f"{attrs['images_per_second']:,.0f} img/s")
    if attrs.get("peak_rss_mb"):
        parts.append(f"peak memory {attrs['peak_rss_mb']:,.0f} MB")
    print("  timings: " + (", ".join(parts) or "-"))
    if attrs.get("model_path"):
        path = artifact_root(url) / attrs["model_path"]
        print(f"  model: {path}" + ("" if path.exists() else " (missing)"))
    else:
        print("  model: none kept (only the study's best are kept, see --keep-top)")
    rows = [(k, show_value(v)) for k, v in t["config"].items()]
    if rows:
        _table(("PARAMETER", "VALUE"), rows, title="  config")
    history = attrs.get("history") or {}
    seconds = attrs.get("epoch_seconds") or []
    values = dict(t["intermediate_values"])
    epochs = max([len(v) for v in history.values()] + [len(seconds), len(values)], default=0)
    if epochs:
        metrics = [m for m in ("loss", "accuracy", "val_loss", "val_accuracy", "val_top5")
                   if m in history]  # fmt: skip
        header = ("EPOCH", *(m.upper() for m in metrics), "SECONDS")
        table = []
        for i in range(epochs):
            row: list[Any] = [i + 1]
            for m in metrics:
                vals = history[m]
                row.append(f"{vals[i]:.4f}" if i < len(vals) else "-")
            if not metrics:
                row.append(f"{values[i + 1]:.4f}" if i + 1 in values else "-")
            row.append(f"{seconds[i]:.1f}" if i < len(seconds) else "-")
            table.append(row)
        if not metrics:
            header = ("EPOCH", "VAL_ACCURACY", "SECONDS")
        _table(header, table, title="  epochs")
    return 0


def cmd_space(args: argparse.Namespace) -> int:
    """``hpo32 space STUDY``: the study's search space as a table (name, kind, range or
    choices, log, condition, default)."""
    from hpo32.storage import queries
    from hpo32.studies.launch import StudyNotFound

    records, _ = _records(args.storage)
    data = queries.study_spec(records.engine, args.name)
    if data is None:
        raise StudyNotFound(
            f"no hpo32 study named '{args.name}' (or its spec is unreadable); see hpo32 list."
        )
    from hpo32.studies.spec import StudySpec

    spec = StudySpec.from_dict({"space_version": 1, **data}, source=f"study '{args.name}'")
    space = spec.build_space()
    rows = [space_row(p) for p in space.params]
    if args.json:
        print(json.dumps([dict(zip(SPACE_COLUMNS, r, strict=True)) for r in rows], indent=2))
        return 0
    searched = sum(1 for r in rows if r[1] != "fixed")
    _table(
        [c.upper() for c in SPACE_COLUMNS],
        rows,
        title=f"study {args.name}: {searched} searched and {len(rows) - searched} fixed parameters",
    )
    return 0


SPACE_COLUMNS = ("name", "kind", "range", "log", "condition", "default")


def space_row(param: Param) -> tuple[str, str, str, str, str, str]:
    """One parameter of a :class:`hpo32.search.space.SearchSpace` as ``space`` prints it."""
    from hpo32.search.space import Categorical, Fixed, Float, Int

    kind = type(param).__name__.lower()
    log = ""
    if isinstance(param, (Int, Float)):
        rng = f"{show_value(param.low)} .. {show_value(param.high)}"
        step = getattr(param, "step", None)
        if step not in (None, 1) or (isinstance(param, Float) and step is not None):
            rng += f" step {show_value(step)}"
        log = "log" if param.log else ""
    elif isinstance(param, Categorical):
        kind = "choice"
        rng = ", ".join(show_value(c) for c in param.choices)
    elif isinstance(param, Fixed):
        rng = show_value(param.value)
    else:
        rng = "-"
    cond = param.condition
    condition = ""
    if cond is not None:
        parts = []
        if cond.values is not None:
            parts.append(f"{cond.parent} in {', '.join(show_value(v) for v in cond.values)}")
        if cond.min is not None:
            parts.append(f"{cond.parent} >= {show_value(cond.min)}")
        if cond.max is not None:
            parts.append(f"{cond.parent} <= {show_value(cond.max)}")
        condition = " and ".join(parts)
    default = param.default if not isinstance(param, Fixed) else param.value
    return (
        param.name,
        kind,
        rng,
        log,
        condition,
        show_value(default) if default is not None else "",
    )


def _show_model(records: Records, name: str, url: str) -> None:
    from hpo32.storage import artifact_root
    from hpo32.studies.best import ModelError, load_best

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
        rows: list[tuple[Any, ...]] = [("RANK", "CLASS", "NAME", "PROBABILITY")]
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
    for r in rows:
        r["backend"] = study_backend(records, r["study"])
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if len({r["dataset"] for r in rows}) > 1:
        print(
            "hpo32: note: these studies use different datasets: "
            + ", ".join(sorted(str(r["dataset"]) for r in rows))
        )
    if len({r["fidelity"] for r in rows}) > 1:
        print(
            "hpo32: note: these studies differ in fidelity (classes, images, epochs, image "
            "size), so their accuracies are not alike: "
            + "; ".join(f"{r['study']}: {r['fidelity']}" for r in rows)
        )

    def num(value: float | None, fmt: str) -> str:
        return format(value, fmt) if value is not None else "-"

    table = [
        (
            "STUDY",
            "ENGINE",
            "BACKEND",
            "DATASET",
            "FIDELITY",
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
                r["backend"],
                r["dataset"] or "-",
                r["fidelity"],
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
