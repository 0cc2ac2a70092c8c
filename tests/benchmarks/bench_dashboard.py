"""Benchmark: the dashboard over a generated 10,000-trial SQLite database.

Builds (or reuses) a database with one 10,000-trial CIFAR-10 study, a 2,000-trial ImageNet32
study over the same space and two 500-trial KerasTuner/AutoKeras studies, then prints:

1. ``server``: the seconds the page's callbacks take run one after another in this process
   (SQL, figure data, plotly figure, JSON), cache cold - what the server does for a page;
2. ``browser cold`` / ``browser warm``: seconds from navigation to every plot drawn in
   headless chromium against ``hpo32 dashboard`` running in its own process (production
   mode): the first visit of the page (the server computes everything; the browser has
   the app's JavaScript cached from a small study's page) and the second (the server's
   caches hold the figures); skipped without chromium/selenium;
3. the cost of one live-refresh check (the fingerprint query) and of ``hpo32 report``.

Usage::

    .venv/bin/python tests/benchmarks/bench_dashboard.py [--trials 10000] [--db PATH]
        [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hpo32.dashboards import data, figures  # noqa: E402
from tests.dashboards.dbgen import build_benchmark_db  # noqa: E402

STUDY = "big-cifar"


def _json(obj: Any) -> str:
    import plotly.io as pio

    return (
        pio.to_json(obj, validate=False)
        if isinstance(obj, dict) and "data" in obj
        else json.dumps(obj, default=str)
    )


def server_pages(engine) -> dict[str, list[Callable[[], Any]]]:
    """What each page's callbacks compute (see dashboards/app.py), as thunks; what the app
    caches and shares between a page's callbacks is computed once here too."""
    from functools import cache

    @cache
    def samples():
        return data.param_samples(engine, STUDY, cap=1000)

    @cache
    def pair():
        return data.default_dataset_pair(data.list_studies(engine))

    @cache
    def engine_series():
        names = [s["name"] for s in data.list_studies(engine) if s["dataset"] == "cifar10"]
        return data.best_over_time(engine, names)

    return {
        "studies": [lambda: data.fingerprint(engine), lambda: data.list_studies(engine)],
        "study: overview": [
            lambda: data.study_info(engine, STUDY),
            lambda: data.fingerprint(engine, [STUDY]),
            lambda: data.best_trial(engine, STUDY),
            lambda: figures.history_figure(data.history(engine, STUDY)),
            lambda: figures.learning_curves_figure(data.learning_curves(engine, STUDY)),
        ],
        "study: parameters": [
            lambda: data.study_info(engine, STUDY),
            lambda: figures.parallel_figure(data.param_samples(engine, STUDY, cap=500)),
            lambda: figures.slices_figure(samples(), params=["learning_rate"]),
        ],
        "study: importances (button)": [
            lambda: figures.importance_figure([(STUDY, data.importances(engine, STUDY))])
        ],
        "study: trials (table page)": [
            lambda: data.study_info(engine, STUDY),
            lambda: data.grid_rows(data.trial_table(engine, STUDY)["rows"], 0, 25),
        ],
        "compare datasets": [
            lambda: figures.best_over_time_figure(data.best_over_time(engine, list(pair()))),
            lambda: figures.categorical_effects_figure(
                [(n, data.categorical_effects(engine, n)) for n in pair()]
            ),
            lambda: figures.rank_correlation_figure(
                data.rank_correlation(engine, *pair()), "a", "b"
            ),
        ],
        "compare engines": [
            lambda: figures.best_over_time_figure(engine_series()),
            lambda: figures.throughput_figure(data.throughput(engine_series())),
            lambda: figures.distribution_figure(data.value_distribution(engine_series())),
        ],
    }


def time_server(url: str) -> dict[str, float]:
    out = {}
    for page in server_pages(None):
        engine = data.open_engine(url)  # a fresh engine and fresh caches per page
        t0 = time.perf_counter()
        for thunk in server_pages(engine)[page]:
            _json(thunk())
        out[page] = time.perf_counter() - t0
        engine.dispose()
    return out


BROWSER_PAGES = [
    ("studies", "/", 0, None),
    ("study: overview", f"/study/{STUDY}", 2, None),
    ("study: parameters", f"/study/{STUDY}?tab=params", 3, None),
    ("study: importances (button)", f"/study/{STUDY}?tab=params", 3, "#btn-importance"),
    ("study: trials (table page)", f"/study/{STUDY}?tab=trials", 0, None),
    ("compare datasets", "/compare/datasets", 4, None),
    ("compare engines", "/compare/engines", 3, None),
]

_STATE = """
const graphs = Array.from(document.querySelectorAll('.dash-graph'));
const page = document.querySelector('#page');
const imp = document.getElementById('g-importance');
return {page: page ? page.children.length : 0,
        loading: document.querySelectorAll('[data-dash-is-loading="true"]').length,
        graphs: graphs.length,
        drawn: graphs.filter(g => g.querySelector('.main-svg')
                                  && !g.textContent.includes('Loading...')).length,
        table: document.getElementById('trial-table')
               ? document.querySelectorAll('#trial-table .ag-cell a').length : -1,
        importances: imp ? imp.textContent.includes('PED-ANOVA') : false};
"""


def _wait(
    driver, graphs: int, extra: Callable[[dict], bool] = lambda s: True, timeout: float = 120.0
) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        s = driver.execute_script(_STATE)
        if (
            s["page"]
            and not s["loading"]
            and s["graphs"] >= graphs
            and s["drawn"] == s["graphs"]
            and s["table"] != 0
            and extra(s)
        ):
            return
        time.sleep(0.03)
    raise TimeoutError(f"page not rendered in {timeout}s: {s}")


def time_browser(url: str) -> tuple[dict[str, tuple[float, float]], str]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return {}, "selenium not installed"
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_bin = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (os.path.exists(chromium) and os.path.exists(driver_bin)):
        return {}, "chromium/chromedriver not installed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpo32.dashboards.cli",
            "dashboard",
            "--storage",
            url,
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    opts = Options()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(driver_bin))
    try:
        base = proc.stdout.readline().split(" at ", 1)[1].split(" ", 1)[0].rstrip("/")
        # load and cache the app's JavaScript (plotly.js, tabs, table) on a small study
        # first, so that "cold" below means the server's caches, not the browser's
        for warmup in ("/study/big-kt", "/study/big-kt?tab=trials"):
            driver.get(base + warmup)
            _wait(driver, 0)
        out: dict[str, tuple[float, float]] = {}
        for name, path, graphs, button in BROWSER_PAGES:
            runs = []
            for _visit in range(2):
                t0 = time.perf_counter()
                driver.get(base + path)
                # the trials tab is drawn when its first block of rows is (trial links)
                rows = "tab=trials" in path
                _wait(driver, graphs, lambda s, rows=rows: not rows or s["table"] > 0)
                if button:
                    t0 = time.perf_counter()
                    driver.find_element("css selector", button).click()
                    _wait(driver, graphs, lambda s: s["importances"])
                runs.append(time.perf_counter() - t0)
            out[name] = (runs[0], runs[1])
        version = driver.capabilities.get("browserVersion", "?")
    finally:
        driver.quit()
        proc.send_signal(2)
        proc.wait(timeout=20)
    return out, f"chromium {version} headless (software rendering)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--db", help="database file to reuse or create")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    tmp = None
    if args.db:
        path = Path(args.db).resolve()
    else:
        tmp = tempfile.TemporaryDirectory(prefix="hpo32-bench-")
        path = Path(tmp.name) / "bench.db"
    url = f"sqlite:///{path}"
    if not path.exists():
        t0 = time.perf_counter()
        counts = build_benchmark_db(url, n_trials=args.trials)
        print(
            f"generated {path.name}: {counts} in {time.perf_counter() - t0:.1f} s, "
            f"{path.stat().st_size / 1e6:.0f} MB"
        )
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    print(
        f"machine: {os.cpu_count()} CPU ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )

    server = time_server(url)
    browser, how = ({}, "skipped (--no-browser)") if args.no_browser else time_browser(url)
    print(f"browser: {how}")
    print()
    print(f"| page ({args.trials:,}-trial study) | server s | browser cold s | browser warm s |")
    print("|---|---:|---:|---:|")
    for page in server:
        cold, warm = browser.get(page, (None, None))
        cells = [f"{v:.2f}" if v is not None else "-" for v in (server[page], cold, warm)]
        print(f"| {page} | " + " | ".join(cells) + " |")

    engine = data.open_engine(url)
    data.fingerprint(engine, [STUDY])
    t0 = time.perf_counter()
    for _ in range(20):
        data.fingerprint(engine, [STUDY])
    per_study = (time.perf_counter() - t0) / 20
    t0 = time.perf_counter()
    for _ in range(20):
        data.fingerprint(engine)
    whole = (time.perf_counter() - t0) / 20
    print()
    print(
        f"live-refresh check (fingerprint): {per_study * 1000:.1f} ms for the study, "
        f"{whole * 1000:.1f} ms for the whole database"
    )
    from hpo32.dashboards.report import write_report

    out = path.with_name("bench-report.html")
    t0 = time.perf_counter()
    write_report(url, [STUDY, "big-inet", "big-kt", "big-ak"], out, engine=engine)
    print(
        f"hpo32 report of the 4 studies: {time.perf_counter() - t0:.1f} s, "
        f"{out.stat().st_size / 1e6:.1f} MB"
    )
    engine.dispose()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
