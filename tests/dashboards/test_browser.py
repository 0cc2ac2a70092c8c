"""End to end in a real browser: the dashboard over a generated database, driven through
Debian's headless chromium with selenium.

Every page is opened by clicking through the app; each plot must render (plotly's SVG
present, no "Loading..."), with no Dash error overlay, no error box and no severe console
message. Screenshots go to ``test-artifacts/dashboards/`` (or ``$HPO32_TEST_ARTIFACTS``).
Without selenium, chromium or chromedriver the tests skip and say which is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from hpo32.dashboards.app import create_app, study_path
from tests.dashboards.dbgen import HOSTILE_NAME, StudyPlan, write_study

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("HPO32_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get(
    "HPO32_CHROMEDRIVER", shutil.which("chromedriver") or "/usr/bin/chromedriver"
)
ARTIFACTS = Path(os.environ.get("HPO32_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "dashboards"


def _why_no_browser() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'selenium>=4.20')"
    for what, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return (
                f"{what} not found at {path} (apt-get install chromium chromium-driver, "
                f"or set HPO32_{what.upper()})"
            )
    return None


_missing = _why_no_browser()
pytestmark = pytest.mark.skipif(_missing is not None, reason=_missing or "")


# -- servers and the browser ----------------------------------------------------------------------
class Server:
    """The dashboard on a free local port, in a thread of this process."""

    def __init__(self, url: str, refresh_seconds: float = 1.0) -> None:
        from werkzeug.serving import make_server

        app = create_app(url, refresh_seconds=refresh_seconds)
        # Dash's dev tools show callback and property errors in an overlay the tests check
        app.enable_dev_tools(
            debug=True,
            dev_tools_ui=True,
            dev_tools_props_check=True,
            dev_tools_hot_reload=False,
            dev_tools_disable_version_check=True,
        )
        self.httpd = make_server("127.0.0.1", 0, app.server, threaded=True)
        self.base = f"http://127.0.0.1:{self.httpd.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server(fixture_db):
    srv = Server(fixture_db[0])
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--disable-extensions",
        "--no-first-run",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


_STATE_JS = """
const graphs = Array.from(document.querySelectorAll('.dash-graph'));
const page = document.querySelector('#page');
return {
  page: page ? page.children.length : 0,
  loading: document.querySelectorAll('[data-dash-is-loading="true"]').length,
  graphs: graphs.length,
  drawn: graphs.filter(g => g.querySelector('.main-svg')
                            && !g.textContent.includes('Loading...')).length,
  table: document.getElementById('trial-table')
         ? document.getElementById('trial-table-count').textContent.length : -1,
};
"""


def wait_rendered(driver, graphs: int | None = None, timeout: float = 45.0) -> dict:
    """Waits until the page is built, nothing is loading and every plot is drawn."""
    t0 = time.monotonic()
    state: dict = {}
    while time.monotonic() - t0 < timeout:
        state = driver.execute_script(_STATE_JS)
        if (
            state["page"]
            and not state["loading"]
            and state["drawn"] == state["graphs"]
            and (graphs is None or state["graphs"] >= graphs)
            and state["table"] != 0
        ):
            time.sleep(0.2)  # one more look: a refresh may have just started
            again = driver.execute_script(_STATE_JS)
            if not again["loading"] and again["drawn"] == again["graphs"]:
                return again
        time.sleep(0.1)
    shot(driver, "timeout")
    raise AssertionError(f"page did not finish rendering in {timeout}s: {state}")


def wait_for(driver, predicate, what: str, timeout: float = 30.0):
    from selenium.common.exceptions import StaleElementReferenceException

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            value = predicate()
        except StaleElementReferenceException:  # re-rendered between lookup and read
            value = None
        if value:
            return value
        time.sleep(0.1)
    shot(driver, "timeout")
    raise AssertionError(f"timed out waiting for {what}")


def shot(driver, name: str, full: bool = True) -> Path:
    """A screenshot (of the whole page unless ``full`` is false) under the artifacts folder."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] + ".png")
    if not full:
        driver.save_screenshot(str(path))
        return path
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, min(max(1000, height + 40), 7000))
    time.sleep(0.3)
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path


def assert_clean(driver) -> None:
    """No Dash error overlay, no error box, no script from a name ran, no severe log."""
    errors = driver.execute_script(
        "return Array.from(document.querySelectorAll('.dash-fe-error__title, .hpo32-error'))"
        ".map(e => e.textContent)"
    )
    assert errors == []
    assert driver.execute_script("return window.__xss") is None
    body = driver.find_element("tag name", "body").text
    assert "Cannot read the database" not in body and "Traceback" not in body
    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []


def graph_text(driver, gid: str) -> str:
    return driver.execute_script(f"return document.getElementById('{gid}').textContent")


def click(driver, css: str) -> None:
    from selenium.webdriver.common.by import By

    el = driver.find_element(By.CSS_SELECTOR, css)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    el.click()


_FLOATING_FILTER = """
const head = document.querySelector(`#trial-table .ag-header-cell[col-id="${arguments[0]}"]`);
const index = head.getAttribute('aria-colindex');
return document.querySelector(`#trial-table .ag-floating-filter[aria-colindex="${index}"] input`);
"""


def _grid_rows(driver) -> set[str]:
    """The row indexes the trial table shows with data (the pinned part holds each once)."""
    return set(
        driver.execute_script(
            "return Array.from(document.querySelectorAll("
            "'#trial-table .ag-pinned-left-cols-container .ag-row'))"
            ".filter(r => r.querySelector(\"[col-id='number'] a\"))"
            ".map(r => r.getAttribute('row-index'))"
        )
    )


def _grid_cell(driver, row: int, col: str) -> str:
    """The text of one cell of the trial table ('' while its row is loading)."""
    return driver.execute_script(
        "const c = document.querySelector("
        "`#trial-table .ag-row[row-index='${arguments[0]}'] .ag-cell[col-id='${arguments[1]}']`);"
        "return c ? c.textContent : '';",
        row,
        col,
    )


# -- the tests -------------------------------------------------------------------------------
def test_studies_page_lists_every_study_as_text(server, browser, plans):
    browser.get(server.base + "/")
    wait_rendered(browser)
    rows = browser.find_elements("css selector", "#studies tbody tr")
    assert len(rows) == len(plans)
    links = [a.text for a in browser.find_elements("css selector", "#studies a.study-link")]
    assert sorted(links) == sorted(plans)  # the hostile name shown exactly as typed
    assert (
        browser.execute_script("return document.querySelectorAll('#page img, #page b b').length")
        == 0
    )
    cifar = next(r.text for r in rows if r.text.startswith("cifar-optuna"))
    assert "running" in cifar and "cifar10" in cifar and "of" in cifar
    assert "torch" in cifar  # its backend
    hostile = next(r.text for r in rows if r.text.startswith(HOSTILE_NAME))
    assert "unknown" in hostile  # a plain Optuna study records none
    shot(browser, "01-studies")
    assert_clean(browser)


def test_click_through_one_study(server, browser, plans):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(server.base + "/")
    wait_rendered(browser)
    browser.find_element(By.LINK_TEXT, "cifar-optuna").click()
    wait_for(browser, lambda: browser.current_url.endswith("/study/cifar-optuna"), "the study")
    state = wait_rendered(browser, graphs=2)
    assert state["graphs"] == 2  # overview: history and learning curves
    header = browser.find_element(By.ID, "study-summary").text
    assert "60 trials" in header and "2 running" in header and "backend torch" in header
    assert "Best trial #" in browser.find_element(By.ID, "best-title").text
    assert "test accuracy" in browser.find_element(By.ID, "best-facts").text
    assert "trial number" in graph_text(browser, "g-history")
    pruned = sum(t.state.name == "PRUNED" for t in plans["cifar-optuna"].trials)
    assert f"pruned ({pruned})" in graph_text(browser, "g-curves")
    shot(browser, "02-study-overview")
    browser.find_element(By.XPATH, "//label[contains(., 'wall-clock time')]").click()
    wait_for(browser, lambda: "finished at" in graph_text(browser, "g-history"), "time axis")
    wait_rendered(browser, graphs=2)
    assert_clean(browser)

    click(browser, "#tab-params")
    wait_rendered(browser, graphs=3)
    assert "learning_rate" in graph_text(browser, "g-parallel")
    assert "Slice plot" in graph_text(browser, "g-slices")
    click(browser, "#btn-importance")
    wait_for(browser, lambda: "PED-ANOVA" in graph_text(browser, "g-importance"), "importances")
    wait_rendered(browser, graphs=3)
    bars = browser.execute_script(
        "return document.querySelectorAll('#g-importance .bars .point').length"
    )
    assert bars >= 20
    browser.find_element(By.XPATH, "//label[contains(., 'best 10%')]").click()
    wait_for(browser, lambda: "best 10%:" in graph_text(browser, "g-parallel"), "top 10%")
    wait_rendered(browser, graphs=3)
    shot(browser, "03-study-parameters")
    assert_clean(browser)

    click(browser, "#tab-trials")
    wait_rendered(browser)
    count = browser.find_element(By.ID, "trial-table-count")
    assert count.text.startswith("60 of 60 trials match")
    # first page; number, state and value are pinned: AG Grid draws them in a part of their own
    wait_for(browser, lambda: len(_grid_rows(browser)) == 25, "the first page of 25 trials")
    click(browser, "#trial-table .ag-header-cell[col-id='value'] .ag-header-cell-label")
    click(browser, "#trial-table .ag-header-cell[col-id='value'] .ag-header-cell-label")  # desc
    best = max(t.value for t in plans["cifar-optuna"].trials if t.state.name == "COMPLETE")
    wait_for(
        browser,
        lambda: _grid_cell(browser, 0, "value").startswith(f"{best:.6f}"[:6]),
        "sorted by value",
    )
    box = browser.execute_script(_FLOATING_FILTER, "state")
    box.send_keys("PRUNED", Keys.ENTER)
    wait_for(browser, lambda: count.text.startswith(f"{pruned} of 60"), "the filter")
    states = {_grid_cell(browser, i, "state") for i in range(min(pruned, 25))}
    assert states == {"PRUNED"}
    shot(browser, "04-study-trials")
    assert_clean(browser)


def test_click_through_both_comparison_pages(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server.base + "/")
    wait_rendered(browser)
    browser.find_element(By.ID, "nav-datasets").click()
    wait_rendered(browser, graphs=4)
    assert "inet-optuna" in browser.find_element(By.ID, "ds-inet").text
    assert "cifar-optuna" in browser.find_element(By.ID, "ds-cifar").text
    assert "same space" in browser.find_element(By.ID, "ds-note").text
    assert "Spearman rank correlation" in graph_text(browser, "g-ds-rank")
    assert "optimizer" in graph_text(browser, "g-ds-effects")
    click(browser, "#btn-ds-importance")
    wait_for(
        browser,
        lambda: "PED-ANOVA" in graph_text(browser, "g-ds-importance"),
        "importances on both datasets",
    )
    wait_rendered(browser, graphs=4)
    legend = graph_text(browser, "g-ds-importance")
    assert "ImageNet32: inet-optuna" in legend and "CIFAR-10: cifar-optuna" in legend
    shot(browser, "05-compare-datasets")
    assert_clean(browser)

    browser.find_element(By.ID, "nav-engines").click()
    wait_rendered(browser, graphs=3)
    best = graph_text(browser, "g-en-best")
    for name in ("cifar-optuna", "cifar-kt", "cifar-ak"):
        assert name in best
    assert "/h overall" in graph_text(browser, "g-en-throughput")
    assert "n=" in graph_text(browser, "g-en-dist")
    shot(browser, "06-compare-engines")
    assert_clean(browser)


@pytest.mark.parametrize("name", ["empty", "all-failed", HOSTILE_NAME])
def test_edge_case_studies_render(server, browser, name):
    from selenium.webdriver.common.by import By

    browser.get(server.base + study_path(name))
    wait_rendered(browser, graphs=2)
    assert browser.find_element(By.ID, "study-name").text == name
    click(browser, "#tab-params")
    wait_rendered(browser, graphs=3)
    click(browser, "#tab-trials")
    wait_rendered(browser)
    shot(browser, f"07-edge-{name}")
    assert_clean(browser)


def test_unknown_pages_say_so(server, browser):
    browser.get(server.base + "/study/no-such-study")
    wait_rendered(browser)
    body = browser.find_element("tag name", "body").text
    assert "Study not found" in body and "no-such-study" in body
    browser.get(server.base + "/nowhere")
    wait_rendered(browser)
    assert "Page not found" in browser.find_element("tag name", "body").text


def test_report_opens_offline_in_the_browser(fixture_db, engine, browser, tmp_path):
    from hpo32.dashboards.report import write_report

    out = write_report(fixture_db[0], [HOSTILE_NAME], tmp_path / "report.html", engine=engine)
    browser.get(out.as_uri())
    plots = wait_for(
        browser,
        lambda: browser.execute_script(
            "const p = document.querySelectorAll('.plotly-graph-div');"
            "const d = Array.from(p).filter(x => x.querySelector('.main-svg'));"
            "return p.length && p.length === d.length ? p.length : 0"
        ),
        "the report's plots",
    )
    assert plots == 6
    assert HOSTILE_NAME in browser.find_element("tag name", "body").text
    shot(browser, "08-report", full=False)
    assert browser.execute_script("return window.__xss") is None
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_live_refresh_while_a_search_writes(tmp_path, browser):
    """A writer adds trials to the same SQLite file; the open page follows without a
    reload, and the writer is never blocked."""
    import optuna
    from selenium.webdriver.common.by import By

    url = f"sqlite:///{tmp_path}/live.db"
    trials = write_study(url, StudyPlan("live", 5, seed=9, live_session=True))
    done = sum(t.state.name == "COMPLETE" for t in trials)
    srv = Server(url, refresh_seconds=1.0)
    try:
        browser.get(srv.base + study_path("live"))
        wait_rendered(browser, graphs=2)

        def summary() -> str:  # re-rendered on each refresh: look it up each time
            return browser.find_element(By.ID, "study-summary").text

        wait_for(
            browser,
            lambda: any(p.startswith("5 trials") for p in summary().split(" · ")),
            "the five trials",
        )
        browser.execute_script("window.__noReload = 1")
        study = optuna.load_study(study_name="live", storage=url)
        for k in range(3):
            t0 = time.perf_counter()
            trial = study.ask()
            trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
            trial.report(0.5, 1)
            study.tell(trial, 0.9 + k / 100)
            assert time.perf_counter() - t0 < 2.0
            time.sleep(0.3)
        wait_for(browser, lambda: "8 trials" in summary(), "the new trials", timeout=20)
        wait_for(browser, lambda: "best 0.9200" in summary(), "the new best", timeout=20)
        wait_rendered(browser, graphs=2)
        wait_for(
            browser,
            lambda: f"{done + 3} complete" in graph_text(browser, "g-history"),
            "the history plot to follow",
        )
        assert browser.execute_script("return window.__noReload") == 1
        shot(browser, "09-live-refresh")
        # the trial table asks the server again for its rows when the study changes
        click(browser, "#tab-trials")
        count = wait_for(browser, lambda: browser.find_element(By.ID, "trial-table-count"), "table")
        wait_for(browser, lambda: count.text.startswith("8 of 8"), "the eight trials")
        trial = study.ask()
        trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        study.tell(trial, 0.95)
        wait_for(browser, lambda: count.text.startswith("9 of 9"), "the ninth trial", timeout=20)
        wait_for(browser, lambda: _grid_cell(browser, 8, "value") == "0.9500", "its row")
        assert browser.execute_script("return window.__noReload") == 1
        assert_clean(browser)
    finally:
        # leave the page before its server goes: a refresh in flight when the server closes
        # would log a reset connection, read as an error by the next test
        browser.get("about:blank")
        browser.get_log("browser")
        srv.close()


def _shot_to(driver, folder: Path, name: str) -> Path:
    """A screenshot of the window under ``folder`` (the test's tmp dir), also kept with the
    other artifacts."""
    shot(driver, name)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a drawn page, not a blank one
    return path


def test_trial_page_from_the_trial_table(server, browser, plans, tmp_path):
    import yaml
    from selenium.webdriver.common.by import By

    browser.get(server.base + study_path("cifar-optuna") + "?tab=trials")
    wait_rendered(browser)
    link = wait_for(
        browser,
        lambda: browser.find_element(
            By.CSS_SELECTOR, "#trial-table .ag-pinned-left-cols-container [col-id='number'] a"
        ),
        "a trial link in the pinned columns",
    )  # number, state and value stay in view
    pinned = browser.execute_script(
        "return Array.from(document.querySelectorAll("
        "'#trial-table .ag-pinned-left-header [col-id]')).map(c => c.getAttribute('col-id'))"
    )
    assert pinned[:3] == ["number", "state", "value"]
    number = int(link.text)
    click(browser, "#trial-table .ag-pinned-left-cols-container [col-id='number'] a")
    wait_for(browser, lambda: browser.current_url.endswith(f"/trial/{number}"), "the trial")
    wait_rendered(browser, graphs=1)
    assert browser.find_element(By.ID, "trial-title").text == f"Trial #{number}"
    trial = plans["cifar-optuna"].trials[number]
    facts = browser.find_element(By.ID, "trial-facts").text
    assert trial.state.name.lower() in facts and "started" in facts
    warm = yaml.safe_load(browser.find_element(By.ID, "trial-warm-start").text)
    assert warm["warm_start"][0] == trial.user_attrs["config"]
    if trial.state.name == "COMPLETE":
        assert browser.find_element(By.ID, "trial-model").text.endswith("model.keras")
    assert "per-epoch metrics" in graph_text(browser, "g-trial-curves")
    click(browser, "#trial-copy")
    wait_for(browser, lambda: browser.find_element(By.ID, "trial-copied").text, "the copy")
    _shot_to(browser, tmp_path, "10-trial-page")
    assert_clean(browser)

    browser.get(server.base + study_path("cifar-optuna") + "/trial/9999")
    wait_rendered(browser)
    assert "Trial not found" in browser.find_element("tag name", "body").text


def test_timeline_tab_and_new_parameter_plots(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server.base + study_path("cifar-optuna"))
    wait_rendered(browser, graphs=2)
    assert "chance 0.1" in graph_text(browser, "g-history")
    click(browser, "#tab-timeline")
    wait_rendered(browser, graphs=2)
    assert "unknown worker" in graph_text(browser, "g-timeline")
    assert "Empirical distribution" in graph_text(browser, "g-edf")
    _shot_to(browser, tmp_path, "11-study-timeline")
    assert_clean(browser)

    click(browser, "#tab-params")
    wait_rendered(browser, graphs=4)
    assert "Contour plot" in graph_text(browser, "g-contour")
    browser.find_element(By.XPATH, "//label[contains(., 'show pruned trials')]").click()
    wait_for(browser, lambda: "pruned trials at" in graph_text(browser, "g-slices"), "pruned")
    wait_rendered(browser, graphs=4)
    browser.find_element(By.XPATH, "//label[contains(., 'brushable axes')]").click()
    wait_for(
        browser,
        lambda: browser.execute_script(
            "return document.querySelectorAll('#g-parallel .parcoords').length"
        ),
        "the brushable axes",
    )
    wait_rendered(browser, graphs=4)
    _shot_to(browser, tmp_path, "12-study-parameters-brush")
    assert_clean(browser)
